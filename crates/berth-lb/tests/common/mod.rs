//! Test backends (small hyper servers on loopback) and client helpers.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_lb::{
    Algorithm, HealthCheckConfig, LbConfig, ListenerConfig, ListenerProtocol, LoadBalancer,
    Stickiness, TargetConfig, TargetGroupConfig, TargetHealth, TargetState,
};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub type TestBody = BoxBody<Bytes, std::io::Error>;

/// A backend: answers `/` with its name, `/health` with `health_status`, `/login`
/// with its name and a `session` cookie, and more
/// (see `respond`). Counts accepted connections and served requests.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub health_status: Arc<AtomicU16>,
    pub accepts: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health_status = Arc::new(AtomicU16::new(200));
        let accepts = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(BackendState {
            name: name.to_string(),
            health_status: health_status.clone(),
            requests: requests.clone(),
        });
        let accepted = accepts.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(respond(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            health_status,
            accepts,
            requests,
            task,
        }
    }

    pub fn target(&self) -> TargetConfig {
        TargetConfig {
            id: self.name.clone(),
            addr: self.addr,
        }
    }

    pub fn set_health(&self, status: u16) {
        self.health_status.store(status, Ordering::SeqCst);
    }
}

struct BackendState {
    name: String,
    health_status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
}

fn full(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn respond(state: Arc<BackendState>, mut request: Request<Incoming>) -> Response<TestBody> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    if path == "/health" {
        let status = state.health_status.load(Ordering::SeqCst);
        let mut response = Response::new(full("health"));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        return response;
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    match path.as_str() {
        "/slow" => {
            let millis: u64 = query.parse().unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Response::new(full(state.name.clone()))
        }
        "/headers" => {
            let mut text = String::new();
            for name in [
                "host",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-port",
                "x-forwarded-host",
                "connection",
                "x-private",
            ] {
                let value = request
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                text.push_str(&format!("{name}={value}\n"));
            }
            Response::new(full(text))
        }
        "/big" => {
            // 10 MB in 100 KB chunks, the second half after a pause: the client must
            // see the first bytes long before the end.
            let chunks = futures_util::stream::unfold(0usize, |index| async move {
                if index == 100 {
                    return None;
                }
                if index == 50 {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
                let chunk = Bytes::from(vec![b'x'; 100_000]);
                Some((Ok::<_, std::io::Error>(Frame::data(chunk)), index + 1))
            });
            Response::new(StreamBody::new(chunks).boxed())
        }
        "/huge" => {
            // 256 MB, far more than the sockets between here and a client can buffer.
            let chunks = futures_util::stream::unfold(0usize, |index| async move {
                (index < HUGE_CHUNKS).then(|| {
                    let chunk = Bytes::from(vec![b'x'; HUGE_CHUNK]);
                    (Ok::<_, std::io::Error>(Frame::data(chunk)), index + 1)
                })
            });
            Response::new(StreamBody::new(chunks).boxed())
        }
        "/login" => {
            // An application's own session cookie, as app_cookie stickiness follows.
            let mut response = Response::new(full(state.name.clone()));
            let cookie = format!("session={}; Path=/", state.name);
            response
                .headers_mut()
                .insert("set-cookie", cookie.parse().unwrap());
            response
        }
        "/echo" => {
            // Streams the request body back as it arrives.
            let body = request.into_body().map_err(std::io::Error::other).boxed();
            Response::new(body)
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buffer = [0u8; 1024];
                    loop {
                        match io.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(count) => {
                                if io.write_all(&buffer[..count]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            });
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            response
                .headers_mut()
                .insert("upgrade", "echo".parse().unwrap());
            response
        }
        _ => Response::new(full(state.name.clone())),
    }
}

pub const HUGE_CHUNK: usize = 1 << 20;
pub const HUGE_CHUNKS: usize = 256;

/// An address nothing listens on (bound, then released).
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

pub fn fast_health_check() -> HealthCheckConfig {
    HealthCheckConfig {
        path: "/health".to_string(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..HealthCheckConfig::default()
    }
}

pub fn group(id: &str, targets: Vec<TargetConfig>) -> TargetGroupConfig {
    TargetGroupConfig {
        id: id.to_string(),
        protocol: ListenerProtocol::Http,
        algorithm: Algorithm::RoundRobin,
        health_check: fast_health_check(),
        deregistration_delay: Duration::from_millis(300),
        stickiness: Stickiness::Off,
        targets,
    }
}

pub fn http_listener(id: &str, group_id: &str) -> ListenerConfig {
    ListenerConfig::forwarding(
        id.to_string(),
        "127.0.0.1:0".parse().unwrap(),
        ListenerProtocol::Http,
        group_id.to_string(),
    )
}

pub fn single(group: TargetGroupConfig) -> LbConfig {
    LbConfig {
        listeners: vec![http_listener("web", &group.id)],
        target_groups: vec![group],
    }
}

/// Waits (at most 5 s) until `check` holds for the group's target health.
pub async fn wait_for(lb: &LoadBalancer, group_id: &str, check: impl Fn(&[TargetHealth]) -> bool) {
    wait_for_within(lb, group_id, Duration::from_secs(5), check).await;
}

pub async fn wait_for_within(
    lb: &LoadBalancer,
    group_id: &str,
    within: Duration,
    check: impl Fn(&[TargetHealth]) -> bool,
) {
    let mut changes = lb.health_changes();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let health = lb.target_health(group_id).unwrap();
        if check(&health) {
            return;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting on target health: {health:?}"
        );
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), changes.changed()).await;
    }
}

pub fn state_of(health: &[TargetHealth], id: &str) -> Option<TargetState> {
    health.iter().find(|t| t.id == id).map(|t| t.state)
}

pub async fn all_healthy(lb: &LoadBalancer, group_id: &str) {
    wait_for(lb, group_id, |health| {
        !health.is_empty() && health.iter().all(|t| t.state == TargetState::Healthy)
    })
    .await;
}

/// A client connection to the balancer.
pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    sender
}

pub fn get_request(path: &str) -> Request<TestBody> {
    Request::get(path)
        .header("host", "app.example.test")
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .unwrap()
}

/// One GET on a new connection: (status, body).
pub async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let mut sender = connect(addr).await;
    send(&mut sender, get_request(path)).await
}

pub async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<TestBody>,
    request: Request<TestBody>,
) -> (StatusCode, String) {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends raw bytes and reads until the balancer closes the connection (5 s at most).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("the balancer should close the connection")
        .ok();
    String::from_utf8_lossy(&response).into_owned()
}
