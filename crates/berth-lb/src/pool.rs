//! Upstream connections to one target: dialing, and a small LIFO pool of idle
//! keep-alive HTTP/1.1 connections.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::ProxyError;

/// The body of a request sent upstream: the client's, streamed, or empty on a retry.
pub(crate) type UpstreamRequestBody = Either<Incoming, Empty<Bytes>>;
pub(crate) type UpstreamSender = SendRequest<UpstreamRequestBody>;

/// Idle connections kept per target; more are closed when returned.
const MAX_IDLE_PER_TARGET: usize = 512;

#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<VecDeque<(UpstreamSender, Instant)>>,
}

impl Pool {
    /// The most recently used idle connection that is still open, if any.
    pub fn take_idle(&self) -> Option<UpstreamSender> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some((sender, _)) = idle.pop_back() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    pub fn put_back(&self, sender: UpstreamSender, idle_timeout: Duration) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The oldest sit at the front: close those idle too long, and the overflow.
        while let Some((front, since)) = idle.front() {
            if idle.len() >= MAX_IDLE_PER_TARGET || front.is_closed() || now - *since > idle_timeout
            {
                idle.pop_front();
            } else {
                break;
            }
        }
        idle.push_back((sender, now));
    }
}

/// Dials `addr` and performs the HTTP/1.1 handshake; the connection is driven by its
/// own task, which ends when the last sender is dropped or the peer closes.
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<UpstreamSender, ProxyError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(ProxyError::from_connect(&error)),
        Err(_) => {
            return Err(ProxyError::from_connect(&std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {timeout:?}"),
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|error| ProxyError::from_upstream_send(&error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
