//! Validation of what users register: the rules RegisterTaskDefinition applies before
//! anything is stored. ECS's own wording where ECS has one; otherwise a message naming
//! the container and field at fault. The first broken rule wins.
//!
//! It is also the one parse of a task definition: [`task_spec`] checks every rule and
//! returns the typed [`TaskSpec`] the agent runs, so a definition that validates always
//! yields a spec, and no rule is read again anywhere else.
//!
//! berth adds one rule ECS does not have in bridge mode: all containers of a task share
//! one network namespace, so two of them cannot listen on the same container port.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use berth_api::{
    ContainerDefinition, HealthCheck, PortMapping, RegisterTaskDefinitionRequest, Volume,
};

use crate::resources::{parse_cpu_units, parse_memory_mib, MAX_CPU_UNITS, MAX_MEMORY_MIB};
use crate::spec::{
    self, Dependency, DependsOnCondition, EnvironmentVariable, Link, NetworkMode, Protocol,
    TaskSpec, VolumeScope, VolumeSource,
};

mod fargate;
mod linux;
mod overrides;
pub use linux::{capability_name, engine_security_option, SecurityOption};
pub use overrides::apply_overrides;

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

/// Which rules a definition is held to: all of them when it is registered now; when an
/// earlier berth stored it, not the rules of admission added since (ECS's memory and
/// Fargate rules), so a service whose definition predates them keeps launching tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Register,
    Stored,
}

/// Checks a RegisterTaskDefinition request; the error is the first rule it breaks,
/// worded for a `ClientException`.
pub fn validate_task_definition(request: &RegisterTaskDefinitionRequest) -> Result {
    task_spec(request).map(drop)
}

/// The one parse of a task definition: every rule [`validate_task_definition`] applies,
/// and what it admitted as a typed [`TaskSpec`] (without any task's overrides).
pub fn task_spec(request: &RegisterTaskDefinitionRequest) -> Result<TaskSpec> {
    parse_task_definition(request, Admission::Register)
}

/// The parse of a stored definition: [`task_spec`] without the rules of admission,
/// which it was not registered under if an earlier berth stored it.
pub fn stored_task_spec(request: &RegisterTaskDefinitionRequest) -> Result<TaskSpec> {
    parse_task_definition(request, Admission::Stored)
}

fn parse_task_definition(
    request: &RegisterTaskDefinitionRequest,
    admission: Admission,
) -> Result<TaskSpec> {
    validate_family(&request.family)?;
    let network_mode = validate_network_mode(request.network_mode.as_deref())?;
    let requires_fargate = match admission {
        Admission::Register => fargate::requires_fargate(request)?,
        Admission::Stored => false,
    };
    let containers = &request.container_definitions;
    validate_container_list(containers)?;
    let container_names = validate_container_names(containers)?;
    validate_essential(containers)?;
    let volumes = validate_volumes(&request.volumes)?;
    let mut parsed = Vec::with_capacity(containers.len());
    let mut volumes_from = Vec::with_capacity(containers.len());
    for container in containers {
        let name = container_name(container);
        let resources = validate_container_resources(name, container)?;
        let health_check = validate_health_check(name, container.health_check.as_ref())?;
        let (start_timeout, stop_timeout) = validate_timeouts(name, container)?;
        let ulimits = validate_ulimits(name, container)?;
        let log_configuration = validate_log_configuration(name, container)?;
        let environment = validate_environment_and_secrets(name, container)?;
        let mount_points = validate_mount_points(name, container, &volumes)?;
        volumes_from.push(validate_volumes_from(name, container, &container_names)?);
        let links = validate_links(name, container, &container_names, network_mode)?;
        let port_mappings = validate_port_mappings(name, container, network_mode)?;
        parsed.push(spec::ContainerDefinition {
            name: name.to_string(),
            image: container.image.clone().unwrap_or_default(),
            essential: is_essential(container),
            cpu: resources.cpu,
            memory: resources.memory,
            memory_reservation: resources.memory_reservation,
            entry_point: container.entry_point.clone(),
            command: container.command.clone(),
            working_directory: container.working_directory.clone(),
            user: container.user.clone(),
            hostname: container.hostname.clone(),
            environment,
            environment_files: container.environment_files.clone().unwrap_or_default(),
            secrets: container.secrets.clone().unwrap_or_default(),
            port_mappings,
            links,
            depends_on: Vec::new(),
            start_timeout,
            stop_timeout,
            health_check,
            mount_points,
            extra_hosts: container.extra_hosts.clone().unwrap_or_default(),
            dns_servers: container.dns_servers.clone().unwrap_or_default(),
            dns_search_domains: container.dns_search_domains.clone().unwrap_or_default(),
            docker_labels: container.docker_labels.clone().unwrap_or_default(),
            ulimits,
            log_configuration,
            linux_parameters: None,
            docker_security_options: Vec::new(),
            readonly_root_filesystem: container.readonly_root_filesystem.unwrap_or(false),
            privileged: container.privileged.unwrap_or(false),
            interactive: container.interactive.unwrap_or(false),
            pseudo_terminal: container.pseudo_terminal.unwrap_or(false),
        });
    }
    let (cpu, memory) = validate_task_resources(request)?;
    let dependencies = validate_dependencies(containers)?;
    validate_port_conflicts(containers)?;
    let linux = linux::validate_linux(request)?;
    if admission == Admission::Register {
        if requires_fargate {
            fargate::validate_fargate(network_mode, cpu, memory, linux.pid_mode, linux.ipc_mode)?;
        }
        validate_memory_is_set(containers, memory)?;
        validate_reservations_fit(containers, memory)?;
    }

    // A volumesFrom entry mounts what its source container mounts itself.
    let own_mounts: Vec<Vec<spec::MountPoint>> =
        parsed.iter().map(|c| c.mount_points.clone()).collect();
    for (index, container) in parsed.iter_mut().enumerate() {
        for (source, forced_read_only) in volumes_from.get(index).into_iter().flatten() {
            for mount in own_mounts.get(*source).into_iter().flatten() {
                let mut mount = mount.clone();
                mount.read_only |= *forced_read_only;
                container.mount_points.push(mount);
            }
        }
    }
    for ((container, depends_on), settings) in
        parsed.iter_mut().zip(dependencies).zip(linux.containers)
    {
        container.depends_on = depends_on;
        container.linux_parameters = settings.linux_parameters;
        container.docker_security_options = settings.docker_security_options;
    }
    Ok(TaskSpec {
        family: request.family.clone(),
        network_mode,
        pid_mode: linux.pid_mode,
        ipc_mode: linux.ipc_mode,
        cpu,
        memory,
        volumes,
        container_definitions: parsed,
        privileges: crate::policy::task_definition_privileges(request),
    })
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

/// Whether a container definition is essential: ECS's default is yes.
pub fn is_essential(container: &ContainerDefinition) -> bool {
    container.essential.unwrap_or(true)
}

fn in_container(container: &str, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(format!("Container '{container}': {message}"))
}

/// `value` within `range` when given, as a `T` (which holds all of `range`); `unit`
/// (" seconds" or "") is for the message.
fn check_range<T: TryFrom<i64>>(
    container: &str,
    field: &str,
    value: Option<i64>,
    range: RangeInclusive<i64>,
    unit: &str,
) -> Result<Option<T>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match T::try_from(value) {
        Ok(typed) if range.contains(&value) => Ok(Some(typed)),
        _ => Err(in_container(
            container,
            format!(
                "{field} must be between {} and {}{unit}, got {value}",
                range.start(),
                range.end()
            ),
        )),
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
    let Some(given) = network_mode else {
        return Ok(NetworkMode::Bridge);
    };
    NetworkMode::parse(given).ok_or_else(|| {
        ValidationError::new(format!(
            "Invalid networkMode '{}': expected bridge, host, awsvpc or none.",
            shown(given)
        ))
    })
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

/// Every container has a valid, unique name and an image; returns each name's index.
fn validate_container_names(containers: &[ContainerDefinition]) -> Result<HashMap<&str, usize>> {
    let mut names = HashMap::new();
    for (index, container) in containers.iter().enumerate() {
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
        if names.insert(name, index).is_some() {
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

/// Volume names are valid and unique, and each volume's source makes sense.
fn validate_volumes(volumes: &[Volume]) -> Result<Vec<spec::Volume>> {
    let mut names = HashSet::new();
    let mut parsed = Vec::with_capacity(volumes.len());
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
        parsed.push(spec::Volume {
            name: name.to_string(),
            source: validate_volume_source(name, volume)?,
        });
    }
    Ok(parsed)
}

fn validate_volume_source(name: &str, volume: &Volume) -> Result<VolumeSource> {
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
        return Ok(match source_path {
            Some(path) => VolumeSource::Host {
                source_path: path.to_string(),
            },
            None => VolumeSource::Docker(spec::DockerVolumeConfiguration::default()),
        });
    };
    if source_path.is_some() {
        return Err(volume_error(
            "host and dockerVolumeConfiguration cannot both be set".to_string(),
        ));
    }
    let scope = match docker.scope.as_deref().unwrap_or("task") {
        "task" => VolumeScope::Task,
        "shared" => VolumeScope::Shared,
        other => {
            return Err(volume_error(format!(
                "dockerVolumeConfiguration.scope must be task or shared, got '{}'",
                shown(other)
            )))
        }
    };
    let autoprovision = docker.autoprovision == Some(true);
    if autoprovision && scope != VolumeScope::Shared {
        return Err(volume_error(
            "dockerVolumeConfiguration.autoprovision can only be true when scope is shared"
                .to_string(),
        ));
    }
    Ok(VolumeSource::Docker(spec::DockerVolumeConfiguration {
        scope,
        autoprovision,
        driver: docker.driver.clone(),
        driver_opts: docker.driver_opts.clone().unwrap_or_default(),
        labels: docker.labels.clone().unwrap_or_default(),
    }))
}

/// A container's cpu and memory figures, as validation admitted them.
struct ContainerResources {
    cpu: Option<u64>,
    memory: Option<u64>,
    memory_reservation: Option<u64>,
}

/// A figure validation bounded to be non-negative; 0 reads as "not set".
fn positive(value: Option<i64>) -> Option<u64> {
    value.filter(|v| *v > 0).map(i64::unsigned_abs)
}

/// A container's own cpu and memory figures.
fn validate_container_resources(
    name: &str,
    container: &ContainerDefinition,
) -> Result<ContainerResources> {
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
    Ok(ContainerResources {
        cpu: positive(container.cpu),
        memory: positive(container.memory),
        memory_reservation: positive(container.memory_reservation),
    })
}

/// ECS needs a memory figure for every container of a task without task-level memory
/// (Fargate's own rule, task-level memory, is checked before this one).
fn validate_memory_is_set(containers: &[ContainerDefinition], task_memory: Option<u64>) -> Result {
    if task_memory.is_some() {
        return Ok(());
    }
    let unset = containers.iter().find(|container| {
        positive(container.memory).is_none() && positive(container.memory_reservation).is_none()
    });
    match unset {
        Some(container) => Err(ValidationError::new(format!(
            "Invalid setting for container '{}'. At least one of 'memory' or \
             'memoryReservation' must be specified.",
            container_name(container)
        ))),
        None => Ok(()),
    }
}

/// What the containers reserve together (each its memoryReservation, or else its
/// memory) fits in the task's memory.
fn validate_reservations_fit(
    containers: &[ContainerDefinition],
    task_memory: Option<u64>,
) -> Result {
    let Some(task_memory) = task_memory else {
        return Ok(());
    };
    let reserved = containers
        .iter()
        .filter_map(|container| {
            positive(container.memory_reservation).or(positive(container.memory))
        })
        .fold(0_u64, u64::saturating_add);
    if reserved > task_memory {
        return Err(ValidationError::new(
            "The sum of all container 'memoryReservation' values cannot be greater than \
             the value of the task 'memory'.",
        ));
    }
    Ok(())
}

/// Task-level cpu/memory parse (with the same parser placement uses, so what validates
/// also schedules) and hold the containers' own figures; returns (CPU units, MiB).
fn validate_task_resources(
    request: &RegisterTaskDefinitionRequest,
) -> Result<(Option<u64>, Option<u64>)> {
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
            if container.memory.is_some_and(|memory| memory > task_memory) {
                return Err(ValidationError::new(format!(
                    "The 'memory' setting for container '{}' is greater than for the task.",
                    container_name(container)
                )));
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
    Ok((positive(task_cpu), positive(task_memory)))
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

fn validate_health_check(
    name: &str,
    health_check: Option<&HealthCheck>,
) -> Result<Option<spec::HealthCheck>> {
    let Some(health_check) = health_check else {
        return Ok(None);
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
    let interval = check_range(
        name,
        "healthCheck.interval",
        health_check.interval,
        5..=300,
        " seconds",
    )?;
    let timeout = check_range(
        name,
        "healthCheck.timeout",
        health_check.timeout,
        2..=60,
        " seconds",
    )?;
    let retries = check_range(
        name,
        "healthCheck.retries",
        health_check.retries,
        1..=10,
        "",
    )?;
    let start_period = check_range(
        name,
        "healthCheck.startPeriod",
        health_check.start_period,
        0..=300,
        " seconds",
    )?;
    Ok(Some(spec::HealthCheck {
        command: health_check.command.clone(),
        interval: interval.unwrap_or(spec::DEFAULT_HEALTH_CHECK_INTERVAL_SECS),
        timeout: timeout.unwrap_or(spec::DEFAULT_HEALTH_CHECK_TIMEOUT_SECS),
        retries: retries.unwrap_or(spec::DEFAULT_HEALTH_CHECK_RETRIES),
        start_period: start_period.unwrap_or(0),
    }))
}

/// ECS caps both at 120 s (Fargate's limit; berth applies it everywhere). Returns
/// (startTimeout, stopTimeout) in seconds, defaults filled in; a startTimeout of 0 is
/// the default too.
fn validate_timeouts(name: &str, container: &ContainerDefinition) -> Result<(u64, u64)> {
    let stop = check_range(
        name,
        "stopTimeout",
        container.stop_timeout,
        0..=120,
        " seconds",
    )?;
    let start: Option<u64> = check_range(
        name,
        "startTimeout",
        container.start_timeout,
        0..=120,
        " seconds",
    )?;
    Ok((
        start
            .filter(|secs| *secs > 0)
            .unwrap_or(spec::DEFAULT_START_TIMEOUT_SECS),
        stop.unwrap_or(spec::DEFAULT_STOP_TIMEOUT_SECS),
    ))
}

fn validate_ulimits(name: &str, container: &ContainerDefinition) -> Result<Vec<spec::Ulimit>> {
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
    Ok(container.ulimits.clone().unwrap_or_default())
}

fn validate_log_configuration(
    name: &str,
    container: &ContainerDefinition,
) -> Result<Option<spec::LogConfiguration>> {
    let Some(log_configuration) = &container.log_configuration else {
        return Ok(None);
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
    Ok(Some(spec::LogConfiguration {
        log_driver: log_configuration.log_driver.clone(),
        options: log_configuration.options.clone().unwrap_or_default(),
        secret_options: log_configuration.secret_options.clone().unwrap_or_default(),
    }))
}

/// Values are never echoed: they may be credentials. Returns the environment.
fn validate_environment_and_secrets(
    name: &str,
    container: &ContainerDefinition,
) -> Result<Vec<EnvironmentVariable>> {
    let mut environment = Vec::new();
    for (index, variable) in container.environment.iter().flatten().enumerate() {
        let Some(key) = variable.name.as_deref().filter(|key| !key.is_empty()) else {
            return Err(in_container(
                name,
                format!("environment[{index}] has no name"),
            ));
        };
        set_variable(
            &mut environment,
            key,
            variable.value.clone().unwrap_or_default(),
        );
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
    Ok(environment)
}

/// Sets `name` (a name given again keeps its first place and takes the new value).
fn set_variable(environment: &mut Vec<EnvironmentVariable>, name: &str, value: String) {
    match environment
        .iter_mut()
        .find(|variable| variable.name == name)
    {
        Some(existing) => existing.value = value,
        None => environment.push(EnvironmentVariable {
            name: name.to_string(),
            value,
        }),
    }
}

/// The container's own mount points, each with its volume's source.
fn validate_mount_points(
    name: &str,
    container: &ContainerDefinition,
    volumes: &[spec::Volume],
) -> Result<Vec<spec::MountPoint>> {
    let mut mounts = Vec::new();
    for mount_point in container.mount_points.iter().flatten() {
        let source_volume = mount_point.source_volume.as_deref().unwrap_or_default();
        if source_volume.is_empty() {
            return Err(in_container(name, "mountPoints sourceVolume is required"));
        }
        let Some(volume) = volumes.iter().find(|volume| volume.name == source_volume) else {
            return Err(in_container(
                name,
                format!(
                    "mountPoints sourceVolume '{}' is not a volume of the task definition",
                    shown(source_volume)
                ),
            ));
        };
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
        mounts.push(spec::MountPoint {
            source_volume: source_volume.to_string(),
            container_path: container_path.to_string(),
            read_only: mount_point.read_only.unwrap_or(false),
            source: volume.source.clone(),
        });
    }
    Ok(mounts)
}

/// `field` of container `name` refers to `target`, which must be another container;
/// returns its index.
fn check_other_container(
    name: &str,
    field: &str,
    target: &str,
    container_names: &HashMap<&str, usize>,
) -> Result<usize> {
    if target == name {
        return Err(in_container(
            name,
            format!("{field} cannot name the container itself"),
        ));
    }
    let Some(index) = container_names.get(target) else {
        return Err(in_container(
            name,
            format!(
                "{field} '{}' is not a container of the task definition",
                shown(target)
            ),
        ));
    };
    Ok(*index)
}

/// Each entry's source container (its index) and whether it forces read-only.
fn validate_volumes_from(
    name: &str,
    container: &ContainerDefinition,
    container_names: &HashMap<&str, usize>,
) -> Result<Vec<(usize, bool)>> {
    let mut sources = Vec::new();
    for volume_from in container.volumes_from.iter().flatten() {
        let source = volume_from.source_container.as_deref().unwrap_or_default();
        if source.is_empty() {
            return Err(in_container(
                name,
                "volumesFrom sourceContainer is required",
            ));
        }
        let index =
            check_other_container(name, "volumesFrom sourceContainer", source, container_names)?;
        sources.push((index, volume_from.read_only.unwrap_or(false)));
    }
    Ok(sources)
}

fn validate_links(
    name: &str,
    container: &ContainerDefinition,
    container_names: &HashMap<&str, usize>,
    network_mode: NetworkMode,
) -> Result<Vec<Link>> {
    let links = container.links.as_deref().unwrap_or_default();
    if links.is_empty() {
        return Ok(Vec::new());
    }
    if network_mode != NetworkMode::Bridge {
        return Err(in_container(
            name,
            format!("links are only supported when networkMode=bridge, not {network_mode}"),
        ));
    }
    let mut parsed = Vec::with_capacity(links.len());
    for link in links {
        // `name:alias`, as in Docker.
        let (target, alias) = match link.split_once(':') {
            Some((target, alias)) => (target, Some(alias.to_string())),
            None => (link.as_str(), None),
        };
        check_other_container(name, "link", target, container_names)?;
        parsed.push(Link {
            container_name: target.to_string(),
            alias,
        });
    }
    Ok(parsed)
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

/// The mappings with a container port (one given only as a `containerPortRange` is
/// refused by the Linux rules, which run later).
fn validate_port_mappings(
    name: &str,
    container: &ContainerDefinition,
    network_mode: NetworkMode,
) -> Result<Vec<spec::PortMapping>> {
    let mut parsed = Vec::new();
    for mapping in container.port_mappings.iter().flatten() {
        if is_port_range_only(mapping) {
            continue;
        }
        let Some(given_port) = mapping.container_port else {
            return Err(in_container(name, "portMappings containerPort is required"));
        };
        let container_port: Option<u16> = check_range(
            name,
            "portMappings containerPort",
            Some(given_port),
            1..=65535,
            "",
        )?;
        let host_port: Option<u16> = check_range(
            name,
            "portMappings hostPort",
            mapping.host_port,
            0..=65535,
            "",
        )?;
        let protocol = match protocol(mapping) {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(in_container(
                    name,
                    format!(
                        "portMappings protocol must be tcp or udp, got '{}'",
                        shown(other)
                    ),
                ))
            }
        };
        let host_port = host_port.filter(|port| *port != 0);
        let must_match = matches!(network_mode, NetworkMode::Host | NetworkMode::Awsvpc);
        if must_match && host_port.is_some_and(|port| i64::from(port) != given_port) {
            return Err(ValidationError::new(format!(
                "When networkMode={network_mode}, the host ports and container ports in port mappings must match."
            )));
        }
        if let Some(container_port) = container_port {
            parsed.push(spec::PortMapping {
                container_port,
                host_port,
                protocol,
            });
        }
    }
    Ok(parsed)
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
/// and the dependencies form no cycle. Returns each container's dependencies.
fn validate_dependencies(containers: &[ContainerDefinition]) -> Result<Vec<Vec<Dependency>>> {
    let by_name: HashMap<&str, &ContainerDefinition> = containers
        .iter()
        .map(|container| (container_name(container), container))
        .collect();
    let mut parsed = Vec::with_capacity(containers.len());
    for container in containers {
        let name = container_name(container);
        let mut depends_on = Vec::new();
        for dependency in container.depends_on.iter().flatten() {
            let target_name = dependency.container_name.as_str();
            let Some(condition) = DependsOnCondition::parse(&dependency.condition) else {
                return Err(in_container(
                    name,
                    format!(
                        "dependsOn condition '{}' is invalid; expected START, COMPLETE, SUCCESS \
                         or HEALTHY",
                        shown(&dependency.condition)
                    ),
                ));
            };
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
            depends_on.push(Dependency {
                container_name: target_name.to_string(),
                condition,
            });
        }
        parsed.push(depends_on);
    }
    match find_dependency_cycle(containers) {
        Some(cycle) => Err(ValidationError::new(format!(
            "Container dependencies form a cycle: {}.",
            cycle.join(" -> ")
        ))),
        None => Ok(parsed),
    }
}

/// What the condition asks of the container depended on.
fn check_dependency_target(
    name: &str,
    target_name: &str,
    condition: DependsOnCondition,
    target: &ContainerDefinition,
) -> Result {
    let exits = matches!(
        condition,
        DependsOnCondition::Success | DependsOnCondition::Complete
    );
    if exits && is_essential(target) {
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
    if condition == DependsOnCondition::Healthy && !has_health_check {
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
