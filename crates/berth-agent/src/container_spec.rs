//! From a task definition (plus the task's overrides) to what the runtime creates: the
//! sandbox, each container's spec, the task's volumes and the reported network
//! bindings. Pure functions: no IO, so every mapping rule is tested here.

use std::time::Duration;

use berth_api::{
    ContainerDefinition, ContainerOverride, NetworkBinding, RegisterTaskDefinitionRequest,
};
use berth_proto::AssignedTask as Task;
use berth_runtime::{
    ContainerSpec, DeviceSpec, HealthCheckSpec, MountSpec, NamespaceMode, NetworkSpec, PortSpec,
    Protocol, PublishedPort, VolumeSpec,
};

use crate::labels;

/// Log drivers that ship to AWS. There is no CloudWatch here: such containers use the
/// engine's default (json-file), so `berth logs` can read their output.
const AWS_LOG_DRIVERS: [&str; 2] = ["awslogs", "awsfirelens"];

pub(crate) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);
const MIB: i64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

pub(crate) fn network_mode(task: &Task, definition: &RegisterTaskDefinitionRequest) -> NetworkMode {
    let mode = Some(task.network_mode.as_str())
        .filter(|m| !m.is_empty())
        .or(definition.network_mode.as_deref())
        .unwrap_or("bridge");
    match mode {
        "host" => NetworkMode::Host,
        "awsvpc" => NetworkMode::Awsvpc,
        "none" => NetworkMode::None,
        _ => NetworkMode::Bridge,
    }
}

fn protocol(name: Option<&str>) -> Protocol {
    match name {
        Some(p) if p.eq_ignore_ascii_case("udp") => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

fn port(value: Option<i64>) -> Option<u16> {
    value.and_then(|v| u16::try_from(v).ok())
}

/// The ports the sandbox publishes in bridge mode: every container's portMappings.
fn published_ports(definition: &RegisterTaskDefinitionRequest) -> Vec<PortSpec> {
    let mut ports = Vec::new();
    for container in &definition.container_definitions {
        for mapping in container.port_mappings.iter().flatten() {
            let Some(container_port) = port(mapping.container_port) else {
                continue;
            };
            ports.push(PortSpec {
                container_port,
                host_port: port(mapping.host_port).unwrap_or(0),
                protocol: protocol(mapping.protocol.as_deref()),
            });
        }
    }
    ports
}

/// The container that holds the task's network namespace. /etc/hosts, DNS and the
/// hostname belong to the namespace owner (Docker refuses them on joining containers),
/// so the containers' extraHosts, dnsServers, dnsSearchDomains, hostname and links
/// go here.
pub(crate) fn sandbox_spec(
    node_id: &str,
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
    image: &str,
) -> ContainerSpec {
    let mut spec = ContainerSpec::new(labels::sandbox_name(task), image);
    spec.labels = labels::container_labels(node_id, task, labels::SANDBOX_CONTAINER);
    spec.network = match network_mode(task, definition) {
        NetworkMode::Bridge => NetworkSpec::Bridge {
            network: Some(labels::cluster_network(&task.cluster, node_id)),
            ports: published_ports(definition),
        },
        NetworkMode::Awsvpc => NetworkSpec::Bridge {
            network: Some(labels::cluster_network(&task.cluster, node_id)),
            ports: Vec::new(),
        },
        NetworkMode::Host => NetworkSpec::Host,
        NetworkMode::None => NetworkSpec::None,
    };
    for container in &definition.container_definitions {
        for host in container.extra_hosts.iter().flatten() {
            let entry = (host.hostname.clone(), host.ip_address.clone());
            if !spec.extra_hosts.contains(&entry) {
                spec.extra_hosts.push(entry);
            }
        }
        for server in container.dns_servers.iter().flatten() {
            if !spec.dns_servers.contains(server) {
                spec.dns_servers.push(server.clone());
            }
        }
        for domain in container.dns_search_domains.iter().flatten() {
            if !spec.dns_search.contains(domain) {
                spec.dns_search.push(domain.clone());
            }
        }
        if spec.hostname.is_none() {
            spec.hostname = container.hostname.clone();
        }
        // The linked container shares this namespace: its name (or the link's alias)
        // is this namespace's loopback.
        for link in container.links.iter().flatten() {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            for name in [target, alias] {
                let entry = (name.to_string(), "127.0.0.1".to_string());
                if !spec.extra_hosts.contains(&entry) {
                    spec.extra_hosts.push(entry);
                }
            }
        }
    }
    // A service's tasks answer to the service's name on the cluster network.
    if matches!(spec.network, NetworkSpec::Bridge { .. }) {
        spec.network_aliases = task.service.iter().cloned().collect();
    }
    // ipcMode task: the sandbox's IPC namespace is the one its containers share (its
    // PID namespace is joined the same way, which needs nothing set here).
    if definition.ipc_mode.as_deref() == Some("task") {
        spec.ipc_mode = Some(NamespaceMode::Shareable);
    }
    spec.stop_timeout_secs = Some(10);
    spec
}

/// A task of one container needs no sandbox: there is nothing to share its network
/// namespace with, so the container holds the namespace itself. That is one engine
/// container less per task, on every start and every replacement.
pub(crate) fn holds_own_namespace(definition: &RegisterTaskDefinitionRequest) -> bool {
    definition.container_definitions.len() == 1
}

/// The one container of a single-container task, with the network settings a sandbox
/// would have had: published ports, hostname, DNS and extra hosts.
pub(crate) fn standalone_container_spec(
    node_id: &str,
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
    sandbox_image: &str,
) -> Result<ContainerSpec, String> {
    let namespace = sandbox_spec(node_id, task, definition, sandbox_image);
    let mut spec = container_spec(node_id, task, definition, 0, "")?;
    spec.network = namespace.network;
    spec.hostname = namespace.hostname;
    spec.dns_servers = namespace.dns_servers;
    spec.dns_search = namespace.dns_search;
    spec.extra_hosts = namespace.extra_hosts;
    spec.network_aliases = namespace.network_aliases;
    // A task of one container shares nothing: `task` is its own namespace.
    spec.pid_mode = spec.pid_mode.filter(|mode| *mode == NamespaceMode::Host);
    spec.ipc_mode = spec
        .ipc_mode
        .filter(|mode| !matches!(mode, NamespaceMode::Container(_)));
    Ok(spec)
}

/// The task's Docker volumes to create before its containers: (spec, task-scoped).
/// Host bind mounts need nothing created.
pub(crate) fn task_volumes(
    node_id: &str,
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
) -> Vec<(VolumeSpec, bool)> {
    let mut volumes = Vec::new();
    for volume in &definition.volumes {
        let Some(name) = volume.name.as_deref() else {
            continue;
        };
        if volume
            .host
            .as_ref()
            .and_then(|h| h.source_path.as_ref())
            .is_some()
        {
            continue;
        }
        let config = volume
            .docker_volume_configuration
            .clone()
            .unwrap_or_default();
        let shared = config.scope.as_deref() == Some("shared");
        let mut volume_labels = config.labels.clone().unwrap_or_default();
        let mut ours = labels::task_labels(node_id, task);
        if shared {
            // A shared volume outlives the task: it is not the task's to remove.
            ours.remove(labels::TASK);
        }
        ours.insert(labels::VOLUME.to_string(), name.to_string());
        volume_labels.extend(ours);
        let spec = VolumeSpec {
            name: if shared {
                name.to_string()
            } else {
                labels::task_volume_name(&task.id, name)
            },
            driver: config.driver.clone(),
            driver_opts: config.driver_opts.clone().unwrap_or_default(),
            labels: volume_labels,
        };
        volumes.push((spec, !shared));
    }
    volumes
}

/// The names of the task-scoped volumes of a task (removed at cleanup).
pub(crate) fn task_scoped_volume_names(
    task_id: &str,
    definition: &RegisterTaskDefinitionRequest,
) -> Vec<String> {
    definition
        .volumes
        .iter()
        .filter(|v| {
            v.host
                .as_ref()
                .and_then(|h| h.source_path.as_ref())
                .is_none()
        })
        .filter(|v| {
            v.docker_volume_configuration
                .as_ref()
                .and_then(|c| c.scope.as_deref())
                != Some("shared")
        })
        .filter_map(|v| v.name.as_deref())
        .map(|name| labels::task_volume_name(task_id, name))
        .collect()
}

/// The mounts of a container's own mountPoints.
fn own_mounts(
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
    container: &ContainerDefinition,
) -> Result<Vec<MountSpec>, String> {
    let container_name = container.name.as_deref().unwrap_or_default();
    let mut mounts = Vec::new();
    for mount_point in container.mount_points.iter().flatten() {
        let source = mount_point.source_volume.as_deref().unwrap_or_default();
        let target = mount_point.container_path.clone().unwrap_or_default();
        let read_only = mount_point.read_only.unwrap_or(false);
        let Some(volume) = definition
            .volumes
            .iter()
            .find(|v| v.name.as_deref() == Some(source))
        else {
            return Err(format!(
                "container {container_name}: mount point names volume {source:?}, which the task definition does not declare"
            ));
        };
        if let Some(path) = volume.host.as_ref().and_then(|h| h.source_path.clone()) {
            mounts.push(MountSpec::Bind {
                source: path,
                target,
                read_only,
            });
            continue;
        }
        let shared = volume
            .docker_volume_configuration
            .as_ref()
            .and_then(|c| c.scope.as_deref())
            == Some("shared");
        let name = if shared {
            source.to_string()
        } else {
            labels::task_volume_name(&task.id, source)
        };
        mounts.push(MountSpec::Volume {
            name,
            target,
            read_only,
        });
    }
    Ok(mounts)
}

fn container_override<'a>(task: &'a Task, name: &str) -> Option<&'a ContainerOverride> {
    task.overrides
        .container_overrides
        .iter()
        .find(|o| o.name.as_deref() == Some(name))
}

/// Task-level memory in MiB, read by the parser validation admitted it with ("512",
/// "1 GB", "0.5 GB").
fn task_memory_mib(task: &Task, definition: &RegisterTaskDefinitionRequest) -> Option<i64> {
    let raw = task
        .overrides
        .memory
        .as_deref()
        .or(task.memory.as_deref())
        .or(definition.memory.as_deref())?;
    berth_core::resources::parse_memory_mib(raw)
        .and_then(|mib| i64::try_from(mib).ok())
        .filter(|mib| *mib > 0)
}

/// Everything to create container `index` of the task definition, joined to the
/// sandbox `sandbox_id`.
pub(crate) fn container_spec(
    node_id: &str,
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
    index: usize,
    sandbox_id: &str,
) -> Result<ContainerSpec, String> {
    let container = definition
        .container_definitions
        .get(index)
        .ok_or_else(|| format!("no container definition at index {index}"))?;
    let name = container.name.clone().unwrap_or_default();
    let overrides = container_override(task, &name);
    let mut spec = ContainerSpec::new(
        labels::container_name(task, &name),
        container.image.clone().unwrap_or_default(),
    );

    // dockerLabels first, berth's own win.
    spec.labels = container.docker_labels.clone().unwrap_or_default();
    spec.labels
        .extend(labels::container_labels(node_id, task, &name));

    let mut env: Vec<(String, String)> = Vec::new();
    let overridden = overrides.and_then(|o| o.environment.as_ref());
    for pair in container
        .environment
        .iter()
        .flatten()
        .chain(overridden.into_iter().flatten())
    {
        let Some(key) = pair.name.clone() else {
            continue;
        };
        let value = pair.value.clone().unwrap_or_default();
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => env.push((key, value)),
        }
    }
    spec.env = env;
    spec.command = overrides
        .and_then(|o| o.command.clone())
        .or_else(|| container.command.clone());
    spec.entrypoint = container.entry_point.clone();
    spec.working_dir = container.working_directory.clone();
    spec.user = container.user.clone();
    spec.network = NetworkSpec::Container(sandbox_id.to_string());

    let cpu = overrides
        .and_then(|o| o.cpu)
        .or(container.cpu)
        .filter(|c| *c > 0);
    spec.cpu_shares = cpu.map(|c| c.max(2));
    let memory = overrides
        .and_then(|o| o.memory)
        .or(container.memory)
        .filter(|m| *m > 0);
    let reservation = overrides
        .and_then(|o| o.memory_reservation)
        .or(container.memory_reservation)
        .filter(|m| *m > 0);
    spec.memory_bytes = memory
        .or_else(|| task_memory_mib(task, definition))
        .map(|m| m * MIB);
    spec.memory_reservation_bytes = reservation.map(|m| m * MIB);

    spec.health_check = container
        .health_check
        .as_ref()
        .map(|check| HealthCheckSpec {
            test: check.command.clone(),
            interval: seconds(check.interval, 30),
            timeout: seconds(check.timeout, 5),
            retries: check
                .retries
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(3),
            start_period: seconds(check.start_period, 0),
        });
    spec.readonly_rootfs = container.readonly_root_filesystem.unwrap_or(false);
    spec.privileged = container.privileged.unwrap_or(false);
    spec.ulimits = container
        .ulimits
        .iter()
        .flatten()
        .map(|u| (u.name.clone(), u.soft_limit, u.hard_limit))
        .collect();
    // Kept on the spec for the record; the runtime applies them on the sandbox only.
    spec.extra_hosts = container
        .extra_hosts
        .iter()
        .flatten()
        .map(|h| (h.hostname.clone(), h.ip_address.clone()))
        .collect();
    spec.dns_servers = container.dns_servers.clone().unwrap_or_default();
    spec.dns_search = container.dns_search_domains.clone().unwrap_or_default();
    spec.stop_timeout_secs = Some(stop_timeout(container).as_secs() as i64);
    spec.log_driver = container
        .log_configuration
        .as_ref()
        .filter(|log| {
            !log.log_driver.is_empty() && !AWS_LOG_DRIVERS.contains(&log.log_driver.as_str())
        })
        .map(|log| {
            (
                log.log_driver.clone(),
                log.options.clone().unwrap_or_default(),
            )
        });
    apply_linux_settings(&mut spec, definition, container, sandbox_id);

    let mut mounts = own_mounts(task, definition, container)?;
    for from in container.volumes_from.iter().flatten() {
        let source_name = from.source_container.as_deref().unwrap_or_default();
        let Some(source) = definition
            .container_definitions
            .iter()
            .find(|c| c.name.as_deref() == Some(source_name))
        else {
            return Err(format!(
                "container {name}: volumesFrom names unknown container {source_name:?}"
            ));
        };
        for mount in own_mounts(task, definition, source)? {
            let forced = from.read_only.unwrap_or(false);
            mounts.push(match mount {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => MountSpec::Bind {
                    source,
                    target,
                    read_only: read_only || forced,
                },
                MountSpec::Volume {
                    name,
                    target,
                    read_only,
                } => MountSpec::Volume {
                    name,
                    target,
                    read_only: read_only || forced,
                },
            });
        }
    }
    spec.mounts = mounts;
    Ok(spec)
}

/// linuxParameters, dockerSecurityOptions, pidMode and ipcMode, as validation admitted
/// them; an entry the engine could not take (only in a record older than the rule)
/// is left out rather than failing the task.
fn apply_linux_settings(
    spec: &mut ContainerSpec,
    definition: &RegisterTaskDefinitionRequest,
    container: &ContainerDefinition,
    sandbox_id: &str,
) {
    if let Some(parameters) = &container.linux_parameters {
        spec.init = parameters.init_process_enabled.unwrap_or(false);
        let capabilities = parameters.capabilities.as_ref();
        let names = |list: Option<&Vec<String>>| -> Vec<String> {
            list.into_iter()
                .flatten()
                .map(|name| berth_core::capability_name(name))
                .collect()
        };
        spec.cap_add = names(capabilities.and_then(|c| c.add.as_ref()));
        spec.cap_drop = names(capabilities.and_then(|c| c.drop.as_ref()));
        spec.devices = parameters
            .devices
            .iter()
            .flatten()
            .map(|device| DeviceSpec {
                host_path: device.host_path.clone(),
                container_path: device
                    .container_path
                    .clone()
                    .unwrap_or_else(|| device.host_path.clone()),
                permissions: device_permissions(device.permissions.as_deref()),
            })
            .collect();
        // Saturating: a record older than validation's bounds must not overflow.
        spec.shm_size_bytes = parameters
            .shared_memory_size
            .map(|mib| mib.saturating_mul(MIB));
        spec.tmpfs = parameters
            .tmpfs
            .iter()
            .flatten()
            .map(|tmpfs| {
                let mut options = vec![format!("size={}m", tmpfs.size)];
                options.extend(tmpfs.mount_options.iter().flatten().cloned());
                (tmpfs.container_path.clone(), options.join(","))
            })
            .collect();
        // Docker's MemorySwap is memory plus swap.
        spec.memory_swap_bytes = parameters
            .max_swap
            .zip(spec.memory_bytes)
            .map(|(swap, memory)| memory.saturating_add(swap.saturating_mul(MIB)));
        spec.memory_swappiness = parameters.swappiness;
    }
    spec.security_options = container
        .docker_security_options
        .iter()
        .flatten()
        .filter_map(|option| berth_core::engine_security_option(option).ok())
        .collect();
    let shared = NamespaceMode::Container(sandbox_id.to_string());
    spec.pid_mode = match definition.pid_mode.as_deref() {
        Some("host") => Some(NamespaceMode::Host),
        Some("task") => Some(shared.clone()),
        _ => None,
    };
    spec.ipc_mode = match definition.ipc_mode.as_deref() {
        Some("host") => Some(NamespaceMode::Host),
        Some("task") => Some(shared),
        Some("none") => Some(NamespaceMode::None),
        _ => None,
    };
    spec.open_stdin = container.interactive.unwrap_or(false);
    spec.tty = container.pseudo_terminal.unwrap_or(false);
}

/// ECS's `read`/`write`/`mknod` as cgroup permissions; none given means all three.
fn device_permissions(permissions: Option<&[String]>) -> String {
    let given = permissions.unwrap_or_default();
    if given.is_empty() {
        return "rwm".to_string();
    }
    [("read", 'r'), ("write", 'w'), ("mknod", 'm')]
        .iter()
        .filter(|(name, _)| given.iter().any(|p| p == name))
        .map(|(_, letter)| *letter)
        .collect()
}

fn seconds(value: Option<i64>, default: u64) -> Duration {
    Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

pub(crate) fn stop_timeout(container: &ContainerDefinition) -> Duration {
    container
        .stop_timeout
        .and_then(|v| u64::try_from(v).ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}

pub(crate) fn start_timeout(container: &ContainerDefinition) -> Duration {
    container
        .start_timeout
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_START_TIMEOUT)
}

/// A container's networkBindings from the ports its sandbox published.
pub(crate) fn network_bindings(
    mode: NetworkMode,
    container: &ContainerDefinition,
    published: &[PublishedPort],
) -> Vec<NetworkBinding> {
    let mut bindings = Vec::new();
    for mapping in container.port_mappings.iter().flatten() {
        let Some(container_port) = port(mapping.container_port) else {
            continue;
        };
        let protocol = protocol(mapping.protocol.as_deref());
        let host_port = match mode {
            NetworkMode::Host => Some(
                port(mapping.host_port)
                    .filter(|p| *p != 0)
                    .unwrap_or(container_port),
            ),
            NetworkMode::Bridge => {
                let matching: Vec<&PublishedPort> = published
                    .iter()
                    .filter(|p| p.container_port == container_port && p.protocol == protocol)
                    .collect();
                // Docker publishes on 0.0.0.0 and :: ; prefer the IPv4 one.
                matching
                    .iter()
                    .find(|p| p.host_ip == "0.0.0.0")
                    .or(matching.first())
                    .map(|p| p.host_port)
            }
            NetworkMode::Awsvpc | NetworkMode::None => None,
        };
        let Some(host_port) = host_port else { continue };
        bindings.push(NetworkBinding {
            bind_ip: Some("0.0.0.0".to_string()),
            container_port: Some(i64::from(container_port)),
            host_port: Some(i64::from(host_port)),
            protocol: Some(protocol.as_str().to_string()),
        });
    }
    bindings
}

/// Why the task cannot start because it needs a secret or environment file berth has
/// no store for yet; `None` when it needs none.
pub(crate) fn unresolvable_secret(
    task: &Task,
    definition: &RegisterTaskDefinitionRequest,
) -> Option<String> {
    for container in &definition.container_definitions {
        let name = container.name.as_deref().unwrap_or_default();
        if let Some(secret) = container.secrets.iter().flatten().next() {
            return Some(format!(
                "ResourceInitializationError: unable to retrieve secret {} (valueFrom {}) for container {name}: berth has no secrets store yet",
                secret.name, secret.value_from
            ));
        }
        if let Some(file) = container.environment_files.iter().flatten().next() {
            return Some(format!(
                "ResourceInitializationError: unable to fetch environment file {} (type {}) for container {name}: berth has no environment file store yet",
                file.value, file.file_type
            ));
        }
        let secret_options = container
            .log_configuration
            .as_ref()
            .and_then(|l| l.secret_options.as_ref());
        if let Some(secret) = secret_options.into_iter().flatten().next() {
            return Some(format!(
                "ResourceInitializationError: unable to retrieve secret {} (valueFrom {}) for the log configuration of container {name}: berth has no secrets store yet",
                secret.name, secret.value_from
            ));
        }
        let override_files = container_override(task, name)
            .and_then(|o| o.environment_files.as_ref())
            .and_then(|files| files.as_array())
            .and_then(|files| files.first());
        if let Some(file) = override_files {
            let value = file
                .get("value")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            return Some(format!(
                "ResourceInitializationError: unable to fetch environment file {value} for container {name}: berth has no environment file store yet"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
