//! Following a service's rollout live, as `berth restart`, `berth deploy` and
//! `berth apply --wait` do: every 500 ms the service is read again; a line of counts
//! (the new deployment's running / pending / healthy tasks, the old deployments'
//! running ones) is printed whenever they change, and the service's events as they
//! happen, until the new deployment is COMPLETED, FAILED or replaced by another.
//! Deciding where the rollout stands and drawing the counts are pure functions.

use std::time::{Duration, Instant};

use anyhow::bail;
use berth_api::{Service, Task};
use berth_core::model::{DeploymentStatus, HealthStatus, RolloutState, TaskStatus};

use super::event_feed::EventFeed;
use super::ps::{self, TargetHealth};
use super::{describe_task_definition, describe_tasks, find_service, list_tasks};
use crate::client::ApiClient;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// One rollout to follow: deployment `deployment_id` of `service` in `cluster`.
pub(crate) struct Watched {
    cluster: String,
    service: String,
    deployment_id: String,
    feed: EventFeed,
    /// The counts line printed last (printed again only when it changes).
    last_line: String,
    /// Whether the deployment's task definition has a container health check, once read.
    checks_health: Option<bool>,
}

impl Watched {
    pub(crate) fn new(
        cluster: &str,
        service: &str,
        deployment_id: &str,
        feed: EventFeed,
    ) -> Watched {
        Watched {
            cluster: cluster.to_string(),
            service: service.to_string(),
            deployment_id: deployment_id.to_string(),
            feed,
            last_line: String::new(),
            checks_health: None,
        }
    }
}

/// Follows deployment `deployment_id` of `service` (in the client's cluster) until it
/// is COMPLETED; an error naming the deployment when it FAILED or was replaced.
pub(crate) async fn follow(
    client: &ApiClient,
    service: &str,
    deployment_id: &str,
    feed: EventFeed,
) -> anyhow::Result<()> {
    let watched = Watched::new(&client.cluster, service, deployment_id, feed);
    follow_all(client, vec![watched]).await
}

/// Follows every rollout at once, until all are COMPLETED; the first that FAILED or was
/// replaced ends it with an error naming its service and deployment.
pub(crate) async fn follow_all(
    client: &ApiClient,
    mut watched: Vec<Watched>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !watched.is_empty() {
        tokio::time::sleep(POLL_INTERVAL).await;
        let mut still = Vec::with_capacity(watched.len());
        for mut one in watched {
            if !step(client, &mut one).await? {
                still.push(one);
            }
        }
        watched = still;
        if let Some(one) = watched.first() {
            if started.elapsed() >= GIVE_UP_AFTER {
                bail!(
                    "service '{}': deployment {} did not complete in {} s; see `berth events {}`",
                    one.service,
                    one.deployment_id,
                    GIVE_UP_AFTER.as_secs(),
                    one.service
                );
            }
        }
    }
    Ok(())
}

/// Reads the service once and prints what changed; `true` once its rollout COMPLETED.
async fn step(client: &ApiClient, watched: &mut Watched) -> anyhow::Result<bool> {
    let (cluster, name, id) = (
        watched.cluster.clone(),
        watched.service.clone(),
        watched.deployment_id.clone(),
    );
    let Some(service) = find_service(client, &cluster, &name).await? else {
        bail!("service '{name}' was deleted while deployment {id} rolled out");
    };
    let checks_health = match watched.checks_health {
        Some(known) => known,
        None => {
            let reference = service
                .deployments
                .iter()
                .find(|d| d.id == id)
                .map_or(service.task_definition.as_str(), |d| &d.task_definition);
            let definition = describe_task_definition(client, reference).await?;
            let known = definition
                .container_definitions
                .iter()
                .any(|c| c.health_check.is_some());
            watched.checks_health = Some(known);
            known
        }
    };
    let task_arns = list_tasks(client, &cluster, Some(&name), TaskStatus::Running.as_ecs()).await?;
    let tasks = describe_tasks(client, &cluster, &task_arns).await?;
    let target_health = ps::target_health_of(client, std::slice::from_ref(&service)).await?;

    print!("{}", watched.feed.new_lines(&service));
    let counts = Counts::of(&service, &id, &tasks, &target_health, checks_health);
    let line = counts.line(&name, &id);
    if line != watched.last_line {
        println!("{line}");
        watched.last_line = line;
    }
    match rollout(&service, &id) {
        Rollout::Completed => {
            println!("{name}: deployment {id} COMPLETED ({})", counts.new_words());
            Ok(true)
        }
        Rollout::Failed(reason) => {
            bail!("service '{name}': deployment {id} FAILED: {reason}")
        }
        Rollout::Replaced(by) => {
            bail!("service '{name}': deployment {id} was replaced by {by} before it completed")
        }
        Rollout::InProgress => Ok(false),
    }
}

/// The id of the service's PRIMARY deployment (the newest).
pub(crate) fn primary_deployment(service: &Service) -> Option<String> {
    service
        .deployments
        .iter()
        .find(|d| DeploymentStatus::from_ecs(&d.status) == Some(DeploymentStatus::Primary))
        .map(|d| d.id.clone())
}

/// The deployment a CreateService (`before` None) or UpdateService answer shows
/// started: its PRIMARY one, when that is not the one before (an update of the desired
/// count alone starts none).
pub(crate) fn started_deployment(before: Option<&Service>, after: &Service) -> Option<String> {
    let previous = before.and_then(primary_deployment);
    primary_deployment(after).filter(|id| previous.as_ref() != Some(id))
}

#[derive(Debug, PartialEq)]
pub(crate) enum Rollout {
    InProgress,
    Completed,
    Failed(String),
    /// Gone from the service, or no longer PRIMARY: another deployment (a rollback, a
    /// newer update) took over; names that one.
    Replaced(String),
}

/// Where the rollout of deployment `id` stands.
pub(crate) fn rollout(service: &Service, id: &str) -> Rollout {
    let primary = primary_deployment(service).unwrap_or_default();
    let Some(deployment) = service.deployments.iter().find(|d| d.id == id) else {
        return Rollout::Replaced(primary);
    };
    match RolloutState::from_ecs(&deployment.rollout_state) {
        Some(RolloutState::Failed) => Rollout::Failed(deployment.rollout_state_reason.clone()),
        _ if primary != id => Rollout::Replaced(primary),
        Some(RolloutState::Completed) => Rollout::Completed,
        _ => Rollout::InProgress,
    }
}

/// How far a rollout has come: the new deployment's tasks, and the old ones' left.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub desired: i64,
    pub running: i64,
    pub pending: i64,
    /// The new deployment's RUNNING tasks that are healthy: their container health
    /// check (when the task definition has one) and their targets in every target
    /// group of the service.
    pub healthy: i64,
    /// Whether the service has deployments besides the new one.
    pub has_old: bool,
    pub old_running: i64,
    pub old_pending: i64,
}

impl Counts {
    /// The counts of deployment `id`: its desired count from DescribeServices' answer,
    /// the rest from the service's tasks of desired status RUNNING (with the target
    /// health of its target groups), so that they all come from one reading (a task's
    /// deployment is its `startedBy`).
    pub(crate) fn of(
        service: &Service,
        id: &str,
        tasks: &[Task],
        target_health: &TargetHealth,
        checks_health: bool,
    ) -> Counts {
        let mut counts = Counts::default();
        for deployment in &service.deployments {
            if deployment.id == id {
                counts.desired = deployment.desired_count;
            } else {
                counts.has_old = true;
            }
        }
        for task in tasks {
            let running = task.last_status == TaskStatus::Running.as_ecs();
            if task.started_by.as_deref() == Some(id) {
                if running {
                    counts.running += 1;
                } else {
                    counts.pending += 1;
                }
                if is_healthy(service, task, target_health, checks_health) {
                    counts.healthy += 1;
                }
            } else if running {
                counts.old_running += 1;
            } else {
                counts.old_pending += 1;
            }
        }
        counts
    }

    /// `2/3 running, 1 pending, 1 healthy`.
    fn new_words(&self) -> String {
        let mut words = format!("{}/{} running", self.running, self.desired);
        if self.pending > 0 {
            words.push_str(&format!(", {} pending", self.pending));
        }
        words.push_str(&format!(", {} healthy", self.healthy));
        words
    }

    /// `member: new ecs-svc/2 2/3 running, 1 healthy | old 1 running`.
    pub(crate) fn line(&self, service: &str, id: &str) -> String {
        let mut line = format!("{service}: new {id} {}", self.new_words());
        if self.has_old {
            line.push_str(&format!(" | old {} running", self.old_running));
            if self.old_pending > 0 {
                line.push_str(&format!(", {} pending", self.old_pending));
            }
        }
        line
    }
}

/// A RUNNING task whose health check (if its definition has one) passes and whose
/// targets are healthy in each of the service's target groups.
fn is_healthy(
    service: &Service,
    task: &Task,
    target_health: &TargetHealth,
    checks_health: bool,
) -> bool {
    if task.last_status != TaskStatus::Running.as_ecs() {
        return false;
    }
    let own = if task.health_status == HealthStatus::Healthy.as_ecs() {
        true
    } else if task.health_status == HealthStatus::Unhealthy.as_ecs() {
        false
    } else {
        !checks_health
    };
    let target_groups = service
        .load_balancers
        .iter()
        .filter(|lb| lb.target_group_arn.is_some())
        .count();
    let targets = ps::task_targets(target_health, service, task);
    own && targets.len() >= target_groups && targets.iter().all(|t| t.state == "healthy")
}

#[cfg(test)]
mod tests {
    use berth_api::{Container, Deployment, LoadBalancer, NetworkBinding};

    use super::ps::Target;
    use super::*;

    fn deployment(id: &str, status: &str, rollout_state: &str, reason: &str) -> Deployment {
        Deployment {
            id: id.to_string(),
            status: status.to_string(),
            rollout_state: rollout_state.to_string(),
            rollout_state_reason: reason.to_string(),
            ..Default::default()
        }
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service {
            service_name: "member".to_string(),
            deployments,
            ..Default::default()
        }
    }

    #[test]
    fn the_rollout_of_the_new_deployment_decides() {
        let new = |state, reason| deployment("ecs-svc/2", "PRIMARY", state, reason);
        let old = deployment("ecs-svc/1", "ACTIVE", "COMPLETED", "");
        assert_eq!(
            rollout(
                &service(vec![new("IN_PROGRESS", ""), old.clone()]),
                "ecs-svc/2"
            ),
            Rollout::InProgress
        );
        assert_eq!(
            rollout(&service(vec![new("COMPLETED", "done")]), "ecs-svc/2"),
            Rollout::Completed
        );
        assert_eq!(
            rollout(
                &service(vec![new("FAILED", "circuit breaker"), old]),
                "ecs-svc/2"
            ),
            Rollout::Failed("circuit breaker".to_string())
        );
    }

    #[test]
    fn a_deployment_taken_over_is_replaced() {
        let newer = deployment("ecs-svc/3", "PRIMARY", "IN_PROGRESS", "");
        let ours = deployment("ecs-svc/2", "ACTIVE", "IN_PROGRESS", "");
        assert_eq!(
            rollout(&service(vec![newer.clone(), ours]), "ecs-svc/2"),
            Rollout::Replaced("ecs-svc/3".to_string())
        );
        assert_eq!(
            rollout(&service(vec![newer]), "ecs-svc/2"),
            Rollout::Replaced("ecs-svc/3".to_string())
        );
    }

    #[test]
    fn a_deployment_rolled_back_by_the_circuit_breaker_is_failed_not_replaced() {
        let rollback = deployment("ecs-svc/3", "PRIMARY", "IN_PROGRESS", "");
        let ours = deployment("ecs-svc/2", "ACTIVE", "FAILED", "tasks failed to start");
        assert_eq!(
            rollout(&service(vec![rollback, ours]), "ecs-svc/2"),
            Rollout::Failed("tasks failed to start".to_string())
        );
    }

    #[test]
    fn only_a_new_primary_deployment_is_followed() {
        let first = service(vec![deployment("ecs-svc/1", "PRIMARY", "IN_PROGRESS", "")]);
        assert_eq!(
            started_deployment(None, &first),
            Some("ecs-svc/1".to_string())
        );
        // desiredCount alone: the same deployment.
        assert_eq!(started_deployment(Some(&first), &first), None);
        let updated = service(vec![
            deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", ""),
            deployment("ecs-svc/1", "ACTIVE", "COMPLETED", ""),
        ]);
        assert_eq!(
            started_deployment(Some(&first), &updated),
            Some("ecs-svc/2".to_string())
        );
    }

    fn task(id: &str, deployment: &str, status: &str, health: &str) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:r:0:task/c/{id}"),
            started_by: Some(deployment.to_string()),
            last_status: status.to_string(),
            health_status: health.to_string(),
            container_instance_arn: Some("arn:aws:ecs:r:0:container-instance/c/node".to_string()),
            containers: vec![Container {
                name: "web".to_string(),
                network_bindings: vec![NetworkBinding {
                    container_port: Some(80),
                    host_port: Some(32000 + id.len() as i64),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn rolling() -> Service {
        let mut new = deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", "");
        new.desired_count = 3;
        let mut old = deployment("ecs-svc/1", "ACTIVE", "COMPLETED", "");
        old.desired_count = 1;
        service(vec![new, old])
    }

    #[test]
    fn the_counts_line_shows_the_new_deployment_and_the_old_ones() {
        let tasks = vec![
            task("a", "ecs-svc/2", "RUNNING", "UNKNOWN"),
            task("bb", "ecs-svc/2", "RUNNING", "UNKNOWN"),
            task("dddd", "ecs-svc/2", "PENDING", "UNKNOWN"),
            task("ccc", "ecs-svc/1", "RUNNING", "UNKNOWN"),
        ];
        let counts = Counts::of(&rolling(), "ecs-svc/2", &tasks, &TargetHealth::new(), false);
        assert_eq!(
            counts.line("member", "ecs-svc/2"),
            "member: new ecs-svc/2 2/3 running, 1 pending, 2 healthy | old 1 running"
        );
        // With a health check in the definition, UNKNOWN is not yet healthy.
        let checked = Counts::of(&rolling(), "ecs-svc/2", &tasks, &TargetHealth::new(), true);
        assert_eq!(checked.healthy, 0);

        let mut done = deployment("ecs-svc/2", "PRIMARY", "COMPLETED", "");
        done.desired_count = 2;
        let tasks = vec![
            task("a", "ecs-svc/2", "RUNNING", "HEALTHY"),
            task("bb", "ecs-svc/2", "RUNNING", "UNHEALTHY"),
        ];
        let counts = Counts::of(
            &service(vec![done]),
            "ecs-svc/2",
            &tasks,
            &TargetHealth::new(),
            true,
        );
        assert_eq!(
            counts.line("member", "ecs-svc/2"),
            "member: new ecs-svc/2 2/2 running, 1 healthy"
        );
    }

    #[test]
    fn behind_a_load_balancer_healthy_means_a_healthy_target() {
        let group = "arn:aws:elasticloadbalancing:r:0:targetgroup/member/0123";
        let mut service = rolling();
        service.load_balancers = vec![LoadBalancer {
            target_group_arn: Some(group.to_string()),
            container_name: Some("web".to_string()),
            container_port: Some(80),
            ..Default::default()
        }];
        let target = |port: i64, state: &str| Target {
            id: "node".to_string(),
            port: Some(port),
            state: state.to_string(),
            reason: None,
        };
        // Task `a` (host port 32001) is a healthy target, `bb` (32002) still initial,
        // `ccc` is in no target group yet.
        let target_health = TargetHealth::from([(
            group.to_string(),
            vec![target(32001, "healthy"), target(32002, "initial")],
        )]);
        let tasks = vec![
            task("a", "ecs-svc/2", "RUNNING", "UNKNOWN"),
            task("bb", "ecs-svc/2", "RUNNING", "UNKNOWN"),
            task("ccc", "ecs-svc/2", "RUNNING", "UNKNOWN"),
        ];
        let counts = Counts::of(&service, "ecs-svc/2", &tasks, &target_health, false);
        assert_eq!(counts.healthy, 1);
    }
}
