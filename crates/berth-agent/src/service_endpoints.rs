//! Service discovery on this node: for each discoverable service of its clusters, one
//! endpoint container (the sandbox image, on the node's cluster network, with the
//! service's name as its alias) in whose network namespace a berth-lb TCP listener
//! listens on each of the service's container ports, balancing over the service's
//! healthy tasks wherever they run.
//!
//! So `SERVICE:PORT` resolves, from any task of the cluster on any node, to this node's
//! endpoint; the proxy reaches the tasks from the agent's own namespace at their
//! node's address and published port. The control plane says which tasks (a long-poll,
//! `ControlPlaneLink::service_endpoints`); a task that leaves drains in the proxy. While
//! the control plane cannot be reached the node keeps serving what it was last told.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_lb::{
    Algorithm, HealthCheckConfig, LbConfig, Limits, ListenerConfig, ListenerProtocol, LoadBalancer,
    Stickiness, TargetConfig, TargetGroupConfig,
};
use berth_proto::{ControlPlaneLink, DiscoveredService, ServiceEndpoints};
use berth_runtime::{ContainerSpec, ContainerState, NetworkSpec, RuntimeError};

use crate::labels;
use crate::task_runner::Shared;

/// How long one ask for the endpoints may be held. Each answer, changed or not, also
/// checks that the endpoint containers still run.
const LONG_POLL: Duration = Duration::from_secs(30);
/// The pause after a failed ask or a failed apply.
const RETRY: Duration = Duration::from_secs(2);
/// Connections between services are often long-lived and quiet (connection pools):
/// an hour, as Service Connect's proxy allows a TCP connection, not ELB's minute.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A service's endpoint container that runs, and the namespace its listeners bind in.
struct RunningEndpoint {
    container_id: String,
    namespace: PathBuf,
}

/// (cluster, service name).
type ServiceKey = (String, String);

/// Serves this node's endpoints until the task is dropped.
pub(crate) async fn run(shared: Arc<Shared>, link: Arc<dyn ControlPlaneLink>) {
    let balancer = LoadBalancer::new(Limits {
        idle_timeout: IDLE_TIMEOUT,
        ..Limits::default()
    });
    let mut have: Option<String> = None;
    let mut failing: Option<String> = None;
    loop {
        let asked = link
            .service_endpoints(&shared.node_id, have.as_deref(), LONG_POLL)
            .await;
        let endpoints = match asked {
            Ok(endpoints) => {
                if failing.take().is_some() {
                    tracing::info!("service discovery's endpoints reach this agent again");
                }
                endpoints
            }
            Err(error) => {
                let text = error.to_string();
                if failing.as_ref() != Some(&text) {
                    tracing::warn!(%error, "cannot read service discovery's endpoints; serving what this node had and retrying");
                    failing = Some(text);
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        match serve(&shared, &balancer, &endpoints).await {
            Ok(()) => have = Some(endpoints.version.clone()),
            Err(error) => {
                tracing::warn!(%error, "service discovery's endpoints are not all served; retrying");
                // Ask again at once after the pause, not waiting for a change.
                have = None;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Makes the endpoint containers and the proxy's listeners match `endpoints`.
async fn serve(
    shared: &Shared,
    balancer: &LoadBalancer,
    endpoints: &ServiceEndpoints,
) -> Result<(), String> {
    let wanted: BTreeMap<ServiceKey, &DiscoveredService> = endpoints
        .services
        .iter()
        .map(|service| ((service.cluster.clone(), service.name.clone()), service))
        .collect();
    let running = endpoint_containers(shared, &wanted)
        .await
        .map_err(|error| format!("endpoint containers: {error}"))?;
    let config = lb_config(&wanted, &running);
    balancer
        .apply(config)
        .await
        .map_err(|error| error.to_string())
}

/// Removes the endpoint containers of services no longer wanted (and any that stopped),
/// starts the missing ones, and returns the running ones with their namespaces.
async fn endpoint_containers(
    shared: &Shared,
    wanted: &BTreeMap<ServiceKey, &DiscoveredService>,
) -> Result<HashMap<ServiceKey, RunningEndpoint>, RuntimeError> {
    let runtime = shared.runtime.as_ref();
    let found = runtime
        .list_containers(labels::SERVICE_ENDPOINT, "true")
        .await?;
    let mut running = HashMap::new();
    for container in found {
        if container.labels.get(labels::NODE) != Some(&shared.node_id) {
            continue;
        }
        let key = (
            container
                .labels
                .get(labels::CLUSTER)
                .cloned()
                .unwrap_or_default(),
            container
                .labels
                .get(labels::SERVICE)
                .cloned()
                .unwrap_or_default(),
        );
        let keep = wanted.contains_key(&key)
            && container.state == ContainerState::Running
            && !running.contains_key(&key);
        if keep {
            // The listing has no pid: the container's own inspect does.
            if let Some(pid) = runtime
                .inspect_container(&container.id)
                .await?
                .filter(|c| c.state == ContainerState::Running)
                .and_then(|c| c.pid)
            {
                running.insert(
                    key,
                    RunningEndpoint {
                        container_id: container.id,
                        namespace: namespace_of(pid),
                    },
                );
                continue;
            }
        }
        tracing::info!(container = %container.name, "removing a service endpoint container");
        runtime.remove_container(&container.id).await?;
    }
    for key in wanted.keys() {
        if running.contains_key(key) {
            continue;
        }
        let (cluster, service) = key;
        let endpoint = start_endpoint(shared, cluster, service).await?;
        tracing::info!(%cluster, %service, container = %endpoint.container_id, "service endpoint started");
        running.insert(key.clone(), endpoint);
    }
    Ok(running)
}

async fn start_endpoint(
    shared: &Shared,
    cluster: &str,
    service: &str,
) -> Result<RunningEndpoint, RuntimeError> {
    let runtime = shared.runtime.as_ref();
    let network = shared.ensure_network(cluster).await?;
    let mut spec = ContainerSpec::new(
        labels::endpoint_name(&shared.node_id, cluster, service),
        shared.sandbox_image.clone(),
    );
    spec.labels = labels::endpoint_labels(&shared.node_id, cluster, service);
    spec.network = NetworkSpec::Bridge {
        network: Some(network),
        ports: Vec::new(),
    };
    spec.network_aliases = vec![service.to_string()];
    spec.stop_timeout_secs = Some(1);
    let id = runtime.create_container(&spec).await?;
    runtime.start_container(&id).await?;
    let pid = runtime
        .inspect_container(&id)
        .await?
        .and_then(|c| c.pid)
        .ok_or_else(|| {
            RuntimeError::Engine(format!(
                "service endpoint container {id} does not run after its start"
            ))
        })?;
    Ok(RunningEndpoint {
        container_id: id,
        namespace: namespace_of(pid),
    })
}

fn namespace_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// One TCP listener per service and container port, in the service's endpoint, over a
/// group of the tasks that answer there. Health checks are off: the control plane sends
/// the healthy tasks only, and passive failures still take one that refuses out.
fn lb_config(
    wanted: &BTreeMap<ServiceKey, &DiscoveredService>,
    running: &HashMap<ServiceKey, RunningEndpoint>,
) -> LbConfig {
    let mut config = LbConfig::default();
    for (key, service) in wanted {
        let Some(endpoint) = running.get(key) else {
            continue;
        };
        for port in &service.ports {
            let id = format!(
                "{}/{}/{}",
                service.cluster, service.name, port.container_port
            );
            config.target_groups.push(TargetGroupConfig {
                id: id.clone(),
                protocol: ListenerProtocol::Tcp,
                // Connections between services are often long-lived: the fewest open.
                algorithm: Algorithm::LeastOutstandingRequests,
                health_check: HealthCheckConfig {
                    enabled: false,
                    ..HealthCheckConfig::default()
                },
                deregistration_delay: Duration::from_millis(service.drain_ms),
                stickiness: Stickiness::Off,
                targets: port
                    .endpoints
                    .iter()
                    .map(|endpoint| TargetConfig {
                        id: endpoint.task_id.clone(),
                        addr: endpoint.addr,
                    })
                    .collect(),
            });
            config.listeners.push(ListenerConfig {
                namespace: Some(endpoint.namespace.clone()),
                ..ListenerConfig::forwarding(
                    id.clone(),
                    std::net::SocketAddr::from(([0, 0, 0, 0], port.container_port)),
                    ListenerProtocol::Tcp,
                    id,
                )
            });
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::{DiscoveredPort, Endpoint};

    #[test]
    fn each_port_of_a_running_endpoint_is_a_listener_in_its_namespace() {
        let service = DiscoveredService {
            cluster: "default".into(),
            name: "api".into(),
            drain_ms: 30_000,
            ports: vec![DiscoveredPort {
                container_port: 8080,
                endpoints: vec![Endpoint {
                    task_id: "t1".into(),
                    addr: "10.0.0.2:32768".parse().unwrap(),
                }],
            }],
        };
        let waiting = DiscoveredService {
            name: "db".into(),
            ..service.clone()
        };
        let wanted = BTreeMap::from([
            (("default".to_string(), "api".to_string()), &service),
            (("default".to_string(), "db".to_string()), &waiting),
        ]);
        let running = HashMap::from([(
            ("default".to_string(), "api".to_string()),
            RunningEndpoint {
                container_id: "c1".into(),
                namespace: namespace_of(42),
            },
        )]);
        let config = lb_config(&wanted, &running);
        // db has no endpoint container yet: nothing to bind in.
        assert_eq!(config.listeners.len(), 1);
        let listener = &config.listeners[0];
        assert_eq!(listener.bind.to_string(), "0.0.0.0:8080");
        assert_eq!(
            listener.namespace.as_deref(),
            Some(std::path::Path::new("/proc/42/ns/net"))
        );
        let group = &config.target_groups[0];
        assert_eq!(
            listener.target_groups().collect::<Vec<_>>(),
            [group.id.as_str()]
        );
        assert_eq!(group.deregistration_delay, Duration::from_secs(30));
        assert!(!group.health_check.enabled);
        assert_eq!(group.targets[0].addr.to_string(), "10.0.0.2:32768");
    }
}
