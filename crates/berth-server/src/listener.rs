//! The API's listener: the accept loop with its connection cap, optional TLS, and per
//! connection the HTTP/1.1 server with its slow-client and idle protection.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for
//! its next request, so, as berth-lb does, each connection keeps its own clocks,
//! updated by the socket reads and writes (`ConnectionState`, `ActivityIo`): a request
//! head must be complete `request_header_timeout` after its first byte (after the
//! connection opened, for the first request; a TLS handshake counts as part of it), and
//! a connection on which nothing moves for `idle_timeout` closes: between requests,
//! while a body trickles in or stalls, and while a response waits for a client that
//! does not read it. While berth works on a request (body read, answer not yet ready)
//! the connection is not idle. The whole body must also arrive within
//! `body_read_timeout`; `http.rs` enforces that one.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The API listener's limits. The defaults suit a cluster's control plane: real
/// clients (the aws CLI, boto3, Terraform, berth's CLI) send small requests at once.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// A client must finish a request head (and, with TLS, the handshake before its
    /// first one) this long after starting it; otherwise its connection is closed.
    pub request_header_timeout: Duration,
    /// A connection on which no byte moves for this long is closed.
    pub idle_timeout: Duration,
    /// A request's whole body must arrive within this long after its head; otherwise
    /// the request gets 408 and the connection closes.
    pub body_read_timeout: Duration,
    /// Most connections open at once; a connection beyond it is closed at once.
    pub max_connections: usize,
    /// Most connections open at once from one client (one IPv4 address, or one IPv6
    /// /64), so a few clients cannot take every slot; one beyond it is closed at once.
    /// Loopback clients are one client too.
    pub max_connections_per_client: usize,
    /// Largest request head; larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more gets 431.
    pub max_headers: usize,
    /// After shutdown is asked for, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            request_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_connections_per_client: 64,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Raises this process's soft limit on open file descriptors to its hard limit, so the
/// API and the balancer beside it can hold as many connections as the system allows
/// rather than the 1024 many shells start with. Returns the soft limit now in force
/// (`None`: unlimited). An unlimited hard limit is left alone: Linux refuses it as a
/// soft one.
pub fn raise_descriptor_limit() -> io::Result<Option<u64>> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) if current < maximum => maximum,
        _ => return Ok(limit.current),
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        },
    )?;
    Ok(Some(raised))
}

/// Whether the listener speaks TLS (with this acceptor) or plain HTTP.
#[derive(Clone, Default)]
pub enum ApiTransport {
    #[default]
    Plain,
    Tls(tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for ApiTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiTransport::Plain => "Plain",
            ApiTransport::Tls(_) => "Tls",
        })
    }
}

/// How accept errors (usually: out of file descriptors) are paced.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until `shutdown` completes, then lets open requests finish within
/// `shutdown_grace` and closes every connection.
pub(crate) async fn accept_loop<S>(
    listener: TcpListener,
    limits: Arc<ApiLimits>,
    transport: ApiTransport,
    service: S,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(OpenPerClient::new(limits.max_connections_per_client));
    let mut server = http1::Builder::new();
    server
        .keep_alive(true)
        .max_headers(limits.max_headers)
        // hyper answers 431 when a head is longer than this. The read buffer alone is
        // not an exact bound: one read may fill it past its maximum.
        .max_header_size(limits.max_header_bytes)
        // 8 KiB is hyper's minimum.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .header_read_timeout(None);
    let cancel = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    accept_failing = false;
                    let Some(client_slot) = clients.try_open(client.ip()) else {
                        tracing::debug!(
                            %client,
                            "API connection refused: at max_connections_per_client"
                        );
                        drop(stream);
                        continue;
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // Full: closing now costs nothing, queueing would pile them up.
                        tracing::debug!(%client, "API connection refused: at max_connections");
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let connection = Connection {
                        limits: limits.clone(),
                        server: server.clone(),
                        cancel: cancel.clone(),
                    };
                    let transport = transport.clone();
                    let service = service.clone();
                    connections.spawn(async move {
                        connection.serve(stream, transport, service, client_slot).await;
                        drop(slot);
                    });
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning,
                    // and keep serving the connections already open. One warning per
                    // run of failures, not twenty a second.
                    if accept_failing {
                        tracing::debug!(%error, "API accept failed again");
                    } else {
                        tracing::warn!(%error, "API accept failed; retrying every 50 ms");
                    }
                    accept_failing = true;
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    cancel.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("closing API connections still open after the shutdown grace");
    }
}

/// How many connections each client has open, for `max_connections_per_client`.
struct OpenPerClient {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl OpenPerClient {
    fn new(max: usize) -> OpenPerClient {
        OpenPerClient {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// One more connection from `ip`, unless its client is at the cap.
    fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let client = client_of(ip);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            client,
        })
    }
}

/// The client an address belongs to: an IPv4 address (also when mapped into IPv6), or
/// an IPv6 /64, the smallest network a site is usually given.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
    }
}

/// One open connection of a client; closing it frees the place.
struct ClientSlot {
    clients: Arc<OpenPerClient>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

struct Connection {
    limits: Arc<ApiLimits>,
    server: http1::Builder,
    cancel: CancellationToken,
}

impl Connection {
    /// Serves one connection. `client_slot` is its place under its address's cap,
    /// held while the client is anonymous: a client whose certificate the TLS layer
    /// verified (an agent listener's node) is known by that certificate, not by its
    /// address (nodes behind one NAT, or several agents on one machine, share one), so
    /// it gives its place back and counts against `max_connections` only.
    async fn serve<S>(
        self,
        stream: TcpStream,
        transport: ApiTransport,
        service: S,
        client_slot: ClientSlot,
    ) where
        S: hyper::service::Service<
                hyper::Request<hyper::body::Incoming>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let state = Arc::new(ConnectionState::new());
        let io = ActivityIo {
            inner: stream,
            state: state.clone(),
        };
        match transport {
            ApiTransport::Plain => self.serve_http(io, state, None, service).await,
            ApiTransport::Tls(acceptor) => {
                let handshake =
                    tokio::time::timeout_at(state.deadline(&self.limits), acceptor.accept(io));
                let handshake = tokio::select! {
                    handshake = handshake => handshake,
                    // Shutting down: no request has started here, nothing to finish.
                    _ = self.cancel.cancelled() => return,
                };
                match handshake {
                    Ok(Ok(tls)) => {
                        // The client's certificate, when it sent one (rustls verified it).
                        let peer = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|certificate| PeerCertificate(certificate.clone().into_owned()));
                        if peer.is_some() {
                            drop(client_slot);
                        }
                        self.serve_http(tls, state, peer, service).await
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake not done within the header timeout"),
                }
            }
        }
    }

    async fn serve_http<IO, S>(
        self,
        io: IO,
        state: Arc<ConnectionState>,
        peer: Option<PeerCertificate>,
        service: S,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<
                hyper::Request<hyper::body::Incoming>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let service = {
            let state = state.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                let in_flight = InFlight::start(state.clone());
                request
                    .extensions_mut()
                    .insert(RequestActivity(Some(state.clone())));
                if let Some(peer) = &peer {
                    request.extensions_mut().insert(peer.clone());
                }
                let answer = service.call(request);
                async move {
                    let response = answer.await;
                    drop(in_flight);
                    response
                }
            })
        };
        let connection = self.server.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let limits = &self.limits;
        let watchdog = tokio::time::sleep_until(state.deadline(limits));
        tokio::pin!(watchdog);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "API connection ended with an error");
                    }
                    return;
                }
                _ = self.cancel.cancelled(), if !shutting_down => {
                    // Finish the request in flight, if any, then close.
                    shutting_down = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = state.changed.notified() => {
                    watchdog.as_mut().reset(state.deadline(limits));
                }
                _ = watchdog.as_mut() => {
                    let deadline = state.deadline(limits);
                    if deadline <= Instant::now() {
                        tracing::debug!("closing slow or idle API connection");
                        return;
                    }
                    watchdog.as_mut().reset(deadline);
                }
            }
        }
    }
}

const NO_HEAD: u64 = 0;

/// The clocks of one connection, in milliseconds since it opened.
struct ConnectionState {
    opened: Instant,
    last_activity: AtomicU64,
    /// 1 + when the first byte of the current request head arrived; `NO_HEAD` if none.
    head_started_at: AtomicU64,
    /// Woken when the deadline may have moved earlier (a head or a request started),
    /// so the watchdog looks again.
    changed: Notify,
    in_flight: AtomicBool,
    /// The request's body is read and berth is working on it: not idle.
    working: AtomicBool,
}

impl ConnectionState {
    fn new() -> ConnectionState {
        ConnectionState {
            opened: Instant::now(),
            last_activity: AtomicU64::new(0),
            // The first request's clock starts at accept: a silent client is slow too.
            head_started_at: AtomicU64::new(1),
            changed: Notify::new(),
            in_flight: AtomicBool::new(false),
            working: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if !self.in_flight.load(Ordering::Relaxed)
            && self.head_started_at.load(Ordering::Relaxed) == NO_HEAD
        {
            self.head_started_at.store(now + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    fn on_write(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection is to be closed if nothing changes before then.
    fn deadline(&self, limits: &ApiLimits) -> Instant {
        let head_started_at = self.head_started_at.load(Ordering::Relaxed);
        if head_started_at != NO_HEAD {
            return self.at(head_started_at - 1) + limits.request_header_timeout;
        }
        let last_activity = self.at(self.last_activity.load(Ordering::Relaxed));
        if self.working.load(Ordering::Relaxed) {
            // Not idle; look again an idle timeout from now.
            return last_activity.max(Instant::now()) + limits.idle_timeout;
        }
        last_activity + limits.idle_timeout
    }
}

/// One request between its parsed head and its answer.
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn start(state: Arc<ConnectionState>) -> InFlight {
        state.in_flight.store(true, Ordering::Relaxed);
        state.head_started_at.store(NO_HEAD, Ordering::Relaxed);
        state.changed.notify_one();
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.0;
        state.working.store(false, Ordering::Relaxed);
        state.last_activity.store(state.now(), Ordering::Relaxed);
        state.in_flight.store(false, Ordering::Relaxed);
    }
}

/// A request extension through which the handler tells its connection that the body
/// is read and the answer is being worked out (so the connection is not idle).
#[derive(Clone)]
pub(crate) struct RequestActivity(Option<Arc<ConnectionState>>);

impl RequestActivity {
    pub(crate) fn body_read(&self) {
        if let Some(state) = &self.0 {
            state.working.store(true, Ordering::Relaxed);
        }
    }
}

/// A request extension: the certificate the client presented in its TLS handshake,
/// verified by the listener's rustls configuration. Absent without TLS or without one.
#[derive(Clone, Debug)]
pub(crate) struct PeerCertificate(
    pub(crate) tokio_rustls::rustls::pki_types::CertificateDer<'static>,
);

/// The client socket, noting each read and write in the connection's clocks.
struct ActivityIo {
    inner: TcpStream,
    state: Arc<ConnectionState>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(context, buffer);
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
        let result = Pin::new(&mut self.inner).poll_write(context, data);
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
        let result = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ApiLimits {
        ApiLimits {
            request_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ApiLimits::default()
        }
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(client_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_of(ip("2001:db8:1:2:bbbb::9")), ip("2001:db8:1:2::"));
        assert_ne!(client_of(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn a_client_at_its_cap_gets_no_slot_until_one_closes() {
        let clients = Arc::new(OpenPerClient::new(2));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = clients.try_open(ip).unwrap();
        let _second = clients.try_open(ip).unwrap();
        assert!(clients.try_open(ip).is_none());
        assert!(clients.try_open("192.0.2.8".parse().unwrap()).is_some());
        drop(first);
        assert!(clients.try_open(ip).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_is_timed_from_accept_and_the_next_from_its_first_byte() {
        let state = Arc::new(ConnectionState::new());
        assert_eq!(
            state.deadline(&limits()),
            state.opened + Duration::from_secs(10)
        );
        let in_flight = InFlight::start(state.clone());
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(in_flight);
        // Between requests: the idle timeout.
        assert_eq!(
            state.deadline(&limits()),
            state.opened + Duration::from_secs(63)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        state.on_read();
        assert_eq!(
            state.deadline(&limits()),
            state.opened + Duration::from_secs(18)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        state.on_read();
        assert_eq!(
            state.deadline(&limits()),
            state.opened + Duration::from_secs(18)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_idles_out_but_a_request_being_worked_on_does_not() {
        let state = Arc::new(ConnectionState::new());
        let _in_flight = InFlight::start(state.clone());
        tokio::time::advance(Duration::from_secs(2)).await;
        state.on_read();
        // Reading the body: nothing moving for the idle timeout closes it.
        assert_eq!(
            state.deadline(&limits()),
            state.opened + Duration::from_secs(62)
        );
        RequestActivity(Some(state.clone())).body_read();
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(state.deadline(&limits()) > Instant::now());
    }
}
