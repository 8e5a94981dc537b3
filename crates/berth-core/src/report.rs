//! What agents tell the control plane about their tasks, and how it lands in the state.

use berth_api::NetworkBinding;
use serde::{Deserialize, Serialize};

use crate::model::{
    stopped_for_failed_checks, ContainerStatus, DesiredStatus, HealthStatus, StopCode, Task,
    TaskStatus,
};
use crate::state::{Command, State};
use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    pub health_status: HealthStatus,
}

/// A task's state as its agent sees it. Fields left `None` keep what the task had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task_id: String,
    pub last_status: TaskStatus,
    pub containers: Vec<ContainerReport>,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub private_ipv4_address: Option<String>,
}

impl TaskReport {
    pub fn status(task_id: &str, last_status: TaskStatus) -> Self {
        TaskReport {
            task_id: task_id.to_string(),
            last_status,
            containers: vec![],
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            execution_stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            private_ipv4_address: None,
        }
    }
}

/// Merges agent reports into their tasks. A report never moves a task backwards, and a
/// STOPPED task stays STOPPED. Reports about unknown tasks are ignored.
///
/// A report that stops a task its agent ended on its own (an essential container
/// exited) also takes the task's load-balancer targets out at once: nothing there
/// answers any more, so they do not wait for the task to be STOPPED.
pub fn apply_task_reports(state: &State, reports: &[TaskReport], now: Timestamp) -> Vec<Command> {
    let mut changed: std::collections::BTreeMap<String, Task> = Default::default();
    let mut targets_out = Vec::new();
    for report in reports {
        let Some(current) = changed
            .get(&report.task_id)
            .or_else(|| state.tasks.get(&report.task_id).map(|t| &**t))
        else {
            continue;
        };
        let updated = merge(current, report, activates(state, current), now);
        if current.desired_status == DesiredStatus::Running
            && updated.desired_status == DesiredStatus::Stopped
        {
            targets_out.extend(crate::service_targets::forget_stopped(state, &updated));
        }
        if &updated != current {
            changed.insert(updated.id.clone(), updated);
        }
    }
    changed
        .into_values()
        .map(|t| Command::PutTask(Box::new(t)))
        .chain(targets_out)
        .collect()
}

/// Whether a task must pass through ACTIVATING before RUNNING: it belongs to a service
/// with load balancers and its targets are not registered yet (the scheduler registers
/// them and makes it RUNNING, as ECS does).
fn activates(state: &State, task: &Task) -> bool {
    task.load_balancer_targets.is_empty()
        && task
            .service
            .as_deref()
            .and_then(|name| state.service(&task.cluster, name))
            .is_some_and(|service| !service.load_balancers.is_empty())
}

fn merge(current: &Task, report: &TaskReport, activates: bool, now: Timestamp) -> Task {
    let mut task = current.clone();
    if task.is_stopped() {
        return task;
    }
    if report.last_status > task.last_status {
        task.last_status = if report.last_status == TaskStatus::Running && activates {
            TaskStatus::Activating
        } else {
            report.last_status
        };
    }
    for c in &report.containers {
        let Some(record) = task.containers.iter_mut().find(|r| r.name == c.name) else {
            continue;
        };
        if record.last_status == ContainerStatus::Stopped
            && c.last_status != ContainerStatus::Stopped
        {
            continue;
        }
        record.last_status = c.last_status;
        record.runtime_id = c.runtime_id.clone().or(record.runtime_id.take());
        record.image_digest = c.image_digest.clone().or(record.image_digest.take());
        record.exit_code = c.exit_code.or(record.exit_code);
        record.reason = c.reason.clone().or(record.reason.take());
        if !c.network_bindings.is_empty() {
            record.network_bindings = c.network_bindings.clone();
        }
        record.health_status = c.health_status;
    }
    task.pull_started_at = task.pull_started_at.or(report.pull_started_at);
    task.pull_stopped_at = task.pull_stopped_at.or(report.pull_stopped_at);
    task.started_at = task.started_at.or(report.started_at);
    task.execution_stopped_at = task.execution_stopped_at.or(report.execution_stopped_at);
    if report.private_ipv4_address.is_some() {
        task.private_ipv4_address = report.private_ipv4_address.clone();
    }
    if report.last_status >= TaskStatus::Deactivating
        && task.desired_status == DesiredStatus::Running
    {
        // The agent stopped it on its own (an essential container exited, or it could not start).
        task.desired_status = DesiredStatus::Stopped;
        task.stopping_at = task.stopping_at.or(Some(now));
    }
    // A container that exited on its own is the first cause of the health checks that
    // failed because of it: its exit, not the scheduler's verdict, is why the task stopped.
    let exit_explains_failed_checks = report.stop_code == Some(StopCode::EssentialContainerExited)
        && task.stop_code == Some(StopCode::ServiceSchedulerInitiated)
        && task
            .stopped_reason
            .as_deref()
            .is_some_and(stopped_for_failed_checks);
    if task.stop_code.is_none() || exit_explains_failed_checks {
        task.stop_code = report.stop_code;
        task.stopped_reason = report.stopped_reason.clone().or(task.stopped_reason.take());
    }
    if task.last_status == TaskStatus::Stopped {
        task.stopped_at = Some(now);
        task.execution_stopped_at = task.execution_stopped_at.or(Some(now));
        for record in &mut task.containers {
            if record.last_status != ContainerStatus::Stopped {
                record.last_status = ContainerStatus::Stopped;
            }
        }
    }
    task.health_status = task.derived_health();
    if task != *current {
        task.version += 1;
    }
    task
}
