//! Bad input on the client side: malformed requests, oversized heads, slow and idle
//! clients. Each is dealt with on its own connection while others are served.

mod common;

use std::time::Duration;

use berth_lb::{Limits, LoadBalancer};
use common::*;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

async fn balancer(limits: Limits) -> (LoadBalancer, Backend, std::net::SocketAddr) {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(limits);
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    (lb, backend, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_line_gets_400_and_the_connection_closes() {
    let (lb, _backend, addr) = balancer(Limits::default()).await;
    let response = raw_exchange(addr, b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response:?}");
    let response = raw_exchange(addr, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response:?}");
    assert_eq!(get(addr, "/").await, (StatusCode::OK, "a".to_string()));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_and_others_are_still_served() {
    let limits = Limits {
        max_header_bytes: 16 * 1024,
        max_headers: 20,
        ..Limits::default()
    };
    let (lb, _backend, addr) = balancer(limits).await;
    let mut sender = connect(addr).await;
    assert_eq!(send(&mut sender, get_request("/")).await.1, "a");

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(64 * 1024)
    );
    let response = raw_exchange(addr, big.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "{:?}",
        &response[..response.len().min(80)]
    );

    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for index in 0..50 {
        many.push_str(&format!("X-Header-{index}: v\r\n"));
    }
    many.push_str("\r\n");
    let response = raw_exchange(addr, many.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");

    // The keep-alive connection opened before is unaffected, and new ones work.
    assert_eq!(send(&mut sender, get_request("/")).await.1, "a");
    assert_eq!(get(addr, "/").await.1, "a");
    lb.shutdown().await;
}

/// A request head of exactly `length` bytes, `Host` and `Connection: close` included.
fn head_of_length(length: usize) -> String {
    let start = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let head = format!(
        "{start}{}{end}",
        "p".repeat(length - start.len() - end.len())
    );
    assert_eq!(head.len(), length);
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_head_limit_is_the_one_enforced() {
    let limits = Limits::default();
    assert_eq!(limits.max_header_bytes, 64 * 1024, "the documented default");
    let (lb, _backend, addr) = balancer(limits.clone()).await;
    let at_limit = raw_exchange(addr, head_of_length(limits.max_header_bytes).as_bytes()).await;
    assert!(at_limit.starts_with("HTTP/1.1 200"), "{at_limit:?}");
    for over in [1, 1024, 48 * 1024] {
        let head = head_of_length(limits.max_header_bytes + over);
        let response = raw_exchange(addr, head.as_bytes()).await;
        assert!(
            response.starts_with("HTTP/1.1 431"),
            "{over} bytes over: {:?}",
            &response[..response.len().min(80)]
        );
    }

    // The same holds for a limit below hyper's smallest read buffer (8 KiB).
    let limits = Limits {
        max_header_bytes: 4096,
        ..Limits::default()
    };
    let (small, _backend, addr) = balancer(limits).await;
    let at_limit = raw_exchange(addr, head_of_length(4096).as_bytes()).await;
    assert!(at_limit.starts_with("HTTP/1.1 200"), "{at_limit:?}");
    let over = raw_exchange(addr, head_of_length(4097).as_bytes()).await;
    assert!(over.starts_with("HTTP/1.1 431"), "{over:?}");
    small.shutdown().await;
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_missing_repeated_or_invalid_gets_400_and_nothing_is_forwarded() {
    let (lb, backend, addr) = balancer(Limits::default()).await;
    for (request, problem) in [
        ("GET / HTTP/1.1\r\n\r\n", "needs a host header"),
        (
            "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            "more than one host header",
        ),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid host header"),
        (
            "GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n",
            "invalid host header",
        ),
        (
            "GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n",
            "invalid host header",
        ),
        (
            "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
            "more than one",
        ),
        (
            // With a body: the 400 still reaches the client whole.
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "needs a host header",
        ),
    ] {
        // raw_exchange also shows that the balancer closes the connection.
        let response = raw_exchange(addr, request.as_bytes()).await;
        assert!(
            // hyper answers an HTTP/1.0 request in HTTP/1.0.
            response.starts_with("HTTP/1.")
                && response.contains(" 400 ")
                && response.contains(problem),
            "{request:?} -> {response:?}"
        );
    }
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no bad request reached the target"
    );
    assert_eq!(get(addr, "/").await, (StatusCode::OK, "a".to_string()));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_10_without_host_and_absolute_form_targets_get_a_host_the_target_can_use() {
    let (lb, _backend, addr) = balancer(Limits::default()).await;
    // HTTP/1.0 may omit Host, but the target is spoken to in HTTP/1.1: it is told the
    // address the client connected to.
    let response = raw_exchange(addr, b"GET /headers HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response:?}");
    assert!(
        response.contains(&format!("\r\n\r\nhost={addr}\n")),
        "{response:?}"
    );
    // The authority of an absolute-form target replaces Host (RFC 9112 section 3.2.2).
    let response = raw_exchange(
        addr,
        b"GET http://other.test:81/headers HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(
        response.contains("\r\n\r\nhost=other.test:81\n"),
        "{response:?}"
    );
    assert!(
        response.contains("\nx-forwarded-host=other.test:81\n"),
        "{response:?}"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_after_the_header_timeout_while_others_are_served() {
    let limits = Limits {
        request_header_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (lb, _backend, addr) = balancer(limits).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .await
        .unwrap();
    let started = Instant::now();
    // Keep dribbling bytes: a slowloris does not reset the head clock.
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let served = async {
        for _ in 0..5 {
            assert_eq!(get(addr, "/").await.1, "a");
        }
    };
    let (_, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(3), dribble),
        served
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the slow client should have been dropped");
    let dropped_after = started.elapsed();
    assert!(
        dropped_after >= Duration::from_millis(450),
        "dropped after {dropped_after:?}"
    );
    assert!(
        dropped_after < Duration::from_secs(2),
        "dropped after {dropped_after:?}"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_after_the_idle_timeout_not_the_header_timeout() {
    let limits = Limits {
        request_header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let (lb, _backend, addr) = balancer(limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    // Longer than the header timeout: still open, and serves another request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let idle_since_second = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let closed_after = idle_since_second.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}"
    );
    assert!(idle_since.elapsed() < Duration::from_secs(3));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_response_is_dropped_after_the_idle_timeout() {
    let limits = Limits {
        request_header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(300),
        upstream_connect_timeout: Duration::from_millis(200),
        upstream_response_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (lb, _backend, addr) = balancer(limits).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read nothing: the sockets fill and nothing moves. The deadline here is the
    // upstream's timeouts plus a second (1.5 s); well after it, read what is left.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(get(addr, "/").await.1, "a", "others are served meanwhile");
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => received += count,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the balancer closed the stalled connection ({received} bytes read)"
    );
    assert!(
        received < HUGE_CHUNK * HUGE_CHUNKS,
        "it was closed before the whole body went out ({received} bytes)"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_until_one_frees() {
    assert_eq!(
        Limits::default().max_connections,
        10_000,
        "the documented default"
    );
    let (lb, _backend, addr) = balancer(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    // Two keep-alive connections are served (so both hold a slot).
    let mut first = connect(addr).await;
    let mut second = connect(addr).await;
    assert_eq!(send(&mut first, get_request("/")).await.1, "a");
    assert_eq!(send(&mut second, get_request("/")).await.1, "a");
    // A third is closed without an answer.
    let refused = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(refused, "", "a connection beyond the cap was served");
    assert_eq!(send(&mut first, get_request("/")).await.1, "a");
    // Once one closes, a new connection is served (its slot frees when the balancer
    // sees the close, so allow a few tries).
    drop(second);
    let mut served = false;
    for _ in 0..100 {
        let response = raw_exchange(
            addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if response.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no connection was served after one freed");
    lb.shutdown().await;
}

/// One request on a fresh keep-alive connection; then how long until the balancer
/// closes it (`None`: still open after `wait`).
async fn idle_close_after(addr: std::net::SocketAddr, wait: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(idle_since.elapsed()),
        Ok(Ok(_)) => panic!("unexpected bytes on an idle connection"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listeners_own_idle_timeout_wins_and_apply_changes_it_on_the_open_socket() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits {
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let mut config = single(group("tg", vec![backend.target()]));
    config.listeners[0].idle_timeout = Some(Duration::from_millis(400));
    lb.apply(config.clone()).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    let closed = idle_close_after(addr, Duration::from_secs(5)).await;
    println!("idle 400 ms: closed after {closed:?}");
    let closed = closed.expect("the listener's 400 ms idle timeout closes the connection");
    assert!(
        closed >= Duration::from_millis(300),
        "closed after {closed:?}"
    );

    // Longer now: the same socket (same address) keeps an idle client past 400 ms.
    config.listeners[0].idle_timeout = Some(Duration::from_secs(30));
    lb.apply(config.clone()).await.unwrap();
    assert_eq!(lb.local_addr("web"), Some(addr), "no rebind");
    let closed = idle_close_after(addr, Duration::from_millis(1500)).await;
    println!("idle 30 s: closed after {closed:?} (none within 1.5 s expected)");
    assert_eq!(closed, None);

    // Unset: the balancer's own limit (60 s) again.
    config.listeners[0].idle_timeout = None;
    lb.apply(config).await.unwrap();
    assert_eq!(
        idle_close_after(addr, Duration::from_millis(1500)).await,
        None
    );
    lb.shutdown().await;
}
