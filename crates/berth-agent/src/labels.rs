//! The labels and names berth puts on everything it creates, so that an agent (also
//! after a restart) can tell its containers and volumes apart and route their events.

use std::collections::BTreeMap;

use berth_proto::AssignedTask as Task;

pub const MANAGED: &str = "berth.managed";
pub const NODE: &str = "berth.node";
pub const CLUSTER: &str = "berth.cluster";
pub const TASK: &str = "berth.task";
pub const CONTAINER: &str = "berth.container";
pub const FAMILY: &str = "berth.family";
pub const REVISION: &str = "berth.revision";
pub const SERVICE: &str = "berth.service";
/// On a service's endpoint container (`true`): it holds the service's name on the
/// node's cluster network for service discovery, and belongs to no task.
pub const SERVICE_ENDPOINT: &str = "berth.service-endpoint";
/// On volumes: the task definition's volume name.
pub const VOLUME: &str = "berth.volume";

/// The `berth.container` value of a task's sandbox (`~` cannot start a container name).
pub const SANDBOX_CONTAINER: &str = "~sandbox";

/// The labels of everything that belongs to `task` on `node_id`, without `berth.container`.
pub fn task_labels(node_id: &str, task: &Task) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED.to_string(), "true".to_string());
    labels.insert(NODE.to_string(), node_id.to_string());
    labels.insert(CLUSTER.to_string(), task.cluster.clone());
    labels.insert(TASK.to_string(), task.id.clone());
    labels.insert(FAMILY.to_string(), task.family.clone());
    labels.insert(REVISION.to_string(), task.revision.to_string());
    if let Some(service) = &task.service {
        labels.insert(SERVICE.to_string(), service.clone());
    }
    labels
}

/// The labels of one container (or the sandbox, with [`SANDBOX_CONTAINER`]).
pub fn container_labels(node_id: &str, task: &Task, container: &str) -> BTreeMap<String, String> {
    let mut labels = task_labels(node_id, task);
    labels.insert(CONTAINER.to_string(), container.to_string());
    labels
}

/// `berth-<family>-<first 12 of the task id>-<container>`.
pub fn container_name(task: &Task, container: &str) -> String {
    let short: String = task.id.chars().take(12).collect();
    format!("berth-{}-{short}-{container}", task.family)
}

pub fn sandbox_name(task: &Task) -> String {
    container_name(task, "sandbox")
}

/// The labels of the endpoint container of `service` of `cluster` on `node_id`.
pub fn endpoint_labels(node_id: &str, cluster: &str, service: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED.to_string(), "true".to_string());
    labels.insert(NODE.to_string(), node_id.to_string());
    labels.insert(CLUSTER.to_string(), cluster.to_string());
    labels.insert(SERVICE.to_string(), service.to_string());
    labels.insert(SERVICE_ENDPOINT.to_string(), "true".to_string());
    labels
}

/// `berth-endpoint-<cluster>-<service>-<first 12 of the node id>`: one per node, so
/// several agents may share an engine.
pub fn endpoint_name(node_id: &str, cluster: &str, service: &str) -> String {
    let node: String = node_id.chars().take(12).collect();
    format!("berth-endpoint-{cluster}-{service}-{node}")
}

/// A task-scoped Docker volume: `berth-<task id>-<volume>`.
pub fn task_volume_name(task_id: &str, volume: &str) -> String {
    format!("berth-{task_id}-{volume}")
}

/// The bridge network of a cluster's tasks on one node: the engine's DNS on it resolves
/// a service's name to the service's endpoint on this node (service discovery). Named
/// per node as well, so two berths sharing one engine never resolve each other's
/// services.
pub fn cluster_network(cluster: &str, node_id: &str) -> String {
    let node: String = node_id.chars().take(12).collect();
    format!("berth-{cluster}-{node}")
}
