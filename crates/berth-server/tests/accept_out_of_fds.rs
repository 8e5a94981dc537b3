//! File descriptors: at a low soft limit the API runs out of them (accept fails with
//! EMFILE and new clients go unanswered); `raise_descriptor_limit`, which `berth dev`
//! runs at start, lifts the soft limit to the hard one, and then the API serves far
//! more connections than the low limit allowed. Its own test binary, because it changes
//! this process's descriptor limit (lowering it with util-linux's `prlimit`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use berth_auth::{sign_headers, Credentials, Verifier};
use berth_server::{raise_descriptor_limit, serve_with, ApiLimits, ApiTransport, ControlPlane};
use berth_store::{MemoryBackend, Store};

fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64
}

fn soft_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a descriptor limit");
    line.split_whitespace()
        .nth(3)
        .and_then(|soft| soft.parse().ok())
        .expect("a numeric soft limit")
}

fn hard_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(4).map(str::to_string))
        })
        .expect("a hard limit")
}

fn set_soft_limit(soft: u64) {
    let hard = hard_limit();
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit failed");
    assert_eq!(soft_limit(), soft);
}

/// Restores the descriptor limit when the test ends, also on failure.
struct RestoreLimit(u64);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        set_soft_limit(self.0);
    }
}

/// A signed ListClusters on a new connection; the status, if one came back.
fn list_clusters(address: std::net::SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let headers = sign_headers(
        &Credentials::new("AKIDFDTEST", "fd-test-secret"),
        "us-east-1",
        "ecs",
        time::OffsetDateTime::now_utc(),
        "POST",
        &address.to_string(),
        "/",
        vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                "AmazonEC2ContainerServiceV20141113.ListClusters".to_string(),
            ),
        ],
        b"{}",
    );
    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("content-length: 2\r\nconnection: close\r\n\r\n{}");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

/// How many client connections the test holds once the limit is raised: each costs
/// this process two descriptors (both ends), far beyond the low limit.
const HELD: usize = 150;

#[test]
fn berth_raises_its_descriptor_limit_and_then_serves_beyond_the_old_one() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let store = Arc::new(Store::open(Box::new(MemoryBackend::default())).unwrap());
    let control_plane = Arc::new(ControlPlane::new(
        store,
        "000000000000".to_string(),
        "us-east-1".to_string(),
        berth_core::PrivilegePolicy::allow_all(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ApiLimits::default();
    let server = runtime.spawn(serve_with(
        listener,
        control_plane,
        Verifier::from_credentials(Credentials::new("AKIDFDTEST", "fd-test-secret")),
        // Every client here is 127.0.0.1: only the global cap applies, as in berth dev.
        ApiLimits {
            max_connections_per_client: limits.max_connections,
            ..limits
        },
        ApiTransport::Plain,
        async move {
            let _ = stopped.await;
        },
    ));
    assert_eq!(list_clusters(address), Some(200));

    let restore = RestoreLimit(soft_limit());
    let hard: u64 = hard_limit()
        .parse()
        .expect("a finite hard descriptor limit");
    let low = open_descriptors() + 40;
    assert!(
        hard > low + 2 * HELD as u64 + 100,
        "the hard descriptor limit ({hard}) is too low for this test"
    );
    set_soft_limit(low);
    // Connect until this process has no descriptor left: the server's accepts fail
    // with EMFILE while the kernel keeps queueing connections for it.
    let mut clients = Vec::new();
    while let Ok(client) = TcpStream::connect(address) {
        clients.push(client);
        assert!(clients.len() < 1000, "the descriptor limit did not hold");
    }
    assert!(
        list_clusters(address).is_none(),
        "a request was answered with no descriptor free"
    );
    drop(clients);

    // berth lifts the soft limit to the hard one.
    assert_eq!(raise_descriptor_limit().unwrap(), Some(hard));
    assert_eq!(soft_limit(), hard);

    // Now far more connections than the low limit allowed are open at once, each one
    // accepted and held by the server, and requests are still answered.
    let mut held = Vec::new();
    for index in 0..HELD {
        let client = TcpStream::connect(address)
            .unwrap_or_else(|error| panic!("connection {index} failed: {error}"));
        held.push(client);
    }
    let mut answered = None;
    for _ in 0..200 {
        answered = list_clusters(address);
        if answered.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answered, Some(200));
    assert!(
        open_descriptors() > low + HELD as u64,
        "the held connections do not all have their descriptors"
    );
    drop(held);
    drop(restore);
    let _ = stop.send(());
    let served =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(20), server).await });
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "serve did not return: {served:?}"
    );
}
