//! Start-up reconciliation: after an agent restart (or kill -9) the machine's
//! containers are compared with the node's assignments. Running tasks whose containers
//! are all alive are adopted, half-started ones restarted, broken ones reported
//! STOPPED, and containers of no assigned task removed.

use std::time::Duration;

use berth_core::model::{DesiredStatus, TaskStatus};

use crate::agent::NodeLoop;
use berth_runtime::{ContainerState, ContainerStatus};
use futures_util::future::join_all;

use crate::container_spec::task_scoped_volume_names;
use crate::labels;
use crate::task_runner::{group_by_task, remove_task_resources, RunnerMessage, Start};
use berth_proto::Assignment;

impl NodeLoop {
    pub(crate) async fn reconcile(&mut self, assignments: &[Assignment]) {
        let runtime = self.shared.runtime.clone();
        let node_id = self.shared.node_id.clone();
        let found = match runtime.list_containers(labels::NODE, &node_id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "listing this node's containers failed; nothing adopted");
                Vec::new()
            }
        };
        // Endpoint containers belong to no task: the service endpoints' loop adopts or
        // removes them.
        let found = found
            .into_iter()
            .filter(|c| !c.labels.contains_key(labels::SERVICE_ENDPOINT))
            .collect();
        let mut by_task = group_by_task(found);
        for assignment in assignments {
            let task = &assignment.task;
            let containers = by_task.remove(&task.id).unwrap_or_default();
            if task.is_stopped() {
                self.done.insert(task.id.clone());
                if !containers.is_empty() {
                    self.clean_up_later(assignment, containers);
                }
                continue;
            }
            match task.desired_status {
                DesiredStatus::Stopped if containers.is_empty() => {
                    self.report_never_started(&task.id)
                }
                DesiredStatus::Stopped => {
                    let runner = self.spawn_runner(assignment.clone(), Start::Adopt(containers));
                    let _ = runner.sender.send(RunnerMessage::Stop);
                }
                // ACTIVATING: its containers run; the control plane is registering it.
                DesiredStatus::Running if task.last_status >= TaskStatus::Activating => {
                    self.spawn_runner(assignment.clone(), Start::Adopt(containers));
                }
                DesiredStatus::Running => {
                    // Its containers never all ran: start over from a clean slate.
                    let volumes = task_scoped_volume_names(&task.id, &assignment.spec);
                    remove_task_resources(runtime.as_ref(), &node_id, &task.id, &volumes).await;
                    self.spawn_runner(assignment.clone(), Start::Fresh);
                }
            }
        }
        for (task_id, orphans) in by_task {
            tracing::info!(task = %task_id, containers = orphans.len(), "removing orphan containers");
            for orphan in orphans {
                if let Err(error) = runtime.remove_container(&orphan.id).await {
                    tracing::warn!(container = %orphan.name, %error, "removing an orphan container failed");
                }
            }
        }
    }

    /// A STOPPED task's containers are kept until its cleanup wait has passed. Any that
    /// still run are stopped first: the control plane gave the task up while this agent
    /// was away (its machine lost contact), and has replaced it elsewhere.
    fn clean_up_later(&self, assignment: &Assignment, containers: Vec<ContainerStatus>) {
        let task = &assignment.task;
        let elapsed = Duration::from_millis(task.stopped_ms_ago.unwrap_or(0));
        let wait = self.shared.cleanup_wait.saturating_sub(elapsed);
        let runtime = self.shared.runtime.clone();
        let node_id = self.shared.node_id.clone();
        let task_id = task.id.clone();
        let volumes = task_scoped_volume_names(&task.id, &assignment.spec);
        // Each with its container's stopTimeout (the sandbox, not in the spec, gets the
        // default).
        let running: Vec<(ContainerStatus, Duration)> = containers
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| {
                let timeout = assignment
                    .spec
                    .container_definitions
                    .iter()
                    .find(|d| c.labels.get(labels::CONTAINER) == Some(&d.name))
                    .map_or(berth_core::spec::DEFAULT_STOP_TIMEOUT_SECS, |d| {
                        d.stop_timeout
                    });
                (c, Duration::from_secs(timeout))
            })
            .collect();
        if !running.is_empty() {
            tracing::info!(task = %task_id, containers = running.len(), "stopping the containers of a task the control plane gave up");
        }
        tokio::spawn(async move {
            join_all(running.iter().map(|(c, timeout)| {
                let runtime = runtime.clone();
                async move {
                    if let Err(error) = runtime.stop_container(&c.id, *timeout).await {
                        tracing::warn!(container = %c.name, %error, "stopping a container failed");
                    }
                }
            }))
            .await;
            tokio::time::sleep(wait).await;
            remove_task_resources(runtime.as_ref(), &node_id, &task_id, &volumes).await;
        });
    }
}
