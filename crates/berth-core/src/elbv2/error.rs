//! The errors an ELBv2 action answers with, named by ELBv2's own error codes.

/// ELBv2's error codes (`<Code>`). Every one but `InternalFailure` is the sender's fault (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elbv2ErrorCode {
    ValidationError,
    InvalidAction,
    LoadBalancerNotFound,
    DuplicateLoadBalancerName,
    TargetGroupNotFound,
    DuplicateTargetGroupName,
    ListenerNotFound,
    DuplicateListener,
    ResourceInUse,
    InvalidConfigurationRequest,
    InvalidTarget,
    InvalidLoadBalancerAction,
    IncompatibleProtocols,
    UnsupportedProtocol,
    TargetGroupAssociationLimit,
    DuplicateTagKeys,
    TooManyTags,
    OperationNotPermitted,
    PriorityInUse,
    RuleNotFound,
    TooManyRules,
    InternalFailure,
}

impl Elbv2ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Elbv2ErrorCode::ValidationError => "ValidationError",
            Elbv2ErrorCode::InvalidAction => "InvalidAction",
            Elbv2ErrorCode::LoadBalancerNotFound => "LoadBalancerNotFound",
            Elbv2ErrorCode::DuplicateLoadBalancerName => "DuplicateLoadBalancerName",
            Elbv2ErrorCode::TargetGroupNotFound => "TargetGroupNotFound",
            Elbv2ErrorCode::DuplicateTargetGroupName => "DuplicateTargetGroupName",
            Elbv2ErrorCode::ListenerNotFound => "ListenerNotFound",
            Elbv2ErrorCode::DuplicateListener => "DuplicateListener",
            Elbv2ErrorCode::ResourceInUse => "ResourceInUse",
            Elbv2ErrorCode::InvalidConfigurationRequest => "InvalidConfigurationRequest",
            Elbv2ErrorCode::InvalidTarget => "InvalidTarget",
            Elbv2ErrorCode::InvalidLoadBalancerAction => "InvalidLoadBalancerAction",
            Elbv2ErrorCode::IncompatibleProtocols => "IncompatibleProtocols",
            Elbv2ErrorCode::UnsupportedProtocol => "UnsupportedProtocol",
            Elbv2ErrorCode::TargetGroupAssociationLimit => "TargetGroupAssociationLimit",
            Elbv2ErrorCode::DuplicateTagKeys => "DuplicateTagKeys",
            Elbv2ErrorCode::TooManyTags => "TooManyTags",
            Elbv2ErrorCode::OperationNotPermitted => "OperationNotPermitted",
            Elbv2ErrorCode::PriorityInUse => "PriorityInUse",
            Elbv2ErrorCode::RuleNotFound => "RuleNotFound",
            Elbv2ErrorCode::TooManyRules => "TooManyRules",
            Elbv2ErrorCode::InternalFailure => "InternalFailure",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Elbv2ErrorCode::InternalFailure => 500,
            _ => 400,
        }
    }

    /// `Sender` in the error document, as opposed to `Receiver`.
    pub fn is_sender_fault(self) -> bool {
        self.http_status() < 500
    }
}

/// An ELBv2 error answer: a code and a message naming the field or thing at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Elbv2Error {
    pub code: Elbv2ErrorCode,
    pub message: String,
}

impl Elbv2Error {
    pub fn new(code: Elbv2ErrorCode, message: impl Into<String>) -> Self {
        Elbv2Error {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(Elbv2ErrorCode::ValidationError, message)
    }

    /// ELBv2's wording: `1 validation error detected: Value '3' at
    /// 'healthCheckIntervalSeconds' failed to satisfy constraint: ...`.
    pub fn constraint(field: &str, value: impl std::fmt::Display, constraint: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// A required member that was not given.
    pub fn missing(field: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    }

    pub fn invalid_configuration(message: impl Into<String>) -> Self {
        Self::new(Elbv2ErrorCode::InvalidConfigurationRequest, message)
    }
}
