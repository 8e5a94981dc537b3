//! The `ContainerRuntime` trait and the plain types it speaks. These types are the
//! agent's whole view of the engine: std types only, so the agent and its tests never
//! see bollard.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::stream::BoxStream;

use crate::error::RuntimeError;

/// The narrow interface through which the agent drives containers on its machine.
/// Implemented by [`crate::DockerRuntime`] (the real engine) and [`crate::FakeRuntime`]
/// (in memory, for tests). Used as `Arc<dyn ContainerRuntime>`.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Engine facts: version string, number of CPUs, total memory bytes, hostname.
    /// Errors when the engine is not reachable.
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError>;

    /// Make sure `image` is present locally: use it if present, else pull it.
    /// A failed pull returns [`RuntimeError::ImagePull`] starting with
    /// `CannotPullContainerError: ` as ECS reports it.
    async fn ensure_image(&self, image: &str) -> Result<ImageInfo, RuntimeError>;

    /// The image of the sandbox container that holds a task's network namespace;
    /// builds it if missing; returns its reference (`berth/sandbox:<hash>`).
    async fn ensure_sandbox_image(&self) -> Result<String, RuntimeError>;

    /// Create a named volume. Creating an existing volume is not an error.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError>;

    /// Remove a named volume. A missing volume is not an error.
    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError>;
    /// Creates a bridge network with DNS for its containers; an existing one is kept.
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError>;
    /// Takes a container off a network (it stops resolving and being resolved there).
    /// Already off, or either gone: Ok.
    async fn disconnect_network(
        &self,
        container_id: &str,
        network: &str,
    ) -> Result<(), RuntimeError>;

    /// Create (not start) a container; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError>;

    /// SIGTERM (or the image's stop signal), then SIGKILL after `timeout`.
    /// Already stopped or missing is not an error.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError>;

    /// Force-remove (kills if running), also its anonymous volumes. Missing is not an error.
    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError>;

    /// `None` when the container does not exist.
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerStatus>, RuntimeError>;

    /// All containers (running or not) carrying label `label_key=label_value`.
    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerStatus>, RuntimeError>;

    /// Container events (start, die, oom, health changes, destroy) of containers labelled
    /// `label_key=label_value`. Every event after this call is delivered, even if the
    /// stream is polled later. The stream ends when the engine disconnects (after
    /// yielding the error); the caller re-subscribes and re-lists.
    fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>>;

    /// A container's output, one entry per line, oldest first; only lines after `since`
    /// (epoch seconds) and only the last `tail` lines when given.
    async fn logs(
        &self,
        id: &str,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogEntry>, RuntimeError>;

    /// A running container's figures now, as `docker stats` shows them (its CPU over
    /// the engine's last sampling interval).
    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError>;
}

/// Facts about the engine and its machine, reported by the agent at registration.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeInfo {
    pub engine_version: String,
    pub cpus: u64,
    pub memory_bytes: u64,
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// The local image id (`sha256:...`).
    pub id: String,
    /// The registry digest (`name@sha256:...`) when the image came from a registry.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeSpec {
    pub name: String,
    /// `None` = the engine's `local` driver.
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Everything needed to create one container of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub network: NetworkSpec,
    pub memory_bytes: Option<i64>,
    pub memory_reservation_bytes: Option<i64>,
    /// ECS cpu units, mapped 1:1 to Docker CPU shares; `None` or 0 = not set.
    pub cpu_shares: Option<i64>,
    pub mounts: Vec<MountSpec>,
    pub health_check: Option<HealthCheckSpec>,
    /// Driver name and options; `None` = the engine's default (json-file).
    pub log_driver: Option<(String, BTreeMap<String, String>)>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// (name, soft, hard), e.g. ("nofile", 1024, 4096).
    pub ulimits: Vec<(String, i64, i64)>,
    /// (hostname, ip) added to /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    pub dns_servers: Vec<String>,
    pub dns_search: Vec<String>,
    pub stop_timeout_secs: Option<i64>,
    /// DNS names the container answers to on its named bridge network (service
    /// discovery); ignored on the default bridge, which has no DNS.
    pub network_aliases: Vec<String>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// Capability names as the engine reads them (`NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub devices: Vec<DeviceSpec>,
    /// Size of /dev/shm; `None` = the engine's default (64 MiB).
    pub shm_size_bytes: Option<i64>,
    /// (container path, mount options such as `size=64m,noexec`).
    pub tmpfs: Vec<(String, String)>,
    /// Memory plus swap; equal to `memory_bytes` means no swap. `None` = engine default.
    pub memory_swap_bytes: Option<i64>,
    /// 0 to 100; `None` = the host's.
    pub memory_swappiness: Option<i64>,
    /// The engine's SecurityOpt entries (`no-new-privileges`, `apparmor=PROFILE`).
    pub security_options: Vec<String>,
    /// `None` = a PID namespace of its own.
    pub pid_mode: Option<NamespaceMode>,
    /// `None` = the engine's default IPC namespace setting.
    pub ipc_mode: Option<NamespaceMode>,
    /// Keep stdin open (`interactive`).
    pub open_stdin: bool,
    /// Allocate a terminal (`pseudoTerminal`).
    pub tty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: String,
    /// cgroup permissions: some of `r`, `w`, `m`.
    pub permissions: String,
}

/// Whose PID or IPC namespace a container uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    /// The host's.
    Host,
    /// That of the container with this id (the task's sandbox).
    Container(String),
    /// Its own, which other containers may join (IPC only).
    Shareable,
    /// Its own, and no /dev/shm (IPC only).
    None,
}

impl ContainerSpec {
    /// A spec with only a name and an image; everything else empty or engine default.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            labels: BTreeMap::new(),
            env: Vec::new(),
            command: None,
            entrypoint: None,
            working_dir: None,
            user: None,
            hostname: None,
            network: NetworkSpec::Bridge {
                network: None,
                ports: Vec::new(),
            },
            memory_bytes: None,
            memory_reservation_bytes: None,
            cpu_shares: None,
            mounts: Vec::new(),
            health_check: None,
            log_driver: None,
            readonly_rootfs: false,
            privileged: false,
            ulimits: Vec::new(),
            extra_hosts: Vec::new(),
            dns_servers: Vec::new(),
            dns_search: Vec::new(),
            stop_timeout_secs: None,
            init: false,
            network_aliases: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            devices: Vec::new(),
            shm_size_bytes: None,
            tmpfs: Vec::new(),
            memory_swap_bytes: None,
            memory_swappiness: None,
            security_options: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
            open_stdin: false,
            tty: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetworkSpec {
    /// A bridge network (`None` = Docker's default bridge), publishing `ports`.
    Bridge {
        network: Option<String>,
        ports: Vec<PortSpec>,
    },
    Host,
    None,
    /// Join the network namespace of the container with this id (the task's sandbox).
    Container(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    /// 0 = the engine picks a free (dynamic) host port.
    pub host_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountSpec {
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    /// ECS form, passed to Docker as is: `["CMD-SHELL", "curl -f ..."]` or `["CMD", ...]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image reference the container was created from.
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    /// The engine's `State.Error` (e.g. why it could not start).
    pub error: Option<String>,
    pub oom_killed: bool,
    /// `None` when the container has no health check.
    pub health: Option<Health>,
    /// Epoch seconds. For a process that exits at once the engine may record
    /// `started_at` a little after `finished_at`.
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub ports: Vec<PublishedPort>,
    /// The IP of the container's first network, if it has its own.
    pub ip_address: Option<String>,
    /// The process id of its main process on this machine while it runs (inspect only):
    /// `/proc/PID/ns/net` is its network namespace.
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Dead,
    /// paused, restarting, removing...: states berth never asks for.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEvent {
    pub container_id: String,
    /// The container's labels, as the engine attaches them to the event.
    pub labels: BTreeMap<String, String>,
    pub kind: RuntimeEventKind,
    /// Epoch seconds.
    pub time: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEventKind {
    Start,
    Die { exit_code: Option<i64> },
    Oom,
    Health(Health),
    Destroy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Epoch seconds.
    pub timestamp: f64,
    pub stream: Stream,
    /// One line, without the trailing newline.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A container's resource use, as `docker stats` computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStats {
    /// Percent of one CPU over the last sampling interval: 200 is two cores busy.
    pub cpu_percent: f64,
    /// Memory in use, without the page cache the kernel may reclaim (inactive files).
    pub memory_usage_bytes: u64,
    /// The container's memory limit (the machine's memory when it has none).
    pub memory_limit_bytes: u64,
    /// Bytes received and sent over all its networks since it started.
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    /// Bytes read from and written to block devices since it started.
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    /// Processes (and threads) in it.
    pub pids: u64,
}
