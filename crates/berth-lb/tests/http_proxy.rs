//! The HTTP reverse proxy end to end on loopback: selection, forwarding headers,
//! keep-alive pooling, streaming, upgrades, retries and the balancer's own errors.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_lb::{Algorithm, HealthCheckConfig, Limits, LoadBalancer, TargetState};
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_300_requests_100_100_100() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group(
        "tg",
        backends.iter().map(Backend::target).collect(),
    )))
    .await
    .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut sender = connect(addr).await;
    for _ in 0..300 {
        let (status, body) = send(&mut sender, get_request("/")).await;
        assert_eq!(status, StatusCode::OK);
        *counts.entry(body).or_default() += 1;
    }
    assert_eq!(
        counts,
        HashMap::from([("a".into(), 100), ("b".into(), 100), ("c".into(), 100)])
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_requests_prefers_the_idle_backend() {
    let busy = Backend::start("busy").await;
    let idle = Backend::start("idle").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![busy.target(), idle.target()]);
    config.algorithm = Algorithm::LeastOutstandingRequests;
    lb.apply(single(config)).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    // One slow request holds one backend busy: every quick request that follows goes
    // to the other (round robin would alternate).
    let slow = tokio::spawn(async move { get(addr, "/slow?1500").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let slow_target = if busy.requests.load(Ordering::SeqCst) == 1 {
        "busy"
    } else {
        "idle"
    };
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(get(addr, "/").await.1);
    }
    let other = if slow_target == "busy" {
        "idle"
    } else {
        "busy"
    };
    assert!(
        answers.iter().all(|answer| answer == other),
        "{answers:?} while {slow_target} is busy"
    );
    assert_eq!(slow.await.unwrap().1, slow_target);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_reach_the_backend_and_host_is_kept() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    let mut sender = connect(addr).await;
    let request = Request::get("/headers")
        .header("host", "shop.example.test")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-private")
        .header("x-private", "hop")
        .body(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap();
    let (status, body) = send(&mut sender, request).await;
    assert_eq!(status, StatusCode::OK);
    let port = addr.port();
    assert!(body.contains("host=shop.example.test\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for=203.0.113.9, 127.0.0.1\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto=http\n"), "{body}");
    assert!(
        body.contains(&format!("x-forwarded-port={port}\n")),
        "{body}"
    );
    assert!(
        body.contains("x-forwarded-host=shop.example.test\n"),
        "{body}"
    );
    assert!(
        body.contains("x-private=\n"),
        "hop-by-hop header forwarded: {body}"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_strip_host_or_the_forwarding_chain() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    // A client naming end-to-end fields as connection options (the hop-by-hop trick)
    // loses only the ones that really are its own.
    let response = raw_exchange(
        addr,
        b"GET /headers HTTP/1.1\r\nHost: shop.example.test\r\n\
          Connection: close, Host, x-forwarded-for, x-private\r\n\
          X-Forwarded-For: 203.0.113.9\r\nX-Private: hop\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(
        response.contains("\r\n\r\nhost=shop.example.test\n"),
        "{response}"
    );
    assert!(
        response.contains("\nx-forwarded-for=203.0.113.9, 127.0.0.1\n"),
        "{response}"
    );
    assert!(
        response.contains("\nx-forwarded-host=shop.example.test\n"),
        "{response}"
    );
    assert!(response.contains("\nx-private=\n"), "{response}");
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_reuse_few_upstream_connections() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![backend.target()]);
    config.health_check.protocol = berth_lb::HealthProtocol::Tcp;
    config.health_check.interval = Duration::from_secs(60);
    lb.apply(single(config)).await.unwrap();
    all_healthy(&lb, "tg").await;
    let health_check_accepts = backend.accepts.load(Ordering::SeqCst);
    let mut sender = connect(lb.local_addr("web").unwrap()).await;
    for _ in 0..200 {
        assert_eq!(send(&mut sender, get_request("/")).await.0, StatusCode::OK);
    }
    let proxy_accepts = backend.accepts.load(Ordering::SeqCst) - health_check_accepts;
    assert!(
        proxy_accepts <= 2,
        "200 requests opened {proxy_accepts} upstream connections"
    );
    assert_eq!(backend.requests.load(Ordering::SeqCst), 200);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_response_streams_without_buffering() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let mut sender = connect(lb.local_addr("web").unwrap()).await;
    sender.ready().await.unwrap();
    let started = tokio::time::Instant::now();
    let response = sender.send_request(get_request("/big")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first_after = started.elapsed();
    assert!(!first.is_empty());
    let mut total = first.len();
    while let Some(frame) = body.frame().await {
        total += frame
            .unwrap()
            .into_data()
            .map(|data| data.len())
            .unwrap_or(0);
    }
    let all_after = started.elapsed();
    assert_eq!(total, 10_000_000);
    // The backend pauses 800 ms half way: the first bytes must arrive before that.
    assert!(
        first_after < Duration::from_millis(500),
        "first bytes after {first_after:?}"
    );
    assert!(
        all_after >= Duration::from_millis(800),
        "whole body after {all_after:?}"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_request_body_streams_to_the_backend() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let mut sender = connect(lb.local_addr("web").unwrap()).await;
    sender.ready().await.unwrap();
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let body = StreamBody::new(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|frame| (frame, receiver)) },
    ));
    let request = Request::post("/echo")
        .header("host", "app")
        .body(body.boxed())
        .unwrap();
    let response_future = tokio::spawn(sender.send_request(request));
    chunks
        .send(Ok(Frame::data(Bytes::from_static(b"first chunk;"))))
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(3), response_future)
        .await
        .expect("the head should arrive while the body is still open")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let echoed = tokio::time::timeout(Duration::from_secs(3), body.frame())
        .await
        .expect("the first chunk should be echoed before the request body ends")
        .unwrap()
        .unwrap();
    assert_eq!(
        echoed.into_data().unwrap(),
        Bytes::from_static(b"first chunk;")
    );
    chunks
        .send(Ok(Frame::data(Bytes::from_static(b"second chunk"))))
        .await
        .unwrap();
    drop(chunks);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, Bytes::from_static(b"second chunk"));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_passes_through_and_bytes_echo_both_ways() {
    let backend = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![backend.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let mut sender = connect(lb.local_addr("web").unwrap()).await;
    sender.ready().await.unwrap();
    let request = Request::get("/ws")
        .header("host", "app")
        .header("connection", "Upgrade")
        .header("upgrade", "echo")
        .body(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "echo");
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    for message in [&b"hello"[..], b"second message"] {
        io.write_all(message).await.unwrap();
        let mut buffer = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(3), io.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer, message);
    }
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_target_is_a_503_that_says_so_and_keeps_the_connection() {
    let backend = Backend::start("a").await;
    backend.set_health(500);
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("orders", vec![backend.target()])))
        .await
        .unwrap();
    let mut sender = connect(lb.local_addr("web").unwrap()).await;
    for _ in 0..2 {
        let (status, body) = send(&mut sender, get_request("/")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "503 no healthy target in target group orders\n");
    }
    assert_eq!(backend.requests.load(Ordering::SeqCst), 0);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_for_gets_and_eject_the_target() {
    let good = Backend::start("good").await;
    let dead = refused_addr().await;
    let lb = LoadBalancer::new(Limits::default());
    // Checks disabled: both targets are Healthy at once, so traffic finds the dead one.
    let mut config = group(
        "tg",
        vec![
            good.target(),
            berth_lb::TargetConfig {
                id: "dead".into(),
                addr: dead,
            },
        ],
    );
    config.health_check = HealthCheckConfig {
        enabled: false,
        interval: Duration::from_secs(60),
        unhealthy_threshold: 2,
        ..HealthCheckConfig::default()
    };
    lb.apply(single(config)).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    for _ in 0..20 {
        let (status, body) = get(addr, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "good"));
    }
    let health = lb.target_health("tg").unwrap();
    assert_eq!(state_of(&health, "dead"), Some(TargetState::Unhealthy));
    let dead_health = health.iter().find(|t| t.id == "dead").unwrap();
    assert_eq!(dead_health.reason, Some("Target.FailedHealthChecks"));
    assert_eq!(state_of(&health, "good"), Some(TargetState::Healthy));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_a_body_is_not_retried() {
    let dead = refused_addr().await;
    let good = Backend::start("good").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group(
        "tg",
        vec![
            berth_lb::TargetConfig {
                id: "dead".into(),
                addr: dead,
            },
            good.target(),
        ],
    );
    config.health_check.enabled = false;
    config.health_check.unhealthy_threshold = 100;
    lb.apply(single(config)).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut sender = connect(addr).await;
        let request = Request::post("/echo")
            .header("host", "app")
            .body(
                http_body_util::Full::new(Bytes::from_static(b"payload"))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap();
        statuses.push(send(&mut sender, request).await);
    }
    // Round robin alternates: half land on the dead target and are not retried.
    let bad: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status == StatusCode::BAD_GATEWAY)
        .collect();
    let ok: Vec<_> = statuses
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body == "payload")
        .collect();
    assert_eq!((bad.len(), ok.len()), (2, 2), "{statuses:?}");
    assert!(bad[0].1.starts_with("502 bad gateway"), "{statuses:?}");
    lb.shutdown().await;
}
