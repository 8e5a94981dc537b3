//! The TCP listener, and `apply` / `shutdown` on listeners.

mod common;

use std::time::Duration;

use berth_lb::{
    BindFailure, HealthProtocol, LbConfig, LbError, Limits, ListenerConfig, ListenerProtocol,
    ListenerStatus, LoadBalancer, TargetConfig, TargetState,
};
use common::*;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn tcp_echo_server(greeting: &'static str) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if stream.write_all(greeting.as_bytes()).await.is_err() {
                    return;
                }
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tcp_listener_proxies_bytes_both_ways_over_healthy_targets() {
    let first = tcp_echo_server("one:").await;
    let second = tcp_echo_server("two:").await;
    let dead = refused_addr().await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group(
        "tcp",
        vec![
            TargetConfig {
                id: "one".into(),
                addr: first,
            },
            TargetConfig {
                id: "two".into(),
                addr: second,
            },
            TargetConfig {
                id: "dead".into(),
                addr: dead,
            },
        ],
    );
    config.protocol = ListenerProtocol::Tcp;
    config.health_check.protocol = HealthProtocol::Tcp;
    lb.apply(LbConfig {
        listeners: vec![ListenerConfig::forwarding(
            "db",
            "127.0.0.1:0".parse().unwrap(),
            ListenerProtocol::Tcp,
            "tcp",
        )],
        target_groups: vec![config],
    })
    .await
    .unwrap();
    wait_for(&lb, "tcp", |health| {
        state_of(health, "one") == Some(TargetState::Healthy)
            && state_of(health, "two") == Some(TargetState::Healthy)
            && state_of(health, "dead") == Some(TargetState::Unhealthy)
    })
    .await;
    let addr = lb.local_addr("db").unwrap();
    let mut greetings = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut greeting = [0u8; 4];
        stream.read_exact(&mut greeting).await.unwrap();
        greetings.push(String::from_utf8_lossy(&greeting).into_owned());
        stream.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"ping");
    }
    greetings.sort();
    assert_eq!(greetings, ["one:", "one:", "two:", "two:"]);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_leaves_that_listener_out_names_it_and_applies_the_rest() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let original = single(group("tg", vec![a.target()]));
    lb.apply(original.clone()).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    let occupied = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let occupied_addr = occupied.local_addr().unwrap();
    let mut changed = single(group("tg", vec![b.target()]));
    changed.listeners.push(ListenerConfig::forwarding(
        "second",
        occupied_addr,
        ListenerProtocol::Http,
        "tg",
    ));
    let error = lb.apply(changed.clone()).await.unwrap_err();
    assert!(matches!(error, LbError::Bind { addr, .. } if addr == occupied_addr));
    assert!(
        error.to_string().contains(&occupied_addr.to_string())
            && error.to_string().contains("second"),
        "{error}"
    );

    // The taken port is left out; the rest is applied: the same listener now serves
    // the new target, and the old one drains.
    assert_eq!(lb.local_addr("web"), Some(addr));
    assert!(lb.local_addr("second").is_none());
    // Each listener's status says which serves and why the other does not.
    assert_eq!(
        lb.listener_status("web"),
        Some(ListenerStatus::Serving { local_addr: addr })
    );
    assert_eq!(
        lb.listener_status("second"),
        Some(ListenerStatus::NotServing {
            failure: BindFailure {
                addr: occupied_addr,
                reason: "Address already in use".to_string(),
            },
            still_serving_at: None,
        })
    );
    assert_eq!(
        format!("{}", not_serving_failure(&lb, "second")),
        format!("{occupied_addr}: Address already in use")
    );
    wait_for(&lb, "tg", |health| {
        state_of(health, "b") == Some(TargetState::Healthy)
    })
    .await;
    assert_eq!(get(addr, "/").await, (StatusCode::OK, "b".to_string()));

    // Once the port is free, applying the same config again starts the listener.
    drop(occupied);
    lb.apply(changed.clone()).await.unwrap();
    assert_eq!(lb.local_addr("second"), Some(occupied_addr));
    assert_eq!(
        lb.listener_status("second"),
        Some(ListenerStatus::Serving {
            local_addr: occupied_addr
        })
    );
    assert_eq!(
        get(occupied_addr, "/").await,
        (StatusCode::OK, "b".to_string())
    );

    // A listener taken out of the config has no status any more.
    changed.listeners.retain(|l| l.id != "second");
    lb.apply(changed).await.unwrap();
    assert_eq!(lb.listener_status("second"), None);
    assert_eq!(lb.listener_statuses().len(), 1);
    lb.shutdown().await;
}

/// A listener moved to a port that is taken keeps serving on its old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_moved_to_a_taken_port_keeps_its_old_socket() {
    let a = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = single(group("tg", vec![a.target()]));
    lb.apply(config.clone()).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    let occupied = TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.listeners[0].bind = occupied.local_addr().unwrap();
    let occupied_addr = occupied.local_addr().unwrap();
    let error = lb.apply(config.clone()).await.unwrap_err();
    assert!(matches!(error, LbError::Bind { .. }), "{error}");
    assert_eq!(lb.local_addr("web"), Some(addr));
    assert_eq!(get(addr, "/").await, (StatusCode::OK, "a".to_string()));
    // Not serving where it is configured, still serving where it was.
    match lb.listener_status("web") {
        Some(ListenerStatus::NotServing {
            failure,
            still_serving_at,
        }) => {
            assert_eq!(failure.addr, occupied_addr);
            assert_eq!(still_serving_at, Some(addr));
        }
        other => panic!("the moved listener should not serve at its new port: {other:?}"),
    }

    // Once the new port is free, the same config moves it there.
    drop(occupied);
    lb.apply(config).await.unwrap();
    assert_eq!(
        lb.listener_status("web"),
        Some(ListenerStatus::Serving {
            local_addr: occupied_addr
        })
    );
    assert_eq!(
        get(occupied_addr, "/").await,
        (StatusCode::OK, "a".to_string())
    );
    lb.shutdown().await;
}

fn not_serving_failure(lb: &LoadBalancer, listener_id: &str) -> BindFailure {
    match lb.listener_status(listener_id) {
        Some(ListenerStatus::NotServing { failure, .. }) => failure,
        other => panic!("{listener_id} should not be serving: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_listeners_close_and_shutdown_closes_everything() {
    let a = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = single(group("tg", vec![a.target()]));
    config.listeners.push(http_listener("other", "tg"));
    lb.apply(config.clone()).await.unwrap();
    all_healthy(&lb, "tg").await;
    let web = lb.local_addr("web").unwrap();
    let other = lb.local_addr("other").unwrap();
    assert_eq!(get(other, "/").await.1, "a");

    config.listeners.retain(|listener| listener.id == "web");
    lb.apply(config).await.unwrap();
    assert!(lb.local_addr("other").is_none());
    assert!(TcpStream::connect(other).await.is_err());
    assert_eq!(get(web, "/").await.1, "a");

    let error = lb
        .apply(LbConfig {
            listeners: vec![http_listener("web", "missing")],
            target_groups: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(error, LbError::InvalidConfig(_)), "{error}");

    lb.shutdown().await;
    assert!(TcpStream::connect(web).await.is_err());
    assert!(matches!(
        lb.apply(LbConfig::default()).await,
        Err(LbError::ShutDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_listeners() {
    let a = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    lb.apply(single(group("tg", vec![a.target()])))
        .await
        .unwrap();
    let web = lb.local_addr("web").unwrap();
    let clone = lb.clone();
    drop(lb);
    assert!(TcpStream::connect(web).await.is_ok());
    drop(clone);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(web).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still open after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With threads of its own (as `berth dev` runs it): it proxies HTTP and TCP, keeps
/// client connections alive, and both shutdown and dropping the last handle (from
/// inside an async context) close every listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_with_its_own_threads_serves_and_closes() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::with_own_threads(Limits::default(), 2).unwrap();
    let mut config = single(group("tg", vec![a.target(), b.target()]));
    let echo = tcp_echo_server("hello").await;
    let mut tcp_group = group(
        "tcp",
        vec![TargetConfig {
            id: "echo".into(),
            addr: echo,
        }],
    );
    tcp_group.protocol = ListenerProtocol::Tcp;
    tcp_group.health_check.protocol = HealthProtocol::Tcp;
    config.target_groups.push(tcp_group);
    config.listeners.push(ListenerConfig::forwarding(
        "tcp",
        "127.0.0.1:0".parse().unwrap(),
        ListenerProtocol::Tcp,
        "tcp",
    ));
    lb.apply(config).await.unwrap();
    all_healthy(&lb, "tg").await;
    all_healthy(&lb, "tcp").await;
    let web = lb.local_addr("web").unwrap();

    let mut sender = connect(web).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(send(&mut sender, get_request("/")).await.1);
    }
    answers.sort();
    assert_eq!(
        answers,
        ["a", "a", "b", "b"],
        "round robin on one connection"
    );

    let mut stream = TcpStream::connect(lb.local_addr("tcp").unwrap())
        .await
        .unwrap();
    let mut greeting = [0u8; 5];
    stream.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"hello");

    lb.shutdown().await;
    assert!(TcpStream::connect(web).await.is_err(), "shutdown closed it");

    // Dropping the last handle inside a runtime must not panic, and closes listeners.
    let again = LoadBalancer::with_own_threads(Limits::default(), 1).unwrap();
    again
        .apply(single(group("tg", vec![a.target()])))
        .await
        .unwrap();
    all_healthy(&again, "tg").await;
    let addr = again.local_addr("web").unwrap();
    assert_eq!(get(addr, "/").await.1, "a");
    drop(again);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still open after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
