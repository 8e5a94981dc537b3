//! Pure translations between berth's runtime types and bollard's Docker API models, kept
//! apart from the IO in `docker.rs` so they are unit-tested without an engine.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerStatsResponse, ContainerSummary, ContainerSummaryStateEnum, DeviceMapping,
    EndpointSettings, EventMessage, HealthConfig, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, Mount, MountType, PortBinding, PortMap, PortSummaryTypeEnum,
    ResourcesUlimits,
};

use crate::runtime::{
    ContainerSpec, ContainerState, ContainerStats, ContainerStatus, Health, LogEntry, MountSpec,
    NamespaceMode, NetworkSpec, Protocol, PublishedPort, RuntimeEvent, RuntimeEventKind, Stream,
};

/// Docker's smallest accepted CPU shares value; ECS allows fewer cpu units.
const MIN_CPU_SHARES: i64 = 2;

/// The body of `POST /containers/create` for `spec`.
pub fn container_create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let joins_another_namespace = matches!(spec.network, NetworkSpec::Container(_));
    let (network_mode, ports) = match &spec.network {
        NetworkSpec::Bridge { network, ports } => (
            Some(network.clone().unwrap_or_else(|| "bridge".to_string())),
            ports.as_slice(),
        ),
        NetworkSpec::Host => (Some("host".to_string()), &[][..]),
        NetworkSpec::None => (Some("none".to_string()), &[][..]),
        NetworkSpec::Container(id) => (Some(format!("container:{id}")), &[][..]),
    };

    let mut port_bindings: PortMap = HashMap::new();
    for port in ports {
        let key = format!("{}/{}", port.container_port, port.protocol.as_str());
        let host_port = if port.host_port == 0 {
            // empty = the engine picks a free port
            String::new()
        } else {
            port.host_port.to_string()
        };
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some("0.0.0.0".to_string()),
                host_port: Some(host_port),
            });
    }
    let mut exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
    exposed_ports.sort();

    let mounts: Vec<Mount> = spec
        .mounts
        .iter()
        .map(|mount| match mount {
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => Mount {
                typ: Some(MountType::BIND),
                source: Some(source.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
            MountSpec::Volume {
                name,
                target,
                read_only,
            } => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
        })
        .collect();

    let healthcheck = spec.health_check.as_ref().map(|health| HealthConfig {
        test: Some(health.test.clone()),
        interval: Some(nanos(health.interval)),
        timeout: Some(nanos(health.timeout)),
        retries: Some(i64::from(health.retries)),
        start_period: Some(nanos(health.start_period)),
        // StartInterval needs API 1.44; leaving it out keeps old engines happy.
        start_interval: None,
    });

    let host_config = HostConfig {
        network_mode,
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        memory: spec.memory_bytes.filter(|bytes| *bytes > 0),
        memory_reservation: spec.memory_reservation_bytes.filter(|bytes| *bytes > 0),
        cpu_shares: spec
            .cpu_shares
            .filter(|shares| *shares > 0)
            .map(|shares| shares.max(MIN_CPU_SHARES)),
        mounts: (!mounts.is_empty()).then_some(mounts),
        log_config: spec
            .log_driver
            .as_ref()
            .map(|(driver, options)| HostConfigLogConfig {
                typ: Some(driver.clone()),
                config: Some(to_hash_map(options)),
            }),
        readonly_rootfs: Some(spec.readonly_rootfs),
        privileged: Some(spec.privileged),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|(name, soft, hard)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect()
        }),
        // /etc/hosts, DNS and the hostname belong to the namespace owner: Docker rejects
        // them on a container that joins another's network namespace.
        extra_hosts: (!joins_another_namespace && !spec.extra_hosts.is_empty()).then(|| {
            spec.extra_hosts
                .iter()
                .map(|(host, ip)| format!("{host}:{ip}"))
                .collect()
        }),
        dns: (!joins_another_namespace && !spec.dns_servers.is_empty())
            .then(|| spec.dns_servers.clone()),
        dns_search: (!joins_another_namespace && !spec.dns_search.is_empty())
            .then(|| spec.dns_search.clone()),
        init: spec.init.then_some(true),
        cap_add: non_empty(&spec.cap_add),
        cap_drop: non_empty(&spec.cap_drop),
        devices: (!spec.devices.is_empty()).then(|| {
            spec.devices
                .iter()
                .map(|device| DeviceMapping {
                    path_on_host: Some(device.host_path.clone()),
                    path_in_container: Some(device.container_path.clone()),
                    cgroup_permissions: Some(device.permissions.clone()),
                })
                .collect()
        }),
        shm_size: spec.shm_size_bytes,
        tmpfs: (!spec.tmpfs.is_empty()).then(|| spec.tmpfs.iter().cloned().collect()),
        memory_swap: spec.memory_swap_bytes,
        memory_swappiness: spec.memory_swappiness,
        security_opt: non_empty(&spec.security_options),
        pid_mode: spec.pid_mode.as_ref().map(namespace_mode),
        ipc_mode: spec.ipc_mode.as_ref().map(namespace_mode),
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: spec.hostname.clone().filter(|_| !joins_another_namespace),
        user: spec.user.clone(),
        env: (!spec.env.is_empty()).then(|| {
            spec.env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect()
        }),
        cmd: spec.command.clone(),
        open_stdin: spec.open_stdin.then_some(true),
        tty: spec.tty.then_some(true),
        entrypoint: spec.entrypoint.clone(),
        working_dir: spec.working_dir.clone(),
        labels: Some(to_hash_map(&spec.labels)),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        healthcheck,
        stop_timeout: spec.stop_timeout_secs,
        host_config: Some(host_config),
        networking_config: network_aliases(spec),
        ..Default::default()
    }
}

/// Aliases on a named bridge network: the names other containers resolve through
/// the engine's DNS.
fn network_aliases(spec: &ContainerSpec) -> Option<bollard::models::NetworkingConfig> {
    let NetworkSpec::Bridge {
        network: Some(network),
        ..
    } = &spec.network
    else {
        return None;
    };
    if spec.network_aliases.is_empty() {
        return None;
    }
    let endpoint = bollard::models::EndpointSettings {
        aliases: Some(spec.network_aliases.clone()),
        ..Default::default()
    };
    Some(bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(network.clone(), endpoint)])),
    })
}

fn non_empty(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// The engine's PidMode / IpcMode text.
fn namespace_mode(mode: &NamespaceMode) -> String {
    match mode {
        NamespaceMode::Host => "host".to_string(),
        NamespaceMode::Container(id) => format!("container:{id}"),
        NamespaceMode::Shareable => "shareable".to_string(),
        NamespaceMode::None => "none".to_string(),
    }
}

fn nanos(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_btree_map(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

/// `GET /containers/{id}/json` -> status. Missing fields become empty values rather
/// than errors: an engine that omits something must not make a container invisible.
pub fn status_from_inspect(inspect: ContainerInspectResponse) -> ContainerStatus {
    let config = inspect.config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let network_settings = inspect.network_settings.unwrap_or_default();

    let mut ports = Vec::new();
    for (key, bindings) in network_settings.ports.unwrap_or_default() {
        let Some((container_port, protocol)) = parse_port_key(&key) else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            let Some(host_port) = binding
                .host_port
                .as_deref()
                .and_then(|port| port.parse::<u16>().ok())
            else {
                continue;
            };
            ports.push(PublishedPort {
                container_port,
                host_ip: binding.host_ip.unwrap_or_default(),
                host_port,
                protocol,
            });
        }
    }
    ports.sort_by(port_order);

    let container_state = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited,
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        Some(other) => ContainerState::Other(other.to_string()),
        None => ContainerState::Other(String::new()),
    };
    // Docker reports exit code 0 for a container that never ran; that is not an exit.
    let exit_code = match container_state {
        ContainerState::Exited | ContainerState::Dead => state.exit_code,
        _ => None,
    };

    ContainerStatus {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        image_id: inspect.image.unwrap_or_default(),
        labels: to_btree_map(config.labels),
        state: container_state,
        exit_code,
        error: state.error.filter(|error| !error.is_empty()),
        oom_killed: state.oom_killed.unwrap_or(false),
        health: state
            .health
            .and_then(|health| health.status)
            .and_then(health_from_status),
        started_at: state.started_at.as_deref().and_then(parse_engine_time),
        finished_at: state.finished_at.as_deref().and_then(parse_engine_time),
        ports,
        ip_address: first_ip(network_settings.networks),
        // The engine says 0 for a container that does not run.
        pid: state
            .pid
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0),
    }
}

/// `GET /containers/json` -> status. The summary lacks exit details and times; the
/// exit code and health are recovered from the human status ("Exited (3) 2 seconds
/// ago", "Up 5 seconds (healthy)") because old engines send nothing better.
pub fn status_from_summary(summary: ContainerSummary) -> ContainerStatus {
    let status_text = summary.status.unwrap_or_default();
    let state = match summary.state {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => ContainerState::Running,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => ContainerState::Dead,
        Some(other) => ContainerState::Other(other.to_string()),
        None => ContainerState::Other(String::new()),
    };
    let exit_code = if state == ContainerState::Exited {
        status_text
            .strip_prefix("Exited (")
            .and_then(|rest| rest.split(')').next())
            .and_then(|code| code.parse::<i64>().ok())
    } else {
        None
    };
    let health = if status_text.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status_text.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status_text.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    };

    let mut ports: Vec<PublishedPort> = summary
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|port| {
            Some(PublishedPort {
                container_port: port.private_port,
                host_ip: port.ip.unwrap_or_default(),
                host_port: port.public_port?,
                protocol: match port.typ {
                    Some(PortSummaryTypeEnum::UDP) => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
            })
        })
        .collect();
    ports.sort_by(port_order);

    ContainerStatus {
        id: summary.id.unwrap_or_default(),
        name: summary
            .names
            .unwrap_or_default()
            .first()
            .map(|name| name.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: summary.image.unwrap_or_default(),
        image_id: summary.image_id.unwrap_or_default(),
        labels: to_btree_map(summary.labels),
        state,
        exit_code,
        error: None,
        oom_killed: false,
        health,
        started_at: None,
        finished_at: None,
        ports,
        ip_address: first_ip(summary.network_settings.and_then(|n| n.networks)),
        pid: None,
    }
}

fn port_order(a: &PublishedPort, b: &PublishedPort) -> std::cmp::Ordering {
    (a.container_port, a.protocol.as_str(), &a.host_ip).cmp(&(
        b.container_port,
        b.protocol.as_str(),
        &b.host_ip,
    ))
}

/// The IP of the first network by name (stable order), skipping empty addresses.
fn first_ip(networks: Option<HashMap<String, EndpointSettings>>) -> Option<String> {
    let networks: BTreeMap<_, _> = networks.unwrap_or_default().into_iter().collect();
    networks
        .into_values()
        .filter_map(|endpoint| endpoint.ip_address)
        .find(|ip| !ip.is_empty())
}

/// "8080/tcp" -> (8080, Tcp)
fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

fn health_from_status(status: HealthStatusEnum) -> Option<Health> {
    match status {
        HealthStatusEnum::STARTING => Some(Health::Starting),
        HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// RFC 3339 (Docker's timestamps) -> epoch seconds. Docker's zero time
/// (`0001-01-01T00:00:00Z`, "never") and garbage are `None`.
pub fn parse_engine_time(text: &str) -> Option<f64> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    if parsed.year() <= 1 {
        return None;
    }
    Some(parsed.unix_timestamp() as f64 + f64::from(parsed.nanosecond()) / 1e9)
}

/// An engine event -> a berth event; `None` for actions berth does not follow
/// (create, attach, exec_*, kill, stop, ...).
pub fn event_from_message(message: EventMessage) -> Option<RuntimeEvent> {
    let action = message.action?;
    let actor = message.actor?;
    let container_id = actor.id?;
    let attributes = actor.attributes.unwrap_or_default();
    let kind = match action.as_str() {
        "start" => RuntimeEventKind::Start,
        "die" => RuntimeEventKind::Die {
            exit_code: attributes
                .get("exitCode")
                .and_then(|code| code.parse::<i64>().ok()),
        },
        "oom" => RuntimeEventKind::Oom,
        "destroy" => RuntimeEventKind::Destroy,
        other => match other.strip_prefix("health_status:").map(str::trim) {
            Some("healthy") => RuntimeEventKind::Health(Health::Healthy),
            Some("unhealthy") => RuntimeEventKind::Health(Health::Unhealthy),
            Some("starting") => RuntimeEventKind::Health(Health::Starting),
            _ => return None,
        },
    };
    let time = match (message.time_nano, message.time) {
        // whole seconds and the fraction apart: one division loses the last digits
        (Some(nanos), _) => (nanos / 1_000_000_000) as f64 + (nanos % 1_000_000_000) as f64 / 1e9,
        (None, Some(seconds)) => seconds as f64,
        (None, None) => 0.0,
    };
    // The engine mixes the container's labels with `image`, `name` and `exitCode` in the
    // attributes; keep only what is not one of those.
    let labels = attributes
        .into_iter()
        .filter(|(key, _)| !matches!(key.as_str(), "image" | "name" | "exitCode" | "signal"))
        .collect();
    Some(RuntimeEvent {
        container_id,
        labels,
        kind,
        time,
    })
}

/// One chunk of `GET /containers/{id}/logs?timestamps=1` -> entries, one per line.
/// Lines without a timestamp (a chunk split mid-line) take `fallback_timestamp`.
pub fn log_entries(chunk: &[u8], stream: Stream, fallback_timestamp: f64) -> Vec<LogEntry> {
    let text = String::from_utf8_lossy(chunk);
    let mut entries = Vec::new();
    let mut last_timestamp = fallback_timestamp;
    for line in text.split_terminator('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (timestamp, message) = match line.split_once(' ') {
            Some((prefix, rest)) => match parse_engine_time(prefix) {
                Some(timestamp) => (timestamp, rest),
                None => (last_timestamp, line),
            },
            None => match parse_engine_time(line) {
                // an empty line: just the timestamp
                Some(timestamp) => (timestamp, ""),
                None => (last_timestamp, line),
            },
        };
        last_timestamp = timestamp;
        entries.push(LogEntry {
            timestamp,
            stream,
            message: message.to_string(),
        });
    }
    entries
}

/// Split an image reference into what `POST /images/create` wants: `fromImage` and `tag`.
/// Without a tag the API pulls every tag, so the default `latest` is made explicit.
pub fn pull_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        // by digest: the whole reference goes in fromImage
        return (image.to_string(), String::new());
    }
    let last_slash = image.rfind('/').map_or(0, |at| at + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (image[..colon].to_string(), image[colon + 1..].to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// A container's figures from one stats sample of the engine, computed as the docker
/// CLI's `docker stats` does: CPU from the change since the sample before it
/// (`precpu_stats`) relative to the whole machine's, times its CPUs; memory without
/// the inactive page cache (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn stats_from_sample(sample: &ContainerStatsResponse) -> ContainerStats {
    let cpu_usage = |stats: Option<&bollard::models::ContainerCpuStats>| {
        let stats = stats?;
        Some((
            stats.cpu_usage.as_ref()?.total_usage?,
            stats.system_cpu_usage?,
        ))
    };
    let cpu_percent = match (
        cpu_usage(sample.cpu_stats.as_ref()),
        cpu_usage(sample.precpu_stats.as_ref()),
    ) {
        (Some((total, system)), Some((previous_total, previous_system)))
            if total > previous_total && system > previous_system =>
        {
            let cpus = sample
                .cpu_stats
                .as_ref()
                .and_then(|stats| {
                    stats
                        .online_cpus
                        .filter(|n| *n > 0)
                        .map(u64::from)
                        .or_else(|| {
                            let per_cpu = stats.cpu_usage.as_ref()?.percpu_usage.as_ref()?;
                            Some(per_cpu.len() as u64)
                        })
                })
                .unwrap_or(1);
            (total - previous_total) as f64 / (system - previous_system) as f64
                * cpus as f64
                * 100.0
        }
        _ => 0.0,
    };
    let memory = sample.memory_stats.as_ref();
    let usage = memory.and_then(|m| m.usage).unwrap_or(0);
    let cache = memory
        .and_then(|m| m.stats.as_ref())
        .and_then(|stats| {
            stats
                .get("total_inactive_file")
                .or_else(|| stats.get("inactive_file"))
                .copied()
        })
        .filter(|cache| *cache < usage)
        .unwrap_or(0);
    let (network_rx_bytes, network_tx_bytes) = sample
        .networks
        .iter()
        .flat_map(|networks| networks.values())
        .fold((0u64, 0u64), |(rx, tx), network| {
            (
                rx.saturating_add(network.rx_bytes.unwrap_or(0)),
                tx.saturating_add(network.tx_bytes.unwrap_or(0)),
            )
        });
    let (mut block_read_bytes, mut block_write_bytes) = (0u64, 0u64);
    let entries = sample
        .blkio_stats
        .as_ref()
        .and_then(|blkio| blkio.io_service_bytes_recursive.as_ref());
    for entry in entries.into_iter().flatten() {
        let value = entry.value.unwrap_or(0);
        match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => block_read_bytes = block_read_bytes.saturating_add(value),
            Some("write") => block_write_bytes = block_write_bytes.saturating_add(value),
            _ => {}
        }
    }
    ContainerStats {
        cpu_percent,
        memory_usage_bytes: usage - cache,
        memory_limit_bytes: memory.and_then(|m| m.limit).unwrap_or(0),
        network_rx_bytes,
        network_tx_bytes,
        block_read_bytes,
        block_write_bytes,
        pids: sample
            .pids_stats
            .as_ref()
            .and_then(|pids| pids.current)
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{HealthCheckSpec, PortSpec};
    use bollard::models::{
        ContainerConfig, ContainerState as DockerState, EventActor, NetworkSettings,
    };
    use std::time::Duration;

    #[test]
    fn bridge_ports_publish_on_all_interfaces_and_dynamic_ports_are_empty() {
        let mut spec = ContainerSpec::new("web", "berth/nginx:latest");
        spec.network = NetworkSpec::Bridge {
            network: None,
            ports: vec![
                PortSpec {
                    container_port: 80,
                    host_port: 0,
                    protocol: Protocol::Tcp,
                },
                PortSpec {
                    container_port: 53,
                    host_port: 5353,
                    protocol: Protocol::Udp,
                },
            ],
        };
        let body = container_create_body(&spec);
        assert_eq!(
            body.exposed_ports,
            Some(vec!["53/udp".to_string(), "80/tcp".to_string()])
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        let bindings = host.port_bindings.unwrap();
        assert_eq!(
            bindings["80/tcp"],
            Some(vec![PortBinding {
                host_ip: Some("0.0.0.0".into()),
                host_port: Some(String::new())
            }])
        );
        assert_eq!(
            bindings["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("5353")
        );
    }

    #[test]
    fn linux_settings_reach_the_host_config() {
        let mut spec = ContainerSpec::new("app", "berth/busybox:latest");
        spec.cap_add = vec!["NET_ADMIN".into()];
        spec.cap_drop = vec!["ALL".into()];
        spec.devices = vec![crate::runtime::DeviceSpec {
            host_path: "/dev/fuse".into(),
            container_path: "/dev/fuse".into(),
            permissions: "rw".into(),
        }];
        spec.shm_size_bytes = Some(128 * 1024 * 1024);
        spec.tmpfs = vec![("/scratch".into(), "size=64m,noexec".into())];
        spec.memory_bytes = Some(256 * 1024 * 1024);
        spec.memory_swap_bytes = Some(256 * 1024 * 1024);
        spec.memory_swappiness = Some(0);
        spec.security_options = vec!["no-new-privileges".into()];
        spec.pid_mode = Some(NamespaceMode::Container("sandbox1".into()));
        spec.ipc_mode = Some(NamespaceMode::Host);
        spec.open_stdin = true;
        spec.tty = true;
        let body = container_create_body(&spec);
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.tty, Some(true));
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            host.devices,
            Some(vec![DeviceMapping {
                path_on_host: Some("/dev/fuse".into()),
                path_in_container: Some("/dev/fuse".into()),
                cgroup_permissions: Some("rw".into()),
            }])
        );
        assert_eq!(host.shm_size, Some(128 * 1024 * 1024));
        assert_eq!(
            host.tmpfs,
            Some(HashMap::from([(
                "/scratch".to_string(),
                "size=64m,noexec".to_string()
            )]))
        );
        assert_eq!(host.memory_swap, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swappiness, Some(0));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_string()])
        );
        assert_eq!(host.pid_mode.as_deref(), Some("container:sandbox1"));
        assert_eq!(host.ipc_mode.as_deref(), Some("host"));

        let plain = container_create_body(&ContainerSpec::new("app", "busybox"))
            .host_config
            .unwrap();
        assert_eq!(
            (plain.cap_add, plain.cap_drop, plain.devices),
            (None, None, None)
        );
        assert_eq!(
            (plain.shm_size, plain.tmpfs, plain.security_opt),
            (None, None, None)
        );
        assert_eq!((plain.pid_mode, plain.ipc_mode), (None, None));
        assert_eq!(
            [NamespaceMode::Shareable, NamespaceMode::None].map(|m| namespace_mode(&m)),
            ["shareable".to_string(), "none".to_string()]
        );
    }

    #[test]
    fn joining_a_namespace_sets_container_mode_and_drops_what_docker_rejects() {
        let mut spec = ContainerSpec::new("app", "berth/busybox:latest");
        spec.network = NetworkSpec::Container("abc123".into());
        spec.hostname = Some("app".into());
        spec.dns_servers = vec!["1.1.1.1".into()];
        spec.extra_hosts = vec![("db".into(), "10.0.0.2".into())];
        let body = container_create_body(&spec);
        assert_eq!(body.hostname, None);
        assert_eq!(body.exposed_ports, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc123"));
        assert_eq!(host.port_bindings, None);
        assert_eq!(host.dns, None);
        assert_eq!(host.extra_hosts, None);
    }

    #[test]
    fn resources_health_mounts_and_process_settings_map_to_docker_fields() {
        let mut spec = ContainerSpec::new("app", "img");
        spec.memory_bytes = Some(64 << 20);
        spec.memory_reservation_bytes = Some(32 << 20);
        spec.cpu_shares = Some(1);
        spec.env = vec![("A".into(), "1".into()), ("B".into(), "x=y".into())];
        spec.command = Some(vec!["sleep".into(), "1".into()]);
        spec.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        spec.working_dir = Some("/tmp".into());
        spec.user = Some("nobody".into());
        spec.hostname = Some("app-host".into());
        spec.labels.insert("berth.managed".into(), "true".into());
        spec.health_check = Some(HealthCheckSpec {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            retries: 3,
            start_period: Duration::ZERO,
        });
        spec.mounts = vec![
            MountSpec::Bind {
                source: "/srv".into(),
                target: "/data".into(),
                read_only: true,
            },
            MountSpec::Volume {
                name: "cache".into(),
                target: "/cache".into(),
                read_only: false,
            },
        ];
        spec.ulimits = vec![("nofile".into(), 1024, 4096)];
        spec.log_driver = Some((
            "json-file".into(),
            BTreeMap::from([("max-size".into(), "1m".into())]),
        ));
        spec.init = true;
        spec.stop_timeout_secs = Some(5);

        let body = container_create_body(&spec);
        assert_eq!(body.env, Some(vec!["A=1".to_string(), "B=x=y".to_string()]));
        assert_eq!(body.cmd, spec.command);
        assert_eq!(body.entrypoint, spec.entrypoint);
        assert_eq!(body.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(body.user.as_deref(), Some("nobody"));
        assert_eq!(body.hostname.as_deref(), Some("app-host"));
        assert_eq!(body.stop_timeout, Some(5));
        assert_eq!(body.labels.as_ref().unwrap()["berth.managed"], "true");
        let health = body.healthcheck.unwrap();
        assert_eq!(health.interval, Some(1_000_000_000));
        assert_eq!(health.timeout, Some(500_000_000));
        assert_eq!(health.retries, Some(3));
        assert_eq!(health.start_period, Some(0));
        assert_eq!(
            health.test,
            Some(vec!["CMD-SHELL".to_string(), "true".to_string()])
        );

        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_reservation, Some(32 << 20));
        assert_eq!(
            host.cpu_shares,
            Some(MIN_CPU_SHARES),
            "raised to docker's minimum"
        );
        assert_eq!(host.init, Some(true));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[1].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[1].source.as_deref(), Some("cache"));
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(4096));
        assert_eq!(host.log_config.unwrap().typ.as_deref(), Some("json-file"));
    }

    #[test]
    fn zero_cpu_and_memory_mean_not_set() {
        let mut spec = ContainerSpec::new("app", "img");
        spec.cpu_shares = Some(0);
        spec.memory_bytes = Some(0);
        let host = container_create_body(&spec).host_config.unwrap();
        assert_eq!(host.cpu_shares, None);
        assert_eq!(host.memory, None);
        assert_eq!(host.log_config, None, "engine default log driver");
    }

    #[test]
    fn inspect_maps_state_ports_health_and_times() {
        let inspect = ContainerInspectResponse {
            id: Some("c1".into()),
            name: Some("/web-1".into()),
            image: Some("sha256:abc".into()),
            config: Some(ContainerConfig {
                image: Some("berth/nginx:latest".into()),
                labels: Some(HashMap::from([("k".to_string(), "v".to_string())])),
                ..Default::default()
            }),
            state: Some(DockerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                exit_code: Some(3),
                oom_killed: Some(false),
                error: Some(String::new()),
                started_at: Some("2024-01-02T03:04:05.5Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                health: Some(bollard::models::Health {
                    status: Some(HealthStatusEnum::UNHEALTHY),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(HashMap::from([
                    (
                        "80/tcp".to_string(),
                        Some(vec![PortBinding {
                            host_ip: Some("0.0.0.0".into()),
                            host_port: Some("49153".into()),
                        }]),
                    ),
                    ("81/tcp".to_string(), None),
                ])),
                networks: Some(HashMap::from([(
                    "bridge".to_string(),
                    EndpointSettings {
                        ip_address: Some("172.17.0.2".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = status_from_inspect(inspect);
        assert_eq!(status.name, "web-1");
        assert_eq!(status.image, "berth/nginx:latest");
        assert_eq!(status.state, ContainerState::Exited);
        assert_eq!(status.exit_code, Some(3));
        assert_eq!(status.error, None);
        assert_eq!(status.health, Some(Health::Unhealthy));
        assert_eq!(status.started_at, Some(1_704_164_645.5));
        assert_eq!(status.finished_at, None);
        assert_eq!(
            status.ports,
            vec![PublishedPort {
                container_port: 80,
                host_ip: "0.0.0.0".into(),
                host_port: 49153,
                protocol: Protocol::Tcp
            }]
        );
        assert_eq!(status.ip_address.as_deref(), Some("172.17.0.2"));
        assert_eq!(status.labels["k"], "v");
    }

    #[test]
    fn summary_recovers_exit_code_and_health_from_the_status_text() {
        let exited = ContainerSummary {
            state: Some(ContainerSummaryStateEnum::EXITED),
            status: Some("Exited (3) 2 seconds ago".into()),
            names: Some(vec!["/a".into()]),
            ..Default::default()
        };
        let status = status_from_summary(exited);
        assert_eq!(status.exit_code, Some(3));
        assert_eq!(status.name, "a");
        let running = ContainerSummary {
            state: Some(ContainerSummaryStateEnum::RUNNING),
            status: Some("Up 5 seconds (healthy)".into()),
            ..Default::default()
        };
        let status = status_from_summary(running);
        assert_eq!(status.health, Some(Health::Healthy));
        assert_eq!(status.exit_code, None);
    }

    fn event(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            time: Some(1_700_000_000),
            time_nano: Some(1_700_000_000_250_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn events_map_die_health_and_skip_the_rest() {
        let die = event_from_message(event(
            "die",
            &[
                ("exitCode", "3"),
                ("image", "x"),
                ("name", "n"),
                ("berth.test", "t"),
            ],
        ))
        .unwrap();
        assert_eq!(die.kind, RuntimeEventKind::Die { exit_code: Some(3) });
        assert_eq!(die.time, 1_700_000_000.25);
        assert_eq!(
            die.labels,
            BTreeMap::from([("berth.test".to_string(), "t".to_string())])
        );
        assert_eq!(
            event_from_message(event("health_status: healthy", &[]))
                .unwrap()
                .kind,
            RuntimeEventKind::Health(Health::Healthy)
        );
        assert_eq!(
            event_from_message(event("health_status: unhealthy", &[]))
                .unwrap()
                .kind,
            RuntimeEventKind::Health(Health::Unhealthy)
        );
        assert_eq!(
            event_from_message(event("oom", &[])).unwrap().kind,
            RuntimeEventKind::Oom
        );
        assert!(event_from_message(event("exec_start: sh -c true", &[])).is_none());
        assert!(event_from_message(event("create", &[])).is_none());
    }

    #[test]
    fn log_chunks_split_into_timestamped_lines() {
        let chunk =
            b"2024-01-02T03:04:05.000000001Z hello world\n2024-01-02T03:04:06Z \nno stamp\n";
        let entries = log_entries(chunk, Stream::Stderr, 0.0);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].message, "hello world");
        assert_eq!(entries[0].stream, Stream::Stderr);
        assert!((entries[0].timestamp - 1_704_164_645.0).abs() < 1e-6);
        assert_eq!(entries[1].message, "");
        assert_eq!(entries[2].message, "no stamp");
        assert_eq!(entries[2].timestamp, entries[1].timestamp);
    }

    #[test]
    fn pull_reference_makes_the_tag_explicit() {
        assert_eq!(
            pull_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            pull_reference("nginx:1.25"),
            ("nginx".into(), "1.25".into())
        );
        assert_eq!(
            pull_reference("localhost:5000/team/app"),
            ("localhost:5000/team/app".into(), "latest".into())
        );
        assert_eq!(
            pull_reference("localhost:5000/app:v2"),
            ("localhost:5000/app".into(), "v2".into())
        );
        assert_eq!(
            pull_reference("app@sha256:00"),
            ("app@sha256:00".into(), String::new())
        );
    }

    /// A sample as Docker 20.10 sends it on cgroup v1 (trimmed to what is read).
    fn sample_v1() -> ContainerStatsResponse {
        serde_json::from_value(serde_json::json!({
            "read": "2026-01-01T00:00:02.000000000Z",
            "preread": "2026-01-01T00:00:01.000000000Z",
            "pids_stats": {"current": 3},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Sync", "value": 12288},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288}
            ]},
            "cpu_stats": {
                "cpu_usage": {"total_usage": 3_000_000_000u64, "percpu_usage": [1, 2]},
                "system_cpu_usage": 20_000_000_000u64,
                "online_cpus": 2
            },
            "precpu_stats": {
                "cpu_usage": {"total_usage": 2_500_000_000u64},
                "system_cpu_usage": 18_000_000_000u64,
                "online_cpus": 2
            },
            "memory_stats": {
                "usage": 10_485_760,
                "limit": 16_777_216,
                "stats": {"total_inactive_file": 2_097_152, "cache": 4_194_304}
            },
            "networks": {
                "eth0": {"rx_bytes": 1000, "tx_bytes": 300},
                "eth1": {"rx_bytes": 24, "tx_bytes": 12}
            }
        }))
        .expect("a sample parses")
    }

    #[test]
    fn stats_are_computed_as_docker_stats_does() {
        let stats = stats_from_sample(&sample_v1());
        // 0.5 s of the container's CPU time while the machine's two cores spent 2 s
        // (1 s of wall time): half of one core.
        assert!((stats.cpu_percent - 50.0).abs() < 1e-9, "{stats:?}");
        assert_eq!(stats.memory_usage_bytes, 10_485_760 - 2_097_152);
        assert_eq!(stats.memory_limit_bytes, 16_777_216);
        assert_eq!(
            (stats.network_rx_bytes, stats.network_tx_bytes),
            (1024, 312)
        );
        assert_eq!(
            (stats.block_read_bytes, stats.block_write_bytes),
            (4096, 8192)
        );
        assert_eq!(stats.pids, 3);
    }

    #[test]
    fn cgroup_v2_memory_and_missing_cpu_counts() {
        let mut sample = sample_v1();
        let memory = sample.memory_stats.as_mut().unwrap();
        memory.stats = Some(HashMap::from([("inactive_file".to_string(), 1_048_576)]));
        // No online_cpus: the per-CPU list counts them, as the docker CLI does.
        sample.cpu_stats.as_mut().unwrap().online_cpus = None;
        let stats = stats_from_sample(&sample);
        assert_eq!(stats.memory_usage_bytes, 10_485_760 - 1_048_576);
        assert!((stats.cpu_percent - 50.0).abs() < 1e-9, "{stats:?}");
    }

    #[test]
    fn a_first_sample_or_a_stopped_container_shows_zero_cpu() {
        let mut sample = sample_v1();
        // Docker's one-shot sample has no previous one.
        sample.precpu_stats = None;
        assert_eq!(stats_from_sample(&sample).cpu_percent, 0.0);
        // A stopped container's sample is empty.
        let empty: ContainerStatsResponse =
            serde_json::from_value(serde_json::json!({})).expect("an empty sample parses");
        let stats = stats_from_sample(&empty);
        assert_eq!(stats.cpu_percent, 0.0);
        assert_eq!(stats.memory_usage_bytes, 0);
        assert_eq!(stats.network_rx_bytes, 0);
    }
}
