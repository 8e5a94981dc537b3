//! Errors: `LbError` for the control side (`apply`), and `ProxyError` on the request
//! path, classified by origin and retry safety in the spirit of pingora-error.

use std::net::SocketAddr;

/// What `LoadBalancer::apply` can fail with; on error nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("cannot bind listener {listener_id} on {addr}: {source}")]
    Bind {
        listener_id: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The network namespace a listener is to bind in cannot be entered: it is gone,
    /// or this process may not enter it (`setns` needs `CAP_SYS_ADMIN`).
    #[error("cannot enter network namespace {} for listener {listener_id}: {source}", namespace.display())]
    Namespace {
        listener_id: String,
        namespace: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid load balancer config: {0}")]
    InvalidConfig(String),
    #[error("load balancer is shut down")]
    ShutDown,
}

/// Which side of the proxy an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// The target: refused, reset, timed out, spoke bad HTTP.
    Upstream,
    /// The client: went away, sent something we cannot forward.
    Downstream,
    /// The balancer itself (no healthy target, a bug).
    Internal,
}

/// Whether the request may be sent again (to another target) after this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySafety {
    /// Nothing of the request reached the target's application (connect failed).
    NotSent,
    /// The request was written but no response byte came back: safe only for
    /// idempotent methods whose body we still have (none or empty).
    SentNoResponse,
    /// A response started or the failure is not the target's: never retry.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyErrorKind {
    NoHealthyTarget,
    ConnectRefused,
    ConnectTimeout,
    ConnectOther,
    /// Upstream closed or reset the connection before a response head.
    UpstreamClosed,
    UpstreamResponseTimeout,
    UpstreamProtocol,
    DownstreamBody,
}

/// A failure on the request path.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} ({origin:?}, retry {retry:?}): {message}")]
pub struct ProxyError {
    pub origin: ErrorOrigin,
    pub kind: ProxyErrorKind,
    pub retry: RetrySafety,
    pub message: String,
}

impl ProxyError {
    pub(crate) fn new(kind: ProxyErrorKind, message: impl Into<String>) -> ProxyError {
        use ProxyErrorKind::*;
        let (origin, retry) = match kind {
            NoHealthyTarget => (ErrorOrigin::Internal, RetrySafety::Never),
            ConnectRefused | ConnectTimeout | ConnectOther => {
                (ErrorOrigin::Upstream, RetrySafety::NotSent)
            }
            UpstreamClosed => (ErrorOrigin::Upstream, RetrySafety::SentNoResponse),
            UpstreamResponseTimeout | UpstreamProtocol => {
                (ErrorOrigin::Upstream, RetrySafety::Never)
            }
            DownstreamBody => (ErrorOrigin::Downstream, RetrySafety::Never),
        };
        ProxyError {
            origin,
            kind,
            retry,
            message: message.into(),
        }
    }

    /// Whether this failure counts against the target's health (passive checking).
    pub fn counts_against_target(&self) -> bool {
        matches!(
            self.kind,
            ProxyErrorKind::ConnectRefused
                | ProxyErrorKind::ConnectTimeout
                | ProxyErrorKind::ConnectOther
                | ProxyErrorKind::UpstreamClosed
        )
    }

    /// Classifies a hyper client error that ended a request before its response head.
    pub(crate) fn from_upstream_send(error: &hyper::Error) -> ProxyError {
        if error.is_user() {
            // Most often the client's request body failed while we streamed it upstream.
            return ProxyError::new(ProxyErrorKind::DownstreamBody, error.to_string());
        }
        if error.is_parse() || error.is_parse_status() {
            return ProxyError::new(ProxyErrorKind::UpstreamProtocol, error.to_string());
        }
        ProxyError::new(ProxyErrorKind::UpstreamClosed, error.to_string())
    }

    pub(crate) fn from_connect(error: &std::io::Error) -> ProxyError {
        let kind = match error.kind() {
            std::io::ErrorKind::ConnectionRefused => ProxyErrorKind::ConnectRefused,
            std::io::ErrorKind::TimedOut => ProxyErrorKind::ConnectTimeout,
            _ => ProxyErrorKind::ConnectOther,
        };
        ProxyError::new(kind, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_are_upstream_and_not_sent() {
        let error =
            ProxyError::from_connect(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(error.origin, ErrorOrigin::Upstream);
        assert_eq!(error.retry, RetrySafety::NotSent);
        assert!(error.counts_against_target());
    }

    #[test]
    fn response_timeouts_are_never_retried_nor_counted() {
        let error = ProxyError::new(ProxyErrorKind::UpstreamResponseTimeout, "slow");
        assert_eq!(error.retry, RetrySafety::Never);
        assert!(!error.counts_against_target());
        let error = ProxyError::new(ProxyErrorKind::NoHealthyTarget, "none");
        assert_eq!(error.origin, ErrorOrigin::Internal);
    }
}
