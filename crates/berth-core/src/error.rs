//! The errors an ECS action can answer with, named by ECS's own error codes.

/// ECS's error codes (`__type`). Every one but `ServerException` is a client error (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ClientException,
    InvalidParameterException,
    ClusterNotFoundException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    ClusterContainsContainerInstancesException,
    ServiceNotFoundException,
    ServiceNotActiveException,
    ResourceNotFoundException,
    ResourceInUseException,
    PlatformUnknownException,
    UnsupportedFeatureException,
    NamespaceNotFoundException,
    ServerException,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ClientException => "ClientException",
            ErrorCode::InvalidParameterException => "InvalidParameterException",
            ErrorCode::ClusterNotFoundException => "ClusterNotFoundException",
            ErrorCode::ClusterContainsServicesException => "ClusterContainsServicesException",
            ErrorCode::ClusterContainsTasksException => "ClusterContainsTasksException",
            ErrorCode::ClusterContainsContainerInstancesException => {
                "ClusterContainsContainerInstancesException"
            }
            ErrorCode::ServiceNotFoundException => "ServiceNotFoundException",
            ErrorCode::ServiceNotActiveException => "ServiceNotActiveException",
            ErrorCode::ResourceNotFoundException => "ResourceNotFoundException",
            ErrorCode::ResourceInUseException => "ResourceInUseException",
            ErrorCode::PlatformUnknownException => "PlatformUnknownException",
            ErrorCode::UnsupportedFeatureException => "UnsupportedFeatureException",
            ErrorCode::NamespaceNotFoundException => "NamespaceNotFoundException",
            ErrorCode::ServerException => "ServerException",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ServerException => 500,
            _ => 400,
        }
    }
}

/// An ECS error answer: a code and a message that names the field or thing at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct EcsError {
    pub code: ErrorCode,
    pub message: String,
}

impl EcsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        EcsError {
            code,
            message: message.into(),
        }
    }
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientException, message)
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }
    pub fn cluster_not_found() -> Self {
        Self::new(ErrorCode::ClusterNotFoundException, "Cluster not found.")
    }
    pub fn service_not_found() -> Self {
        Self::new(ErrorCode::ServiceNotFoundException, "Service not found.")
    }
}

impl From<crate::ValidationError> for EcsError {
    fn from(error: crate::ValidationError) -> Self {
        EcsError::client(error.message)
    }
}
