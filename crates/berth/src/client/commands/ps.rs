//! `berth ps`: the cluster -> service -> task -> container tree. Fetching is separate
//! from drawing: [`render`] is a pure function of the API's answers and `now`.

use std::io::IsTerminal;

use berth_api::{
    Deployment, DescribeServicesRequest, DescribeServicesResponse, ListClustersResponse,
    ListRequest, ListServicesRequest, ListServicesResponse, Service, Task,
};
use berth_core::model::DeploymentStatus;

use super::{
    describe_tasks, list_tasks, name_from_arn, now_epoch_seconds, service_of_task, short_task_id,
    task_definition_name,
};
use crate::client::ApiClient;

/// Stopped tasks older than this are left out.
const RECENT_STOPPED_SECONDS: f64 = 600.0;
/// At most this many stopped tasks per service (newest first).
const MAX_STOPPED_PER_SERVICE: usize = 5;

/// What `berth ps` knows of one cluster.
#[derive(Debug, Default)]
pub(super) struct ClusterView {
    pub name: String,
    pub services: Vec<Service>,
    /// Running and stopped tasks, in any order.
    pub tasks: Vec<Task>,
}

pub async fn run(client: &ApiClient, all: bool) -> anyhow::Result<()> {
    let clusters = if all {
        list_clusters(client).await?
    } else {
        vec![client.cluster.clone()]
    };
    let mut views = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        views.push(fetch(client, &cluster).await?);
    }
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let now = now_epoch_seconds();
    let text: Vec<String> = views.iter().map(|view| render(view, now, colour)).collect();
    print!("{}", text.join("\n"));
    Ok(())
}

pub(super) async fn list_clusters(client: &ApiClient) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListRequest {
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListClustersResponse = client.ecs("ListClusters", &request).await?;
        names.extend(
            response
                .cluster_arns
                .iter()
                .map(|arn| name_from_arn(arn).to_string()),
        );
        match response.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => break,
        }
    }
    names.sort();
    Ok(names)
}

async fn fetch(client: &ApiClient, cluster: &str) -> anyhow::Result<ClusterView> {
    let mut service_arns = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListServicesRequest {
            cluster: Some(cluster.to_string()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListServicesResponse =
            client.ecs("ListServices", &request).await.map_err(|e| {
                anyhow::anyhow!("cannot list the services of cluster '{cluster}': {e:#}")
            })?;
        service_arns.extend(response.service_arns);
        match response.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => break,
        }
    }
    let mut services = Vec::new();
    for batch in service_arns.chunks(10) {
        let request = DescribeServicesRequest {
            cluster: Some(cluster.to_string()),
            services: batch.to_vec(),
            include: vec![],
        };
        let response: DescribeServicesResponse = client.ecs("DescribeServices", &request).await?;
        services.extend(response.services);
    }
    let mut task_arns = list_tasks(client, cluster, None, "RUNNING").await?;
    for arn in list_tasks(client, cluster, None, "STOPPED").await? {
        if !task_arns.contains(&arn) {
            task_arns.push(arn);
        }
    }
    let tasks = describe_tasks(client, cluster, &task_arns).await?;
    Ok(ClusterView {
        name: cluster.to_string(),
        services,
        tasks,
    })
}

// ---- drawing (pure) ----

/// One line of the tree and what hangs below it.
struct Node {
    label: String,
    children: Vec<Node>,
}

impl Node {
    fn leaf(label: String) -> Self {
        Node {
            label,
            children: vec![],
        }
    }
}

fn draw(node: &Node, prefix: &str, out: &mut String) {
    for (index, child) in node.children.iter().enumerate() {
        let last = index + 1 == node.children.len();
        out.push_str(prefix);
        out.push_str(if last { "└─ " } else { "├─ " });
        out.push_str(&child.label);
        out.push('\n');
        draw(
            child,
            &format!("{prefix}{}", if last { "   " } else { "│  " }),
            out,
        );
    }
}

#[derive(Clone, Copy)]
struct Paint {
    colour: bool,
}

impl Paint {
    fn code(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Green for good, red for failed, yellow for on the way, plain otherwise.
    fn status(self, status: &str) -> String {
        let code = match status {
            "RUNNING" | "HEALTHY" | "ACTIVE" | "COMPLETED" => "32",
            "STOPPED" | "UNHEALTHY" | "FAILED" | "INACTIVE" => "31",
            "PROVISIONING" | "PENDING" | "ACTIVATING" | "DEACTIVATING" | "STOPPING"
            | "DEPROVISIONING" | "DRAINING" | "IN_PROGRESS" => "33",
            _ => return status.to_string(),
        };
        self.code(code, status)
    }

    fn dim(self, text: &str) -> String {
        self.code("2", text)
    }
}

/// Draws one cluster's tree. Stopped tasks of the last ten minutes (five per service at
/// most) are shown after the live ones, dimmed when colour is on.
pub(super) fn render(view: &ClusterView, now: f64, colour: bool) -> String {
    let paint = Paint { colour };
    let mut root = Node::leaf(view.name.clone());
    let mut services: Vec<&Service> = view.services.iter().collect();
    services.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    for service in services {
        let tasks = view
            .tasks
            .iter()
            .filter(|t| service_of_task(t) == Some(service.service_name.as_str()));
        let mut node = Node::leaf(service_label(service, paint));
        node.children = task_nodes(tasks.collect(), now, paint);
        root.children.push(node);
    }
    let orphans: Vec<&Task> = view
        .tasks
        .iter()
        .filter(|t| {
            service_of_task(t)
                .is_none_or(|name| !view.services.iter().any(|s| s.service_name == name))
        })
        .collect();
    let orphan_nodes = task_nodes(orphans, now, paint);
    if !orphan_nodes.is_empty() {
        root.children.push(Node {
            label: "tasks without a service".to_string(),
            children: orphan_nodes,
        });
    }
    if root.children.is_empty() {
        root.children
            .push(Node::leaf(paint.dim("(no services or tasks)")));
    }
    let mut out = format!("{}\n", root.label);
    draw(&root, "", &mut out);
    out
}

fn service_label(service: &Service, paint: Paint) -> String {
    let mut label = format!(
        "service {}  {}  {}/{} running",
        service.service_name,
        paint.status(&service.status),
        service.running_count,
        service.desired_count
    );
    if service.pending_count > 0 {
        label.push_str(&format!(", {} pending", service.pending_count));
    }
    let is_primary =
        |d: &&Deployment| DeploymentStatus::from_ecs(&d.status) == Some(DeploymentStatus::Primary);
    let primary = service.deployments.iter().find(is_primary);
    let task_definition =
        task_definition_name(primary.map_or(&service.task_definition, |d| &d.task_definition));
    let mut detail = task_definition.to_string();
    if let Some(deployment) = primary.filter(|d| !d.rollout_state.is_empty()) {
        detail.push_str(&format!(
            ", deployment {}",
            paint.status(&deployment.rollout_state)
        ));
    }
    let older = service
        .deployments
        .iter()
        .filter(|d| !is_primary(d))
        .count();
    if older > 0 {
        detail.push_str(&format!(
            ", {older} older deployment{} draining",
            if older == 1 { "" } else { "s" }
        ));
    }
    label.push_str(&format!("  ({detail})"));
    label
}

fn is_stopped(task: &Task) -> bool {
    task.last_status == "STOPPED"
}

fn task_nodes(mut tasks: Vec<&Task>, now: f64, paint: Paint) -> Vec<Node> {
    // Live tasks oldest first (stable as a service grows), then stopped ones newest first.
    tasks.sort_by(|a, b| {
        is_stopped(a).cmp(&is_stopped(b)).then_with(|| {
            if is_stopped(a) {
                b.stopped_at
                    .unwrap_or_default()
                    .total_cmp(&a.stopped_at.unwrap_or_default())
            } else {
                a.created_at
                    .total_cmp(&b.created_at)
                    .then_with(|| a.task_arn.cmp(&b.task_arn))
            }
        })
    });
    let mut stopped_shown = 0;
    let mut nodes = Vec::new();
    for task in tasks {
        if is_stopped(task) {
            let recent = task
                .stopped_at
                .is_none_or(|at| now - at <= RECENT_STOPPED_SECONDS);
            if !recent || stopped_shown == MAX_STOPPED_PER_SERVICE {
                continue;
            }
            stopped_shown += 1;
        }
        nodes.push(task_node(task, now, paint));
    }
    nodes
}

fn task_node(task: &Task, now: f64, paint: Paint) -> Node {
    let id = short_task_id(&task.task_arn);
    let task_definition = task_definition_name(&task.task_definition_arn);
    let label = if is_stopped(task) {
        let mut label = format!("task {id}  STOPPED");
        if let Some(reason) = task.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
            label.push_str(&format!(" ({reason})"));
        }
        let exited = task
            .containers
            .iter()
            .find(|c| c.exit_code.is_some_and(|code| code != 0));
        if let Some(code) = exited
            .or_else(|| task.containers.iter().find(|c| c.exit_code.is_some()))
            .and_then(|c| c.exit_code)
        {
            label.push_str(&format!(" exit {code}"));
        }
        label.push_str(&format!("  {task_definition}"));
        if let Some(at) = task.stopped_at {
            label.push_str(&format!("  {} ago", duration(now - at)));
        }
        paint.dim(&label)
    } else {
        let mut label = format!(
            "task {id}  {}  {}  {task_definition}",
            paint.status(&task.last_status),
            paint.status(&task.health_status)
        );
        if task.desired_status == "STOPPED" {
            label.push_str("  (stopping)");
        }
        match task.started_at {
            Some(started) => label.push_str(&format!("  up {}", duration(now - started))),
            None => label.push_str(&format!(
                "  created {} ago",
                duration(now - task.created_at)
            )),
        }
        label
    };
    let width = task
        .containers
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let children = task
        .containers
        .iter()
        .map(|container| {
            let mut line = format!(
                "{:width$}  {}  {}",
                container.name,
                paint.status(&container.last_status),
                paint.status(&container.health_status)
            );
            if let Some(code) = container.exit_code {
                line.push_str(&format!("  exit {code}"));
            }
            let bindings: Vec<String> = container
                .network_bindings
                .iter()
                .map(|b| {
                    format!(
                        "{}:{}->{}/{}",
                        b.bind_ip.as_deref().unwrap_or("0.0.0.0"),
                        b.host_port.unwrap_or_default(),
                        b.container_port.unwrap_or_default(),
                        b.protocol.as_deref().unwrap_or("tcp")
                    )
                })
                .collect();
            if !bindings.is_empty() {
                line.push_str(&format!("  {}", bindings.join(", ")));
            }
            if let Some(reason) = container.reason.as_deref().filter(|r| !r.is_empty()) {
                line.push_str(&format!("  ({reason})"));
            }
            Node::leaf(if is_stopped(task) {
                paint.dim(&line)
            } else {
                line
            })
        })
        .collect();
    Node { label, children }
}

/// `42s`, `3m`, `2h5m`, `3d4h`: how long, to the unit that matters.
pub(super) fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86_399 => format!("{}h{}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use berth_api::{Container, Deployment, NetworkBinding};

    use super::*;

    const NOW: f64 = 1_700_000_000.0;

    fn task(id: &str, service: Option<&str>, status: &str) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:us-east-1:0:task/our-project/{id}"),
            task_definition_arn: "arn:aws:ecs:us-east-1:0:task-definition/member:2".to_string(),
            last_status: status.to_string(),
            desired_status: if status == "STOPPED" {
                "STOPPED"
            } else {
                "RUNNING"
            }
            .to_string(),
            health_status: "HEALTHY".to_string(),
            group: service.map(|s| format!("service:{s}")),
            created_at: NOW - 200.0,
            started_at: (status == "RUNNING").then_some(NOW - 180.0),
            ..Default::default()
        }
    }

    fn container(name: &str, status: &str, health: &str) -> Container {
        Container {
            name: name.to_string(),
            last_status: status.to_string(),
            health_status: health.to_string(),
            ..Default::default()
        }
    }

    fn view() -> ClusterView {
        let mut running = task(
            "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
            Some("member"),
            "RUNNING",
        );
        let mut nginx = container("nginx", "RUNNING", "HEALTHY");
        nginx.network_bindings = vec![NetworkBinding {
            bind_ip: Some("0.0.0.0".to_string()),
            container_port: Some(80),
            host_port: Some(32768),
            protocol: Some("tcp".to_string()),
        }];
        running.containers = vec![nginx, container("web", "RUNNING", "UNKNOWN")];

        let mut crashed = task("ffff3c4d5e6f7a8b9c0d1e2f3a4b5c6d", None, "STOPPED");
        crashed.stopped_reason = Some("Essential container in task exited".to_string());
        crashed.stopped_at = Some(NOW - 120.0);
        let mut exited = container("job", "STOPPED", "UNKNOWN");
        exited.exit_code = Some(3);
        crashed.containers = vec![exited];

        let mut old = task(
            "0000000000000000000000000000000a",
            Some("member"),
            "STOPPED",
        );
        old.stopped_at = Some(NOW - 3600.0);

        let service = Service {
            service_name: "member".to_string(),
            status: "ACTIVE".to_string(),
            desired_count: 3,
            running_count: 3,
            task_definition: "arn:aws:ecs:us-east-1:0:task-definition/member:2".to_string(),
            deployments: vec![Deployment {
                status: "PRIMARY".to_string(),
                task_definition: "arn:aws:ecs:us-east-1:0:task-definition/member:2".to_string(),
                rollout_state: "COMPLETED".to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        ClusterView {
            name: "our-project".to_string(),
            services: vec![service],
            tasks: vec![old, crashed, running],
        }
    }

    #[test]
    fn the_tree_shows_services_tasks_and_containers() {
        let expected = "\
our-project
├─ service member  ACTIVE  3/3 running  (member:2, deployment COMPLETED)
│  └─ task 1a2b3c4d5e6f  RUNNING  HEALTHY  member:2  up 3m
│     ├─ nginx  RUNNING  HEALTHY  0.0.0.0:32768->80/tcp
│     └─ web    RUNNING  UNKNOWN
└─ tasks without a service
   └─ task ffff3c4d5e6f  STOPPED (Essential container in task exited) exit 3  member:2  2m ago
      └─ job  STOPPED  UNKNOWN  exit 3
";
        assert_eq!(render(&view(), NOW, false), expected);
    }

    #[test]
    fn colour_is_only_added_when_asked_for() {
        let coloured = render(&view(), NOW, true);
        assert!(coloured.contains("\x1b[32mRUNNING\x1b[0m"));
        assert!(coloured.contains("\x1b[2mtask ffff3c4d5e6f  STOPPED"));
        assert!(!render(&view(), NOW, false).contains('\x1b'));
    }

    #[test]
    fn stopped_tasks_are_capped_per_service() {
        let mut view = view();
        for index in 0..8 {
            let mut stopped = task(&format!("{index:032x}"), Some("member"), "STOPPED");
            stopped.stopped_at = Some(NOW - 10.0 * f64::from(index));
            view.tasks.push(stopped);
        }
        let text = render(&view, NOW, false);
        let member_stopped = text
            .lines()
            .filter(|l| l.starts_with("│  ") && l.contains("task ") && l.contains("STOPPED"))
            .count();
        assert_eq!(member_stopped, MAX_STOPPED_PER_SERVICE, "{text}");
        // Newest first: the task stopped 0 s ago comes right after the running one.
        assert!(
            text.contains("task 000000000000  STOPPED  member:2  0s ago"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_cluster_says_so() {
        let view = ClusterView {
            name: "empty".to_string(),
            ..Default::default()
        };
        assert_eq!(
            render(&view, NOW, false),
            "empty\n└─ (no services or tasks)\n"
        );
    }

    #[test]
    fn durations_read_like_docker_ps() {
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(180.0), "3m");
        assert_eq!(duration(7500.0), "2h5m");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3d4h");
        assert_eq!(duration(-5.0), "0s");
    }
}
