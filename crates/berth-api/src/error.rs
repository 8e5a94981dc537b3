use serde::{Deserialize, Serialize};

/// The body of every ECS error response: `{"__type": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "__type")]
    pub error_type: String,
    pub message: String,
}
