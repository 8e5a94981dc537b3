//! One task's life on this node, as one tokio task driven by messages: prepare (pull,
//! volumes, sandbox), start its containers in dependsOn order, watch them, stop them,
//! report every change, and remove everything after the cleanup wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_api::NetworkBinding;
use berth_core::model::{
    ContainerStatus as EcsContainerStatus, HealthStatus, StopCode, TaskStatus,
};
use berth_core::spec::{DependsOnCondition as Condition, NetworkMode, TaskSpec};
use berth_core::{ContainerReport, TaskReport, Timestamp};
use berth_runtime::{
    ContainerRuntime, ContainerState, ContainerStatus, Health, RuntimeEvent, RuntimeEventKind,
};
use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::container_spec;
use crate::labels;
use crate::reporter::Reporter;
use berth_proto::{AssignedTask as Task, Assignment};

pub(crate) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
pub(crate) const ESSENTIAL_EXITED: &str = "Essential container in task exited";
const SANDBOX_STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) enum RunnerMessage {
    /// A runtime event of one of the task's containers.
    Event(RuntimeEvent),
    /// The control plane wants the task stopped.
    Stop,
    /// Events may have been missed (the stream broke): re-inspect every container.
    Resync,
}

/// What every runner shares with the agent.
pub(crate) struct Shared {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub reporter: Reporter,
    pub node_id: String,
    pub sandbox_image: String,
    pub cleanup_wait: Duration,
    /// Cluster networks known to exist, so each is created once, not per task. An
    /// async lock: tasks starting together wait for the one creating the network.
    pub networks: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// Whether this node's endpoints serve its services' names (the agent may enter
    /// network namespaces); if not, tasks carry their service's name themselves.
    pub endpoints_serve: bool,
}

impl Shared {
    /// Creates the cluster's network unless this agent already did.
    pub(crate) async fn ensure_network(
        &self,
        cluster: &str,
    ) -> Result<String, berth_runtime::RuntimeError> {
        let name = labels::cluster_network(cluster, &self.node_id);
        let mut known = self.networks.lock().await;
        if !known.contains(&name) {
            let mut network_labels = std::collections::BTreeMap::new();
            network_labels.insert(labels::MANAGED.to_string(), "true".to_string());
            network_labels.insert(labels::CLUSTER.to_string(), cluster.to_string());
            network_labels.insert(labels::NODE.to_string(), self.node_id.clone());
            self.runtime.create_network(&name, &network_labels).await?;
            known.insert(name.clone());
        }
        Ok(name)
    }

    /// Forgets a network, e.g. after the engine said it was gone.
    async fn forget_network(&self, name: &str) {
        self.networks.lock().await.remove(name);
    }
}

pub(crate) enum Start {
    /// Start the task from scratch.
    Fresh,
    /// Take over the task's containers found on the machine after a restart.
    Adopt(Vec<ContainerStatus>),
}

pub(crate) struct RunnerHandle {
    pub sender: mpsc::UnboundedSender<RunnerMessage>,
    pub join: JoinHandle<()>,
}

/// Runs the task; sends its id on `finished` once everything of it is removed.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    assignment: Assignment,
    start: Start,
    finished: mpsc::UnboundedSender<String>,
) -> RunnerHandle {
    let (sender, inbox) = mpsc::unbounded_channel();
    let runner = Runner::new(shared, assignment, inbox);
    let join = tokio::spawn(async move {
        let task_id = runner.task.id.clone();
        runner.run(start).await;
        let _ = finished.send(task_id);
    });
    RunnerHandle { sender, join }
}

pub(crate) fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Not created yet (waiting for its dependencies).
    Waiting,
    Running,
    Exited,
    /// Given up on: it will never run in this task.
    NeverStarted,
}

/// One container of the task, as the runner tracks it.
struct Slot {
    index: usize,
    name: String,
    image: String,
    essential: bool,
    depends_on: Vec<(String, Condition)>,
    start_timeout: Duration,
    stop_timeout: Duration,
    state: SlotState,
    /// Has been seen running (START is met).
    started: bool,
    runtime_id: Option<String>,
    exit_code: Option<i64>,
    health: Option<Health>,
    reason: Option<String>,
    image_digest: Option<String>,
    bindings: Vec<NetworkBinding>,
}

/// Why and how the task ends.
struct Ending {
    stop_code: Option<StopCode>,
    reason: Option<String>,
    /// Asked for by the control plane: reported through DEACTIVATING and STOPPING, and
    /// containers stop in reverse dependency order.
    user_initiated: bool,
}

impl Ending {
    fn requested() -> Ending {
        Ending {
            stop_code: None,
            reason: None,
            user_initiated: true,
        }
    }
    fn failed_to_start(reason: String) -> Ending {
        Ending {
            stop_code: Some(StopCode::TaskFailedToStart),
            reason: Some(reason),
            user_initiated: false,
        }
    }
    fn essential_exited(reason: impl Into<String>) -> Ending {
        Ending {
            stop_code: Some(StopCode::EssentialContainerExited),
            reason: Some(reason.into()),
            user_initiated: false,
        }
    }
}

enum Dependency {
    Met,
    Pending,
    Impossible(String),
}

struct Runner {
    shared: Arc<Shared>,
    task: Task,
    spec: TaskSpec,
    mode: NetworkMode,
    inbox: mpsc::UnboundedReceiver<RunnerMessage>,
    sandbox_id: Option<String>,
    slots: Vec<Slot>,
    private_ip: Option<String>,
    running_reported: bool,
    /// When dependency waiting began (startTimeout counts from here).
    launched_at: Instant,
}

impl Runner {
    fn new(
        shared: Arc<Shared>,
        assignment: Assignment,
        inbox: mpsc::UnboundedReceiver<RunnerMessage>,
    ) -> Runner {
        let Assignment { task, spec } = assignment;
        let slots = spec
            .container_definitions
            .iter()
            .enumerate()
            .map(|(index, container)| Slot {
                index,
                name: container.name.clone(),
                image: container.image.clone(),
                essential: container.essential,
                depends_on: container
                    .depends_on
                    .iter()
                    .map(|d| (d.container_name.clone(), d.condition))
                    .collect(),
                start_timeout: Duration::from_secs(container.start_timeout),
                stop_timeout: Duration::from_secs(container.stop_timeout),
                state: SlotState::Waiting,
                started: false,
                runtime_id: None,
                exit_code: None,
                health: None,
                reason: None,
                image_digest: None,
                bindings: Vec::new(),
            })
            .collect();
        let mode = spec.network_mode;
        Runner {
            shared,
            task,
            spec,
            mode,
            inbox,
            sandbox_id: None,
            slots,
            private_ip: None,
            running_reported: false,
            launched_at: Instant::now(),
        }
    }

    async fn run(mut self, start: Start) {
        let prepared = match start {
            Start::Fresh => self.prepare().await,
            Start::Adopt(found) => self.adopt(found).await,
        };
        let ending = match prepared {
            Ok(()) => self.drive().await,
            Err(ending) => ending,
        };
        self.finish(ending).await;
        self.wait_for_cleanup().await;
        self.cleanup().await;
    }

    // ---- reports ----

    fn container_report(&self, slot: &Slot, stopped: bool) -> ContainerReport {
        let last_status = match slot.state {
            _ if stopped => EcsContainerStatus::Stopped,
            SlotState::Waiting => EcsContainerStatus::Pending,
            SlotState::Running => EcsContainerStatus::Running,
            SlotState::Exited | SlotState::NeverStarted => EcsContainerStatus::Stopped,
        };
        ContainerReport {
            name: slot.name.clone(),
            runtime_id: slot.runtime_id.clone(),
            image_digest: slot.image_digest.clone(),
            last_status,
            exit_code: slot.exit_code,
            reason: slot.reason.clone(),
            network_bindings: slot.bindings.clone(),
            health_status: match slot.health {
                Some(Health::Healthy) => HealthStatus::Healthy,
                Some(Health::Unhealthy) => HealthStatus::Unhealthy,
                Some(Health::Starting) | None => HealthStatus::Unknown,
            },
        }
    }

    fn current_status(&self) -> TaskStatus {
        if self.running_reported {
            TaskStatus::Running
        } else {
            TaskStatus::Pending
        }
    }

    fn report_containers(&self, indices: &[usize]) {
        let mut report = TaskReport::status(&self.task.id, self.current_status());
        report.containers = indices
            .iter()
            .map(|i| self.container_report(&self.slots[*i], false))
            .collect();
        self.shared.reporter.send(report);
    }

    fn report_running(&mut self) {
        let mut report = TaskReport::status(&self.task.id, TaskStatus::Running);
        report.started_at = Some(now());
        report.containers = self
            .slots
            .iter()
            .map(|s| self.container_report(s, false))
            .collect();
        report.private_ipv4_address = self.private_ip.clone();
        self.shared.reporter.send(report);
        self.running_reported = true;
    }

    /// STOPPING, for a task that ends on its own while some of its containers still run:
    /// each container as it is now, and why the task stops.
    fn report_stopping(&self, ending: &Ending) {
        let mut report = TaskReport::status(&self.task.id, TaskStatus::Stopping);
        report.containers = self
            .slots
            .iter()
            .map(|s| self.container_report(s, false))
            .collect();
        report.stop_code = ending.stop_code;
        report.stopped_reason = ending.reason.clone();
        self.shared.reporter.send(report);
    }

    // ---- starting ----

    /// A stop asked for before any container exists ends the task at once.
    fn stop_requested(&mut self) -> Result<(), Ending> {
        while let Ok(message) = self.inbox.try_recv() {
            if let RunnerMessage::Stop = message {
                return Err(Ending::requested());
            }
        }
        Ok(())
    }

    /// Pull images, create volumes, start the sandbox.
    async fn prepare(&mut self) -> Result<(), Ending> {
        let mut pending = TaskReport::status(&self.task.id, TaskStatus::Pending);
        pending.pull_started_at = Some(now());
        pending.containers = self
            .slots
            .iter()
            .map(|s| self.container_report(s, false))
            .collect();
        self.shared.reporter.send(pending);

        if let Some(reason) = container_spec::unresolvable_secret(&self.spec) {
            return Err(Ending::failed_to_start(reason));
        }
        self.stop_requested()?;

        let runtime = self.shared.runtime.clone();
        let mut images: Vec<String> = self.slots.iter().map(|s| s.image.clone()).collect();
        images.sort();
        images.dedup();
        let pulls = join_all(images.iter().map(|image| runtime.ensure_image(image))).await;
        let mut failure = None;
        for (image, pulled) in images.iter().zip(pulls) {
            match pulled {
                Ok(info) => {
                    let digest = info.digest.clone().or(Some(info.id.clone()));
                    for slot in self.slots.iter_mut().filter(|s| &s.image == image) {
                        slot.image_digest = digest.clone();
                    }
                }
                Err(error) => {
                    let mut message = error.message().to_string();
                    if !message.starts_with("CannotPullContainerError") {
                        message = format!("CannotPullContainerError: {message}");
                    }
                    for slot in self.slots.iter_mut().filter(|s| &s.image == image) {
                        slot.reason = Some(message.clone());
                    }
                    failure.get_or_insert(message);
                }
            }
        }
        let mut pulled = TaskReport::status(&self.task.id, TaskStatus::Pending);
        pulled.pull_stopped_at = Some(now());
        self.shared.reporter.send(pulled);
        if let Some(message) = failure {
            return Err(Ending::failed_to_start(message));
        }
        self.stop_requested()?;

        for (volume, _) in
            container_spec::task_volumes(&self.shared.node_id, &self.task, &self.spec)
        {
            if let Err(error) = runtime.create_volume(&volume).await {
                return Err(Ending::failed_to_start(format!(
                    "CannotCreateVolumeError: creating volume {}: {}",
                    volume.name,
                    error.message()
                )));
            }
        }

        if matches!(self.mode, NetworkMode::Bridge | NetworkMode::Awsvpc) {
            if let Err(error) = self.shared.ensure_network(&self.task.cluster).await {
                self.shared
                    .forget_network(&labels::cluster_network(
                        &self.task.cluster,
                        &self.shared.node_id,
                    ))
                    .await;
                return Err(Ending::failed_to_start(format!(
                    "CannotStartContainerError: creating the cluster network: {}",
                    error.message()
                )));
            }
        }
        // The control plane checked these against the operator's policy when it placed
        // the task; the agent does not check again (it has no policy), so the log says
        // only that. Each is said here, where the host is reached, so the operator sees
        // what runs with what.
        for used in &self.spec.privileges {
            tracing::warn!(
                task = %self.task.id,
                family = %self.task.family,
                privilege = %used.kind,
                field = %used.field,
                "a task uses privilege on this host, admitted by the control plane's privilege policy when it placed the task"
            );
        }
        if container_spec::holds_own_namespace(&self.spec) {
            return self.start_standalone().await;
        }
        let mut sandbox = container_spec::sandbox_spec(
            &self.shared.node_id,
            &self.task,
            &self.spec,
            &self.shared.sandbox_image,
        );
        sandbox.network_aliases = self.service_aliases();
        let sandbox_failed = |error: berth_runtime::RuntimeError| {
            Ending::failed_to_start(format!(
                "CannotStartContainerError: starting the task's sandbox: {}",
                error.message()
            ))
        };
        let sandbox_id = runtime
            .create_container(&sandbox)
            .await
            .map_err(sandbox_failed)?;
        self.sandbox_id = Some(sandbox_id.clone());
        let mut specs = Vec::with_capacity(self.slots.len());
        for index in 0..self.slots.len() {
            let spec = container_spec::container_spec(
                &self.shared.node_id,
                &self.task,
                &self.spec,
                index,
                &sandbox_id,
            )
            .map_err(|reason| {
                Ending::failed_to_start(format!("CannotCreateContainerError: {reason}"))
            })?;
            specs.push(spec);
        }
        // The engine lets a container be created to join a namespace whose owner has
        // not started yet; only its start needs the owner running. So the task's
        // containers are created while the sandbox starts: one engine round trip less
        // on every task start. They start once their dependencies allow.
        let needs_inspect = self.mode == NetworkMode::Awsvpc
            || self.mode == NetworkMode::Host
            || self
                .spec
                .container_definitions
                .iter()
                .any(|c| !c.port_mappings.is_empty());
        let start_sandbox = async {
            runtime
                .start_container(&sandbox_id)
                .await
                .map_err(sandbox_failed)?;
            if !needs_inspect {
                return Ok(None);
            }
            runtime
                .inspect_container(&sandbox_id)
                .await
                .map_err(sandbox_failed)
        };
        let create_containers = join_all(specs.iter().map(|spec| runtime.create_container(spec)));
        let (inspected, created) = tokio::join!(start_sandbox, create_containers);
        let mut failure = None;
        for (slot, created) in self.slots.iter_mut().zip(created) {
            match created {
                Ok(id) => slot.runtime_id = Some(id),
                Err(error) => {
                    let reason = format!(
                        "CannotCreateContainerError: creating container {}: {}",
                        slot.name,
                        error.message()
                    );
                    slot.reason = Some(reason.clone());
                    failure.get_or_insert(reason);
                }
            }
        }
        let inspected = inspected?;
        if let Some(reason) = failure {
            return Err(Ending::failed_to_start(reason));
        }
        self.apply_sandbox(inspected.as_ref());
        self.launched_at = Instant::now();
        Ok(())
    }

    fn service_aliases(&self) -> Vec<String> {
        container_spec::service_aliases(&self.task, &self.spec, self.shared.endpoints_serve)
    }

    /// A single-container task: its container holds the task's network namespace.
    async fn start_standalone(&mut self) -> Result<(), Ending> {
        let runtime = self.shared.runtime.clone();
        let mut spec = container_spec::standalone_container_spec(
            &self.shared.node_id,
            &self.task,
            &self.spec,
            &self.shared.sandbox_image,
        )
        .map_err(|reason| {
            Ending::failed_to_start(format!("CannotCreateContainerError: {reason}"))
        })?;
        spec.network_aliases = self.service_aliases();
        let name = self.slots[0].name.clone();
        let launched = create_and_start(runtime.as_ref(), &spec, &name).await;
        let slot = &mut self.slots[0];
        match launched {
            Ok(id) => {
                slot.runtime_id = Some(id);
                slot.state = SlotState::Running;
                slot.started = true;
            }
            Err((id, reason)) => {
                slot.runtime_id = id;
                slot.reason = Some(reason.clone());
                return Err(Ending::failed_to_start(reason));
            }
        }
        let id = slot.runtime_id.clone().unwrap_or_default();
        let needs_inspect = self.mode == NetworkMode::Awsvpc
            || self.mode == NetworkMode::Host
            || self
                .spec
                .container_definitions
                .iter()
                .any(|c| !c.port_mappings.is_empty());
        if needs_inspect {
            // A container that already exited has no ports; its exit event stops the task.
            if let Ok(inspected) = runtime.inspect_container(&id).await {
                self.apply_sandbox(inspected.as_ref());
            }
        }
        self.launched_at = Instant::now();
        Ok(())
    }

    /// A task that failed its health check stops answering to its service's name:
    /// its namespace holder leaves the cluster network (the scheduler replaces it).
    fn leave_discovery(&self) {
        let holder = self.sandbox_id.clone().or_else(|| {
            container_spec::holds_own_namespace(&self.spec)
                .then(|| self.slots[0].runtime_id.clone())
                .flatten()
        });
        let Some(holder) = holder else { return };
        let runtime = self.shared.runtime.clone();
        let network = labels::cluster_network(&self.task.cluster, &self.shared.node_id);
        let task = self.task.id.clone();
        tokio::spawn(async move {
            if let Err(error) = runtime.disconnect_network(&holder, &network).await {
                tracing::warn!(%task, %error, "taking an unhealthy task out of discovery failed");
            }
        });
    }

    /// Network bindings and the task's address, from the running sandbox.
    fn apply_sandbox(&mut self, sandbox: Option<&ContainerStatus>) {
        let ports = sandbox.map(|s| s.ports.clone()).unwrap_or_default();
        for slot in &mut self.slots {
            let container = &self.spec.container_definitions[slot.index];
            slot.bindings = container_spec::network_bindings(self.mode, container, &ports);
        }
        if self.mode == NetworkMode::Awsvpc {
            self.private_ip = sandbox.and_then(|s| s.ip_address.clone());
        }
    }

    /// Take over containers that survived an agent restart.
    async fn adopt(&mut self, found: Vec<ContainerStatus>) -> Result<(), Ending> {
        self.running_reported = self.task.last_status >= TaskStatus::Activating;
        let mut sandbox = None;
        for status in found {
            let container = status
                .labels
                .get(labels::CONTAINER)
                .cloned()
                .unwrap_or_default();
            if container == labels::SANDBOX_CONTAINER {
                self.sandbox_id = Some(status.id.clone());
                sandbox = Some(status);
                continue;
            }
            let Some(slot) = self.slots.iter_mut().find(|s| s.name == container) else {
                continue;
            };
            slot.runtime_id = Some(status.id.clone());
            slot.image_digest = Some(status.image_id.clone());
            slot.health = status.health;
            slot.exit_code = status.exit_code;
            if status.oom_killed {
                slot.reason = Some(OOM_REASON.to_string());
            }
            match status.state {
                ContainerState::Running => {
                    slot.state = SlotState::Running;
                    slot.started = true;
                }
                ContainerState::Exited | ContainerState::Dead => {
                    slot.state = SlotState::Exited;
                    slot.started = true;
                }
                // Created but never started: it will be created again when due.
                ContainerState::Created | ContainerState::Other(_) => {
                    let _ = self.shared.runtime.remove_container(&status.id).await;
                    slot.runtime_id = None;
                }
            }
        }
        self.launched_at = Instant::now();
        if container_spec::holds_own_namespace(&self.spec) {
            // The container holds the namespace: its ports and address are its own.
            let holder = match &self.slots[0].runtime_id {
                Some(id) => self
                    .shared
                    .runtime
                    .inspect_container(id)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            self.apply_sandbox(holder.as_ref());
        } else {
            self.apply_sandbox(sandbox.as_ref());
        }
        match &sandbox {
            None if container_spec::holds_own_namespace(&self.spec) => {}
            None => {
                return Err(Ending::essential_exited(
                    "Task sandbox vanished while berth was down",
                ))
            }
            Some(s) if s.state != ContainerState::Running => {
                return Err(Ending::essential_exited(
                    "Task sandbox exited while berth was down",
                ))
            }
            Some(_) => {}
        }
        for slot in self.slots.iter_mut().filter(|s| s.essential) {
            match slot.state {
                SlotState::Running => {}
                SlotState::Exited | SlotState::NeverStarted => {
                    return Err(Ending::essential_exited(ESSENTIAL_EXITED))
                }
                SlotState::Waiting if self.running_reported => {
                    slot.state = SlotState::NeverStarted;
                    slot.reason = Some(format!(
                        "Container {} vanished while berth was down",
                        slot.name
                    ));
                    return Err(Ending::essential_exited(format!(
                        "Container {} vanished while berth was down",
                        slot.name
                    )));
                }
                SlotState::Waiting => {}
            }
        }
        if self.running_reported {
            // Refresh what the control plane knows (ids, bindings); nothing restarted.
            self.report_running();
        }
        Ok(())
    }

    fn dependency(&self, name: &str, condition: Condition) -> Dependency {
        let Some(dependency) = self.slots.iter().find(|s| s.name == name) else {
            return Dependency::Impossible("no such container in the task".to_string());
        };
        match (condition, dependency.state) {
            (_, SlotState::NeverStarted) => Dependency::Impossible("it never started".to_string()),
            (Condition::Start, _) if dependency.started => Dependency::Met,
            (Condition::Complete, SlotState::Exited) => Dependency::Met,
            (Condition::Success, SlotState::Exited) => match dependency.exit_code {
                Some(0) => Dependency::Met,
                Some(code) => Dependency::Impossible(format!("it exited with code {code}")),
                None => Dependency::Impossible("it exited without an exit code".to_string()),
            },
            (Condition::Healthy, _) if dependency.health == Some(Health::Healthy) => {
                Dependency::Met
            }
            (Condition::Healthy, SlotState::Exited) => {
                Dependency::Impossible("it exited before becoming healthy".to_string())
            }
            _ => Dependency::Pending,
        }
    }

    /// Create and start every waiting container whose dependencies are met, in
    /// parallel; give up on those whose dependencies can no longer be met.
    async fn launch_ready(&mut self) -> Result<(), Ending> {
        let Some(sandbox_id) = self.sandbox_id.clone() else {
            return Ok(());
        };
        loop {
            let mut ready = Vec::new();
            let mut given_up = Vec::new();
            for slot in self.slots.iter().filter(|s| s.state == SlotState::Waiting) {
                let mut all_met = true;
                for (name, condition) in &slot.depends_on {
                    match self.dependency(name, *condition) {
                        Dependency::Met => {}
                        Dependency::Pending => {
                            all_met = false;
                            let timeout = self
                                .slots
                                .iter()
                                .find(|s| &s.name == name)
                                .map(|s| s.start_timeout);
                            if let Some(timeout) = timeout {
                                if Instant::now() >= self.launched_at + timeout {
                                    given_up.push((slot.index, format!(
                                        "Container {} could not start: dependency {name} did not reach condition {} within {} s (startTimeout)",
                                        slot.name,
                                        condition.as_ecs(),
                                        timeout.as_secs()
                                    )));
                                    break;
                                }
                            }
                        }
                        Dependency::Impossible(why) => {
                            all_met = false;
                            given_up.push((slot.index, format!(
                                "Container {} could not start: dependency {name} cannot reach condition {}: {why}",
                                slot.name,
                                condition.as_ecs()
                            )));
                            break;
                        }
                    }
                }
                if all_met {
                    ready.push(slot.index);
                }
            }
            for (index, reason) in given_up {
                self.give_up(index, reason)?;
            }
            if ready.is_empty() {
                return Ok(());
            }
            let mut specs = Vec::new();
            for index in &ready {
                // Created with the sandbox (see `prepare`); adopted tasks may still
                // have containers that were never created.
                let created = self.slots[*index].runtime_id.clone();
                let spec = match created {
                    Some(_) => None,
                    None => Some(
                        container_spec::container_spec(
                            &self.shared.node_id,
                            &self.task,
                            &self.spec,
                            *index,
                            &sandbox_id,
                        )
                        .map_err(|reason| {
                            Ending::failed_to_start(format!("CannotCreateContainerError: {reason}"))
                        })?,
                    ),
                };
                specs.push((*index, created, spec));
            }
            let runtime = self.shared.runtime.clone();
            let launches = join_all(specs.iter().map(|(index, created, spec)| {
                let runtime = runtime.clone();
                let name = self.slots[*index].name.clone();
                async move {
                    match (created, spec) {
                        (Some(id), _) => start(runtime.as_ref(), id, &name).await,
                        (None, Some(spec)) => create_and_start(runtime.as_ref(), spec, &name).await,
                        (None, None) => Err((None, format!("container {name} has no spec"))),
                    }
                }
            }))
            .await;
            let mut failure = None;
            for ((index, _, _), launched) in specs.iter().zip(launches) {
                let slot = &mut self.slots[*index];
                match launched {
                    Ok(id) => {
                        slot.runtime_id = Some(id);
                        slot.state = SlotState::Running;
                        slot.started = true;
                    }
                    Err((id, reason)) => {
                        slot.runtime_id = id;
                        failure.get_or_insert((*index, reason));
                    }
                }
            }
            if let Some((index, reason)) = failure {
                self.give_up(index, reason)?;
            }
            if self.running_reported {
                self.report_containers(&ready);
            }
        }
    }

    /// A container that will never run: fails the task while it starts (or when the
    /// container is essential); afterwards it is only reported.
    fn give_up(&mut self, index: usize, reason: String) -> Result<(), Ending> {
        let slot = &mut self.slots[index];
        slot.state = SlotState::NeverStarted;
        slot.reason = Some(reason.clone());
        if !self.running_reported || slot.essential {
            return Err(Ending::failed_to_start(reason));
        }
        self.report_containers(&[index]);
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Waiting)
            .flat_map(|s| s.depends_on.iter())
            .filter_map(|(name, _)| self.slots.iter().find(|s| &s.name == name))
            .map(|dependency| self.launched_at + dependency.start_timeout)
            .min()
    }

    // ---- running ----

    async fn drive(&mut self) -> Ending {
        loop {
            if let Err(ending) = self.launch_ready().await {
                return ending;
            }
            if !self.running_reported
                && self
                    .slots
                    .iter()
                    .filter(|s| s.essential)
                    .all(|s| s.state == SlotState::Running)
            {
                self.report_running();
            }
            let message = match self.next_deadline() {
                Some(deadline) => tokio::select! {
                    message = self.inbox.recv() => message,
                    () = tokio::time::sleep_until(deadline) => continue,
                },
                None => self.inbox.recv().await,
            };
            let Some(message) = message else {
                // The agent is shutting down: leave the containers running for the
                // next agent to adopt.
                std::future::pending::<()>().await;
                unreachable!()
            };
            let ending = match message {
                RunnerMessage::Stop => Some(Ending::requested()),
                RunnerMessage::Event(event) => self.on_event(event),
                RunnerMessage::Resync => self.resync().await,
            };
            if let Some(ending) = ending {
                return ending;
            }
        }
    }

    fn on_event(&mut self, event: RuntimeEvent) -> Option<Ending> {
        if self.sandbox_id.as_deref() == Some(event.container_id.as_str()) {
            return match event.kind {
                RuntimeEventKind::Die { .. } | RuntimeEventKind::Destroy => {
                    Some(Ending::essential_exited("Task sandbox exited"))
                }
                _ => None,
            };
        }
        let index = self
            .slots
            .iter()
            .position(|s| s.runtime_id.as_deref() == Some(event.container_id.as_str()))?;
        match event.kind {
            RuntimeEventKind::Start => {
                self.slots[index].started = true;
                None
            }
            RuntimeEventKind::Oom => {
                self.slots[index].reason = Some(OOM_REASON.to_string());
                None
            }
            RuntimeEventKind::Health(health) => {
                self.health_changed(index, health);
                None
            }
            RuntimeEventKind::Die { exit_code } => self.exited(index, exit_code, None),
            RuntimeEventKind::Destroy => {
                let reason = format!("Container {} was removed", self.slots[index].name);
                self.exited(index, None, Some(reason))
            }
        }
    }

    fn health_changed(&mut self, index: usize, health: Health) {
        let slot = &mut self.slots[index];
        if slot.health == Some(health) {
            return;
        }
        slot.health = Some(health);
        let essential = slot.essential;
        if health == Health::Unhealthy && essential && self.task.service.is_some() {
            self.leave_discovery();
        }
        let slot = &self.slots[index];
        if slot.state == SlotState::Running {
            self.report_containers(&[index]);
        }
    }

    fn exited(
        &mut self,
        index: usize,
        exit_code: Option<i64>,
        reason: Option<String>,
    ) -> Option<Ending> {
        let slot = &mut self.slots[index];
        if slot.state != SlotState::Running {
            return None;
        }
        slot.state = SlotState::Exited;
        slot.exit_code = exit_code.or(slot.exit_code);
        if slot.reason.is_none() {
            slot.reason = reason;
        }
        if slot.essential {
            return Some(Ending::essential_exited(ESSENTIAL_EXITED));
        }
        self.report_containers(&[index]);
        None
    }

    /// Events may have been lost: compare what is known with what the engine says.
    async fn resync(&mut self) -> Option<Ending> {
        let runtime = self.shared.runtime.clone();
        if let Some(sandbox_id) = self.sandbox_id.clone() {
            match runtime.inspect_container(&sandbox_id).await {
                Ok(Some(status)) if status.state == ContainerState::Running => {}
                Ok(_) => return Some(Ending::essential_exited("Task sandbox exited")),
                Err(error) => {
                    tracing::warn!(task = %self.task.id, %error, "inspecting the sandbox failed")
                }
            }
        }
        for index in 0..self.slots.len() {
            let Some(id) = self.slots[index].runtime_id.clone() else {
                continue;
            };
            if self.slots[index].state != SlotState::Running {
                continue;
            }
            match runtime.inspect_container(&id).await {
                Ok(None) => {
                    let reason = format!("Container {} vanished", self.slots[index].name);
                    if let Some(ending) = self.exited(index, None, Some(reason)) {
                        return Some(ending);
                    }
                }
                Ok(Some(status)) => {
                    if let Some(health) = status.health {
                        self.health_changed(index, health);
                    }
                    if status.state != ContainerState::Running {
                        let reason = status.oom_killed.then(|| OOM_REASON.to_string());
                        if let Some(ending) = self.exited(index, status.exit_code, reason) {
                            return Some(ending);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(task = %self.task.id, %error, "inspecting a container failed")
                }
            }
        }
        None
    }

    // ---- stopping ----

    async fn finish(&mut self, ending: Ending) {
        if ending.user_initiated {
            self.shared
                .reporter
                .send(TaskReport::status(&self.task.id, TaskStatus::Deactivating));
            self.shared
                .reporter
                .send(TaskReport::status(&self.task.id, TaskStatus::Stopping));
        }
        let runtime = self.shared.runtime.clone();
        let mut remaining: Vec<usize> = self
            .slots
            .iter()
            .filter(|s| s.state == SlotState::Running)
            .map(|s| s.index)
            .collect();
        if !ending.user_initiated && !remaining.is_empty() {
            // The task ends on its own (an essential container exited): say so at once,
            // with the exited container STOPPED and its exit code, rather than after the
            // others' stop timeouts.
            self.report_stopping(&ending);
        }
        while !remaining.is_empty() {
            // Stop first what no other still-running container depends on.
            let mut layer: Vec<usize> = if ending.user_initiated {
                remaining
                    .iter()
                    .copied()
                    .filter(|i| {
                        !remaining.iter().any(|j| {
                            j != i
                                && self.slots[*j]
                                    .depends_on
                                    .iter()
                                    .any(|(name, _)| *name == self.slots[*i].name)
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if layer.is_empty() {
                layer = remaining.clone();
            }
            join_all(layer.iter().filter_map(|i| {
                let slot = &self.slots[*i];
                let id = slot.runtime_id.clone()?;
                let timeout = slot.stop_timeout;
                let runtime = runtime.clone();
                Some(async move {
                    if let Err(error) = runtime.stop_container(&id, timeout).await {
                        tracing::warn!(container = %id, %error, "stopping a container failed");
                    }
                })
            }))
            .await;
            remaining.retain(|i| !layer.contains(i));
        }
        if let Some(sandbox_id) = &self.sandbox_id {
            if let Err(error) = runtime
                .stop_container(sandbox_id, SANDBOX_STOP_TIMEOUT)
                .await
            {
                tracing::warn!(container = %sandbox_id, %error, "stopping the sandbox failed");
            }
        }
        let inspections = join_all(self.slots.iter().map(|slot| {
            let runtime = runtime.clone();
            let id = slot.runtime_id.clone();
            async move {
                match id {
                    Some(id) => runtime.inspect_container(&id).await.ok().flatten(),
                    None => None,
                }
            }
        }))
        .await;
        for (slot, inspected) in self.slots.iter_mut().zip(inspections) {
            if let Some(status) = inspected {
                slot.exit_code = status.exit_code.or(slot.exit_code);
                if status.oom_killed && slot.reason.is_none() {
                    slot.reason = Some(OOM_REASON.to_string());
                }
            }
        }
        let mut stopped = TaskReport::status(&self.task.id, TaskStatus::Stopped);
        stopped.containers = self
            .slots
            .iter()
            .map(|s| self.container_report(s, true))
            .collect();
        stopped.execution_stopped_at = Some(now());
        stopped.stop_code = ending.stop_code;
        stopped.stopped_reason = ending.reason;
        self.shared.reporter.send(stopped);
    }

    /// Keep the stopped containers for `cleanup_wait` so their logs stay readable.
    async fn wait_for_cleanup(&mut self) {
        let wait = tokio::time::sleep(self.shared.cleanup_wait);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => return,
                message = self.inbox.recv() => {
                    if message.is_none() {
                        wait.as_mut().await;
                        return;
                    }
                }
            }
        }
    }

    async fn cleanup(&mut self) {
        remove_task_resources(
            self.shared.runtime.as_ref(),
            &self.shared.node_id,
            &self.task.id,
            &container_spec::task_scoped_volume_names(&self.task.id, &self.spec),
        )
        .await;
    }
}

async fn create_and_start(
    runtime: &dyn ContainerRuntime,
    spec: &berth_runtime::ContainerSpec,
    name: &str,
) -> Result<String, (Option<String>, String)> {
    let id = runtime.create_container(spec).await.map_err(|error| {
        (
            None,
            format!(
                "CannotCreateContainerError: creating container {name}: {}",
                error.message()
            ),
        )
    })?;
    start(runtime, &id, name).await
}

async fn start(
    runtime: &dyn ContainerRuntime,
    id: &str,
    name: &str,
) -> Result<String, (Option<String>, String)> {
    runtime.start_container(id).await.map_err(|error| {
        (
            Some(id.to_string()),
            format!(
                "CannotStartContainerError: starting container {name}: {}",
                error.message()
            ),
        )
    })?;
    Ok(id.to_string())
}

/// Removes every container of the task on this node (found by label, so also ones a
/// crashed agent created) and the task's own volumes. Errors are logged, not returned.
pub(crate) async fn remove_task_resources(
    runtime: &dyn ContainerRuntime,
    node_id: &str,
    task_id: &str,
    task_volumes: &[String],
) {
    match runtime.list_containers(labels::TASK, task_id).await {
        Ok(containers) => {
            let ours = containers
                .iter()
                .filter(|c| c.labels.get(labels::NODE).map(String::as_str) == Some(node_id));
            join_all(ours.map(|c| async move {
                if let Err(error) = runtime.remove_container(&c.id).await {
                    tracing::warn!(container = %c.name, %error, "removing a container failed");
                }
            }))
            .await;
        }
        Err(error) => {
            tracing::warn!(task = %task_id, %error, "listing the task's containers failed")
        }
    }
    for volume in task_volumes {
        if let Err(error) = runtime.remove_volume(volume).await {
            tracing::warn!(%volume, %error, "removing a volume failed");
        }
    }
}

/// For the agent's bookkeeping: container ids per task from a listing.
pub(crate) fn group_by_task(
    containers: Vec<ContainerStatus>,
) -> HashMap<String, Vec<ContainerStatus>> {
    let mut groups: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
    for container in containers {
        let task = container
            .labels
            .get(labels::TASK)
            .cloned()
            .unwrap_or_default();
        groups.entry(task).or_default().push(container);
    }
    groups
}
