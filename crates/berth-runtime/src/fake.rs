//! `FakeRuntime`: an in-memory `ContainerRuntime` that records every call, for the
//! agent's unit tests. Deterministic: ids come from a counter, time from a clock the
//! test moves, events are delivered synchronously into unbounded channels; nothing
//! sleeps or touches the machine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

use crate::error::RuntimeError;
use crate::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStats, ContainerStatus, Health,
    ImageInfo, LogEntry, NetworkSpec, PublishedPort, RuntimeEvent, RuntimeEventKind, RuntimeInfo,
    Stream, VolumeSpec,
};

/// The sandbox image reference the fake hands out.
pub const FAKE_SANDBOX_IMAGE: &str = "berth/sandbox:fake";
/// Exit code the fake reports for a container stopped by `stop_container` (SIGTERM).
pub const STOPPED_EXIT_CODE: i64 = 143;
/// Exit code for a container killed by `remove_container` or an OOM kill (SIGKILL).
pub const KILLED_EXIT_CODE: i64 = 137;
/// The CPU percent the fake reports for every running container.
pub const FAKE_CPU_PERCENT: f64 = 12.5;
/// The memory in use the fake reports for every running container.
pub const FAKE_MEMORY_USAGE_BYTES: u64 = 4 * 1024 * 1024;
/// The memory limit the fake reports for a container created without one.
pub const FAKE_MACHINE_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;

/// One call made to the fake, with its arguments.
// A test-only record: matching `CreateContainer(spec)` directly beats saving bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedCall {
    Info,
    EnsureImage(String),
    EnsureSandboxImage,
    CreateVolume(VolumeSpec),
    RemoveVolume(String),
    CreateNetwork(String),
    DisconnectNetwork {
        container_id: String,
        network: String,
    },
    CreateContainer(ContainerSpec),
    StartContainer(String),
    StopContainer {
        id: String,
        timeout: Duration,
    },
    RemoveContainer(String),
    InspectContainer(String),
    ListContainers {
        label_key: String,
        label_value: String,
    },
    Events {
        label_key: String,
        label_value: String,
    },
    Logs {
        id: String,
        since: Option<f64>,
        tail: Option<u64>,
    },
    Stats(String),
}

impl RecordedCall {
    /// The trait method's name, as used by [`FakeRuntime::fail_next`].
    pub fn method(&self) -> &'static str {
        match self {
            RecordedCall::Info => "info",
            RecordedCall::EnsureImage(_) => "ensure_image",
            RecordedCall::EnsureSandboxImage => "ensure_sandbox_image",
            RecordedCall::CreateVolume(_) => "create_volume",
            RecordedCall::RemoveVolume(_) => "remove_volume",
            RecordedCall::CreateNetwork(_) => "create_network",
            RecordedCall::DisconnectNetwork { .. } => "disconnect_network",
            RecordedCall::CreateContainer(_) => "create_container",
            RecordedCall::StartContainer(_) => "start_container",
            RecordedCall::StopContainer { .. } => "stop_container",
            RecordedCall::RemoveContainer(_) => "remove_container",
            RecordedCall::InspectContainer(_) => "inspect_container",
            RecordedCall::ListContainers { .. } => "list_containers",
            RecordedCall::Events { .. } => "events",
            RecordedCall::Logs { .. } => "logs",
            RecordedCall::Stats(_) => "stats",
        }
    }
}

#[derive(Debug)]
struct FakeContainer {
    spec: ContainerSpec,
    status: ContainerStatus,
}

type EventSender = mpsc::UnboundedSender<Result<RuntimeEvent, RuntimeError>>;

struct Subscriber {
    label_key: String,
    label_value: String,
    sender: EventSender,
}

#[derive(Default)]
struct State {
    calls: Vec<RecordedCall>,
    info: Option<RuntimeInfo>,
    images: BTreeMap<String, ImageInfo>,
    pull_failures: HashMap<String, String>,
    failures: HashMap<&'static str, RuntimeError>,
    /// Insertion order = creation order, so listings are stable.
    containers: Vec<(String, FakeContainer)>,
    volumes: BTreeMap<String, VolumeSpec>,
    logs: HashMap<String, Vec<LogEntry>>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
    next_host_port: u16,
    now: f64,
}

impl State {
    fn container(&mut self, id: &str) -> Option<&mut FakeContainer> {
        // Docker accepts the name or an id prefix as well as the full id.
        self.containers
            .iter_mut()
            .find(|(full_id, container)| {
                full_id == id
                    || container.spec.name == id
                    || (id.len() >= 12 && full_id.starts_with(id))
            })
            .map(|(_, container)| container)
    }

    fn emit(&mut self, id: &str, kind: RuntimeEventKind) {
        let Some(labels) = self.container(id).map(|c| c.status.labels.clone()) else {
            return;
        };
        let container_id = self
            .container(id)
            .map(|c| c.status.id.clone())
            .unwrap_or_default();
        let event = RuntimeEvent {
            container_id,
            labels: labels.clone(),
            kind,
            time: self.now,
        };
        // Dropped receivers simply stop getting events.
        self.subscribers.retain(|subscriber| {
            if labels.get(&subscriber.label_key) != Some(&subscriber.label_value) {
                return !subscriber.sender.is_closed();
            }
            subscriber.sender.send(Ok(event.clone())).is_ok()
        });
    }

    fn mark_exited(&mut self, id: &str, exit_code: i64) {
        let now = self.now;
        let Some(container) = self.container(id) else {
            return;
        };
        if container.status.state != ContainerState::Running {
            return;
        }
        container.status.state = ContainerState::Exited;
        container.status.exit_code = Some(exit_code);
        container.status.finished_at = Some(now);
        self.emit(
            id,
            RuntimeEventKind::Die {
                exit_code: Some(exit_code),
            },
        );
    }
}

/// An in-memory [`ContainerRuntime`] for tests. See the module docs.
pub struct FakeRuntime {
    state: Mutex<State>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    /// An empty engine: no images, no containers, clock at 1 700 000 000 s.
    pub fn new() -> Self {
        FakeRuntime {
            state: Mutex::new(State {
                next_id: 1,
                next_host_port: 32768,
                now: 1_700_000_000.0,
                ..State::default()
            }),
        }
    }

    /// A fake that already holds `images`.
    pub fn with_images<'a>(images: impl IntoIterator<Item = &'a str>) -> Self {
        let fake = Self::new();
        for image in images {
            fake.add_image(image);
        }
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the fake's state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Make `image` present locally (no pull needed).
    pub fn add_image(&self, image: &str) {
        self.lock()
            .images
            .insert(image.to_string(), fake_image_info(image));
    }

    /// Images present locally.
    pub fn images(&self) -> BTreeSet<String> {
        self.lock().images.keys().cloned().collect()
    }

    /// The next pull of `image` fails with `CannotPullContainerError: <message>`.
    pub fn fail_next_pull(&self, image: &str, message: &str) {
        self.lock()
            .pull_failures
            .insert(image.to_string(), message.to_string());
    }

    /// The next call of trait method `method` (e.g. `"start_container"`) returns `error`
    /// (and changes nothing).
    pub fn fail_next(&self, method: &'static str, error: RuntimeError) {
        self.lock().failures.insert(method, error);
    }

    /// What `info()` returns.
    pub fn set_info(&self, info: RuntimeInfo) {
        self.lock().info = Some(info);
    }

    /// Move the fake clock (start/finish times, event and log times).
    pub fn advance(&self, by: Duration) {
        self.lock().now += by.as_secs_f64();
    }

    pub fn now(&self) -> f64 {
        self.lock().now
    }

    /// The running container's process exits with `exit_code`: state Exited, a Die event.
    pub fn exit(&self, id: &str, exit_code: i64) {
        self.lock().mark_exited(id, exit_code);
    }

    /// The container's health check result changes; emits a Health event when it changed.
    pub fn set_health(&self, id: &str, health: Health) {
        let mut state = self.lock();
        let Some(container) = state.container(id) else {
            return;
        };
        if container.status.health == Some(health) {
            return;
        }
        container.status.health = Some(health);
        state.emit(id, RuntimeEventKind::Health(health));
    }

    /// The kernel OOM-kills the container: an Oom event, then Die with 137.
    pub fn oom(&self, id: &str) {
        let mut state = self.lock();
        let Some(container) = state.container(id) else {
            return;
        };
        container.status.oom_killed = true;
        state.emit(id, RuntimeEventKind::Oom);
        state.mark_exited(id, KILLED_EXIT_CODE);
    }

    /// The container writes a line, stamped with the fake clock.
    pub fn push_log(&self, id: &str, stream: Stream, message: &str) {
        let mut state = self.lock();
        let timestamp = state.now;
        let Some(full_id) = state.container(id).map(|c| c.status.id.clone()) else {
            return;
        };
        state.logs.entry(full_id).or_default().push(LogEntry {
            timestamp,
            stream,
            message: message.to_string(),
        });
    }

    /// The engine connection drops: every event stream yields an error and ends.
    pub fn disconnect_events(&self) {
        let mut state = self.lock();
        for subscriber in state.subscribers.drain(..) {
            let _ = subscriber.sender.send(Err(RuntimeError::Unreachable(
                "fake engine disconnected".to_string(),
            )));
        }
    }

    /// The spec a container was created with.
    pub fn container_spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().container(id).map(|c| c.spec.clone())
    }

    /// All containers, in creation order.
    pub fn containers(&self) -> Vec<ContainerStatus> {
        self.lock()
            .containers
            .iter()
            .map(|(_, c)| c.status.clone())
            .collect()
    }

    pub fn volumes(&self) -> Vec<VolumeSpec> {
        self.lock().volumes.values().cloned().collect()
    }

    /// Record the call, then return the injected failure for it, if any.
    fn record(&self, call: RecordedCall) -> Result<MutexGuard<'_, State>, RuntimeError> {
        let mut state = self.lock();
        let method = call.method();
        state.calls.push(call);
        match state.failures.remove(method) {
            Some(error) => Err(error),
            None => Ok(state),
        }
    }
}

fn fake_image_info(image: &str) -> ImageInfo {
    // A stable id derived from the name, so tests can compare ids across fakes.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in image.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ImageInfo {
        id: format!("sha256:{hash:016x}{}", "0".repeat(48)),
        digest: None,
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let state = self.record(RecordedCall::Info)?;
        Ok(state.info.clone().unwrap_or(RuntimeInfo {
            engine_version: "fake".to_string(),
            cpus: 2,
            memory_bytes: 4 << 30,
            hostname: "fake-host".to_string(),
        }))
    }

    async fn ensure_image(&self, image: &str) -> Result<ImageInfo, RuntimeError> {
        let mut state = self.record(RecordedCall::EnsureImage(image.to_string()))?;
        if let Some(found) = state.images.get(image) {
            return Ok(found.clone());
        }
        if let Some(message) = state.pull_failures.remove(image) {
            return Err(RuntimeError::ImagePull(format!(
                "CannotPullContainerError: {message}"
            )));
        }
        let info = fake_image_info(image);
        state.images.insert(image.to_string(), info.clone());
        Ok(info)
    }

    async fn ensure_sandbox_image(&self) -> Result<String, RuntimeError> {
        let mut state = self.record(RecordedCall::EnsureSandboxImage)?;
        state.images.insert(
            FAKE_SANDBOX_IMAGE.to_string(),
            fake_image_info(FAKE_SANDBOX_IMAGE),
        );
        Ok(FAKE_SANDBOX_IMAGE.to_string())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        let mut state = self.record(RecordedCall::CreateVolume(spec.clone()))?;
        state
            .volumes
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let mut state = self.record(RecordedCall::RemoveVolume(name.to_string()))?;
        state.volumes.remove(name);
        Ok(())
    }

    async fn create_network(
        &self,
        name: &str,
        _labels: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let _state = self.record(RecordedCall::CreateNetwork(name.to_string()))?;
        Ok(())
    }

    async fn disconnect_network(
        &self,
        container_id: &str,
        network: &str,
    ) -> Result<(), RuntimeError> {
        let _state = self.record(RecordedCall::DisconnectNetwork {
            container_id: container_id.to_string(),
            network: network.to_string(),
        })?;
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut state = self.record(RecordedCall::CreateContainer(spec.clone()))?;
        if state
            .containers
            .iter()
            .any(|(_, c)| c.spec.name == spec.name)
        {
            return Err(RuntimeError::Conflict(format!(
                "creating container {}: the name is already in use",
                spec.name
            )));
        }
        let Some(image) = state.images.get(&spec.image).cloned() else {
            return Err(RuntimeError::NotFound(format!(
                "creating container {} from image {}: no such image",
                spec.name, spec.image
            )));
        };
        // 64 hex digits like Docker's, unique in the first 12 (the short id).
        let id = format!("{:012x}{}", state.next_id, "f".repeat(52));
        state.next_id += 1;
        let status = ContainerStatus {
            id: id.clone(),
            name: spec.name.clone(),
            image: spec.image.clone(),
            image_id: image.id,
            labels: spec.labels.clone(),
            state: ContainerState::Created,
            exit_code: None,
            error: None,
            oom_killed: false,
            health: None,
            started_at: None,
            finished_at: None,
            ports: Vec::new(),
            ip_address: None,
            pid: None,
        };
        state.containers.push((
            id.clone(),
            FakeContainer {
                spec: spec.clone(),
                status,
            },
        ));
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.record(RecordedCall::StartContainer(id.to_string()))?;
        let now = state.now;
        let Some(container) = state.container(id) else {
            return Err(RuntimeError::NotFound(format!(
                "starting container {id}: no such container"
            )));
        };
        if container.status.state == ContainerState::Running {
            return Ok(());
        }
        let network = container.spec.network.clone();
        let has_health_check = container.spec.health_check.is_some();
        // Like Docker: joining a namespace needs its owner running.
        if let NetworkSpec::Container(owner) = &network {
            let owner_running = state
                .container(owner)
                .is_some_and(|c| c.status.state == ContainerState::Running);
            if !owner_running {
                return Err(RuntimeError::Engine(format!(
                    "starting container {id}: cannot join network of container {owner}: it is not running"
                )));
            }
        }
        let mut ports = Vec::new();
        let mut ip_address = None;
        if let NetworkSpec::Bridge { ports: specs, .. } = &network {
            for port in specs {
                let host_port = if port.host_port == 0 {
                    let dynamic = state.next_host_port;
                    state.next_host_port = state.next_host_port.wrapping_add(1);
                    dynamic
                } else {
                    port.host_port
                };
                ports.push(PublishedPort {
                    container_port: port.container_port,
                    host_ip: "0.0.0.0".to_string(),
                    host_port,
                    protocol: port.protocol,
                });
            }
            let index = state.containers.iter().position(|(_, c)| {
                c.status.id == id || c.spec.name == id || c.status.id.starts_with(id)
            });
            ip_address = index.map(|index| format!("172.17.{}.{}", index / 250, index % 250 + 2));
        }
        let Some(container) = state.container(id) else {
            return Ok(());
        };
        container.status.state = ContainerState::Running;
        container.status.started_at = Some(now);
        container.status.finished_at = None;
        container.status.exit_code = None;
        container.status.oom_killed = false;
        container.status.health = has_health_check.then_some(Health::Starting);
        container.status.ports = ports;
        container.status.ip_address = ip_address;
        state.emit(id, RuntimeEventKind::Start);
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let mut state = self.record(RecordedCall::StopContainer {
            id: id.to_string(),
            timeout,
        })?;
        state.mark_exited(id, STOPPED_EXIT_CODE);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.record(RecordedCall::RemoveContainer(id.to_string()))?;
        let Some(full_id) = state.container(id).map(|c| c.status.id.clone()) else {
            return Ok(());
        };
        state.mark_exited(&full_id, KILLED_EXIT_CODE);
        state.emit(&full_id, RuntimeEventKind::Destroy);
        state
            .containers
            .retain(|(container_id, _)| *container_id != full_id);
        state.logs.remove(&full_id);
        Ok(())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerStatus>, RuntimeError> {
        let mut state = self.record(RecordedCall::InspectContainer(id.to_string()))?;
        Ok(state.container(id).map(|c| c.status.clone()))
    }

    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let state = self.record(RecordedCall::ListContainers {
            label_key: label_key.to_string(),
            label_value: label_value.to_string(),
        })?;
        Ok(state
            .containers
            .iter()
            .filter(|(_, c)| {
                c.status.labels.get(label_key).map(String::as_str) == Some(label_value)
            })
            .map(|(_, c)| c.status.clone())
            .collect())
    }

    fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        match self.record(RecordedCall::Events {
            label_key: label_key.to_string(),
            label_value: label_value.to_string(),
        }) {
            Ok(mut state) => state.subscribers.push(Subscriber {
                label_key: label_key.to_string(),
                label_value: label_value.to_string(),
                sender,
            }),
            Err(error) => {
                let _ = sender.send(Err(error));
            }
        }
        // Ends after an error, like the Docker stream on disconnect.
        futures_util::stream::unfold((receiver, false), |(mut receiver, failed)| async move {
            if failed {
                return None;
            }
            let item = receiver.recv().await?;
            let failed = item.is_err();
            Some((item, (receiver, failed)))
        })
        .boxed()
    }

    async fn logs(
        &self,
        id: &str,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogEntry>, RuntimeError> {
        let mut state = self.record(RecordedCall::Logs {
            id: id.to_string(),
            since,
            tail,
        })?;
        let Some(full_id) = state.container(id).map(|c| c.status.id.clone()) else {
            return Err(RuntimeError::NotFound(format!(
                "reading logs of container {id}: no such container"
            )));
        };
        let mut entries: Vec<LogEntry> = state
            .logs
            .get(&full_id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| since.is_none_or(|since| entry.timestamp > since))
            .collect();
        if let Some(tail) = tail {
            let keep = usize::try_from(tail).unwrap_or(usize::MAX);
            let skip = entries.len().saturating_sub(keep);
            entries.drain(..skip);
        }
        Ok(entries)
    }

    /// Fixed figures for a running container (the spec's memory limit, else
    /// [`FAKE_MACHINE_MEMORY_BYTES`]), zeros for one that is not running.
    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let mut state = self.record(RecordedCall::Stats(id.to_string()))?;
        let Some(container) = state.container(id) else {
            return Err(RuntimeError::NotFound(format!(
                "reading stats of container {id}: no such container"
            )));
        };
        let running = container.status.state == ContainerState::Running;
        let limit = container
            .spec
            .memory_bytes
            .and_then(|bytes| u64::try_from(bytes).ok())
            .unwrap_or(FAKE_MACHINE_MEMORY_BYTES);
        Ok(ContainerStats {
            cpu_percent: if running { FAKE_CPU_PERCENT } else { 0.0 },
            memory_usage_bytes: if running { FAKE_MEMORY_USAGE_BYTES } else { 0 },
            memory_limit_bytes: limit,
            network_rx_bytes: if running { 1000 } else { 0 },
            network_tx_bytes: if running { 2000 } else { 0 },
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: u64::from(running),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{PortSpec, Protocol};
    use std::sync::Arc;

    fn spec(name: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(name, "app:1");
        spec.labels.insert("berth.managed".into(), "true".into());
        spec
    }

    #[tokio::test]
    async fn lifecycle_records_calls_and_emits_events_in_order() {
        let fake = Arc::new(FakeRuntime::with_images(["app:1"]));
        let runtime: Arc<dyn ContainerRuntime> = fake.clone();
        let mut events = runtime.events("berth.managed", "true");

        let id = runtime.create_container(&spec("web")).await.unwrap();
        runtime.start_container(&id).await.unwrap();
        fake.set_health(&id, Health::Healthy);
        fake.advance(Duration::from_secs(2));
        fake.exit(&id, 3);
        runtime.remove_container(&id).await.unwrap();

        let mut kinds = Vec::new();
        for _ in 0..4 {
            kinds.push(events.next().await.unwrap().unwrap().kind);
        }
        assert_eq!(
            kinds,
            vec![
                RuntimeEventKind::Start,
                RuntimeEventKind::Health(Health::Healthy),
                RuntimeEventKind::Die { exit_code: Some(3) },
                RuntimeEventKind::Destroy,
            ]
        );
        assert_eq!(
            fake.calls()
                .iter()
                .map(RecordedCall::method)
                .collect::<Vec<_>>(),
            vec![
                "events",
                "create_container",
                "start_container",
                "remove_container"
            ]
        );
        assert_eq!(runtime.inspect_container(&id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn pulls_succeed_unless_told_to_fail() {
        let fake = FakeRuntime::new();
        fake.fail_next_pull("bad:1", "pull access denied for bad");
        let error = fake.ensure_image("bad:1").await.unwrap_err();
        assert_eq!(
            error,
            RuntimeError::ImagePull("CannotPullContainerError: pull access denied for bad".into())
        );
        // only the next pull fails
        assert!(fake.ensure_image("bad:1").await.is_ok());
        assert!(fake.images().contains("bad:1"));
    }

    #[tokio::test]
    async fn dynamic_ports_exit_codes_and_logs() {
        let fake = FakeRuntime::with_images(["app:1"]);
        let mut web = spec("web");
        web.network = NetworkSpec::Bridge {
            network: None,
            ports: vec![PortSpec {
                container_port: 80,
                host_port: 0,
                protocol: Protocol::Tcp,
            }],
        };
        let id = fake.create_container(&web).await.unwrap();
        assert!(matches!(
            fake.create_container(&web).await,
            Err(RuntimeError::Conflict(_))
        ));
        fake.start_container(&id).await.unwrap();
        let status = fake.inspect_container(&id).await.unwrap().unwrap();
        assert_eq!(status.ports[0].host_port, 32768);
        assert_eq!(status.state, ContainerState::Running);

        fake.push_log(&id, Stream::Stdout, "one");
        fake.advance(Duration::from_secs(1));
        fake.push_log(&id, Stream::Stderr, "two");
        fake.push_log(&id, Stream::Stdout, "three");
        let since = fake.now() - 0.5;
        let logs = fake.logs(&id, Some(since), Some(1)).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "three");

        fake.stop_container(&id, Duration::from_secs(1))
            .await
            .unwrap();
        let status = fake.inspect_container(&id).await.unwrap().unwrap();
        assert_eq!(status.state, ContainerState::Exited);
        assert_eq!(status.exit_code, Some(STOPPED_EXIT_CODE));
        // stopping again or a missing container is fine
        fake.stop_container(&id, Duration::from_secs(1))
            .await
            .unwrap();
        fake.stop_container("missing", Duration::from_secs(1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn joining_a_namespace_needs_a_running_owner_and_failures_can_be_injected() {
        let fake = FakeRuntime::with_images(["app:1"]);
        let sandbox_image = fake.ensure_sandbox_image().await.unwrap();
        let sandbox = fake
            .create_container(&ContainerSpec::new("sandbox", sandbox_image))
            .await
            .unwrap();
        let mut app = spec("app");
        app.network = NetworkSpec::Container(sandbox.clone());
        let app_id = fake.create_container(&app).await.unwrap();
        assert!(fake.start_container(&app_id).await.is_err());
        fake.start_container(&sandbox).await.unwrap();
        fake.start_container(&app_id).await.unwrap();

        fake.fail_next("info", RuntimeError::Unreachable("down".into()));
        assert!(fake.info().await.is_err());
        assert!(fake.info().await.is_ok());
        let listed = fake.list_containers("berth.managed", "true").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, app_id);
    }

    #[tokio::test]
    async fn event_streams_end_after_a_disconnect() {
        let fake = FakeRuntime::new();
        let mut events = fake.events("berth.managed", "true");
        fake.disconnect_events();
        assert!(matches!(
            events.next().await,
            Some(Err(RuntimeError::Unreachable(_)))
        ));
        assert!(events.next().await.is_none());
    }
}
