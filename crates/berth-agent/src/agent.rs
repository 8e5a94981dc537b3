//! The agent's main loop: register the node, reconcile what survived a restart, follow
//! the assignments, route runtime events to task runners; and the [`AgentHandle`]
//! through which the server reads task logs and live figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_core::model::{DesiredStatus, TaskStatus};
use berth_core::nodes::NodeRegistration;
use berth_core::TaskReport;
use berth_runtime::{
    ContainerRuntime, ContainerState, ContainerStats, LogEntry, RuntimeError, RuntimeEvent,
};
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::AgentError;
use crate::labels;
use crate::reporter::Reporter;
use crate::service_endpoints;
use crate::task_runner::{self, RunnerHandle, RunnerMessage, Shared, Start};
use berth_proto::{Assignment, ControlPlaneLink};

/// How long a stopped task's containers are kept (for `berth logs`) before removal.
pub const DEFAULT_TASK_CLEANUP_WAIT: Duration = Duration::from_secs(600);
/// How long one assignments long-poll may wait.
const LONG_POLL: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// How long a shutdown waits for queued reports to reach the control plane.
const FLUSH_ON_SHUTDOWN: Duration = Duration::from_secs(5);
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// This machine's node id: the value of the `berth.node` label on all it runs.
    pub node_id: String,
    pub cluster: String,
    /// A `berth dev` node serves every cluster.
    pub joins_every_cluster: bool,
    pub agent_version: String,
    /// How long a STOPPED task's containers are kept before removal.
    pub task_cleanup_wait: Duration,
    /// The address other machines reach this one at, as the node reports it.
    pub address: Option<String>,
    /// The container instance attributes the node reports (see
    /// `berth_core::attributes::node_attributes`).
    pub attributes: BTreeMap<String, String>,
    /// The capacity provider whose container instances this node's are.
    pub capacity_provider: Option<String>,
}

impl AgentConfig {
    pub fn new(node_id: impl Into<String>, cluster: impl Into<String>) -> AgentConfig {
        AgentConfig {
            node_id: node_id.into(),
            cluster: cluster.into(),
            joins_every_cluster: false,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            task_cleanup_wait: DEFAULT_TASK_CLEANUP_WAIT,
            address: None,
            attributes: machine_attributes(),
            capacity_provider: None,
        }
    }
}

/// What every node says about itself: `ecs.os-type` and `ecs.cpu-architecture`.
pub fn machine_attributes() -> BTreeMap<String, String> {
    berth_core::attributes::node_attributes(std::env::consts::ARCH, None, &BTreeMap::new())
        .unwrap_or_default()
}

pub struct Agent {
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    link: Arc<dyn ControlPlaneLink>,
}

/// A cheap, cloneable handle for reading what the agent's tasks print and use.
#[derive(Clone)]
pub struct AgentHandle {
    runtime: Arc<dyn ContainerRuntime>,
    node_id: String,
}

impl AgentHandle {
    /// The output of a task's containers on this node (all, or the one named), oldest
    /// first; only lines after `since` (epoch seconds) and only the last `tail` lines.
    /// A task with no containers (yet, or any more) has no output.
    pub async fn logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<(String, LogEntry)>, AgentError> {
        let mut ours: Vec<(String, String)> = self
            .task_containers(task_id, false)
            .await?
            .into_iter()
            .collect();
        if let Some(wanted) = container_name {
            ours.retain(|(name, _)| name == wanted);
            if ours.is_empty() {
                return Err(AgentError::ContainerNotFound {
                    task_id: task_id.to_string(),
                    container: wanted.to_string(),
                });
            }
        }
        let reads = futures_util::future::join_all(ours.iter().map(|(name, id)| async move {
            (name.clone(), self.runtime.logs(id, since, tail).await)
        }))
        .await;
        let mut lines = Vec::new();
        for (name, read) in reads {
            match read {
                Ok(entries) => lines.extend(entries.into_iter().map(|entry| (name.clone(), entry))),
                // Removed between the listing and the read: it has no output any more.
                Err(RuntimeError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        lines.sort_by(|a, b| a.1.timestamp.total_cmp(&b.1.timestamp));
        if let Some(tail) = tail {
            let keep = usize::try_from(tail).unwrap_or(usize::MAX);
            lines.drain(..lines.len().saturating_sub(keep));
        }
        Ok(lines)
    }

    /// The figures of a task's running containers on this node, by container name
    /// (its sandbox left out). A task with no running container has none.
    pub async fn stats(&self, task_id: &str) -> Result<Vec<(String, ContainerStats)>, AgentError> {
        let running = self.task_containers(task_id, true).await?;
        let reads = futures_util::future::join_all(
            running
                .iter()
                .map(|(name, id)| async move { (name.clone(), self.runtime.stats(id).await) }),
        )
        .await;
        let mut figures = Vec::new();
        for (name, read) in reads {
            match read {
                Ok(stats) => figures.push((name, stats)),
                // Removed between the listing and the read: it uses nothing any more.
                Err(RuntimeError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(figures)
    }

    /// A task's containers on this node (only the running ones when `running_only`),
    /// container name -> engine id, the sandbox left out.
    async fn task_containers(
        &self,
        task_id: &str,
        running_only: bool,
    ) -> Result<BTreeMap<String, String>, AgentError> {
        let containers = self.runtime.list_containers(labels::TASK, task_id).await?;
        Ok(containers
            .into_iter()
            .filter(|c| c.labels.get(labels::NODE) == Some(&self.node_id))
            .filter(|c| !running_only || c.state == ContainerState::Running)
            .filter_map(|c| {
                let name = c.labels.get(labels::CONTAINER)?.clone();
                (name != labels::SANDBOX_CONTAINER).then_some((name, c.id))
            })
            .collect())
    }
}

struct Started {
    sandbox_image: String,
    events: BoxStream<'static, Result<RuntimeEvent, RuntimeError>>,
    revision: u64,
    assignments: Vec<Assignment>,
}

impl Agent {
    pub fn new(
        config: AgentConfig,
        runtime: Arc<dyn ContainerRuntime>,
        link: Arc<dyn ControlPlaneLink>,
    ) -> Agent {
        Agent {
            config,
            runtime,
            link,
        }
    }

    pub fn handle(&self) -> AgentHandle {
        AgentHandle {
            runtime: self.runtime.clone(),
            node_id: self.config.node_id.clone(),
        }
    }

    /// Runs until `shutdown` completes. Containers keep running after a shutdown: the
    /// next agent on this node adopts them. Engine and control-plane errors are
    /// retried, never returned.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        tokio::pin!(shutdown);
        let started = tokio::select! {
            () = &mut shutdown => return Ok(()),
            started = self.start_up() => started,
        };
        let (reporter, reporter_done) = Reporter::spawn(self.link.clone());
        let endpoints_serve = match berth_lb::check_namespace_entry() {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(
                    %error,
                    "service discovery across machines needs the agent to run as root (it listens inside each service endpoint's network namespace); service names resolve to this machine's own tasks only"
                );
                false
            }
        };
        let shared = Arc::new(Shared {
            runtime: self.runtime.clone(),
            reporter,
            node_id: self.config.node_id.clone(),
            sandbox_image: started.sandbox_image,
            cleanup_wait: self.config.task_cleanup_wait,
            networks: Default::default(),
            endpoints_serve,
        });
        let endpoints = endpoints_serve
            .then(|| tokio::spawn(service_endpoints::run(shared.clone(), self.link.clone())));
        let (finished_sender, finished) = mpsc::unbounded_channel();
        let (assignment_sender, assignment_updates) = mpsc::unbounded_channel();
        let poller = tokio::spawn(poll_assignments(
            self.link.clone(),
            self.config.node_id.clone(),
            started.revision,
            assignment_sender,
        ));
        let mut node = NodeLoop {
            shared,
            runners: HashMap::new(),
            done: HashSet::new(),
            draining: HashSet::new(),
            finished_sender,
            events: started.events,
            last_subscribe: Instant::now(),
        };
        node.reconcile(&started.assignments).await;
        node.apply_assignments(started.assignments);
        node.run(shutdown, assignment_updates, finished).await;

        poller.abort();
        if let Some(endpoints) = endpoints {
            endpoints.abort();
        }
        for runner in node.runners.values() {
            runner.join.abort();
        }
        drop(node);
        // Every Reporter clone is gone once the runners are: the reporter flushes and ends.
        let _ = tokio::time::timeout(FLUSH_ON_SHUTDOWN, reporter_done).await;
        Ok(())
    }

    async fn start_up(&self) -> Started {
        let mut retry = Duration::from_millis(100);
        loop {
            match self.try_start_up().await {
                Ok(started) => return started,
                Err(error) => {
                    tracing::warn!(%error, "agent start-up failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    async fn try_start_up(&self) -> Result<Started, AgentError> {
        let info = self.runtime.info().await?;
        self.link
            .register(NodeRegistration {
                node_id: self.config.node_id.clone(),
                hostname: info.hostname,
                cpu: info.cpus * 1024,
                memory: info.memory_bytes / MIB,
                agent_version: self.config.agent_version.clone(),
                docker_version: info.engine_version,
                cluster: self.config.cluster.clone(),
                joins_every_cluster: self.config.joins_every_cluster,
                address: self.config.address.clone(),
                attributes: self.config.attributes.clone(),
                capacity_provider: self.config.capacity_provider.clone(),
            })
            .await?;
        let sandbox_image = self.runtime.ensure_sandbox_image().await?;
        // Subscribe before looking at anything, so no event is missed.
        let events = self.runtime.events(labels::NODE, &self.config.node_id);
        let berth_proto::Assignments {
            revision,
            assignments,
        } = self
            .link
            .assignments(&self.config.node_id, 0, Duration::ZERO)
            .await?;
        Ok(Started {
            sandbox_image,
            events,
            revision,
            assignments,
        })
    }
}

async fn poll_assignments(
    link: Arc<dyn ControlPlaneLink>,
    node_id: String,
    mut since: u64,
    updates: mpsc::UnboundedSender<Vec<Assignment>>,
) {
    let mut retry = Duration::from_millis(100);
    loop {
        match link.assignments(&node_id, since, LONG_POLL).await {
            Ok(berth_proto::Assignments {
                revision,
                assignments,
            }) => {
                retry = Duration::from_millis(100);
                if revision != since {
                    since = revision;
                    if updates.send(assignments).is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading assignments failed; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

pub(crate) struct NodeLoop {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runners: HashMap<String, RunnerHandle>,
    /// Tasks that must not be started again: their runner finished, or they were
    /// reported STOPPED without running. Pruned to the assigned tasks.
    pub(crate) done: HashSet<String>,
    /// Tasks whose stop waits for their targets to drain (scheduled once).
    pub(crate) draining: HashSet<String>,
    pub(crate) finished_sender: mpsc::UnboundedSender<String>,
    events: BoxStream<'static, Result<RuntimeEvent, RuntimeError>>,
    last_subscribe: Instant,
}

impl NodeLoop {
    pub(crate) fn spawn_runner(&mut self, assignment: Assignment, start: Start) -> &RunnerHandle {
        let id = assignment.task.id.clone();
        let handle = task_runner::spawn(
            self.shared.clone(),
            assignment,
            start,
            self.finished_sender.clone(),
        );
        self.runners.entry(id).insert_entry(handle).into_mut()
    }

    /// A task that never ran on this node is STOPPED at once.
    pub(crate) fn report_never_started(&mut self, task_id: &str) {
        let mut report = TaskReport::status(task_id, TaskStatus::Stopped);
        report.execution_stopped_at = Some(task_runner::now());
        self.shared.reporter.send(report);
        self.done.insert(task_id.to_string());
    }

    fn apply_assignments(&mut self, assignments: Vec<Assignment>) {
        let assigned: HashSet<String> = assignments.iter().map(|a| a.task.id.clone()).collect();
        for assignment in assignments {
            let id = assignment.task.id.clone();
            if let Some(runner) = self.runners.get(&id) {
                if assignment.task.desired_status == DesiredStatus::Stopped {
                    let wait = assignment.task.drain_ms.unwrap_or(0);
                    if wait == 0 {
                        let _ = runner.sender.send(RunnerMessage::Stop);
                    } else if self.draining.insert(id.clone()) {
                        // The task's load-balancer targets drain first: in-flight
                        // requests finish before its containers get SIGTERM.
                        self.shared
                            .reporter
                            .send(TaskReport::status(&id, TaskStatus::Deactivating));
                        let sender = runner.sender.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                            let _ = sender.send(RunnerMessage::Stop);
                        });
                    }
                }
                continue;
            }
            if self.done.contains(&id) || assignment.task.is_stopped() {
                continue;
            }
            match assignment.task.desired_status {
                DesiredStatus::Running => {
                    self.spawn_runner(assignment, Start::Fresh);
                }
                DesiredStatus::Stopped => self.report_never_started(&id),
            }
        }
        self.done.retain(|id| assigned.contains(id));
        self.draining.retain(|id| assigned.contains(id));
    }

    async fn run(
        &mut self,
        shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
        mut assignment_updates: mpsc::UnboundedReceiver<Vec<Assignment>>,
        mut finished: mpsc::UnboundedReceiver<String>,
    ) {
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                Some(assignments) = assignment_updates.recv() => self.apply_assignments(assignments),
                Some(task_id) = finished.recv() => {
                    self.runners.remove(&task_id);
                    self.done.insert(task_id);
                }
                event = self.events.next() => match event {
                    Some(Ok(event)) => self.route(event),
                    Some(Err(error)) => tracing::warn!(%error, "runtime event stream failed"),
                    None => self.resubscribe().await,
                },
            }
        }
    }

    fn route(&self, event: RuntimeEvent) {
        let Some(task_id) = event.labels.get(labels::TASK) else {
            return;
        };
        if let Some(runner) = self.runners.get(task_id) {
            let _ = runner.sender.send(RunnerMessage::Event(event));
        }
    }

    /// The event stream ended: subscribe again, then have every runner re-inspect its
    /// containers for what happened in between.
    async fn resubscribe(&mut self) {
        if self.last_subscribe.elapsed() < Duration::from_secs(1) {
            // The engine may be down: do not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.last_subscribe = Instant::now();
        self.events = self
            .shared
            .runtime
            .events(labels::NODE, &self.shared.node_id);
        for runner in self.runners.values() {
            let _ = runner.sender.send(RunnerMessage::Resync);
        }
    }
}
