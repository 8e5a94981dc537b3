//! How an agent reaches the control plane.

use std::time::Duration;

use async_trait::async_trait;

use crate::discovery::ServiceEndpoints;
use crate::messages::Assignments;
use crate::{NodeRegistration, TaskReport};

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
    /// definition. Returns as soon as this node's assignments changed after revision
    /// `since` (at once when `since` is 0 or from before a restart of the control
    /// plane's store), else after `timeout`, with the node's revision and its full set.
    async fn assignments(
        &self,
        node_id: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<Assignments, LinkError>;

    /// State changes of tasks, in the order they happened.
    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError>;

    /// The discoverable services of this node's clusters and their healthy tasks.
    /// Returns as soon as they differ from the `version` the node has (at once when it
    /// has none), else after `timeout`.
    async fn service_endpoints(
        &self,
        node_id: &str,
        have: Option<&str>,
        timeout: Duration,
    ) -> Result<ServiceEndpoints, LinkError>;
}
