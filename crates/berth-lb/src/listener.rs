//! Listeners: the accept loop, and per client connection the HTTP server with its
//! slow-client and idle protection (`ConnectionState`, `ActivityIo`).
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for
//! its next request, which would make the idle timeout at most the header timeout; so
//! the balancer keeps its own two clocks per connection, updated by the socket reads:
//! a request head must be complete `request_header_timeout` after its first byte (or
//! after the connection opened, for the first request), and a connection on which
//! nothing moves closes after `idle_timeout` (while a request is in flight, after the
//! upstream's own timeouts at the least, so a slow target still gets its 504).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Limits, ListenerProtocol};
use crate::routing::Routes;
use crate::target_group::TargetGroup;
use crate::{http_proxy, tcp_proxy};

/// A listener's rules and default action with the target groups they forward to;
/// swapped whole by `apply`, so a request sees one configuration.
pub(crate) struct Routing {
    pub routes: Routes,
    pub groups: std::collections::HashMap<String, Arc<TargetGroup>>,
    /// The one group a TCP listener (no rules, one forward) splices to
    /// (`ListenerConfig::only_target_group`).
    pub only_group: Option<Arc<TargetGroup>>,
}

/// What every connection of one listener shares.
pub(crate) struct ListenerContext {
    pub protocol: ListenerProtocol,
    /// Where this listener's requests go; swapped by `apply`.
    pub route: ArcSwap<Routing>,
    /// `X-Forwarded-Port`: the port the client connected to.
    pub port_header: HeaderValue,
    /// The bound address, for a connection whose own local address cannot be read.
    pub local_addr: SocketAddr,
    pub limits: Arc<Limits>,
    /// The client idle timeout in milliseconds: the listener's own or
    /// `Limits::idle_timeout`; replaced by `apply` without a rebind.
    idle_timeout_ms: AtomicU64,
    /// `Limits::max_connections`, shared by every listener of the balancer.
    pub connection_slots: Arc<Semaphore>,
    pub server: http1::Builder,
    /// Cancelled when the listener is removed or the balancer shuts down.
    pub cancel: CancellationToken,
}

impl ListenerContext {
    pub fn new(
        protocol: ListenerProtocol,
        route: Arc<Routing>,
        local_addr: SocketAddr,
        idle_timeout: Option<Duration>,
        limits: Arc<Limits>,
        connection_slots: Arc<Semaphore>,
        cancel: CancellationToken,
    ) -> ListenerContext {
        let mut server = http1::Builder::new();
        server
            .keep_alive(true)
            .max_headers(limits.max_headers)
            // hyper answers 431 when a head is longer than this. The read buffer alone
            // is not an exact bound: one read may fill it past its maximum.
            .max_header_size(limits.max_header_bytes)
            // 8 KiB is hyper's minimum.
            .max_buf_size(limits.max_header_bytes.max(8192))
            .header_read_timeout(None);
        let context = ListenerContext {
            protocol,
            route: ArcSwap::new(route),
            port_header: HeaderValue::from(local_addr.port()),
            local_addr,
            idle_timeout_ms: AtomicU64::new(0),
            limits,
            connection_slots,
            server,
            cancel,
        };
        context.set_idle_timeout(idle_timeout);
        context
    }

    /// How long a client connection may sit idle.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.load(Ordering::Relaxed))
    }

    pub fn set_idle_timeout(&self, idle_timeout: Option<Duration>) {
        let timeout = idle_timeout.unwrap_or(self.limits.idle_timeout);
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.idle_timeout_ms.store(millis, Ordering::Relaxed);
    }
}

/// Accepts until cancelled; dropping the `JoinSet` then closes every connection.
pub(crate) async fn accept_loop(listener: TcpListener, context: Arc<ListenerContext>) {
    let mut connections = JoinSet::new();
    let mut accept_failures = AcceptFailures::default();
    loop {
        tokio::select! {
            _ = context.cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    accept_failures.accepted();
                    let Ok(slot) = context.connection_slots.clone().try_acquire_owned() else {
                        // Full: closing now costs nothing, queueing would pile them up.
                        tracing::debug!(%client, "connection refused: at max_connections");
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let context = context.clone();
                    connections.spawn(async move {
                        match context.protocol {
                            ListenerProtocol::Http => serve_http(stream, client, context).await,
                            ListenerProtocol::Tcp => tcp_proxy::serve(stream, context).await,
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning. One
                    // warning per run of failures, not twenty a second.
                    if accept_failures.failed() {
                        tracing::warn!(%error, "accept failed; retrying every 50 ms");
                    } else {
                        tracing::debug!(%error, "accept failed again");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Whether the accept loop is in a run of failures, so it warns once per run.
#[derive(Default)]
struct AcceptFailures {
    failing: bool,
}

impl AcceptFailures {
    fn accepted(&mut self) {
        self.failing = false;
    }

    /// Notes a failure; true if it starts a run (and so deserves a warning).
    fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.failing, true)
    }
}

async fn serve_http(stream: TcpStream, client: SocketAddr, context: Arc<ListenerContext>) {
    let local_host = http_proxy::host_header(stream.local_addr().unwrap_or(context.local_addr));
    let state = Arc::new(ConnectionState::new());
    let io = TokioIo::new(ActivityIo {
        inner: Some(stream),
        state: state.clone(),
    });
    let service = {
        let context = context.clone();
        let state = state.clone();
        let client_ip = http_proxy::client_ip_header(client);
        service_fn(move |request| {
            http_proxy::handle(
                context.clone(),
                InFlight::start(state.clone()),
                client.ip(),
                client_ip.clone(),
                local_host.clone(),
                request,
            )
        })
    };
    let connection = context.server.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let limits = &context.limits;
    // The deadline only moves later while the watchdog sleeps, except when a request
    // ends and the (shorter) idle clock takes over from the header clock, or `apply`
    // shortens the idle timeout: so the watchdog also looks again one idle timeout
    // later at the latest, and an idle connection closes on time.
    let next_look = || {
        let idle_timeout = context.idle_timeout();
        state
            .deadline(limits, idle_timeout)
            .min(Instant::now() + idle_timeout)
    };
    let watchdog = tokio::time::sleep_until(next_look());
    tokio::pin!(watchdog);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%client, %error, "client connection ended with an error");
                    if error.is_parse() || error.is_parse_too_large() {
                        // hyper answered 400 / 431; let the client read it (see `linger`).
                        state.linger.store(true, Ordering::Relaxed);
                    }
                }
                return;
            }
            _ = watchdog.as_mut() => {
                if state.deadline(limits, context.idle_timeout()) <= Instant::now() {
                    tracing::debug!(%client, "closing slow or idle client connection");
                    return;
                }
                watchdog.as_mut().reset(next_look());
            }
        }
    }
}

const NO_HEAD: u64 = 0;

/// The clocks of one client connection, in milliseconds since it opened.
pub(crate) struct ConnectionState {
    opened: Instant,
    last_activity: AtomicU64,
    /// 1 + when the first byte of the current request head arrived; `NO_HEAD` if none.
    head_started: AtomicU64,
    in_flight: AtomicU32,
    /// Set when the connection is closed on a bad request: close it gently.
    linger: AtomicBool,
}

impl ConnectionState {
    fn new() -> ConnectionState {
        ConnectionState {
            opened: Instant::now(),
            last_activity: AtomicU64::new(0),
            // The first request's clock starts at accept: a silent client is slow too.
            head_started: AtomicU64::new(1),
            in_flight: AtomicU32::new(0),
            linger: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NO_HEAD
        {
            self.head_started.store(now + 1, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    fn deadline(&self, limits: &Limits, idle_timeout: Duration) -> Instant {
        let head_started = self.head_started.load(Ordering::Relaxed);
        if head_started != NO_HEAD {
            return self.opened
                + Duration::from_millis(head_started - 1)
                + limits.request_header_timeout;
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            return self.opened
                + Duration::from_millis(self.last_activity.load(Ordering::Relaxed))
                + idle_timeout;
        }
        // A request is in flight: nothing moving either way for the idle timeout (a
        // client that stops reading its response, or stalls in its body) closes the
        // connection, as ELB's idle timeout does. A slow upstream is answered 504 by its
        // own timeouts first, so the deadline leaves room for them.
        let upstream_wait = limits.upstream_connect_timeout
            + limits.upstream_response_timeout
            + Duration::from_secs(1);
        self.opened
            + Duration::from_millis(self.last_activity.load(Ordering::Relaxed))
            + idle_timeout.max(upstream_wait)
    }
}

/// One request in flight on a client connection, until its response body is done.
pub(crate) struct InFlight(Option<Arc<ConnectionState>>);

impl InFlight {
    fn start(state: Arc<ConnectionState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        state.head_started.store(NO_HEAD, Ordering::Relaxed);
        InFlight(Some(state))
    }

    /// The connection closes after this response: drain what the client still sends
    /// so that the response is not lost to a reset (see `ActivityIo`'s drop).
    pub(crate) fn close_gently(&self) {
        if let Some(state) = &self.0 {
            state.linger.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.last_activity.store(state.now(), Ordering::Relaxed);
            state.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The client socket, noting each read and write in the connection's clocks.
struct ActivityIo {
    /// Always `Some` until dropped (taken by `linger`).
    inner: Option<TcpStream>,
    state: Arc<ConnectionState>,
}

impl ActivityIo {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.inner
                .as_mut()
                .expect("the socket is present until drop"),
        )
    }
}

/// Longest a rejected client's leftover input is drained, and how much of it.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

impl Drop for ActivityIo {
    fn drop(&mut self) {
        if !self.state.linger.load(Ordering::Relaxed) {
            return;
        }
        // Closing a socket with unread input sends a reset, which can destroy the 400 or
        // 431 we just wrote before the client reads it. Like nginx's lingering close:
        // send FIN, then read and discard for a bounded time.
        let (Some(mut stream), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream.shutdown().await;
            let mut buffer = [0u8; 4096];
            let mut drained = 0;
            let _ = tokio::time::timeout(LINGER_TIME, async {
                while drained < LINGER_BYTES {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(count) => drained += count,
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let result = self.stream().poll_read(context, buffer);
        if buffer.filled().len() > before {
            self.state.on_read();
        }
        result
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write(context, data);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.state.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write_vectored(context, buffers);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            request_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        }
    }

    #[test]
    fn accept_failures_warn_once_per_run() {
        let mut failures = AcceptFailures::default();
        assert!(failures.failed(), "the first failure of a run warns");
        assert!(!failures.failed(), "the next ones of the same run do not");
        assert!(!failures.failed());
        failures.accepted();
        assert!(failures.failed(), "a new run warns again");
    }

    #[tokio::test(start_paused = true)]
    async fn first_request_head_is_timed_from_accept() {
        let state = ConnectionState::new();
        assert_eq!(
            state.deadline(&limits(), limits().idle_timeout),
            state.opened + Duration::from_secs(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_waits_for_the_idle_timeout_then_a_new_head_for_the_header_timeout() {
        let state = Arc::new(ConnectionState::new());
        let in_flight = InFlight::start(state.clone());
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(in_flight);
        assert_eq!(
            state.deadline(&limits(), limits().idle_timeout),
            state.opened + Duration::from_secs(63)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        state.on_read();
        assert_eq!(
            state.deadline(&limits(), limits().idle_timeout),
            state.opened + Duration::from_secs(18)
        );
        // More bytes of the same head do not move the head clock.
        tokio::time::advance(Duration::from_secs(5)).await;
        state.on_read();
        assert_eq!(
            state.deadline(&limits(), limits().idle_timeout),
            state.opened + Duration::from_secs(18)
        );
    }
}
