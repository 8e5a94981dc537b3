//! Validation of what users register. (Being written.)

use berth_api::RegisterTaskDefinitionRequest;

/// A rule a request broke; `message` is ECS's wording where ECS has one and names the
/// container and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub message: String,
}

pub fn validate_task_definition(_request: &RegisterTaskDefinitionRequest) -> Result<(), ValidationError> {
    Ok(())
}
