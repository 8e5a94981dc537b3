//! Service discovery's endpoints: for each service callers reach by name, the ports
//! they call (its containers' `containerPort`s) and the tasks that answer on each now,
//! as one node reaches them. Each node serves a service's name with a proxy of its own
//! that balances over these; see ARCHITECTURE.md, "Service discovery".

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::model::{ContainerInstanceStatus, Service, ServiceStatus, Task};
use crate::nodes::instances_of_node;
use crate::reconcile::ServiceHealth;
use crate::service_targets::target_group_id;
use crate::spec::{Protocol, TaskSpec};
use crate::state::State;
use crate::time::Timestamp;

/// One service callers reach as `NAME:CONTAINER_PORT` from the tasks of its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredService {
    pub cluster: String,
    pub name: String,
    /// How long a task that leaves the endpoints keeps its connections in flight.
    pub drain_ms: u64,
    pub ports: Vec<DiscoveredPort>,
}

/// One container port of the service and the tasks that answer on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredPort {
    pub container_port: u16,
    pub endpoints: Vec<Endpoint>,
}

/// A healthy task, where the asking node reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub task_id: String,
    pub addr: SocketAddr,
}

/// How long a service task that callers reach by name keeps running after it left the
/// endpoints, before its containers get SIGTERM: long enough for every node's endpoint
/// to hear (a long-poll answer and one apply, well under a second, with room for a
/// loaded machine), so no new connection reaches a task that is exiting. Short, as
/// the endpoints stop sending it new connections at once.
pub const ENDPOINT_DRAIN_SECS: u64 = 3;

/// When a service task being stopped may get SIGTERM for service discovery's sake:
/// `now` plus `ENDPOINT_DRAIN_SECS` if its definition maps a TCP port (so it is an
/// endpoint somewhere), else `now`.
pub fn endpoint_drain_until(state: &State, task: &Task, now: Timestamp) -> Timestamp {
    let discovered = task.service.is_some()
        && state
            .definition(&task.family, task.revision)
            .and_then(|definition| definition.task_spec().ok())
            .is_some_and(|spec| !discovery_ports(spec).is_empty());
    if discovered {
        now.plus_secs(ENDPOINT_DRAIN_SECS)
    } else {
        now
    }
}

/// The address other machines reach a container instance's node at, as its agent
/// registered it (`berth agent --address`); an instance whose agent gave none is this
/// machine (`berth dev`), reached on loopback.
pub fn instance_address(state: &State, instance_id: &str) -> IpAddr {
    state
        .container_instances
        .get(instance_id)
        .and_then(|instance| state.nodes.get(&instance.node_id))
        .and_then(|node| node.address.as_deref())
        .and_then(|address| address.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The TCP container ports callers use for a service whose tasks run `spec`.
pub fn discovery_ports(spec: &TaskSpec) -> BTreeSet<u16> {
    spec.container_definitions
        .iter()
        .flat_map(|container| &container.port_mappings)
        .filter(|mapping| mapping.protocol == Protocol::Tcp)
        .map(|mapping| mapping.container_port)
        .collect()
}

/// The discoverable services of the clusters `node_id` serves (ACTIVE services whose
/// task definition maps ports), each with its healthy tasks where `node_id` reaches
/// them, in a stable order.
///
/// An endpoint is a task `ServiceHealth` counts healthy (RUNNING, not to be stopped,
/// container checks and load-balancer targets passing) at the host port it published
/// for the container port, on its node's address: reachable from every node. A task
/// that published none (awsvpc) is reached at its own address on the cluster network,
/// which only its own node can route to, so it is an endpoint only there.
pub fn discovered_services(state: &State, node_id: &str) -> Vec<DiscoveredService> {
    let instances = instances_of_node(state, node_id);
    let clusters: BTreeSet<&str> = instances
        .iter()
        .filter_map(|id| state.container_instances.get(id))
        .filter(|instance| instance.status != ContainerInstanceStatus::Inactive)
        .map(|instance| instance.cluster.as_str())
        .collect();
    let mut services = Vec::new();
    for service in state.services.values() {
        if service.status != ServiceStatus::Active || !clusters.contains(service.cluster.as_str()) {
            continue;
        }
        let Some(spec) = state
            .definition(&service.family, service.revision)
            .and_then(|definition| definition.task_spec().ok())
        else {
            continue;
        };
        let ports = discovery_ports(spec);
        if ports.is_empty() {
            continue;
        }
        let tasks: Vec<&Task> = state
            .tasks_of_service(&service.cluster, &service.name)
            .collect();
        let health = ServiceHealth::of(state, service, tasks.iter().copied());
        let healthy: Vec<&Task> = tasks
            .into_iter()
            .filter(|task| health.healthy(task))
            .collect();
        let ports = ports
            .into_iter()
            .map(|container_port| DiscoveredPort {
                container_port,
                endpoints: healthy
                    .iter()
                    .filter_map(|task| {
                        Some(Endpoint {
                            task_id: task.id.clone(),
                            addr: endpoint_addr(state, &instances, task, container_port)?,
                        })
                    })
                    .collect(),
            })
            .collect();
        services.push(DiscoveredService {
            cluster: service.cluster.clone(),
            name: service.name.clone(),
            drain_ms: drain_ms(state, service, spec),
            ports,
        });
    }
    services
}

/// Where the node with `instances` reaches `task` on `container_port`, if it can.
fn endpoint_addr(
    state: &State,
    instances: &[String],
    task: &Task,
    container_port: u16,
) -> Option<SocketAddr> {
    let instance = task.container_instance_id.as_deref()?;
    let host_port = task
        .containers
        .iter()
        .flat_map(|container| &container.network_bindings)
        .find(|binding| binding.container_port == Some(i64::from(container_port)))
        .and_then(|binding| binding.host_port)
        .and_then(|port| u16::try_from(port).ok());
    if let Some(host_port) = host_port {
        return Some(SocketAddr::new(
            instance_address(state, instance),
            host_port,
        ));
    }
    if !instances.iter().any(|id| id == instance) {
        return None;
    }
    let own: IpAddr = task.private_ipv4_address.as_deref()?.parse().ok()?;
    Some(SocketAddr::new(own, container_port))
}

/// How long a connection to a task that left the endpoints is kept: as long as the task
/// may still answer. That is its target groups' deregistration delay (its containers
/// get SIGTERM only after it) and after that its containers' `stopTimeout`, whichever
/// of the service's is longest; after it, nothing is left to answer.
fn drain_ms(state: &State, service: &Service, spec: &TaskSpec) -> u64 {
    let deregistration_delay = service
        .load_balancers
        .iter()
        .filter_map(|lb| target_group_id(state, lb.target_group_arn.as_deref()?))
        .filter_map(|id| state.target_groups.get(&id))
        .map(|group| u64::from(group.attributes.deregistration_delay_seconds))
        .max()
        .unwrap_or(0);
    let stop_timeout = spec
        .container_definitions
        .iter()
        .map(|container| container.stop_timeout)
        .max()
        .unwrap_or(crate::spec::DEFAULT_STOP_TIMEOUT_SECS);
    (deregistration_delay + stop_timeout).saturating_mul(1000)
}
