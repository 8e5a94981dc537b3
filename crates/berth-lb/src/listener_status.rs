//! What the balancer knows of each listener's socket: whether it serves at the address
//! its config names and, when it does not, why. Runtime truth, read by the control
//! plane to answer for a listener it just created or moved, and to show it.

use std::fmt;
use std::net::SocketAddr;

use crate::error::LbError;

/// Whether a listener serves at the address its config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStatus {
    /// Bound at `local_addr` (its config's address, or the port the system picked for
    /// port 0) and accepting.
    Serving { local_addr: SocketAddr },
    /// Its address could not be bound; every later `apply` tries again. A listener moved
    /// to a new address it could not bind keeps serving at its old one.
    NotServing {
        failure: BindFailure,
        still_serving_at: Option<SocketAddr>,
    },
}

impl ListenerStatus {
    pub fn is_serving(&self) -> bool {
        matches!(self, ListenerStatus::Serving { .. })
    }
}

/// Why a listener's address could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailure {
    /// The address it was to bind.
    pub addr: SocketAddr,
    /// The system's reason, e.g. `Address already in use`.
    pub reason: String,
}

impl fmt::Display for BindFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.addr, self.reason)
    }
}

impl BindFailure {
    /// The failure a bind error names; `None` for errors that are not about one listener.
    pub(crate) fn of(error: &LbError, addr: SocketAddr) -> Option<BindFailure> {
        let reason = match error {
            LbError::Bind { source, .. } => system_reason(source),
            LbError::Namespace {
                namespace, source, ..
            } => format!(
                "cannot enter network namespace {}: {}",
                namespace.display(),
                system_reason(source)
            ),
            LbError::InvalidConfig(_) | LbError::ShutDown => return None,
        };
        Some(BindFailure { addr, reason })
    }
}

/// An IO error's text without the ` (os error N)` the standard library appends.
fn system_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}
