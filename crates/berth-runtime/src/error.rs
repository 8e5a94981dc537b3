//! The one error type of the runtime: what the agent needs to decide (retry, report to
//! the user as ECS does, treat as gone), not bollard's internals.

/// An error from the container engine. Messages are lower case and name the
/// container, image or volume, except `ImagePull` which carries ECS's own prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The engine cannot be reached at all (socket missing, daemon down, timeout).
    #[error("{0}")]
    Unreachable(String),
    /// An image could not be pulled; starts with `CannotPullContainerError: ` as in ECS.
    #[error("{0}")]
    ImagePull(String),
    /// The named container, image or volume does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name is already in use, or the object is in a state that forbids the operation.
    #[error("{0}")]
    Conflict(String),
    /// Any other engine error, naming the operation and the object.
    #[error("{0}")]
    Engine(String),
}

impl RuntimeError {
    /// The message without the variant, as shown to users.
    pub fn message(&self) -> &str {
        match self {
            RuntimeError::Unreachable(m)
            | RuntimeError::ImagePull(m)
            | RuntimeError::NotFound(m)
            | RuntimeError::Conflict(m)
            | RuntimeError::Engine(m) => m,
        }
    }
}
