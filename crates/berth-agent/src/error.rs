//! The agent's error type.

use berth_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("container {container} not found in task {task_id}")]
    ContainerNotFound { task_id: String, container: String },
    #[error("container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("control plane: {0}")]
    Link(#[from] berth_proto::LinkError),
}
