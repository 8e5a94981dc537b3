//! From a task's typed spec (its definition with its overrides applied, as the control
//! plane sends it) to what the runtime creates: the sandbox, each container's spec, the
//! task's volumes and the reported network bindings. Pure functions: no IO, so every
//! mapping rule is tested here. Nothing here parses a request string: the spec is
//! already typed, its defaults filled in (`berth_core::spec`).

use std::time::Duration;

use berth_api::NetworkBinding;
use berth_core::spec::{
    self, DevicePermission, IpcMode, MountPoint, NetworkMode, PidMode, TaskSpec, VolumeSource,
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

const MIB: i64 = 1024 * 1024;

/// MiB as bytes; the spec's figures are bounded far below where this saturates.
fn bytes(mib: u64) -> i64 {
    engine_int(mib).saturating_mul(MIB)
}

/// A count (CPU units, seconds) as the engine's integer; bounded far below saturation.
fn engine_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn protocol(protocol: spec::Protocol) -> Protocol {
    match protocol {
        spec::Protocol::Tcp => Protocol::Tcp,
        spec::Protocol::Udp => Protocol::Udp,
    }
}

/// The ports the sandbox publishes in bridge mode: every container's portMappings.
fn published_ports(spec: &TaskSpec) -> Vec<PortSpec> {
    spec.container_definitions
        .iter()
        .flat_map(|container| &container.port_mappings)
        .map(|mapping| PortSpec {
            container_port: mapping.container_port,
            host_port: mapping.host_port.unwrap_or(0),
            protocol: protocol(mapping.protocol),
        })
        .collect()
}

/// The container that holds the task's network namespace. /etc/hosts, DNS and the
/// hostname belong to the namespace owner (Docker refuses them on joining containers),
/// so the containers' extraHosts, dnsServers, dnsSearchDomains, hostname and links
/// go here.
pub(crate) fn sandbox_spec(
    node_id: &str,
    task: &Task,
    spec: &TaskSpec,
    image: &str,
) -> ContainerSpec {
    let mut sandbox = ContainerSpec::new(labels::sandbox_name(task), image);
    sandbox.labels = labels::container_labels(node_id, task, labels::SANDBOX_CONTAINER);
    sandbox.network = match spec.network_mode {
        NetworkMode::Bridge => NetworkSpec::Bridge {
            network: Some(labels::cluster_network(&task.cluster, node_id)),
            ports: published_ports(spec),
        },
        NetworkMode::Awsvpc => NetworkSpec::Bridge {
            network: Some(labels::cluster_network(&task.cluster, node_id)),
            ports: Vec::new(),
        },
        NetworkMode::Host => NetworkSpec::Host,
        NetworkMode::None => NetworkSpec::None,
    };
    for container in &spec.container_definitions {
        for host in &container.extra_hosts {
            let entry = (host.hostname.clone(), host.ip_address.clone());
            if !sandbox.extra_hosts.contains(&entry) {
                sandbox.extra_hosts.push(entry);
            }
        }
        for server in &container.dns_servers {
            if !sandbox.dns_servers.contains(server) {
                sandbox.dns_servers.push(server.clone());
            }
        }
        for domain in &container.dns_search_domains {
            if !sandbox.dns_search.contains(domain) {
                sandbox.dns_search.push(domain.clone());
            }
        }
        if sandbox.hostname.is_none() {
            sandbox.hostname = container.hostname.clone();
        }
        // The linked container shares this namespace: its name (or the link's alias)
        // is this namespace's loopback.
        for link in &container.links {
            for name in std::iter::once(&link.container_name).chain(&link.alias) {
                let entry = (name.clone(), "127.0.0.1".to_string());
                if !sandbox.extra_hosts.contains(&entry) {
                    sandbox.extra_hosts.push(entry);
                }
            }
        }
    }
    // ipcMode task: the sandbox's IPC namespace is the one its containers share (its
    // PID namespace is joined the same way, which needs nothing set here).
    if spec.ipc_mode == Some(IpcMode::Task) {
        sandbox.ipc_mode = Some(NamespaceMode::Shareable);
    }
    sandbox.stop_timeout_secs = Some(10);
    sandbox
}

/// The names the task's namespace holder answers to on the cluster network: its
/// service's name, only where no endpoint serves that name on this node. An endpoint
/// (`service_endpoints.rs`) serves every service that maps a TCP port when the agent
/// may enter network namespaces; otherwise the name falls back to the tasks' alias,
/// which resolves on their own node only.
pub(crate) fn service_aliases(task: &Task, spec: &TaskSpec, endpoints_serve: bool) -> Vec<String> {
    let on_cluster_network = matches!(spec.network_mode, NetworkMode::Bridge | NetworkMode::Awsvpc);
    let served_by_endpoint =
        endpoints_serve && !berth_core::service_discovery::discovery_ports(spec).is_empty();
    if !on_cluster_network || served_by_endpoint {
        return Vec::new();
    }
    task.service.iter().cloned().collect()
}

/// A task of one container needs no sandbox: there is nothing to share its network
/// namespace with, so the container holds the namespace itself. That is one engine
/// container less per task, on every start and every replacement.
pub(crate) fn holds_own_namespace(spec: &TaskSpec) -> bool {
    spec.container_definitions.len() == 1
}

/// The one container of a single-container task, with the network settings a sandbox
/// would have had: published ports, hostname, DNS and extra hosts.
pub(crate) fn standalone_container_spec(
    node_id: &str,
    task: &Task,
    spec: &TaskSpec,
    sandbox_image: &str,
) -> Result<ContainerSpec, String> {
    let namespace = sandbox_spec(node_id, task, spec, sandbox_image);
    let mut container = container_spec(node_id, task, spec, 0, "")?;
    container.network = namespace.network;
    container.hostname = namespace.hostname;
    container.dns_servers = namespace.dns_servers;
    container.dns_search = namespace.dns_search;
    container.extra_hosts = namespace.extra_hosts;
    // A task of one container shares nothing: `task` is its own namespace.
    container.pid_mode = container
        .pid_mode
        .filter(|mode| *mode == NamespaceMode::Host);
    container.ipc_mode = container
        .ipc_mode
        .filter(|mode| !matches!(mode, NamespaceMode::Container(_)));
    Ok(container)
}

/// The name of the engine volume behind a task volume: a shared one is the volume's
/// own name, a task-scoped one is the task's.
fn engine_volume_name(task_id: &str, name: &str, source: &VolumeSource) -> String {
    if source.is_task_scoped() {
        labels::task_volume_name(task_id, name)
    } else {
        name.to_string()
    }
}

/// The task's engine volumes to create before its containers: (spec, task-scoped).
/// Host bind mounts need nothing created.
pub(crate) fn task_volumes(node_id: &str, task: &Task, spec: &TaskSpec) -> Vec<(VolumeSpec, bool)> {
    let mut volumes = Vec::new();
    for volume in &spec.volumes {
        let VolumeSource::Docker(config) = &volume.source else {
            continue;
        };
        let scoped = volume.is_task_scoped();
        let mut volume_labels = config.labels.clone();
        let mut ours = labels::task_labels(node_id, task);
        if !scoped {
            // A shared volume outlives the task: it is not the task's to remove.
            ours.remove(labels::TASK);
        }
        ours.insert(labels::VOLUME.to_string(), volume.name.clone());
        volume_labels.extend(ours);
        volumes.push((
            VolumeSpec {
                name: engine_volume_name(&task.id, &volume.name, &volume.source),
                driver: config.driver.clone(),
                driver_opts: config.driver_opts.clone(),
                labels: volume_labels,
            },
            scoped,
        ));
    }
    volumes
}

/// The names of the task-scoped volumes of a task (removed at cleanup).
pub(crate) fn task_scoped_volume_names(task_id: &str, spec: &TaskSpec) -> Vec<String> {
    spec.volumes
        .iter()
        .filter(|volume| volume.is_task_scoped())
        .map(|volume| labels::task_volume_name(task_id, &volume.name))
        .collect()
}

fn mount(task_id: &str, mount_point: &MountPoint) -> MountSpec {
    let target = mount_point.container_path.clone();
    let read_only = mount_point.read_only;
    match &mount_point.source {
        VolumeSource::Host { source_path } => MountSpec::Bind {
            source: source_path.clone(),
            target,
            read_only,
        },
        source => MountSpec::Volume {
            name: engine_volume_name(task_id, &mount_point.source_volume, source),
            target,
            read_only,
        },
    }
}

/// Everything to create container `index` of the task, joined to the sandbox
/// `sandbox_id`.
pub(crate) fn container_spec(
    node_id: &str,
    task: &Task,
    spec: &TaskSpec,
    index: usize,
    sandbox_id: &str,
) -> Result<ContainerSpec, String> {
    let definition = spec
        .container_definitions
        .get(index)
        .ok_or_else(|| format!("no container definition at index {index}"))?;
    let name = &definition.name;
    let mut container =
        ContainerSpec::new(labels::container_name(task, name), definition.image.clone());

    // dockerLabels first, berth's own win.
    container.labels = definition.docker_labels.clone();
    container
        .labels
        .extend(labels::container_labels(node_id, task, name));

    container.env = definition
        .environment
        .iter()
        .map(|variable| (variable.name.clone(), variable.value.clone()))
        .collect();
    container.command = definition.command.clone();
    container.entrypoint = definition.entry_point.clone();
    container.working_dir = definition.working_directory.clone();
    container.user = definition.user.clone();
    container.network = NetworkSpec::Container(sandbox_id.to_string());

    // Docker's smallest CPU share is 2.
    container.cpu_shares = definition.cpu.map(|cpu| engine_int(cpu).max(2));
    container.memory_bytes = definition.memory.or(spec.memory).map(bytes);
    container.memory_reservation_bytes = definition.memory_reservation.map(bytes);

    container.health_check = definition
        .health_check
        .as_ref()
        .map(|check| HealthCheckSpec {
            test: check.command.clone(),
            interval: Duration::from_secs(check.interval),
            timeout: Duration::from_secs(check.timeout),
            retries: check.retries,
            start_period: Duration::from_secs(check.start_period),
        });
    container.readonly_rootfs = definition.readonly_root_filesystem;
    container.privileged = definition.privileged;
    container.ulimits = definition
        .ulimits
        .iter()
        .map(|u| (u.name.clone(), u.soft_limit, u.hard_limit))
        .collect();
    // Kept on the spec for the record; the runtime applies them on the sandbox only.
    container.extra_hosts = definition
        .extra_hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.ip_address.clone()))
        .collect();
    container.dns_servers = definition.dns_servers.clone();
    container.dns_search = definition.dns_search_domains.clone();
    container.stop_timeout_secs = Some(engine_int(definition.stop_timeout));
    container.log_driver = definition
        .log_configuration
        .as_ref()
        .filter(|log| !AWS_LOG_DRIVERS.contains(&log.log_driver.as_str()))
        .map(|log| (log.log_driver.clone(), log.options.clone()));
    apply_linux_settings(&mut container, spec, definition, sandbox_id);
    container.mounts = definition
        .mount_points
        .iter()
        .map(|mount_point| mount(&task.id, mount_point))
        .collect();
    Ok(container)
}

/// linuxParameters, dockerSecurityOptions, pidMode and ipcMode.
fn apply_linux_settings(
    container: &mut ContainerSpec,
    spec: &TaskSpec,
    definition: &spec::ContainerDefinition,
    sandbox_id: &str,
) {
    if let Some(parameters) = &definition.linux_parameters {
        container.init = parameters.init_process_enabled;
        container.cap_add = parameters.capabilities.add.clone();
        container.cap_drop = parameters.capabilities.drop.clone();
        container.devices = parameters
            .devices
            .iter()
            .map(|device| DeviceSpec {
                host_path: device.host_path.clone(),
                container_path: device.container_path.clone(),
                permissions: device_permissions(&device.permissions),
            })
            .collect();
        container.shm_size_bytes = parameters.shared_memory_size.map(bytes);
        container.tmpfs = parameters
            .tmpfs
            .iter()
            .map(|tmpfs| {
                let mut options = vec![format!("size={}m", tmpfs.size)];
                options.extend(tmpfs.mount_options.iter().cloned());
                (tmpfs.container_path.clone(), options.join(","))
            })
            .collect();
        // Docker's MemorySwap is memory plus swap.
        container.memory_swap_bytes = parameters
            .max_swap
            .zip(container.memory_bytes)
            .map(|(swap, memory)| memory.saturating_add(bytes(swap)));
        container.memory_swappiness = parameters.swappiness.map(i64::from);
    }
    container.security_options = definition
        .docker_security_options
        .iter()
        .map(|option| option.engine())
        .collect();
    let shared = NamespaceMode::Container(sandbox_id.to_string());
    container.pid_mode = spec.pid_mode.map(|mode| match mode {
        PidMode::Host => NamespaceMode::Host,
        PidMode::Task => shared.clone(),
    });
    container.ipc_mode = spec.ipc_mode.map(|mode| match mode {
        IpcMode::Host => NamespaceMode::Host,
        IpcMode::Task => shared.clone(),
        IpcMode::None => NamespaceMode::None,
    });
    container.open_stdin = definition.interactive;
    container.tty = definition.pseudo_terminal;
}

/// ECS's `read`/`write`/`mknod` as cgroup permissions (`rwm`), in that order.
fn device_permissions(permissions: &[DevicePermission]) -> String {
    [
        (DevicePermission::Read, 'r'),
        (DevicePermission::Write, 'w'),
        (DevicePermission::Mknod, 'm'),
    ]
    .iter()
    .filter(|(permission, _)| permissions.contains(permission))
    .map(|(_, letter)| *letter)
    .collect()
}

/// A container's networkBindings from the ports its namespace holder published.
pub(crate) fn network_bindings(
    mode: NetworkMode,
    container: &spec::ContainerDefinition,
    published: &[PublishedPort],
) -> Vec<NetworkBinding> {
    let mut bindings = Vec::new();
    for mapping in &container.port_mappings {
        let container_port = mapping.container_port;
        let protocol = protocol(mapping.protocol);
        let host_port = match mode {
            NetworkMode::Host => Some(mapping.host_port.unwrap_or(container_port)),
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
            protocol: Some(mapping.protocol.as_ecs().to_string()),
        });
    }
    bindings
}

/// Why the task cannot start because it needs a secret or environment file berth has
/// no store for yet; `None` when it needs none.
pub(crate) fn unresolvable_secret(spec: &TaskSpec) -> Option<String> {
    for container in &spec.container_definitions {
        let name = &container.name;
        if let Some(secret) = container.secrets.first() {
            return Some(format!(
                "ResourceInitializationError: unable to retrieve secret {} (valueFrom {}) for container {name}: berth has no secrets store yet",
                secret.name, secret.value_from
            ));
        }
        if let Some(file) = container.environment_files.first() {
            return Some(format!(
                "ResourceInitializationError: unable to fetch environment file {} (type {}) for container {name}: berth has no environment file store yet",
                file.value, file.file_type
            ));
        }
        let secret_options = container
            .log_configuration
            .iter()
            .flat_map(|log| &log.secret_options);
        if let Some(secret) = secret_options.into_iter().next() {
            return Some(format!(
                "ResourceInitializationError: unable to retrieve secret {} (valueFrom {}) for the log configuration of container {name}: berth has no secrets store yet",
                secret.name, secret.value_from
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
