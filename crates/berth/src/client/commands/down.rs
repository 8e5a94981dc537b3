//! `berth down -f FILE`: removes what `berth apply -f FILE` created, in reverse
//! dependency order: the file's services (scaled to 0 and deleted, waiting until their
//! tasks stopped and drained), its listeners, load balancers, target groups, the ACTIVE
//! revisions of its task definition families, and its clusters once empty. The file is
//! read and checked by apply's own parser; then everything it names is read from berth
//! and every step decided ([`plan`], pure) before the first change. What is already
//! gone is said so, not an error: down is idempotent. What something the file does not
//! declare still uses is kept, saying why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::anyhow;
use berth_api::{
    DeregisterTaskDefinitionRequest, DescribeClustersRequest, DescribeClustersResponse,
    DescribeServicesRequest, DescribeServicesResponse, ListTaskDefinitionsRequest,
    ListTaskDefinitionsResponse, TaskDefinitionResponse,
};
use berth_core::model::{ClusterStatus, ServiceStatus, TaskDefinitionStatus};

use super::apply::{self, Manifest};
use super::delete_lb::elbv2;
use super::{
    delete, delete_lb, describe_tasks, list_tasks, name_from_arn, ps, service_of_task,
    short_task_id, task_definition_name,
};
use crate::client::{is_elbv2_error, ApiClient, Endpoint, XmlElement};

// ---- what berth has (read before any change) ----

/// What berth has of what the file names (and what else uses it).
#[derive(Debug, Default)]
pub(super) struct Current {
    /// The services of every cluster that are not INACTIVE.
    pub services: Vec<CurrentService>,
    /// The ACTIVE clusters among the file's.
    pub clusters: BTreeSet<String>,
    /// The running tasks of the file's clusters: short id and service, by cluster.
    pub running_tasks: BTreeMap<String, Vec<(String, Option<String>)>>,
    /// Every load balancer, with its listeners.
    pub load_balancers: Vec<CurrentLoadBalancer>,
    /// The file's target groups berth has.
    pub target_groups: Vec<CurrentTargetGroup>,
    /// The ACTIVE revisions (ARNs) of the file's task definition families.
    pub task_definitions: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub(super) struct CurrentService {
    pub cluster: String,
    pub name: String,
    pub target_group_arns: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct CurrentLoadBalancer {
    pub name: String,
    pub arn: String,
    pub listeners: Vec<CurrentListener>,
}

#[derive(Debug, Clone)]
pub(super) struct CurrentListener {
    pub arn: String,
    pub port: i64,
    /// Its default action's target group first, then those its rules forward to.
    pub target_group_arns: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct CurrentTargetGroup {
    pub name: String,
    pub arn: String,
}

// ---- the steps (pure) ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    DeleteService {
        cluster: String,
        name: String,
    },
    DeleteListener {
        load_balancer: String,
        port: i64,
        arn: String,
    },
    /// With whatever listeners it still has.
    DeleteLoadBalancer {
        name: String,
        arn: String,
    },
    DeleteTargetGroup {
        name: String,
        arn: String,
    },
    DeregisterTaskDefinition {
        arn: String,
    },
    DeleteCluster {
        name: String,
    },
    /// Named by the file, not on berth (any more).
    AlreadyGone(String),
    /// Named by the file, but still used by what the file does not declare.
    Kept {
        what: String,
        why: String,
    },
}

impl Step {
    /// The line down prints for the step.
    pub fn words(&self) -> String {
        match self {
            Step::DeleteService { cluster, name } => {
                format!(
                    "service {name} of cluster {cluster} deleted (scaled to 0, its tasks stopped)"
                )
            }
            Step::DeleteListener {
                load_balancer,
                port,
                ..
            } => format!("listener {load_balancer}:{port} deleted"),
            Step::DeleteLoadBalancer { name, .. } => format!("load balancer {name} deleted"),
            Step::DeleteTargetGroup { name, .. } => format!("target group {name} deleted"),
            Step::DeregisterTaskDefinition { arn } => {
                format!("task definition {} deregistered", task_definition_name(arn))
            }
            Step::DeleteCluster { name } => format!("cluster {name} deleted"),
            Step::AlreadyGone(what) => format!("{what} already gone"),
            Step::Kept { what, why } => format!("{what} kept: {why}"),
        }
    }
}

/// The cluster of a service of the file: its own, else the file's `cluster`, else the
/// client's (`--cluster`, else `default`), as apply decides it.
fn cluster_of<'a>(
    manifest: &'a Manifest,
    service: &'a berth_api::CreateServiceRequest,
    client_cluster: &'a str,
) -> &'a str {
    service
        .cluster
        .as_deref()
        .or(manifest.cluster.as_deref())
        .unwrap_or(client_cluster)
}

/// Every step of a down, in the order they are carried out: services, listeners, load
/// balancers, target groups, task definitions, clusters.
pub(super) fn plan(manifest: &Manifest, client_cluster: &str, current: &Current) -> Vec<Step> {
    let mut steps = Vec::new();

    // Services.
    let file_services: BTreeSet<(String, &str)> = manifest
        .services
        .iter()
        .map(|s| {
            let cluster = cluster_of(manifest, &s.body, client_cluster);
            (cluster.to_string(), s.body.service_name.as_str())
        })
        .collect();
    for (cluster, name) in &file_services {
        let exists = current
            .services
            .iter()
            .any(|s| s.cluster == *cluster && s.name == *name);
        steps.push(if exists {
            Step::DeleteService {
                cluster: cluster.clone(),
                name: name.to_string(),
            }
        } else {
            Step::AlreadyGone(format!("service {name} of cluster {cluster}"))
        });
    }
    let is_file_service =
        |s: &CurrentService| file_services.contains(&(s.cluster.clone(), &s.name));

    // Listeners: the file's, then the rest of the file's load balancers'.
    let file_load_balancers: BTreeSet<&str> = manifest
        .load_balancers
        .iter()
        .map(|l| l.body.name.as_str())
        .collect();
    let find_load_balancer = |reference: &str| {
        current
            .load_balancers
            .iter()
            .find(|lb| lb.name == reference || lb.arn == reference)
    };
    let group_arn = |reference: &str| -> Option<String> {
        if reference.starts_with("arn:") {
            return Some(reference.to_string());
        }
        current
            .target_groups
            .iter()
            .find(|g| g.name == reference)
            .map(|g| g.arn.clone())
    };
    let mut deleted_listeners: BTreeSet<String> = BTreeSet::new();
    for listener in &manifest.listeners {
        let spec = &listener.body;
        let load_balancer_name = name_from_arn(&spec.load_balancer);
        let what = format!("listener {load_balancer_name}:{}", spec.port);
        let Some(load_balancer) = find_load_balancer(&spec.load_balancer) else {
            steps.push(Step::AlreadyGone(what));
            continue;
        };
        let Some(found) = load_balancer.listeners.iter().find(|l| l.port == spec.port) else {
            steps.push(Step::AlreadyGone(what));
            continue;
        };
        let forwards_to = found.target_group_arns.first();
        if let (Some(wanted), Some(actual)) = (group_arn(&spec.target_group), forwards_to) {
            if wanted != *actual && !file_load_balancers.contains(load_balancer.name.as_str()) {
                steps.push(Step::Kept {
                    what,
                    why: format!(
                        "it forwards to target group {}, not {} as the file says",
                        target_group_name(actual),
                        name_from_arn(&spec.target_group)
                    ),
                });
                continue;
            }
        }
        deleted_listeners.insert(found.arn.clone());
        steps.push(Step::DeleteListener {
            load_balancer: load_balancer.name.clone(),
            port: found.port,
            arn: found.arn.clone(),
        });
    }
    let mut load_balancer_steps = Vec::new();
    for load_balancer in &manifest.load_balancers {
        let name = &load_balancer.body.name;
        let Some(found) = find_load_balancer(name) else {
            load_balancer_steps.push(Step::AlreadyGone(format!("load balancer {name}")));
            continue;
        };
        for listener in &found.listeners {
            if deleted_listeners.insert(listener.arn.clone()) {
                steps.push(Step::DeleteListener {
                    load_balancer: found.name.clone(),
                    port: listener.port,
                    arn: listener.arn.clone(),
                });
            }
        }
        load_balancer_steps.push(Step::DeleteLoadBalancer {
            name: found.name.clone(),
            arn: found.arn.clone(),
        });
    }
    steps.extend(load_balancer_steps);

    // Target groups, unless what stays uses them.
    for target_group in &manifest.target_groups {
        let name = &target_group.body.name;
        let what = format!("target group {name}");
        let Some(found) = current.target_groups.iter().find(|g| g.name == *name) else {
            steps.push(Step::AlreadyGone(what));
            continue;
        };
        let mut users = Vec::new();
        for service in current.services.iter().filter(|s| !is_file_service(s)) {
            if service.target_group_arns.contains(&found.arn) {
                users.push(format!(
                    "service {} of cluster {}",
                    service.name, service.cluster
                ));
            }
        }
        for load_balancer in &current.load_balancers {
            for listener in &load_balancer.listeners {
                if !deleted_listeners.contains(&listener.arn)
                    && listener.target_group_arns.contains(&found.arn)
                {
                    users.push(format!("listener {}:{}", load_balancer.name, listener.port));
                }
            }
        }
        steps.push(if users.is_empty() {
            Step::DeleteTargetGroup {
                name: name.clone(),
                arn: found.arn.clone(),
            }
        } else {
            Step::Kept {
                what,
                why: format!(
                    "still used by {}, which the file does not declare",
                    users.join(", ")
                ),
            }
        });
    }

    // Task definitions: every ACTIVE revision of the file's families.
    for definition in &manifest.task_definitions {
        let family = &definition.body.family;
        let revisions = current
            .task_definitions
            .get(family)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if revisions.is_empty() {
            steps.push(Step::AlreadyGone(format!(
                "task definition family {family} (no ACTIVE revision)"
            )));
        }
        for arn in revisions {
            steps.push(Step::DeregisterTaskDefinition { arn: arn.clone() });
        }
    }

    // Clusters, once empty of what the file does not declare.
    for cluster in &manifest.clusters {
        let name = cluster.body.cluster_name.clone().unwrap_or_default();
        if !current.clusters.contains(&name) {
            steps.push(Step::AlreadyGone(format!("cluster {name}")));
            continue;
        }
        let other_services: Vec<&str> = current
            .services
            .iter()
            .filter(|s| s.cluster == name && !is_file_service(s))
            .map(|s| s.name.as_str())
            .collect();
        let other_tasks: Vec<&str> = current
            .running_tasks
            .get(&name)
            .into_iter()
            .flatten()
            .filter(|(_, service)| {
                service
                    .as_deref()
                    .is_none_or(|s| !file_services.contains(&(name.clone(), s)))
            })
            .map(|(id, _)| id.as_str())
            .collect();
        let what = format!("cluster {name}");
        steps.push(if !other_services.is_empty() {
            Step::Kept {
                what,
                why: format!(
                    "it has services the file does not declare ({})",
                    other_services.join(", ")
                ),
            }
        } else if !other_tasks.is_empty() {
            Step::Kept {
                what,
                why: format!(
                    "it has running tasks of no service of the file ({})",
                    other_tasks.join(", ")
                ),
            }
        } else {
            Step::DeleteCluster { name }
        });
    }
    steps
}

/// `arn:...:targetgroup/member/0123abcd` -> `member`.
fn target_group_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
}

// ---- reading and carrying out ----

pub async fn run(endpoint: &Endpoint, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let (manifest, file_name) = apply::load(file)?;
    let client = ApiClient::from_flags(endpoint)?;
    let current = read_current(&client, &manifest)
        .await
        .map_err(|e| e.context(format!("{file_name}: reading what berth has")))?;
    let steps = plan(&manifest, &client.cluster, &current);
    if dry_run {
        for step in &steps {
            println!("{}", step.words());
        }
        eprintln!("dry run: nothing was changed");
        return Ok(());
    }
    for step in steps {
        execute(&client, &step)
            .await
            .map_err(|e| e.context(format!("{file_name}: {}", step.words())))?;
    }
    Ok(())
}

async fn execute(client: &ApiClient, step: &Step) -> anyhow::Result<()> {
    match step {
        // These print their own lines as they go.
        Step::DeleteService { cluster, name } => {
            return delete::service_in(client, cluster, name, true).await
        }
        Step::DeleteLoadBalancer { name, arn } => {
            return delete_lb::listeners_and_balancer(client, name, arn).await
        }
        Step::DeleteCluster { name } => return delete::cluster(client, name).await,
        Step::DeleteListener { arn, .. } => {
            match elbv2(client, "DeleteListener", vec![("ListenerArn", arn.clone())]).await {
                Err(error) if is_elbv2_error(&error, "ListenerNotFound") => {}
                other => {
                    other?;
                }
            }
        }
        Step::DeleteTargetGroup { arn, .. } => {
            elbv2(
                client,
                "DeleteTargetGroup",
                vec![("TargetGroupArn", arn.clone())],
            )
            .await?;
        }
        Step::DeregisterTaskDefinition { arn } => {
            let request = DeregisterTaskDefinitionRequest {
                task_definition: arn.clone(),
            };
            let _: TaskDefinitionResponse =
                client.ecs("DeregisterTaskDefinition", &request).await?;
        }
        Step::AlreadyGone(_) | Step::Kept { .. } => {}
    }
    println!("{}", step.words());
    Ok(())
}

async fn read_current(client: &ApiClient, manifest: &Manifest) -> anyhow::Result<Current> {
    let mut current = Current::default();

    // Services of every cluster: a target group the file declares may serve any.
    for cluster in ps::list_clusters(client).await? {
        let names = delete::service_names(client, &cluster).await?;
        for batch in names.chunks(10) {
            let request = DescribeServicesRequest {
                cluster: Some(cluster.clone()),
                services: batch.to_vec(),
                include: vec![],
            };
            let response: DescribeServicesResponse =
                client.ecs("DescribeServices", &request).await?;
            for service in response.services {
                if ServiceStatus::from_ecs(&service.status) == Some(ServiceStatus::Inactive) {
                    continue;
                }
                current.services.push(CurrentService {
                    cluster: cluster.clone(),
                    name: service.service_name,
                    target_group_arns: service
                        .load_balancers
                        .iter()
                        .filter_map(|lb| lb.target_group_arn.clone())
                        .collect(),
                });
            }
        }
    }
    for cluster in &manifest.clusters {
        let name = cluster.body.cluster_name.clone().unwrap_or_default();
        let request = DescribeClustersRequest {
            clusters: Some(vec![name.clone()]),
            include: vec![],
        };
        let response: DescribeClustersResponse = client.ecs("DescribeClusters", &request).await?;
        let active = response
            .clusters
            .iter()
            .any(|c| ClusterStatus::from_ecs(&c.status) == Some(ClusterStatus::Active));
        if !active {
            continue;
        }
        let arns = list_tasks(client, &name, None, "RUNNING").await?;
        let tasks = describe_tasks(client, &name, &arns).await?;
        current.running_tasks.insert(
            name.clone(),
            tasks
                .iter()
                .map(|t| {
                    (
                        short_task_id(&t.task_arn).to_string(),
                        service_of_task(t).map(str::to_string),
                    )
                })
                .collect(),
        );
        current.clusters.insert(name);
    }

    if !(manifest.load_balancers.is_empty()
        && manifest.listeners.is_empty()
        && manifest.target_groups.is_empty())
    {
        current.load_balancers = load_balancers(client).await?;
    }
    for target_group in &manifest.target_groups {
        let name = &target_group.body.name;
        let found = match elbv2(
            client,
            "DescribeTargetGroups",
            vec![("Names.member.1", name.clone())],
        )
        .await
        {
            Ok(result) => result,
            Err(error) if is_elbv2_error(&error, "TargetGroupNotFound") => continue,
            Err(error) => return Err(error),
        };
        if let Some(arn) = found
            .members(&["TargetGroups"])
            .first()
            .and_then(|g| g.text_at(&["TargetGroupArn"]))
        {
            current.target_groups.push(CurrentTargetGroup {
                name: name.clone(),
                arn: arn.to_string(),
            });
        }
    }

    for definition in &manifest.task_definitions {
        let family = &definition.body.family;
        current
            .task_definitions
            .insert(family.clone(), active_revisions(client, family).await?);
    }
    Ok(current)
}

/// Every load balancer with its listeners, and what each listener forwards to.
async fn load_balancers(client: &ApiClient) -> anyhow::Result<Vec<CurrentLoadBalancer>> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let params = marker
            .take()
            .map(|m| vec![("Marker", m)])
            .unwrap_or_default();
        let result = elbv2(client, "DescribeLoadBalancers", params).await?;
        for member in result.members(&["LoadBalancers"]) {
            let text = |name: &str| member.text_at(&[name]).unwrap_or_default().to_string();
            let arn = text("LoadBalancerArn");
            let listeners = elbv2(
                client,
                "DescribeListeners",
                vec![("LoadBalancerArn", arn.clone())],
            )
            .await?;
            let mut current_listeners = Vec::new();
            for listener in listeners.members(&["Listeners"]) {
                let listener_arn = listener
                    .text_at(&["ListenerArn"])
                    .unwrap_or_default()
                    .to_string();
                let mut target_group_arns =
                    forwarded_groups(&listener.members(&["DefaultActions"]));
                let rules = elbv2(
                    client,
                    "DescribeRules",
                    vec![("ListenerArn", listener_arn.clone())],
                )
                .await?;
                for rule in rules.members(&["Rules"]) {
                    for arn in forwarded_groups(&rule.members(&["Actions"])) {
                        if !target_group_arns.contains(&arn) {
                            target_group_arns.push(arn);
                        }
                    }
                }
                current_listeners.push(CurrentListener {
                    arn: listener_arn,
                    port: listener.number_at(&["Port"]).unwrap_or_default(),
                    target_group_arns,
                });
            }
            found.push(CurrentLoadBalancer {
                name: text("LoadBalancerName"),
                arn,
                listeners: current_listeners,
            });
        }
        match result.text_at(&["NextMarker"]) {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => return Ok(found),
        }
    }
}

/// The target groups a list of ELBv2 actions forwards to (`TargetGroupArn`, or the
/// groups of a `ForwardConfig`).
fn forwarded_groups(actions: &[&XmlElement]) -> Vec<String> {
    let mut arns = Vec::new();
    for action in actions {
        let weighted = action.members(&["ForwardConfig", "TargetGroups"]);
        let candidates = action.text_at(&["TargetGroupArn"]).into_iter().chain(
            weighted
                .iter()
                .filter_map(|g| g.text_at(&["TargetGroupArn"])),
        );
        for arn in candidates {
            if !arns.iter().any(|a| a == arn) {
                arns.push(arn.to_string());
            }
        }
    }
    arns
}

/// The ARNs of the family's ACTIVE revisions, oldest first.
async fn active_revisions(client: &ApiClient, family: &str) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListTaskDefinitionsRequest {
            family_prefix: Some(family.to_string()),
            status: Some(TaskDefinitionStatus::Active.as_ecs().to_string()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListTaskDefinitionsResponse = client
            .ecs("ListTaskDefinitions", &request)
            .await
            .map_err(|e| anyhow!("cannot list the revisions of family '{family}': {e:#}"))?;
        // familyPrefix may match longer families: keep this family's revisions only.
        arns.extend(
            response
                .task_definition_arns
                .into_iter()
                .filter(|arn| apply::family_of(arn) == family),
        );
        match response.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(arns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
cluster: shop
clusters: [shop]
loadBalancers: [shop-lb]
targetGroups:
  - {name: shop-web, protocol: HTTP, port: 80}
listeners:
  - {loadBalancer: shop-lb, port: 8000, targetGroup: shop-web}
taskDefinitions:
  - family: shop-web
    containerDefinitions: [ {name: web, image: x, memory: 64, portMappings: [{containerPort: 80}]} ]
services:
  - serviceName: web
    taskDefinition: shop-web
    loadBalancers: [{targetGroup: shop-web, containerName: web, containerPort: 80}]
"#;

    const TG: &str = "arn:aws:elasticloadbalancing:r:0:targetgroup/shop-web/1";
    const LB: &str = "arn:aws:elasticloadbalancing:r:0:loadbalancer/app/shop-lb/1";
    const TD1: &str = "arn:aws:ecs:r:0:task-definition/shop-web:1";
    const TD2: &str = "arn:aws:ecs:r:0:task-definition/shop-web:2";

    fn manifest() -> Manifest {
        apply::parse_manifest(FILE).unwrap()
    }

    fn service(cluster: &str, name: &str, groups: &[&str]) -> CurrentService {
        CurrentService {
            cluster: cluster.to_string(),
            name: name.to_string(),
            target_group_arns: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn everything() -> Current {
        Current {
            services: vec![service("shop", "web", &[TG])],
            clusters: ["shop".to_string()].into(),
            running_tasks: [(
                "shop".to_string(),
                vec![("1a2b3c4d5e6f".to_string(), Some("web".to_string()))],
            )]
            .into(),
            load_balancers: vec![CurrentLoadBalancer {
                name: "shop-lb".to_string(),
                arn: LB.to_string(),
                listeners: vec![
                    CurrentListener {
                        arn: "arn:listener/8000".to_string(),
                        port: 8000,
                        target_group_arns: vec![TG.to_string()],
                    },
                    CurrentListener {
                        arn: "arn:listener/9000".to_string(),
                        port: 9000,
                        target_group_arns: vec![TG.to_string()],
                    },
                ],
            }],
            target_groups: vec![CurrentTargetGroup {
                name: "shop-web".to_string(),
                arn: TG.to_string(),
            }],
            task_definitions: [(
                "shop-web".to_string(),
                vec![TD1.to_string(), TD2.to_string()],
            )]
            .into(),
        }
    }

    fn lines(steps: &[Step]) -> Vec<String> {
        steps.iter().map(Step::words).collect()
    }

    #[test]
    fn everything_goes_in_reverse_dependency_order() {
        let steps = plan(&manifest(), "default", &everything());
        assert_eq!(
            lines(&steps),
            [
                "service web of cluster shop deleted (scaled to 0, its tasks stopped)",
                "listener shop-lb:8000 deleted",
                // A listener of the file's load balancer goes with it, also one the file does not list.
                "listener shop-lb:9000 deleted",
                "load balancer shop-lb deleted",
                "target group shop-web deleted",
                "task definition shop-web:1 deregistered",
                "task definition shop-web:2 deregistered",
                "cluster shop deleted",
            ]
        );
    }

    #[test]
    fn what_is_gone_is_said_so() {
        let steps = plan(&manifest(), "default", &Current::default());
        assert_eq!(
            lines(&steps),
            [
                "service web of cluster shop already gone",
                "listener shop-lb:8000 already gone",
                "load balancer shop-lb already gone",
                "target group shop-web already gone",
                "task definition family shop-web (no ACTIVE revision) already gone",
                "cluster shop already gone",
            ]
        );
    }

    #[test]
    fn what_others_use_is_kept_saying_why() {
        let mut current = everything();
        current.services.push(service("other", "board", &[TG]));
        current.services.push(service("shop", "admin", &[]));
        current.load_balancers.push(CurrentLoadBalancer {
            name: "other-lb".to_string(),
            arn: "arn:other-lb".to_string(),
            listeners: vec![CurrentListener {
                arn: "arn:listener/7000".to_string(),
                port: 7000,
                target_group_arns: vec!["arn:else".to_string(), TG.to_string()],
            }],
        });
        let steps = plan(&manifest(), "default", &current);
        let text = lines(&steps);
        assert!(text.contains(&"target group shop-web kept: still used by service board of cluster other, listener other-lb:7000, which the file does not declare".to_string()), "{text:?}");
        assert!(
            text.contains(
                &"cluster shop kept: it has services the file does not declare (admin)".to_string()
            ),
            "{text:?}"
        );
        assert!(!steps.iter().any(|s| matches!(
            s,
            Step::DeleteTargetGroup { .. } | Step::DeleteCluster { .. }
        )));
        // The service itself still goes.
        assert!(matches!(&steps[0], Step::DeleteService { name, .. } if name == "web"));

        let mut current = everything();
        current
            .running_tasks
            .get_mut("shop")
            .unwrap()
            .push(("0f0f0f0f0f0f".to_string(), None));
        let text = lines(&plan(&manifest(), "default", &current));
        assert_eq!(
            text.last().unwrap(),
            "cluster shop kept: it has running tasks of no service of the file (0f0f0f0f0f0f)"
        );
    }

    #[test]
    fn a_listener_on_another_balancer_that_forwards_elsewhere_is_kept() {
        let text = FILE
            .replace("loadBalancers: [shop-lb]\n", "")
            .replace("loadBalancer: shop-lb", "loadBalancer: shared-lb");
        let manifest = apply::parse_manifest(&text).unwrap();
        let mut current = everything();
        current.load_balancers = vec![CurrentLoadBalancer {
            name: "shared-lb".to_string(),
            arn: "arn:shared-lb".to_string(),
            listeners: vec![CurrentListener {
                arn: "arn:listener/8000".to_string(),
                port: 8000,
                target_group_arns: vec![
                    "arn:aws:elasticloadbalancing:r:0:targetgroup/board/2".to_string()
                ],
            }],
        }];
        let text = lines(&plan(&manifest, "default", &current));
        assert!(text.contains(&"listener shared-lb:8000 kept: it forwards to target group board, not shop-web as the file says".to_string()), "{text:?}");
        // Nothing else forwards to the file's group: it goes.
        assert!(
            text.contains(&"target group shop-web deleted".to_string()),
            "{text:?}"
        );
    }

    #[test]
    fn services_default_to_the_files_cluster() {
        let text = FILE.replace("cluster: shop\n", "");
        let manifest = apply::parse_manifest(&text).unwrap();
        let mut current = everything();
        current.services = vec![service("mine", "web", &[TG])];
        let steps = plan(&manifest, "mine", &current);
        // The file's `cluster` wins over the client's.
        assert!(
            matches!(&plan(&self::manifest(), "mine", &everything())[0], Step::DeleteService { cluster, .. } if cluster == "shop")
        );
        assert_eq!(
            steps[0],
            Step::DeleteService {
                cluster: "mine".to_string(),
                name: "web".to_string()
            }
        );
    }
}
