//! How the agent reaches the control plane. In `berth dev` the server implements
//! [`ControlPlaneLink`] in-process over its store; later it is a network client.

use std::time::Duration;

use async_trait::async_trait;
use berth_core::model::Task;
use berth_core::nodes::NodeRegistration;
use berth_core::TaskReport;

/// A task assigned to this node, with the task definition it runs (as registered).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub task: Task,
    pub definition: berth_api::RegisterTaskDefinitionRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The control plane cannot be reached now; the agent retries.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    /// The control plane refused the call (unknown node, bad token...).
    #[error("control plane refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait ControlPlaneLink: Send + Sync {
    /// Announce the node and its resources; called at every (re)start of the agent.
    async fn register(&self, registration: NodeRegistration) -> Result<(), LinkError>;

    /// The tasks currently assigned to this node: any desired status and not yet
    /// STOPPED, plus STOPPED ones whose containers may still exist, each with its task
    /// definition. Returns as soon as the assignment set changed after revision `since`
    /// (at once when `since` is 0 or stale), else after `timeout`; returns the new
    /// revision with the full set.
    async fn assignments(
        &self,
        node_id: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<(u64, Vec<Assignment>), LinkError>;

    /// State changes of tasks, in the order they happened.
    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError>;
}
