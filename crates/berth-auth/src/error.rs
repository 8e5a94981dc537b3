//! Why a request was not authenticated, with the ECS error code each reason maps to.

/// A request that failed authentication. Messages follow AWS's wording where AWS has
/// one, and never contain a secret or the signature the server expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor an `X-Amz-Date` header: an anonymous request.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The access key id is not one the server knows.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match the one the server computed.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    )]
    InvalidSignature,
    /// The signature could not even be checked: the message names what is missing or wrong.
    #[error("{0}")]
    Malformed(String),
    /// The credential scope names a service or region berth does not accept for this
    /// request; the message says which and what is expected.
    #[error("{0}")]
    WrongScope(String),
    /// `X-Amz-Date` is more than [`crate::MAX_CLOCK_SKEW`] away from the server's clock.
    #[error("{0}")]
    SkewedClock(String),
}

impl AuthError {
    /// The ECS error code (`__type` and `X-Amzn-ErrorType`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::InvalidSignature | AuthError::SkewedClock(_) | AuthError::WrongScope(_) => {
                "InvalidSignatureException"
            }
            AuthError::Malformed(_) => "IncompleteSignatureException",
        }
    }

    /// The HTTP status ECS answers with. Never 5xx: the CLI would retry.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::Malformed(_) => 400,
            _ => 403,
        }
    }
}
