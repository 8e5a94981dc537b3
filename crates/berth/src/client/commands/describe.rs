//! `berth describe SERVICE|TASK`: what ECS's DescribeServices or DescribeTasks says,
//! readable, with the target health of load-balanced tasks (as `berth ps` reads it).
//! Fetching is separate from formatting: [`render_service`] and [`render_task`] are
//! pure functions of the API's answers.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::bail;
use berth_api::{
    DescribeContainerInstancesRequest, DescribeContainerInstancesResponse, Service, Task,
};
use serde_json::Value;
use time::UtcOffset;

use super::events::{clock, local_offset};
use super::ps::{binding_words, describe_target_health, target_group_name, task_targets, Target};
use super::{
    describe_tasks, find_service, find_task, list_tasks, looks_like_task, name_from_arn,
    service_of_task, short_task_id, task_definition_name,
};
use crate::client::ApiClient;

/// The last this many events of a service are shown.
const EVENTS_SHOWN: usize = 10;
/// At most this many stopped tasks of a service are shown (newest first).
const STOPPED_TASKS_SHOWN: usize = 5;

pub async fn run(client: &ApiClient, target: &str) -> anyhow::Result<()> {
    let cluster = client.cluster.clone();
    let offset = local_offset().unwrap_or(UtcOffset::UTC);
    if looks_like_task(target) {
        if let Some(task) = find_task(client, target).await? {
            let service = match service_of_task(&task) {
                Some(name) => find_service(client, &cluster, name).await?,
                None => None,
            };
            let target_health = match &service {
                Some(service) => target_health(client, service).await?,
                None => HashMap::new(),
            };
            let host = host_of(client, &task).await?;
            let text = render_task(
                &task,
                service.as_ref(),
                &target_health,
                host.as_deref(),
                offset,
            );
            print!("{text}");
            return Ok(());
        }
    }
    let Some(service) = find_service(client, &cluster, target).await? else {
        if looks_like_task(target) {
            bail!("no task or service '{target}' in cluster '{cluster}'");
        }
        bail!("service '{target}' not found in cluster '{cluster}'");
    };
    let name = service.service_name.as_str();
    let mut arns = list_tasks(client, &cluster, Some(name), "RUNNING").await?;
    for arn in list_tasks(client, &cluster, Some(name), "STOPPED").await? {
        if !arns.contains(&arn) {
            arns.push(arn);
        }
    }
    let tasks = describe_tasks(client, &cluster, &arns).await?;
    let target_health = target_health(client, &service).await?;
    print!(
        "{}",
        render_service(&service, &tasks, &target_health, offset)
    );
    Ok(())
}

/// The targets of each of the service's target groups.
async fn target_health(
    client: &ApiClient,
    service: &Service,
) -> anyhow::Result<HashMap<String, Vec<Target>>> {
    let mut found = HashMap::new();
    for load_balancer in &service.load_balancers {
        if let Some(arn) = load_balancer.target_group_arn.as_deref() {
            if !found.contains_key(arn) {
                found.insert(arn.to_string(), describe_target_health(client, arn).await?);
            }
        }
    }
    Ok(found)
}

/// The host the task's container instance runs on (its ec2InstanceId).
async fn host_of(client: &ApiClient, task: &Task) -> anyhow::Result<Option<String>> {
    let Some(instance) = task.container_instance_arn.as_deref() else {
        return Ok(None);
    };
    let request = DescribeContainerInstancesRequest {
        cluster: Some(task.cluster_arn.clone()),
        container_instances: vec![instance.to_string()],
        include: vec![],
    };
    let response: DescribeContainerInstancesResponse =
        client.ecs("DescribeContainerInstances", &request).await?;
    Ok(response
        .container_instances
        .into_iter()
        .next()
        .map(|i| i.ec2_instance_id)
        .filter(|id| !id.is_empty()))
}

// ---- formatting (pure) ----

/// `  key:  value` lines, the values in one column.
struct Fields<'a> {
    out: &'a mut String,
}

impl Fields<'_> {
    fn line(&mut self, key: &str, value: impl std::fmt::Display) {
        let key = format!("{key}:");
        let _ = writeln!(self.out, "  {key:<26}{value}");
    }
}

fn date(epoch_seconds: f64, offset: UtcOffset) -> String {
    clock(epoch_seconds, offset)
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

fn target_line(target: &Target) -> String {
    let address = match target.port {
        Some(port) => format!("{}:{port}", target.id),
        None => target.id.clone(),
    };
    match target.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => format!("{address}  {} ({reason})", target.state),
        None => format!("{address}  {}", target.state),
    }
}

fn capacity_provider_strategy(service: &Service) -> String {
    service
        .capacity_provider_strategy
        .iter()
        .map(|item| {
            format!(
                "{} (base {}, weight {})",
                item.capacity_provider, item.base, item.weight
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `awsvpc: subnets a, b; security groups sg-1; assignPublicIp DISABLED`, from the
/// networkConfiguration ECS echoes.
fn network(configuration: Option<&Value>) -> String {
    let Some(vpc) = configuration.and_then(|c| c.get("awsvpcConfiguration")) else {
        return "bridge or host (no networkConfiguration)".to_string();
    };
    let list = |key: &str| {
        vpc.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "-".to_string())
    };
    format!(
        "awsvpc: subnets {}; security groups {}; assignPublicIp {}",
        list("subnets"),
        list("securityGroups"),
        vpc.get("assignPublicIp")
            .and_then(Value::as_str)
            .unwrap_or("DISABLED")
    )
}

/// A service as DescribeServices answers it, with its target groups' targets and its
/// tasks (running ones, then the newest stopped ones).
pub(super) fn render_service(
    service: &Service,
    tasks: &[Task],
    target_health: &HashMap<String, Vec<Target>>,
    offset: UtcOffset,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "service {} (cluster {})",
        service.service_name,
        name_from_arn(&service.cluster_arn)
    );
    let mut fields = Fields { out: &mut out };
    fields.line("status", &service.status);
    fields.line(
        "task definition",
        task_definition_name(&service.task_definition),
    );
    fields.line(
        "desired/running/pending",
        format!(
            "{}/{}/{}",
            service.desired_count, service.running_count, service.pending_count
        ),
    );
    if service.capacity_provider_strategy.is_empty() {
        fields.line("launch type", or_dash(service.launch_type.as_deref()));
    } else {
        fields.line(
            "capacity provider strategy",
            capacity_provider_strategy(service),
        );
    }
    let configuration = &service.deployment_configuration;
    let breaker = match &configuration.deployment_circuit_breaker {
        Some(b) if b.enable && b.rollback => "on, with rollback",
        Some(b) if b.enable => "on, no rollback",
        _ => "off",
    };
    fields.line(
        "deployment configuration",
        format!(
            "minimumHealthyPercent {}, maximumPercent {}, circuit breaker {breaker}",
            configuration.minimum_healthy_percent.unwrap_or(100),
            configuration.maximum_percent.unwrap_or(200)
        ),
    );
    if let Some(grace) = service.health_check_grace_period_seconds {
        fields.line("health check grace period", format!("{grace}s"));
    }
    fields.line("created", date(service.created_at, offset));

    let _ = writeln!(out, "deployments:");
    for deployment in &service.deployments {
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            deployment.id, deployment.status, deployment.rollout_state
        );
        let mut fields = Fields { out: &mut out };
        if !deployment.rollout_state_reason.is_empty() {
            fields.line("reason", &deployment.rollout_state_reason);
        }
        fields.line(
            "task definition",
            task_definition_name(&deployment.task_definition),
        );
        fields.line(
            "desired/running/pending",
            format!(
                "{}/{}/{} (failed tasks {})",
                deployment.desired_count,
                deployment.running_count,
                deployment.pending_count,
                deployment.failed_tasks
            ),
        );
        fields.line("created", date(deployment.created_at, offset));
        fields.line("updated", date(deployment.updated_at, offset));
    }

    if !service.load_balancers.is_empty() {
        let _ = writeln!(out, "load balancers:");
        for load_balancer in &service.load_balancers {
            let group = load_balancer
                .target_group_arn
                .as_deref()
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  target group {} -> {}:{}",
                target_group_name(group),
                or_dash(load_balancer.container_name.as_deref()),
                load_balancer.container_port.unwrap_or_default()
            );
            match target_health.get(group).map(Vec::as_slice) {
                None | Some([]) => {
                    let _ = writeln!(out, "    (no targets)");
                }
                Some(targets) => {
                    for target in targets {
                        let _ = writeln!(out, "    {}", target_line(target));
                    }
                }
            }
        }
    }

    let _ = writeln!(out, "placement:");
    let mut fields = Fields { out: &mut out };
    let constraints: Vec<String> = service
        .placement_constraints
        .iter()
        .map(|c| match c.expression.as_deref() {
            Some(expression) => format!("{} {expression}", or_dash(c.constraint_type.as_deref())),
            None => or_dash(c.constraint_type.as_deref()).to_string(),
        })
        .collect();
    fields.line(
        "constraints",
        if constraints.is_empty() {
            "-".to_string()
        } else {
            constraints.join(", ")
        },
    );
    let strategy: Vec<String> = service
        .placement_strategy
        .iter()
        .map(|s| match s.field.as_deref() {
            Some(field) => format!("{}({field})", or_dash(s.strategy_type.as_deref())),
            None => or_dash(s.strategy_type.as_deref()).to_string(),
        })
        .collect();
    fields.line(
        "strategy",
        if strategy.is_empty() {
            "-".to_string()
        } else {
            strategy.join(", ")
        },
    );
    fields.line("network", network(service.network_configuration.as_ref()));

    let _ = writeln!(out, "events (last {EVENTS_SHOWN}, oldest first):");
    let mut events: Vec<_> = service.events.iter().collect();
    events.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    events.truncate(EVENTS_SHOWN);
    if events.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for event in events.iter().rev() {
        let _ = writeln!(
            out,
            "  {} {}",
            date(event.created_at, offset),
            event.message
        );
    }

    let _ = writeln!(out, "tasks:");
    let (mut live, mut stopped): (Vec<&Task>, Vec<&Task>) =
        tasks.iter().partition(|t| t.last_status != "STOPPED");
    live.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    stopped.sort_by(|a, b| {
        b.stopped_at
            .unwrap_or_default()
            .total_cmp(&a.stopped_at.unwrap_or_default())
    });
    stopped.truncate(STOPPED_TASKS_SHOWN);
    if live.is_empty() && stopped.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for task in live.into_iter().chain(stopped) {
        let mut line = format!(
            "  {}  {}  {}  {}",
            short_task_id(&task.task_arn),
            task.last_status,
            task.health_status,
            task_definition_name(&task.task_definition_arn)
        );
        for target in task_targets(target_health, service, task) {
            let _ = write!(line, "  target {} {}", target.target_group, target.state);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A task as DescribeTasks answers it, with its targets' health when its service is
/// load balanced; `host` is its container instance's host.
pub(super) fn render_task(
    task: &Task,
    service: Option<&Service>,
    target_health: &HashMap<String, Vec<Target>>,
    host: Option<&str>,
    offset: UtcOffset,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "task {} (cluster {})",
        name_from_arn(&task.task_arn),
        name_from_arn(&task.cluster_arn)
    );
    let mut fields = Fields { out: &mut out };
    fields.line("last status", &task.last_status);
    fields.line("desired status", &task.desired_status);
    fields.line("health", &task.health_status);
    fields.line(
        "task definition",
        task_definition_name(&task.task_definition_arn),
    );
    fields.line(
        "service",
        match service_of_task(task) {
            Some(name) => name.to_string(),
            None => format!("- (group {})", or_dash(task.group.as_deref())),
        },
    );
    let instance = task.container_instance_arn.as_deref().map(name_from_arn);
    fields.line(
        "container instance",
        match (instance, host) {
            (Some(instance), Some(host)) => format!("{instance} (host {host})"),
            (Some(instance), None) => instance.to_string(),
            (None, _) => "-".to_string(),
        },
    );
    if let Some(launch_type) = task.launch_type.as_deref() {
        fields.line("launch type", launch_type);
    }
    if let Some(provider) = task.capacity_provider_name.as_deref() {
        fields.line("capacity provider", provider);
    }
    fields.line(
        "cpu/memory",
        format!(
            "{}/{}",
            or_dash(task.cpu.as_deref()),
            or_dash(task.memory.as_deref())
        ),
    );
    fields.line("created", date(task.created_at, offset));
    for (key, at) in [
        ("started", task.started_at),
        ("stopping", task.stopping_at),
        ("stopped", task.stopped_at),
    ] {
        if let Some(at) = at {
            fields.line(key, date(at, offset));
        }
    }
    if let Some(code) = task.stop_code.as_deref() {
        fields.line("stop code", code);
    }
    if let Some(reason) = task.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
        fields.line("stopped reason", reason);
    }
    if let Some(service) = service {
        let targets = task_targets(target_health, service, task);
        if !targets.is_empty() {
            let _ = writeln!(out, "target health:");
            for target in targets {
                let reason = target
                    .reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  target group {}: {}{reason}",
                    target.target_group, target.state
                );
            }
        }
    }
    let _ = writeln!(out, "containers:");
    for container in &task.containers {
        let _ = writeln!(out, "  {}", container.name);
        let mut fields = Fields { out: &mut out };
        fields.line("image", &container.image);
        fields.line("last status", &container.last_status);
        fields.line(
            "exit code",
            container
                .exit_code
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
        );
        if let Some(reason) = container.reason.as_deref().filter(|r| !r.is_empty()) {
            fields.line("reason", reason);
        }
        fields.line("health", &container.health_status);
        let bindings: Vec<String> = container
            .network_bindings
            .iter()
            .map(binding_words)
            .collect();
        fields.line(
            "network bindings",
            if bindings.is_empty() {
                "-".to_string()
            } else {
                bindings.join(", ")
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{DescribeServicesResponse, DescribeTasksResponse};

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/web/0123abcd";

    // 2023-11-14T22:13:20Z is 1_700_000_000.
    fn service() -> Service {
        let answer: DescribeServicesResponse = serde_json::from_value(serde_json::json!({
            "services": [{
                "serviceArn": "arn:aws:ecs:us-east-1:0:service/shop/web",
                "serviceName": "web",
                "clusterArn": "arn:aws:ecs:us-east-1:0:cluster/shop",
                "loadBalancers": [{"targetGroupArn": TG, "containerName": "web", "containerPort": 8080}],
                "serviceRegistries": [],
                "status": "ACTIVE",
                "desiredCount": 2, "runningCount": 1, "pendingCount": 1,
                "launchType": "EC2",
                "taskDefinition": "arn:aws:ecs:us-east-1:0:task-definition/web:3",
                "deploymentConfiguration": {
                    "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                    "maximumPercent": 150, "minimumHealthyPercent": 50
                },
                "deployments": [{
                    "id": "ecs-svc/1111", "status": "PRIMARY",
                    "taskDefinition": "arn:aws:ecs:us-east-1:0:task-definition/web:3",
                    "desiredCount": 2, "pendingCount": 1, "runningCount": 1, "failedTasks": 0,
                    "createdAt": 1_700_000_000.0, "updatedAt": 1_700_000_060.0,
                    "rolloutState": "IN_PROGRESS", "rolloutStateReason": "ECS deployment ecs-svc/1111 in progress."
                }],
                "events": (0..12).map(|i| serde_json::json!({
                    "id": format!("e{i}"), "createdAt": 1_700_000_000.0 + f64::from(i),
                    "message": format!("event {i}")
                })).rev().collect::<Vec<_>>(),
                "createdAt": 1_700_000_000.0,
                "placementConstraints": [{"type": "distinctInstance"}],
                "placementStrategy": [{"type": "spread", "field": "instanceId"}],
                "schedulingStrategy": "REPLICA",
                "deploymentController": {"type": "ECS"},
                "enableEcsManagedTags": false, "propagateTags": "NONE", "enableExecuteCommand": false
            }],
            "failures": []
        }))
        .unwrap();
        answer.services.into_iter().next().unwrap()
    }

    fn task(id: &str, status: &str, host_port: i64, exit_code: Option<i64>) -> Task {
        let answer: DescribeTasksResponse = serde_json::from_value(serde_json::json!({
            "tasks": [{
                "taskArn": format!("arn:aws:ecs:us-east-1:0:task/shop/{id}"),
                "clusterArn": "arn:aws:ecs:us-east-1:0:cluster/shop",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:0:task-definition/web:3",
                "containerInstanceArn": "arn:aws:ecs:us-east-1:0:container-instance/shop/ci01",
                "lastStatus": status, "desiredStatus": status, "healthStatus": "UNKNOWN",
                "memory": "64",
                "containers": [{
                    "containerArn": "arn:c", "taskArn": "arn:t", "name": "web",
                    "image": "berth/busybox:latest", "lastStatus": status,
                    "exitCode": exit_code,
                    "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": host_port, "protocol": "tcp"}],
                    "networkInterfaces": [], "healthStatus": "UNKNOWN"
                }],
                "overrides": {"containerOverrides": []},
                "group": "service:web", "version": 1,
                "createdAt": 1_700_000_000.0, "startedAt": 1_700_000_005.0,
                "stoppedAt": if status == "STOPPED" { Some(1_700_000_100.0) } else { None },
                "stopCode": if status == "STOPPED" { Some("UserInitiated") } else { None },
                "stoppedReason": if status == "STOPPED" { Some("Task stopped by user") } else { None },
                "attachments": [], "tags": []
            }],
            "failures": []
        }))
        .unwrap();
        answer.tasks.into_iter().next().unwrap()
    }

    fn health() -> HashMap<String, Vec<Target>> {
        [(
            TG.to_string(),
            vec![Target {
                id: "ci01".to_string(),
                port: Some(32768),
                state: "healthy".to_string(),
                reason: None,
            }],
        )]
        .into()
    }

    #[test]
    fn a_service_reads_as_describe_services_says() {
        let tasks = [
            task("aaaaaaaaaaaa1111", "RUNNING", 32768, None),
            task("bbbbbbbbbbbb2222", "STOPPED", 32769, Some(137)),
        ];
        let text = render_service(&service(), &tasks, &health(), UtcOffset::UTC);
        for line in [
            "service web (cluster shop)",
            "  status:                   ACTIVE",
            "  task definition:          web:3",
            "  desired/running/pending:  2/1/1",
            "  launch type:              EC2",
            "  deployment configuration: minimumHealthyPercent 50, maximumPercent 150, circuit breaker on, with rollback",
            "  ecs-svc/1111  PRIMARY  IN_PROGRESS",
            "  reason:                   ECS deployment ecs-svc/1111 in progress.",
            "  updated:                  2023-11-14 22:14:20",
            "  target group web -> web:8080",
            "    ci01:32768  healthy",
            "  constraints:              distinctInstance",
            "  strategy:                 spread(instanceId)",
            "  network:                  bridge or host (no networkConfiguration)",
            "  aaaaaaaaaaaa  RUNNING  UNKNOWN  web:3  target web healthy",
            "  bbbbbbbbbbbb  STOPPED  UNKNOWN  web:3",
        ] {
            assert!(text.lines().any(|l| l == line), "'{line}' missing from:\n{text}");
        }
        // The last ten events, oldest first.
        assert!(!text.contains("event 1\n"), "{text}");
        let first = text.find("2023-11-14 22:13:22 event 2").expect(&text);
        let last = text.find("2023-11-14 22:13:31 event 11").expect(&text);
        assert!(first < last, "{text}");
    }

    #[test]
    fn a_task_reads_as_describe_tasks_says() {
        let running = task("aaaaaaaaaaaa1111", "RUNNING", 32768, None);
        let text = render_task(
            &running,
            Some(&service()),
            &health(),
            Some("box-1"),
            UtcOffset::UTC,
        );
        for line in [
            "task aaaaaaaaaaaa1111 (cluster shop)",
            "  last status:              RUNNING",
            "  task definition:          web:3",
            "  service:                  web",
            "  container instance:       ci01 (host box-1)",
            "  cpu/memory:               -/64",
            "  started:                  2023-11-14 22:13:25",
            "  target group web: healthy",
            "  web",
            "  image:                    berth/busybox:latest",
            "  exit code:                -",
            "  network bindings:         0.0.0.0:32768->8080/tcp",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "'{line}' missing from:\n{text}"
            );
        }

        let stopped = task("bbbbbbbbbbbb2222", "STOPPED", 32769, Some(137));
        let text = render_task(&stopped, Some(&service()), &health(), None, UtcOffset::UTC);
        for line in [
            "  stopped:                  2023-11-14 22:15:00",
            "  stop code:                UserInitiated",
            "  stopped reason:           Task stopped by user",
            "  exit code:                137",
            "  container instance:       ci01",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "'{line}' missing from:\n{text}"
            );
        }
        // Its old port is no target of the group.
        assert!(!text.contains("target health:"), "{text}");
    }
}
