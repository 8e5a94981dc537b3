//! The typed task spec: what a task runs, in types rather than the strings a user
//! registered. `validation::task_spec` is its one parse (every rule RegisterTaskDefinition
//! applies, so a registered definition always yields one), `validation::apply_overrides`
//! puts a task's RunTask overrides on it, and the agent maps only from it: nothing on the
//! agent's side reads a request string again.
//!
//! Defaults ECS applies (the health check's interval, the timeouts, a device's
//! permissions) are resolved here, once: a field holds what the task gets. The words are
//! ECS's (`containerDefinitions`, `dependsOn`, `mountPoints`), camelCase on the wire.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use berth_api::{EnvironmentFile, HostEntry, Secret, Ulimit};

use crate::policy::PrivilegeUse;
use crate::validation::{SecurityOption, ValidationError};

/// ECS's default `stopTimeout`: SIGKILL this long after SIGTERM.
pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 30;
/// How long a container may take to reach the condition another one waits for, when
/// its `startTimeout` is not given (or 0).
pub const DEFAULT_START_TIMEOUT_SECS: u64 = 180;
/// ECS's defaults for a `healthCheck`.
pub const DEFAULT_HEALTH_CHECK_INTERVAL_SECS: u64 = 30;
pub const DEFAULT_HEALTH_CHECK_TIMEOUT_SECS: u64 = 5;
pub const DEFAULT_HEALTH_CHECK_RETRIES: u32 = 3;

/// A task's spec: its definition, parsed, with the task's overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    pub family: String,
    pub network_mode: NetworkMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    /// Task-level CPU units (`"0.25 vCPU"` is 256), after overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// Task-level MiB (`"1 GB"` is 1024), after overrides: the limit of every container
    /// that sets no `memory` of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    pub container_definitions: Vec<ContainerDefinition>,
    /// Every use of privilege the definition makes (`crate::task_definition_privileges`),
    /// admitted by the control plane's policy when it placed the task; the agent logs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PrivilegeUse>,
}

impl TaskSpec {
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions.iter().find(|c| c.name == name)
    }
}

/// One container definition, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub essential: bool,
    /// CPU units (relative shares); `None` when not given or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// The hard limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The soft limit in MiB; `None` when not given or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// In definition order; a name given twice (or overridden) keeps its first place and
    /// its last value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvironmentVariable>,
    /// The definition's, then the overrides'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_files: Vec<EnvironmentFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Dependency>,
    /// Seconds another container waits for this one to reach its condition.
    pub start_timeout: u64,
    /// Seconds from SIGTERM to SIGKILL.
    pub stop_timeout: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Its `mountPoints`, then those of each `volumesFrom` container (read-only where
    /// the `volumesFrom` entry says so), each with the task volume it names resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<HostEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub docker_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_security_options: Vec<SecurityOption>,
    pub readonly_root_filesystem: bool,
    pub privileged: bool,
    pub interactive: bool,
    pub pseudo_terminal: bool,
}

/// ECS's `networkMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

impl NetworkMode {
    pub fn as_ecs(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::None => "none",
        }
    }

    pub fn parse(mode: &str) -> Option<NetworkMode> {
        [
            NetworkMode::Bridge,
            NetworkMode::Host,
            NetworkMode::Awsvpc,
            NetworkMode::None,
        ]
        .into_iter()
        .find(|known| known.as_ecs() == mode)
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ecs())
    }
}

/// ECS's `pidMode`: the host's PID namespace, or one shared by the task's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PidMode {
    Host,
    Task,
}

/// ECS's `ipcMode`: the host's IPC namespace, one shared by the task's containers, or
/// a private one without shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpcMode {
    Host,
    Task,
    None,
}

impl IpcMode {
    pub fn as_ecs(self) -> &'static str {
        match self {
            IpcMode::Host => "host",
            IpcMode::Task => "task",
            IpcMode::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
}

/// One `portMappings` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: u16,
    /// `None`: not given or 0, the engine picks one (bridge), or the container port
    /// itself (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_ecs(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ecs())
    }
}

/// One `links` entry, `name` or `name:alias`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// One `dependsOn` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub container_name: String,
    pub condition: DependsOnCondition,
}

/// What a container waits for in the one it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DependsOnCondition {
    /// It has started.
    Start,
    /// It has exited.
    Complete,
    /// It has exited with code 0.
    Success,
    /// Its health check passes.
    Healthy,
}

impl DependsOnCondition {
    pub const ALL: [DependsOnCondition; 4] = [
        DependsOnCondition::Start,
        DependsOnCondition::Complete,
        DependsOnCondition::Success,
        DependsOnCondition::Healthy,
    ];

    pub fn as_ecs(self) -> &'static str {
        match self {
            DependsOnCondition::Start => "START",
            DependsOnCondition::Complete => "COMPLETE",
            DependsOnCondition::Success => "SUCCESS",
            DependsOnCondition::Healthy => "HEALTHY",
        }
    }

    /// ECS's words exactly (upper case).
    pub fn parse(condition: &str) -> Option<DependsOnCondition> {
        Self::ALL
            .into_iter()
            .find(|known| known.as_ecs() == condition)
    }
}

impl fmt::Display for DependsOnCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ecs())
    }
}

/// A `healthCheck` with ECS's defaults filled in; durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`, as the engine takes it.
    pub command: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub retries: u32,
    pub start_period: u64,
}

impl HealthCheck {
    /// `NONE` turns an image's own check off: such a container never reports healthy.
    pub fn is_none(&self) -> bool {
        self.command.first().is_some_and(|kind| kind == "NONE")
    }
}

/// A task volume: `volumes` of the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

/// Where a volume's files live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum VolumeSource {
    /// `host.sourcePath`: a host path bound into the containers.
    Host { source_path: String },
    /// A volume of the engine: `dockerVolumeConfiguration`, or, when neither it nor a
    /// host path is given, a `local` volume of the task's own.
    Docker(DockerVolumeConfiguration),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    pub scope: VolumeScope,
    pub autoprovision: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for DockerVolumeConfiguration {
    fn default() -> Self {
        DockerVolumeConfiguration {
            scope: VolumeScope::Task,
            autoprovision: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// `task`: one volume per task, removed with it; `shared`: kept across tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeScope {
    Task,
    Shared,
}

impl Volume {
    /// A volume the task creates and removes (not a host path, not shared).
    pub fn is_task_scoped(&self) -> bool {
        self.source.is_task_scoped()
    }
}

impl VolumeSource {
    pub fn is_task_scoped(&self) -> bool {
        matches!(self, VolumeSource::Docker(config) if config.scope == VolumeScope::Task)
    }
}

/// One mount of a container, with the task volume it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    pub source_volume: String,
    pub container_path: String,
    pub read_only: bool,
    /// The named volume's source.
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    pub log_driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_options: Vec<Secret>,
}

/// `linuxParameters`, as validation admitted them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    pub init_process_enabled: bool,
    pub capabilities: KernelCapabilities,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// MiB of /dev/shm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
    /// MiB of swap on top of the memory limit; 0: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<u64>,
    /// 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u8>,
}

/// Capabilities by the engine's names (`NET_ADMIN`, whether given as `net_admin` or
/// `CAP_NET_ADMIN`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub host_path: String,
    /// The host path when not given.
    pub container_path: String,
    /// All three when none are given, as in Docker.
    pub permissions: Vec<DevicePermission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePermission {
    Read,
    Write,
    Mknod,
}

impl DevicePermission {
    pub const ALL: [DevicePermission; 3] = [
        DevicePermission::Read,
        DevicePermission::Write,
        DevicePermission::Mknod,
    ];

    pub fn as_ecs(self) -> &'static str {
        match self {
            DevicePermission::Read => "read",
            DevicePermission::Write => "write",
            DevicePermission::Mknod => "mknod",
        }
    }

    pub fn parse(permission: &str) -> Option<DevicePermission> {
        Self::ALL
            .into_iter()
            .find(|known| known.as_ecs() == permission)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    pub container_path: String,
    /// MiB.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
}

/// A task definition record's spec, parsed once and kept beside it (never stored):
/// filled when the definition is registered, or on first use after the record is
/// loaded. Records are compared by what they store, so two caches always compare equal.
#[derive(Clone, Default)]
pub struct ParsedSpec(OnceLock<Result<TaskSpec, ValidationError>>);

impl ParsedSpec {
    pub fn new(spec: TaskSpec) -> ParsedSpec {
        ParsedSpec(OnceLock::from(Ok(spec)))
    }

    /// The spec of `request`, parsed on the first call only.
    pub fn get(
        &self,
        request: &berth_api::RegisterTaskDefinitionRequest,
    ) -> Result<&TaskSpec, &ValidationError> {
        self.0
            .get_or_init(|| crate::validation::stored_task_spec(request))
            .as_ref()
    }
}

impl PartialEq for ParsedSpec {
    fn eq(&self, _other: &ParsedSpec) -> bool {
        true
    }
}

impl fmt::Debug for ParsedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get() {
            Some(Ok(_)) => f.write_str("ParsedSpec(parsed)"),
            Some(Err(error)) => write!(f, "ParsedSpec(refused: {error})"),
            None => f.write_str("ParsedSpec(not yet parsed)"),
        }
    }
}

#[cfg(test)]
mod tests;
