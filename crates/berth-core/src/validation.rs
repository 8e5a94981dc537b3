//! Validation of what users register: the rules RegisterTaskDefinition applies before
//! anything is stored. ECS's own wording where ECS has one; otherwise a message naming
//! the container and field at fault. The first broken rule wins.
//!
//! berth adds one rule ECS does not have in bridge mode: all containers of a task share
//! one network namespace, so two of them cannot listen on the same container port.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use berth_api::{
    ContainerDefinition, HealthCheck, PortMapping, RegisterTaskDefinitionRequest, Volume,
};

use crate::resources::{parse_cpu_units, parse_memory_mib, MAX_CPU_UNITS, MAX_MEMORY_MIB};

mod linux;
pub use linux::{capability_name, engine_security_option, SecurityOption};

/// A rule a request broke; `message` is ECS's wording where ECS has one and names the
/// container and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub message: String,
}

impl ValidationError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

/// ECS's quota of containers per task definition.
pub const MAX_CONTAINERS_PER_TASK_DEFINITION: usize = 10;
/// Docker (20.10+) refuses a container memory limit below this.
const MIN_CONTAINER_MEMORY_MIB: i64 = 6;
const DEPENDENCY_CONDITIONS: [&str; 4] = ["START", "COMPLETE", "SUCCESS", "HEALTHY"];
const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

impl NetworkMode {
    fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::None => "none",
        }
    }
}

/// Checks a RegisterTaskDefinition request; the error is the first rule it breaks,
/// worded for a `ClientException`.
pub fn validate_task_definition(request: &RegisterTaskDefinitionRequest) -> Result {
    validate_family(&request.family)?;
    let network_mode = validate_network_mode(request.network_mode.as_deref())?;
    let containers = &request.container_definitions;
    validate_container_list(containers)?;
    let container_names = validate_container_names(containers)?;
    validate_essential(containers)?;
    let volume_names = validate_volumes(&request.volumes)?;
    for container in containers {
        let name = container_name(container);
        validate_container_resources(name, container)?;
        validate_health_check(name, container.health_check.as_ref())?;
        validate_timeouts(name, container)?;
        validate_ulimits(name, container)?;
        validate_log_configuration(name, container)?;
        validate_environment_and_secrets(name, container)?;
        validate_mount_points(name, container, &volume_names)?;
        validate_volumes_from(name, container, &container_names)?;
        validate_links(name, container, &container_names, network_mode)?;
        validate_port_mappings(name, container, network_mode)?;
    }
    validate_task_resources(request)?;
    validate_dependencies(containers)?;
    validate_port_conflicts(containers)?;
    linux::validate_linux(request)?;
    Ok(())
}

/// ECS's rule for family, container and volume names.
fn is_valid_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user's value for an error message, cut short so a hostile one cannot bloat it.
fn shown(value: &str) -> String {
    const LIMIT: usize = 64;
    if value.chars().count() <= LIMIT {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(LIMIT).collect::<String>())
    }
}

fn container_name(container: &ContainerDefinition) -> &str {
    container.name.as_deref().unwrap_or_default()
}

fn is_essential(container: &ContainerDefinition) -> bool {
    container.essential.unwrap_or(true)
}

fn in_container(container: &str, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(format!("Container '{container}': {message}"))
}

/// `value` within `range` when given; `unit` (" seconds" or "") is for the message.
fn check_range(
    container: &str,
    field: &str,
    value: Option<i64>,
    range: RangeInclusive<i64>,
    unit: &str,
) -> Result {
    match value {
        Some(value) if !range.contains(&value) => Err(in_container(
            container,
            format!(
                "{field} must be between {} and {}{unit}, got {value}",
                range.start(),
                range.end()
            ),
        )),
        _ => Ok(()),
    }
}

fn validate_family(family: &str) -> Result {
    if family.is_empty() {
        return Err(ValidationError::new("Family is required."));
    }
    if !is_valid_name(family) {
        return Err(ValidationError::new(format!(
            "Invalid family '{}': up to 255 letters (uppercase and lowercase), numbers, \
             hyphens, and underscores are allowed.",
            shown(family)
        )));
    }
    Ok(())
}

fn validate_network_mode(network_mode: Option<&str>) -> Result<NetworkMode> {
    match network_mode {
        None | Some("bridge") => Ok(NetworkMode::Bridge),
        Some("host") => Ok(NetworkMode::Host),
        Some("awsvpc") => Ok(NetworkMode::Awsvpc),
        Some("none") => Ok(NetworkMode::None),
        Some(other) => Err(ValidationError::new(format!(
            "Invalid networkMode '{}': expected bridge, host, awsvpc or none.",
            shown(other)
        ))),
    }
}

fn validate_container_list(containers: &[ContainerDefinition]) -> Result {
    if containers.is_empty() {
        return Err(ValidationError::new("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS_PER_TASK_DEFINITION {
        return Err(ValidationError::new(format!(
            "Too many containers: a task definition can have at most \
             {MAX_CONTAINERS_PER_TASK_DEFINITION}, got {}.",
            containers.len()
        )));
    }
    Ok(())
}

/// Every container has a valid, unique name and an image; returns the names.
fn validate_container_names(containers: &[ContainerDefinition]) -> Result<HashSet<&str>> {
    let mut names = HashSet::new();
    for container in containers {
        let name = container_name(container);
        if name.is_empty() {
            return Err(ValidationError::new(
                "Container.name should not be null or empty.",
            ));
        }
        if !is_valid_name(name) {
            return Err(ValidationError::new(format!(
                "Invalid container name '{}': up to 255 letters (uppercase and lowercase), \
                 numbers, hyphens, and underscores are allowed.",
                shown(name)
            )));
        }
        if container
            .image
            .as_deref()
            .is_none_or(|image| image.trim().is_empty())
        {
            return Err(ValidationError::new(
                "Container.image should not be null or empty.",
            ));
        }
        if !names.insert(name) {
            return Err(ValidationError::new(
                "Container names must be unique within a Task Definition.",
            ));
        }
    }
    Ok(names)
}

fn validate_essential(containers: &[ContainerDefinition]) -> Result {
    if containers.iter().any(is_essential) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "Task definition doesn't have any essential container.",
        ))
    }
}

/// Volume names are valid and unique, and each volume's source makes sense; returns
/// the names for the containers' mount points.
fn validate_volumes(volumes: &[Volume]) -> Result<HashSet<&str>> {
    let mut names = HashSet::new();
    for volume in volumes {
        let name = volume.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ValidationError::new(
                "Volume.name should not be null or empty.",
            ));
        }
        if !is_valid_name(name) {
            return Err(ValidationError::new(format!(
                "Invalid volume name '{}': up to 255 letters (uppercase and lowercase), \
                 numbers, hyphens, and underscores are allowed.",
                shown(name)
            )));
        }
        if !names.insert(name) {
            return Err(ValidationError::new(format!(
                "Volume names must be unique within a Task Definition: '{name}' is used twice."
            )));
        }
        validate_volume_source(name, volume)?;
    }
    Ok(names)
}

fn validate_volume_source(name: &str, volume: &Volume) -> Result {
    let volume_error =
        |message: String| ValidationError::new(format!("Volume '{name}': {message}"));
    // An empty `host: {}` (or an empty sourcePath) means "a Docker-managed volume", as in
    // ECS, so only a real path counts as a bind mount.
    let source_path = volume
        .host
        .as_ref()
        .and_then(|host| host.source_path.as_deref())
        .filter(|path| !path.is_empty());
    if let Some(path) = source_path {
        if !path.starts_with('/') {
            return Err(volume_error(format!(
                "host.sourcePath must be an absolute path, got '{}'",
                shown(path)
            )));
        }
    }
    let Some(docker) = &volume.docker_volume_configuration else {
        return Ok(());
    };
    if source_path.is_some() {
        return Err(volume_error(
            "host and dockerVolumeConfiguration cannot both be set".to_string(),
        ));
    }
    let scope = docker.scope.as_deref().unwrap_or("task");
    if scope != "task" && scope != "shared" {
        return Err(volume_error(format!(
            "dockerVolumeConfiguration.scope must be task or shared, got '{}'",
            shown(scope)
        )));
    }
    if docker.autoprovision == Some(true) && scope != "shared" {
        return Err(volume_error(
            "dockerVolumeConfiguration.autoprovision can only be true when scope is shared"
                .to_string(),
        ));
    }
    Ok(())
}

/// A container's own cpu and memory figures.
fn validate_container_resources(name: &str, container: &ContainerDefinition) -> Result {
    if let Some(cpu) = container.cpu.filter(|cpu| *cpu < 0) {
        return Err(in_container(
            name,
            format!("cpu must not be negative, got {cpu}"),
        ));
    }
    for (field, value, max) in [
        ("cpu", container.cpu, MAX_CPU_UNITS),
        ("memory", container.memory, MAX_MEMORY_MIB),
        (
            "memoryReservation",
            container.memory_reservation,
            MAX_MEMORY_MIB,
        ),
    ] {
        if let Some(value) = value.filter(|v| *v as u64 > max && *v > 0) {
            return Err(in_container(
                name,
                format!("{field} must be at most {max}, got {value}"),
            ));
        }
    }
    if let Some(memory) = container.memory.filter(|m| *m < MIN_CONTAINER_MEMORY_MIB) {
        return Err(in_container(
            name,
            format!("memory must be at least {MIN_CONTAINER_MEMORY_MIB} MiB, got {memory}"),
        ));
    }
    // 0 is how some tools write "no reservation"; Docker treats it so too.
    if let Some(reservation) = container
        .memory_reservation
        .filter(|r| *r != 0 && *r < MIN_CONTAINER_MEMORY_MIB)
    {
        return Err(in_container(
            name,
            format!(
                "memoryReservation must be at least {MIN_CONTAINER_MEMORY_MIB} MiB, got {reservation}"
            ),
        ));
    }
    if let (Some(memory), Some(reservation)) = (container.memory, container.memory_reservation) {
        if memory < reservation {
            return Err(in_container(
                name,
                format!(
                    "memory ({memory}) must be greater than or equal to memoryReservation \
                     ({reservation})"
                ),
            ));
        }
    }
    Ok(())
}

/// Task-level cpu/memory parse (with the same parser placement uses, so what validates
/// also schedules) and hold the containers' own figures.
fn validate_task_resources(request: &RegisterTaskDefinitionRequest) -> Result {
    let task_cpu = parse_task_figure(
        request.cpu.as_deref(),
        "cpu",
        parse_cpu_units,
        MAX_CPU_UNITS,
        "\"256\" or \"0.25 vCPU\"",
    )?;
    let task_memory = parse_task_figure(
        request.memory.as_deref(),
        "memory",
        parse_memory_mib,
        MAX_MEMORY_MIB,
        "\"512\" or \"1 GB\"",
    )?;
    let containers = &request.container_definitions;
    if let Some(task_memory) = task_memory {
        for container in containers {
            if let Some(memory) = container.memory.filter(|memory| *memory > task_memory) {
                return Err(in_container(
                    container_name(container),
                    format!("memory ({memory}) is greater than the task memory ({task_memory})"),
                ));
            }
        }
    }
    if let Some(task_cpu) = task_cpu {
        let container_cpu = containers
            .iter()
            .filter_map(|container| container.cpu)
            .fold(0_i64, i64::saturating_add);
        if container_cpu > task_cpu {
            return Err(ValidationError::new(format!(
                "The sum of the containers' cpu ({container_cpu}) is greater than the task \
                 cpu ({task_cpu})."
            )));
        }
    }
    Ok(())
}

/// A task-level figure as a positive integer; absent or blank means "not set", as
/// Terraform sometimes sends "".
fn parse_task_figure(
    value: Option<&str>,
    field: &str,
    parse: fn(&str) -> Option<u64>,
    max: u64,
    examples: &str,
) -> Result<Option<i64>> {
    let Some(value) = value.filter(|value| !value.trim().is_empty()) else {
        return Ok(None);
    };
    match parse(value) {
        Some(parsed) if parsed > max => Err(ValidationError::new(format!(
            "Invalid '{field}' setting for task: at most {max} is allowed, got '{}'.",
            shown(value)
        ))),
        // Within `max`, so it fits an i64.
        Some(parsed) if parsed > 0 => Ok(Some(parsed as i64)),
        _ => Err(ValidationError::new(format!(
            "Invalid '{field}' setting for task: expected a positive value such as {examples}, \
             got '{}'.",
            shown(value)
        ))),
    }
}

fn validate_health_check(name: &str, health_check: Option<&HealthCheck>) -> Result {
    let Some(health_check) = health_check else {
        return Ok(());
    };
    match health_check.command.first().map(String::as_str) {
        None => return Err(in_container(name, "healthCheck.command must not be empty")),
        Some("NONE") => {}
        Some(kind @ ("CMD" | "CMD-SHELL")) => {
            if health_check.command.len() < 2 {
                return Err(in_container(
                    name,
                    format!("healthCheck.command needs a command after {kind}"),
                ));
            }
        }
        Some(other) => {
            return Err(in_container(
                name,
                format!(
                    "healthCheck.command must start with CMD, CMD-SHELL or NONE, got '{}'",
                    shown(other)
                ),
            ))
        }
    }
    check_range(
        name,
        "healthCheck.interval",
        health_check.interval,
        5..=300,
        " seconds",
    )?;
    check_range(
        name,
        "healthCheck.timeout",
        health_check.timeout,
        2..=60,
        " seconds",
    )?;
    check_range(
        name,
        "healthCheck.retries",
        health_check.retries,
        1..=10,
        "",
    )?;
    check_range(
        name,
        "healthCheck.startPeriod",
        health_check.start_period,
        0..=300,
        " seconds",
    )
}

/// ECS caps both at 120 s (Fargate's limit; berth applies it everywhere).
fn validate_timeouts(name: &str, container: &ContainerDefinition) -> Result {
    check_range(
        name,
        "stopTimeout",
        container.stop_timeout,
        0..=120,
        " seconds",
    )?;
    check_range(
        name,
        "startTimeout",
        container.start_timeout,
        0..=120,
        " seconds",
    )
}

fn validate_ulimits(name: &str, container: &ContainerDefinition) -> Result {
    for ulimit in container.ulimits.iter().flatten() {
        if !ULIMIT_NAMES.contains(&ulimit.name.as_str()) {
            return Err(in_container(
                name,
                format!(
                    "ulimit name '{}' is invalid; expected one of {}",
                    shown(&ulimit.name),
                    ULIMIT_NAMES.join(", ")
                ),
            ));
        }
        if ulimit.soft_limit > ulimit.hard_limit {
            return Err(in_container(
                name,
                format!(
                    "ulimit {} softLimit ({}) must not be greater than hardLimit ({})",
                    ulimit.name, ulimit.soft_limit, ulimit.hard_limit
                ),
            ));
        }
    }
    Ok(())
}

fn validate_log_configuration(name: &str, container: &ContainerDefinition) -> Result {
    let Some(log_configuration) = &container.log_configuration else {
        return Ok(());
    };
    if log_configuration.log_driver.trim().is_empty() {
        return Err(in_container(name, "logConfiguration.logDriver is required"));
    }
    for (index, secret) in log_configuration
        .secret_options
        .iter()
        .flatten()
        .enumerate()
    {
        if secret.name.is_empty() || secret.value_from.is_empty() {
            return Err(in_container(
                name,
                format!("logConfiguration.secretOptions[{index}] needs both name and valueFrom"),
            ));
        }
    }
    Ok(())
}

/// Values are never echoed: they may be credentials.
fn validate_environment_and_secrets(name: &str, container: &ContainerDefinition) -> Result {
    for (index, variable) in container.environment.iter().flatten().enumerate() {
        if variable.name.as_deref().is_none_or(str::is_empty) {
            return Err(in_container(
                name,
                format!("environment[{index}] has no name"),
            ));
        }
    }
    for (index, secret) in container.secrets.iter().flatten().enumerate() {
        if secret.name.is_empty() {
            return Err(in_container(name, format!("secrets[{index}] has no name")));
        }
        if secret.value_from.is_empty() {
            return Err(in_container(
                name,
                format!("secret '{}' has no valueFrom", shown(&secret.name)),
            ));
        }
    }
    Ok(())
}

fn validate_mount_points(
    name: &str,
    container: &ContainerDefinition,
    volume_names: &HashSet<&str>,
) -> Result {
    for mount_point in container.mount_points.iter().flatten() {
        let source_volume = mount_point.source_volume.as_deref().unwrap_or_default();
        if source_volume.is_empty() {
            return Err(in_container(name, "mountPoints sourceVolume is required"));
        }
        if !volume_names.contains(source_volume) {
            return Err(in_container(
                name,
                format!(
                    "mountPoints sourceVolume '{}' is not a volume of the task definition",
                    shown(source_volume)
                ),
            ));
        }
        let container_path = mount_point.container_path.as_deref().unwrap_or_default();
        if !container_path.starts_with('/') {
            return Err(in_container(
                name,
                format!(
                    "mountPoints containerPath must be an absolute path, got '{}'",
                    shown(container_path)
                ),
            ));
        }
    }
    Ok(())
}

/// `field` of container `name` refers to `target`, which must be another container.
fn check_other_container(
    name: &str,
    field: &str,
    target: &str,
    container_names: &HashSet<&str>,
) -> Result {
    if target == name {
        return Err(in_container(
            name,
            format!("{field} cannot name the container itself"),
        ));
    }
    if !container_names.contains(target) {
        return Err(in_container(
            name,
            format!(
                "{field} '{}' is not a container of the task definition",
                shown(target)
            ),
        ));
    }
    Ok(())
}

fn validate_volumes_from(
    name: &str,
    container: &ContainerDefinition,
    container_names: &HashSet<&str>,
) -> Result {
    for volume_from in container.volumes_from.iter().flatten() {
        let source = volume_from.source_container.as_deref().unwrap_or_default();
        if source.is_empty() {
            return Err(in_container(
                name,
                "volumesFrom sourceContainer is required",
            ));
        }
        check_other_container(name, "volumesFrom sourceContainer", source, container_names)?;
    }
    Ok(())
}

fn validate_links(
    name: &str,
    container: &ContainerDefinition,
    container_names: &HashSet<&str>,
    network_mode: NetworkMode,
) -> Result {
    let links = container.links.as_deref().unwrap_or_default();
    if links.is_empty() {
        return Ok(());
    }
    if network_mode != NetworkMode::Bridge {
        return Err(in_container(
            name,
            format!(
                "links are only supported when networkMode=bridge, not {}",
                network_mode.as_str()
            ),
        ));
    }
    for link in links {
        // `name:alias`, as in Docker.
        let target = link
            .split_once(':')
            .map_or(link.as_str(), |(target, _)| target);
        check_other_container(name, "link", target, container_names)?;
    }
    Ok(())
}

fn protocol(mapping: &PortMapping) -> &str {
    mapping.protocol.as_deref().unwrap_or("tcp")
}

/// A mapping given only as a `containerPortRange` has no single container port.
fn is_port_range_only(mapping: &PortMapping) -> bool {
    mapping.container_port.is_none()
        && mapping
            .container_port_range
            .as_deref()
            .is_some_and(|range| !range.is_empty())
}

fn validate_port_mappings(
    name: &str,
    container: &ContainerDefinition,
    network_mode: NetworkMode,
) -> Result {
    for mapping in container.port_mappings.iter().flatten() {
        if is_port_range_only(mapping) {
            continue;
        }
        let Some(container_port) = mapping.container_port else {
            return Err(in_container(name, "portMappings containerPort is required"));
        };
        check_range(
            name,
            "portMappings containerPort",
            Some(container_port),
            1..=65535,
            "",
        )?;
        check_range(
            name,
            "portMappings hostPort",
            mapping.host_port,
            0..=65535,
            "",
        )?;
        let protocol = protocol(mapping);
        if protocol != "tcp" && protocol != "udp" {
            return Err(in_container(
                name,
                format!(
                    "portMappings protocol must be tcp or udp, got '{}'",
                    shown(protocol)
                ),
            ));
        }
        let host_port = mapping.host_port.unwrap_or(0);
        let must_match = matches!(network_mode, NetworkMode::Host | NetworkMode::Awsvpc);
        if must_match && host_port != 0 && host_port != container_port {
            return Err(ValidationError::new(format!(
                "When networkMode={}, the host ports and container ports in port mappings must match.",
                network_mode.as_str()
            )));
        }
    }
    Ok(())
}

/// The containers of a task share one network namespace, so a container port (and a
/// fixed host port) can be taken once per task.
fn validate_port_conflicts(containers: &[ContainerDefinition]) -> Result {
    let mut container_ports: HashMap<(i64, &str), &str> = HashMap::new();
    let mut host_ports: HashMap<(i64, &str), &str> = HashMap::new();
    for container in containers {
        let name = container_name(container);
        for mapping in container.port_mappings.iter().flatten() {
            let Some(container_port) = mapping.container_port else {
                continue;
            };
            let protocol = protocol(mapping);
            if let Some(first) = container_ports.insert((container_port, protocol), name) {
                return Err(port_conflict(
                    first,
                    name,
                    "container",
                    container_port,
                    protocol,
                ));
            }
            if let Some(host_port) = mapping.host_port.filter(|port| *port != 0) {
                if let Some(first) = host_ports.insert((host_port, protocol), name) {
                    return Err(port_conflict(first, name, "host", host_port, protocol));
                }
            }
        }
    }
    Ok(())
}

fn port_conflict(
    first: &str,
    second: &str,
    kind: &str,
    port: i64,
    protocol: &str,
) -> ValidationError {
    if first == second {
        ValidationError::new(format!(
            "Container '{first}' maps {kind} port {port}/{protocol} more than once."
        ))
    } else {
        ValidationError::new(format!(
            "Containers '{first}' and '{second}' both use {kind} port {port}/{protocol}; \
             the containers of a task share one network namespace."
        ))
    }
}

/// Each dependency names a known condition and another container that can satisfy it,
/// and the dependencies form no cycle.
fn validate_dependencies(containers: &[ContainerDefinition]) -> Result {
    let by_name: HashMap<&str, &ContainerDefinition> = containers
        .iter()
        .map(|container| (container_name(container), container))
        .collect();
    for container in containers {
        let name = container_name(container);
        for dependency in container.depends_on.iter().flatten() {
            let target_name = dependency.container_name.as_str();
            let condition = dependency.condition.as_str();
            if !DEPENDENCY_CONDITIONS.contains(&condition) {
                return Err(in_container(
                    name,
                    format!(
                        "dependsOn condition '{}' is invalid; expected START, COMPLETE, SUCCESS \
                         or HEALTHY",
                        shown(condition)
                    ),
                ));
            }
            if target_name.is_empty() {
                return Err(in_container(name, "dependsOn containerName is required"));
            }
            if target_name == name {
                return Err(in_container(
                    name,
                    "dependsOn cannot name the container itself",
                ));
            }
            let Some(target) = by_name.get(target_name) else {
                return Err(in_container(
                    name,
                    format!(
                        "dependsOn containerName '{}' is not a container of the task definition",
                        shown(target_name)
                    ),
                ));
            };
            check_dependency_target(name, target_name, condition, target)?;
        }
    }
    match find_dependency_cycle(containers) {
        Some(cycle) => Err(ValidationError::new(format!(
            "Container dependencies form a cycle: {}.",
            cycle.join(" -> ")
        ))),
        None => Ok(()),
    }
}

/// What the condition asks of the container depended on.
fn check_dependency_target(
    name: &str,
    target_name: &str,
    condition: &str,
    target: &ContainerDefinition,
) -> Result {
    if (condition == "SUCCESS" || condition == "COMPLETE") && is_essential(target) {
        return Err(in_container(
            name,
            format!(
                "dependsOn '{target_name}' with condition {condition}, but a container in a \
                 dependency with condition COMPLETE/SUCCESS cannot be essential"
            ),
        ));
    }
    // NONE disables an image's own check, so it can never report healthy either.
    let has_health_check = target
        .health_check
        .as_ref()
        .is_some_and(|check| check.command.first().is_some_and(|kind| kind != "NONE"));
    if condition == "HEALTHY" && !has_health_check {
        return Err(in_container(
            name,
            format!(
                "dependsOn '{target_name}' with condition HEALTHY, but container \
                 '{target_name}' has no healthCheck"
            ),
        ));
    }
    Ok(())
}

/// The first dependency cycle in definition order, as `a -> b -> a`. Depth-first with
/// the current path kept, so the cycle can be named; at most 10 containers deep.
fn find_dependency_cycle(containers: &[ContainerDefinition]) -> Option<Vec<&str>> {
    let edges: HashMap<&str, Vec<&str>> = containers
        .iter()
        .map(|container| {
            let targets = container
                .depends_on
                .iter()
                .flatten()
                .map(|dependency| dependency.container_name.as_str())
                .collect();
            (container_name(container), targets)
        })
        .collect();
    let mut finished = HashSet::new();
    let mut path = Vec::new();
    containers
        .iter()
        .find_map(|container| visit(container_name(container), &edges, &mut finished, &mut path))
}

fn visit<'a>(
    node: &'a str,
    edges: &HashMap<&'a str, Vec<&'a str>>,
    finished: &mut HashSet<&'a str>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    if finished.contains(node) {
        return None;
    }
    if let Some(start) = path.iter().position(|on_path| *on_path == node) {
        let mut cycle = path.get(start..).unwrap_or_default().to_vec();
        cycle.push(node);
        return Some(cycle);
    }
    path.push(node);
    for next in edges.get(node).into_iter().flatten() {
        if let Some(cycle) = visit(next, edges, finished, path) {
            return Some(cycle);
        }
    }
    path.pop();
    finished.insert(node);
    None
}

#[cfg(test)]
mod tests;
