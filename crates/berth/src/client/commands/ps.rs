//! `berth ps`: the cluster -> service -> task -> container tree. Fetching is separate
//! from drawing: [`render`] is a pure function of the API's answers and `now`.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::Context;

use berth_api::{
    Deployment, DescribeServicesRequest, DescribeServicesResponse, ListClustersResponse,
    ListRequest, ListServicesRequest, ListServicesResponse, NetworkBinding, Service, Task,
};
use berth_core::model::DeploymentStatus;

use super::{
    describe_tasks, list_tasks, name_from_arn, now_epoch_seconds, service_of_task, short_task_id,
    task_definition_name,
};
use crate::client::{is_elbv2_error, ApiClient, XmlElement};

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
    pub target_health: TargetHealth,
}

/// The targets of target groups, by target group ARN.
pub(super) type TargetHealth = HashMap<String, Vec<Target>>;

/// One target of DescribeTargetHealth.
#[derive(Debug, Clone, Default)]
pub(super) struct Target {
    pub id: String,
    pub port: Option<i64>,
    pub state: String,
    pub reason: Option<String>,
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
    let not_serving = listeners_not_serving(client).await?;
    print!("{}", render_listeners_not_serving(&not_serving));
    Ok(())
}

/// A listener berth's load balancer does not serve at its port, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListenerNotServing {
    pub load_balancer: String,
    pub protocol: String,
    pub port: i64,
    pub reason: String,
}

/// Every listener whose `BerthServingState` says it is not served, by load balancer.
async fn listeners_not_serving(client: &ApiClient) -> anyhow::Result<Vec<ListenerNotServing>> {
    let mut load_balancers = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut params = Vec::new();
        if let Some(marker) = marker.take() {
            params.push(("Marker".to_string(), marker));
        }
        let document = client
            .elbv2("DescribeLoadBalancers", params)
            .await
            .context("describing the load balancers")?;
        let root = XmlElement::parse(&document)?;
        let result = root.child("DescribeLoadBalancersResult");
        for member in result
            .map(|r| r.members(&["LoadBalancers"]))
            .unwrap_or_default()
        {
            if let (Some(arn), Some(name)) = (
                member.text_at(&["LoadBalancerArn"]),
                member.text_at(&["LoadBalancerName"]),
            ) {
                load_balancers.push((arn.to_string(), name.to_string()));
            }
        }
        match result.and_then(|r| r.text_at(&["NextMarker"])) {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    load_balancers.sort_by(|a, b| a.1.cmp(&b.1));
    let mut not_serving = Vec::new();
    for (arn, name) in load_balancers {
        let params = vec![("LoadBalancerArn".to_string(), arn)];
        let document = match client.elbv2("DescribeListeners", params).await {
            Ok(document) => document,
            // Deleted since it was listed.
            Err(error) if is_elbv2_error(&error, "LoadBalancerNotFound") => continue,
            Err(error) => return Err(error.context(format!("describing the listeners of {name}"))),
        };
        let root = XmlElement::parse(&document)?;
        let Some(result) = root.child("DescribeListenersResult") else {
            anyhow::bail!("berth's answer to DescribeListeners has no DescribeListenersResult");
        };
        for member in result.members(&["Listeners"]) {
            if member.text_at(&["BerthServingState", "Code"]) != Some("not_serving") {
                continue;
            }
            not_serving.push(ListenerNotServing {
                load_balancer: name.clone(),
                protocol: member
                    .text_at(&["Protocol"])
                    .unwrap_or_default()
                    .to_string(),
                port: member.number_at(&["Port"]).unwrap_or_default(),
                reason: member
                    .text_at(&["BerthServingState", "Reason"])
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    Ok(not_serving)
}

/// The listeners not served, each under its load balancer; nothing when all serve.
pub(super) fn render_listeners_not_serving(listeners: &[ListenerNotServing]) -> String {
    let mut text = String::new();
    let mut current: Option<&str> = None;
    for listener in listeners {
        if current != Some(listener.load_balancer.as_str()) {
            text.push_str(&format!("\nload balancer {}\n", listener.load_balancer));
            current = Some(&listener.load_balancer);
        }
        text.push_str(&format!(
            "  listener {}:{}  not serving: {}\n",
            listener.protocol, listener.port, listener.reason
        ));
    }
    text
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
    let target_health = target_health_of(client, &services).await?;
    Ok(ClusterView {
        name: cluster.to_string(),
        services,
        tasks,
        target_health,
    })
}

/// The targets of the services' target groups, by target group ARN.
pub(super) async fn target_health_of(
    client: &ApiClient,
    services: &[Service],
) -> anyhow::Result<TargetHealth> {
    let mut target_health = HashMap::new();
    for service in services {
        for load_balancer in &service.load_balancers {
            let Some(arn) = load_balancer.target_group_arn.as_deref() else {
                continue;
            };
            if target_health.contains_key(arn) {
                continue;
            }
            target_health.insert(arn.to_string(), describe_target_health(client, arn).await?);
        }
    }
    Ok(target_health)
}

/// A target group's targets; none when the group is gone (a service may still name it).
pub(super) async fn describe_target_health(
    client: &ApiClient,
    arn: &str,
) -> anyhow::Result<Vec<Target>> {
    let params = vec![("TargetGroupArn".to_string(), arn.to_string())];
    let document = match client.elbv2("DescribeTargetHealth", params).await {
        Ok(document) => document,
        Err(error) if is_elbv2_error(&error, "TargetGroupNotFound") => return Ok(Vec::new()),
        Err(error) => return Err(error.context(format!("describing the targets of {arn}"))),
    };
    let root = XmlElement::parse(&document)?;
    let Some(result) = root.child("DescribeTargetHealthResult") else {
        anyhow::bail!("berth's answer to DescribeTargetHealth has no DescribeTargetHealthResult");
    };
    Ok(result
        .members(&["TargetHealthDescriptions"])
        .into_iter()
        .map(|member| Target {
            id: member
                .text_at(&["Target", "Id"])
                .unwrap_or_default()
                .to_string(),
            port: member.number_at(&["Target", "Port"]),
            state: member
                .text_at(&["TargetHealth", "State"])
                .unwrap_or_default()
                .to_string(),
            reason: member
                .text_at(&["TargetHealth", "Reason"])
                .map(str::to_string),
        })
        .collect())
}

// ---- drawing (pure) ----

/// The columns, named once above every tree.
const HEADERS: [&str; 4] = ["NAME", "STATUS", "HEALTH", "DETAIL"];

/// One cell: its text, and the same text as painted (colour codes take no width).
#[derive(Default, Clone)]
struct Cell {
    plain: String,
    painted: String,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        let text = text.into();
        Cell {
            painted: text.clone(),
            plain: text,
        }
    }

    /// `self` then `other` with `separator` between, when both have text.
    fn join(mut self, separator: &str, other: Cell) -> Cell {
        if other.plain.is_empty() {
            return self;
        }
        if !self.plain.is_empty() {
            self.plain.push_str(separator);
            self.painted.push_str(separator);
        }
        self.plain.push_str(&other.plain);
        self.painted.push_str(&other.painted);
        self
    }
}

/// One line of the tree and what hangs below it.
struct Node {
    name: String,
    status: Cell,
    health: Cell,
    detail: String,
    /// Stopped tasks and their containers: dimmed when colour is on.
    dim: bool,
    children: Vec<Node>,
}

impl Node {
    fn leaf(name: String) -> Self {
        Node {
            name,
            status: Cell::default(),
            health: Cell::default(),
            detail: String::new(),
            dim: false,
            children: vec![],
        }
    }
}

/// A line before its columns are padded: the name with its tree prefix.
struct Row<'n> {
    name: String,
    node: &'n Node,
}

fn flatten<'n>(node: &'n Node, prefix: &str, rows: &mut Vec<Row<'n>>) {
    for (index, child) in node.children.iter().enumerate() {
        let last = index + 1 == node.children.len();
        rows.push(Row {
            name: format!("{prefix}{}{}", if last { "└─ " } else { "├─ " }, child.name),
            node: child,
        });
        flatten(
            child,
            &format!("{prefix}{}", if last { "   " } else { "│  " }),
            rows,
        );
    }
}

/// Pads `painted` (whose visible text is `plain`) to `width` characters.
fn pad(plain: &str, painted: &str, width: usize) -> String {
    let fill = width.saturating_sub(plain.chars().count());
    format!("{painted}{}", " ".repeat(fill))
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
    fn status(self, status: &str) -> Cell {
        let code = match status {
            "RUNNING" | "HEALTHY" | "ACTIVE" | "COMPLETED" | "healthy" => "32",
            "STOPPED" | "UNHEALTHY" | "FAILED" | "INACTIVE" | "unhealthy" | "unavailable" => "31",
            "PROVISIONING" | "PENDING" | "ACTIVATING" | "DEACTIVATING" | "STOPPING"
            | "DEPROVISIONING" | "DRAINING" | "IN_PROGRESS" | "initial" | "draining" => "33",
            _ => return Cell::plain(status),
        };
        Cell {
            plain: status.to_string(),
            painted: self.code(code, status),
        }
    }

    fn dim(self, text: &str) -> String {
        self.code("2", text)
    }
}

/// Draws one cluster's tree under a line of column headers. Stopped tasks of the last
/// ten minutes (five per service at most) are shown after the live ones, dimmed when
/// colour is on.
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
        let mut node = service_node(service, paint);
        let targets = |task: &Task| task_targets(&view.target_health, service, task);
        node.children = task_nodes(tasks.collect(), now, paint, &targets);
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
    let orphan_nodes = task_nodes(orphans, now, paint, &|_| Vec::new());
    if !orphan_nodes.is_empty() {
        let mut node = Node::leaf("tasks without a service".to_string());
        node.children = orphan_nodes;
        root.children.push(node);
    }
    if root.children.is_empty() {
        let mut empty = Node::leaf("(no services or tasks)".to_string());
        empty.dim = true;
        root.children.push(empty);
    }
    let mut rows = vec![Row {
        name: root.name.clone(),
        node: &root,
    }];
    flatten(&root, "", &mut rows);
    let name_width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([HEADERS[0].len()])
        .max()
        .unwrap_or_default();
    let width = |cell: fn(&Node) -> &Cell, header: &str| {
        rows.iter()
            .map(|row| cell(row.node).plain.chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or_default()
    };
    let status_width = width(|node| &node.status, HEADERS[1]);
    let health_width = width(|node| &node.health, HEADERS[2]);
    let line = |name: &str, status: (&str, &str), health: (&str, &str), detail: &str| {
        let text = format!(
            "{}  {}  {}  {detail}",
            pad(name, name, name_width),
            pad(status.0, status.1, status_width),
            pad(health.0, health.1, health_width),
        );
        format!("{}\n", text.trim_end())
    };
    let mut out = line(
        HEADERS[0],
        (HEADERS[1], HEADERS[1]),
        (HEADERS[2], HEADERS[2]),
        HEADERS[3],
    );
    for row in &rows {
        let node = row.node;
        let text = line(
            &row.name,
            (&node.status.plain, &node.status.painted),
            (&node.health.plain, &node.health.painted),
            &node.detail,
        );
        if node.dim {
            // Dimmed whole, in its plain words (nested colour codes would end the dim).
            let plain = line(
                &row.name,
                (&node.status.plain, &node.status.plain),
                (&node.health.plain, &node.health.plain),
                &node.detail,
            );
            out.push_str(&paint.dim(plain.trim_end_matches('\n')));
            out.push('\n');
        } else {
            out.push_str(&text);
        }
    }
    out
}

fn service_node(service: &Service, paint: Paint) -> Node {
    let mut detail = format!(
        "{}/{} running",
        service.running_count, service.desired_count
    );
    if service.pending_count > 0 {
        detail.push_str(&format!(", {} pending", service.pending_count));
    }
    let is_primary =
        |d: &&Deployment| DeploymentStatus::from_ecs(&d.status) == Some(DeploymentStatus::Primary);
    let primary = service.deployments.iter().find(is_primary);
    let task_definition =
        task_definition_name(primary.map_or(&service.task_definition, |d| &d.task_definition));
    detail.push_str(&format!("  {task_definition}"));
    if let Some(deployment) = primary.filter(|d| !d.rollout_state.is_empty()) {
        detail.push_str(&format!(", deployment {}", deployment.rollout_state));
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
    let mut node = Node::leaf(format!("service {}", service.service_name));
    node.status = paint.status(&service.status);
    node.detail = detail;
    node
}

/// How a task's target stands in one of its service's target groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TaskTargetHealth {
    pub target_group: String,
    /// ELBv2's state: initial | healthy | unhealthy | unused | draining | unavailable.
    pub state: String,
    pub reason: Option<String>,
}

/// The task's targets in each target group of its service, as DescribeTargetHealth
/// reported them: an instance target is the task's container instance at the host port
/// of `containerName`/`containerPort`, an ip target its address at the container port.
pub(super) fn task_targets(
    target_health: &TargetHealth,
    service: &Service,
    task: &Task,
) -> Vec<TaskTargetHealth> {
    let instance = task.container_instance_arn.as_deref().map(name_from_arn);
    let mut found = Vec::new();
    for load_balancer in &service.load_balancers {
        let Some(group_arn) = load_balancer.target_group_arn.as_deref() else {
            continue;
        };
        let Some(targets) = target_health.get(group_arn) else {
            continue;
        };
        let container_port = load_balancer.container_port;
        let containers = task
            .containers
            .iter()
            .filter(|c| Some(c.name.as_str()) == load_balancer.container_name.as_deref());
        let mut addresses: Vec<(&str, Option<i64>)> = Vec::new();
        for container in containers {
            if let Some(instance) = instance {
                let host_port = container
                    .network_bindings
                    .iter()
                    .find(|b| b.container_port == container_port)
                    .and_then(|b| b.host_port);
                addresses.push((instance, host_port));
            }
            for interface in &container.network_interfaces {
                if let Some(ip) = interface.private_ipv4_address.as_deref() {
                    addresses.push((ip, container_port));
                }
            }
        }
        let matched = targets.iter().find(|target| {
            addresses
                .iter()
                .any(|(id, port)| target.id == *id && port.is_some() && target.port == *port)
        });
        if let Some(target) = matched {
            found.push(TaskTargetHealth {
                target_group: target_group_name(group_arn).to_string(),
                state: target.state.clone(),
                reason: target.reason.clone(),
            });
        }
    }
    found
}

/// `arn:...:targetgroup/member/0123abcd` -> `member`.
pub(super) fn target_group_name(arn: &str) -> &str {
    arn.rsplit('/').nth(1).unwrap_or(arn)
}

/// The HEALTH column of a task: its own health, and its targets' where it has some
/// (its own is `UNKNOWN` when no container has a health check: then the targets say).
fn task_health(task: &Task, targets: &[TaskTargetHealth], paint: Paint) -> Cell {
    let mut cell = if targets.is_empty() || task.health_status != "UNKNOWN" {
        paint.status(&task.health_status)
    } else {
        Cell::default()
    };
    for target in targets {
        let mut part = Cell::plain(if targets.len() == 1 {
            "target ".to_string()
        } else {
            format!("target {} ", target.target_group)
        })
        .join("", paint.status(&target.state));
        if let Some(reason) = target.reason.as_deref().filter(|r| !r.is_empty()) {
            part = part.join(" ", Cell::plain(format!("({reason})")));
        }
        cell = cell.join(", ", part);
    }
    cell
}

fn is_stopped(task: &Task) -> bool {
    task.last_status == "STOPPED"
}

fn task_nodes(
    mut tasks: Vec<&Task>,
    now: f64,
    paint: Paint,
    targets: &dyn Fn(&Task) -> Vec<TaskTargetHealth>,
) -> Vec<Node> {
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
        nodes.push(task_node(task, &targets(task), now, paint));
    }
    nodes
}

fn task_node(task: &Task, targets: &[TaskTargetHealth], now: f64, paint: Paint) -> Node {
    let id = short_task_id(&task.task_arn);
    let task_definition = task_definition_name(&task.task_definition_arn);
    let mut node = Node::leaf(format!("task {id}"));
    node.status = paint.status(&task.last_status);
    let mut detail = task_definition.to_string();
    if is_stopped(task) {
        node.dim = true;
        if let Some(at) = task.stopped_at {
            detail.push_str(&format!("  {} ago", duration(now - at)));
        }
        let exited = task
            .containers
            .iter()
            .find(|c| c.exit_code.is_some_and(|code| code != 0));
        if let Some(code) = exited
            .or_else(|| task.containers.iter().find(|c| c.exit_code.is_some()))
            .and_then(|c| c.exit_code)
        {
            detail.push_str(&format!("  exit {code}"));
        }
        if let Some(reason) = task.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
            detail.push_str(&format!("  ({reason})"));
        }
    } else {
        node.health = task_health(task, targets, paint);
        match task.started_at {
            Some(started) => detail.push_str(&format!("  up {}", duration(now - started))),
            None => detail.push_str(&format!(
                "  created {} ago",
                duration(now - task.created_at)
            )),
        }
        if task.desired_status == "STOPPED" {
            detail.push_str("  (stopping)");
        }
    }
    node.detail = detail;
    node.children = task
        .containers
        .iter()
        .map(|container| {
            let mut child = Node::leaf(container.name.clone());
            child.status = paint.status(&container.last_status);
            child.health = paint.status(&container.health_status);
            child.dim = is_stopped(task);
            let mut detail = Vec::new();
            if let Some(code) = container.exit_code {
                detail.push(format!("exit {code}"));
            }
            let bindings: Vec<String> = container
                .network_bindings
                .iter()
                .map(binding_words)
                .collect();
            if !bindings.is_empty() {
                detail.push(bindings.join(", "));
            }
            if let Some(reason) = container.reason.as_deref().filter(|r| !r.is_empty()) {
                detail.push(format!("({reason})"));
            }
            child.detail = detail.join("  ");
            child
        })
        .collect();
    node
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

/// A network binding as `docker ps` shows a port: `0.0.0.0:32768->80/tcp`.
pub(super) fn binding_words(binding: &NetworkBinding) -> String {
    format!(
        "{}:{}->{}/{}",
        binding.bind_ip.as_deref().unwrap_or("0.0.0.0"),
        binding.host_port.unwrap_or_default(),
        binding.container_port.unwrap_or_default(),
        binding.protocol.as_deref().unwrap_or("tcp")
    )
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
            ..Default::default()
        }
    }

    #[test]
    fn the_tree_shows_services_tasks_and_containers() {
        let expected = "\
NAME                        STATUS   HEALTH   DETAIL
our-project
├─ service member           ACTIVE            3/3 running  member:2, deployment COMPLETED
│  └─ task 1a2b3c4d5e6f     RUNNING  HEALTHY  member:2  up 3m
│     ├─ nginx              RUNNING  HEALTHY  0.0.0.0:32768->80/tcp
│     └─ web                RUNNING  UNKNOWN
└─ tasks without a service
   └─ task ffff3c4d5e6f     STOPPED           member:2  2m ago  exit 3  (Essential container in task exited)
      └─ job                STOPPED  UNKNOWN  exit 3
";
        assert_eq!(render(&view(), NOW, false), expected);
    }

    /// A service behind a load balancer, its tasks without a container health check:
    /// DescribeTargetHealth's answer is their health.
    fn load_balanced_view(states: &[(&str, Option<&str>)]) -> ClusterView {
        let group = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/member/0123abcd";
        let mut view = ClusterView {
            name: "our-project".to_string(),
            ..Default::default()
        };
        let mut service = Service {
            service_name: "member".to_string(),
            status: "ACTIVE".to_string(),
            task_definition: "arn:aws:ecs:us-east-1:0:task-definition/member:2".to_string(),
            ..Default::default()
        };
        service.load_balancers = vec![berth_api::LoadBalancer {
            target_group_arn: Some(group.to_string()),
            container_name: Some("nginx".to_string()),
            container_port: Some(80),
            ..Default::default()
        }];
        view.services.push(service);
        let mut targets = Vec::new();
        for (index, (state, reason)) in states.iter().enumerate() {
            let host_port = 32768 + index as i64;
            let mut running = task(&format!("{index:032x}"), Some("member"), "RUNNING");
            running.health_status = "UNKNOWN".to_string();
            running.container_instance_arn =
                Some("arn:aws:ecs:us-east-1:0:container-instance/our-project/c1".to_string());
            let mut nginx = container("nginx", "RUNNING", "UNKNOWN");
            nginx.network_bindings = vec![NetworkBinding {
                container_port: Some(80),
                host_port: Some(host_port),
                ..Default::default()
            }];
            running.containers = vec![nginx];
            view.tasks.push(running);
            targets.push(Target {
                id: "c1".to_string(),
                port: Some(host_port),
                state: state.to_string(),
                reason: reason.map(str::to_string),
            });
        }
        // Another instance's target on the same port is not these tasks'.
        targets.push(Target {
            id: "c2".to_string(),
            port: Some(32768),
            state: "unhealthy".to_string(),
            reason: None,
        });
        view.target_health.insert(group.to_string(), targets);
        view
    }

    #[test]
    fn tasks_behind_a_load_balancer_show_their_target_health() {
        let view = load_balanced_view(&[
            ("healthy", None),
            ("unhealthy", Some("Target.ResponseCodeMismatch")),
            ("initial", Some("Elb.RegistrationInProgress")),
            ("draining", Some("Target.DeregistrationInProgress")),
        ]);
        let text = render(&view, NOW, false);
        let health: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("task 0000"))
            .map(|line| {
                line.split("  ")
                    .filter(|c| !c.is_empty())
                    .nth(2)
                    .unwrap()
                    .trim()
            })
            .collect();
        assert_eq!(
            health,
            [
                "target healthy",
                "target unhealthy (Target.ResponseCodeMismatch)",
                "target initial (Elb.RegistrationInProgress)",
                "target draining (Target.DeregistrationInProgress)",
            ],
            "{text}"
        );
        assert!(
            !text.contains("task 000000000000      RUNNING  UNKNOWN"),
            "{text}"
        );
    }

    #[test]
    fn a_task_with_its_own_health_and_a_target_shows_both() {
        let mut view = load_balanced_view(&[("unhealthy", Some("Target.Timeout"))]);
        view.tasks[0].health_status = "HEALTHY".to_string();
        let text = render(&view, NOW, false);
        assert!(
            text.contains("HEALTHY, target unhealthy (Target.Timeout)"),
            "{text}"
        );
        // Coloured, each word keeps its own colour and the columns stay aligned.
        let coloured = render(&view, NOW, true);
        assert!(coloured.contains("\x1b[31munhealthy\x1b[0m"), "{coloured}");
        let strip = |line: &str| {
            let mut plain = String::new();
            let mut in_code = false;
            for c in line.chars() {
                match c {
                    '\x1b' => in_code = true,
                    'm' if in_code => in_code = false,
                    _ if in_code => {}
                    _ => plain.push(c),
                }
            }
            plain
        };
        let plain: Vec<String> = coloured.lines().map(strip).collect();
        assert_eq!(plain.join("\n") + "\n", text);
    }

    #[test]
    fn colour_is_only_added_when_asked_for() {
        let coloured = render(&view(), NOW, true);
        assert!(coloured.contains("\x1b[32mRUNNING\x1b[0m"));
        assert!(coloured.contains("\x1b[2m   └─ task ffff3c4d5e6f     STOPPED"));
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
        let first_stopped = text
            .lines()
            .filter(|line| line.contains("task "))
            .nth(1)
            .unwrap();
        assert!(
            first_stopped.contains("task 000000000000")
                && first_stopped.contains("STOPPED")
                && first_stopped.ends_with("member:2  0s ago"),
            "{text}"
        );
    }

    #[test]
    fn listeners_not_served_show_under_their_load_balancer_with_the_reason() {
        let listener = |load_balancer: &str, port: i64| ListenerNotServing {
            load_balancer: load_balancer.to_string(),
            protocol: "HTTP".to_string(),
            port,
            reason: format!("0.0.0.0:{port}: Address already in use"),
        };
        assert_eq!(render_listeners_not_serving(&[]), "");
        assert_eq!(
            render_listeners_not_serving(&[
                listener("api", 8300),
                listener("api", 8301),
                listener("web", 9000)
            ]),
            "\nload balancer api\n  listener HTTP:8300  not serving: 0.0.0.0:8300: Address already in use\n  listener HTTP:8301  not serving: 0.0.0.0:8301: Address already in use\n\nload balancer web\n  listener HTTP:9000  not serving: 0.0.0.0:9000: Address already in use\n"
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
            "NAME                       STATUS  HEALTH  DETAIL\nempty\n└─ (no services or tasks)\n"
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
