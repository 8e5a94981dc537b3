//! The agent's link to a control plane in the same process (`berth dev`): calls go
//! straight to the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_agent::{Assignment, ControlPlaneLink, LinkError};
use berth_core::nodes::{instances_of_node, register_node, NodeRegistration};
use berth_core::{apply_task_reports, State, TaskReport};

use crate::{now, ControlPlane};

/// Stopped tasks stay in a node's assignments this long, so its agent keeps their
/// containers (for `berth logs`) instead of taking them for orphans.
const STOPPED_ASSIGNMENT_MS: u64 = 60 * 60 * 1000;

pub struct LocalLink {
    control_plane: Arc<ControlPlane>,
}

impl LocalLink {
    pub fn new(control_plane: Arc<ControlPlane>) -> Self {
        LocalLink { control_plane }
    }
}

fn unavailable(error: impl std::fmt::Display) -> LinkError {
    LinkError::Unavailable(error.to_string())
}

/// The tasks a node runs, with their definitions.
pub fn assignments_of(state: &State, node_id: &str, now: berth_core::Timestamp) -> Vec<Assignment> {
    let instances = instances_of_node(state, node_id);
    state
        .tasks
        .values()
        .filter(|t| {
            t.container_instance_id
                .as_ref()
                .is_some_and(|i| instances.contains(i))
        })
        .filter(|t| {
            t.stopped_at
                .is_none_or(|at| now.millis_since(at) < STOPPED_ASSIGNMENT_MS)
        })
        .filter_map(|t| {
            let definition = state.definition(&t.family, t.revision)?;
            Some(Assignment {
                task: t.clone(),
                definition: definition.spec.clone(),
            })
        })
        .collect()
}

#[async_trait]
impl ControlPlaneLink for LocalLink {
    async fn register(&self, registration: NodeRegistration) -> Result<(), LinkError> {
        self.control_plane
            .transact(&self.control_plane.default_region, move |state, ctx| {
                Ok::<_, std::convert::Infallible>((register_node(state, &registration, ctx), ()))
            })
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }

    async fn assignments(
        &self,
        node_id: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<(u64, Vec<Assignment>), LinkError> {
        let mut changes = self.control_plane.store.watch();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let revision = *changes.borrow_and_update();
            if revision != since || tokio::time::Instant::now() >= deadline {
                let assignments = self
                    .control_plane
                    .store
                    .read(|state| assignments_of(state, node_id, now()));
                return Ok((revision, assignments));
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Err(LinkError::Unavailable("the control plane stopped".to_string()));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError> {
        self.control_plane
            .store
            .transact_async(move |state| {
                Ok::<_, std::convert::Infallible>((apply_task_reports(state, &reports, now()), ()))
            })
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }
}
