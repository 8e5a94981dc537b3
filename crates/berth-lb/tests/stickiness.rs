//! Sticky sessions: the balancer's `AWSALB` cookie keeps a client on its target until
//! that target is unhealthy or draining, a forged cookie is ignored, `app_cookie`
//! follows the application's own cookie, and `source_ip` keeps a TCP client's
//! connections on one target.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use berth_lb::{
    LbConfig, LbError, Limits, ListenerConfig, ListenerProtocol, LoadBalancer, Stickiness,
    TargetState,
};
use common::*;
use http_body_util::BodyExt;
use hyper::header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

struct Answer {
    body: String,
    set_cookies: Vec<String>,
}

impl Answer {
    /// The value this answer sets for cookie `name`, if it sets it.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|cookie| {
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }
}

/// One GET on a new connection, with `cookie` as its `Cookie` header if given.
async fn get_with(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Answer {
    let mut sender = connect(addr).await;
    let mut request = get_request(path);
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
    }
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let set_cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        body: String::from_utf8_lossy(&body).into_owned(),
        set_cookies,
    }
}

fn lb_cookie() -> Stickiness {
    Stickiness::LbCookie {
        duration: Duration::from_secs(90),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lb_cookie_keeps_a_client_on_its_target_until_it_fails_or_drains() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut tg = group("tg", vec![a.target(), b.target()]);
    tg.stickiness = lb_cookie();
    lb.apply(single(tg.clone())).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    let first = get_with(addr, "/", None).await;
    let token = first.cookie("AWSALB").expect("the balancer sets AWSALB");
    assert!(first
        .set_cookies
        .contains(&format!("AWSALB={token}; Max-Age=90; Path=/")));
    assert!(first.set_cookies.contains(&format!(
        "AWSALBCORS={token}; Max-Age=90; Path=/; SameSite=None; Secure"
    )));
    assert!(
        !token.contains("127.0.0.1"),
        "the cookie is opaque: {token}"
    );
    let stuck = first.body.clone();
    let cookie = format!("AWSALB={token}");
    for _ in 0..8 {
        let answer = get_with(addr, "/", Some(&cookie)).await;
        assert_eq!(answer.body, stuck, "a request with the cookie sticks");
        assert_eq!(answer.cookie("AWSALB").as_deref(), Some(token.as_str()));
    }
    // Without the cookie, round robin reaches both.
    let without: BTreeSet<String> = futures_util::future::join_all(
        (0..4).map(|_| async { get_with(addr, "/", None).await.body }),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(without.len(), 2, "{without:?}");

    // The stuck target fails its checks: the client moves, with a new cookie.
    let (stuck_backend, other) = if stuck == "a" { (&a, &b) } else { (&b, &a) };
    stuck_backend.set_health(500);
    wait_for(&lb, "tg", |health| {
        state_of(health, &stuck) == Some(TargetState::Unhealthy)
    })
    .await;
    let moved = get_with(addr, "/", Some(&cookie)).await;
    assert_eq!(moved.body, other.name);
    let new_token = moved.cookie("AWSALB").expect("a new cookie");
    assert_ne!(new_token, token);
    for _ in 0..4 {
        let answer = get_with(addr, "/", Some(&format!("AWSALB={new_token}"))).await;
        assert_eq!(answer.body, other.name);
    }

    // Back healthy, then deregistered: while it drains, its cookie is not honoured.
    stuck_backend.set_health(200);
    all_healthy(&lb, "tg").await;
    assert_eq!(get_with(addr, "/", Some(&cookie)).await.body, stuck);
    let mut drained = tg.clone();
    drained.deregistration_delay = Duration::from_secs(30);
    drained.targets.retain(|target| target.id != stuck);
    lb.apply(single(drained)).await.unwrap();
    wait_for(&lb, "tg", |health| {
        state_of(health, &stuck) == Some(TargetState::Draining)
    })
    .await;
    for _ in 0..4 {
        let answer = get_with(addr, "/", Some(&cookie)).await;
        assert_eq!(
            answer.body, other.name,
            "a draining target takes no one new"
        );
        assert_eq!(answer.cookie("AWSALB"), Some(new_token.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_foreign_cookie_is_ignored() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut tg = group("tg", vec![a.target(), b.target()]);
    tg.stickiness = lb_cookie();
    // A second group whose target is elsewhere: its cookie means nothing to "tg".
    let elsewhere = Backend::start("elsewhere").await;
    let mut other_group = group("other", vec![elsewhere.target()]);
    other_group.stickiness = lb_cookie();
    lb.apply(LbConfig {
        listeners: vec![http_listener("web", "tg"), http_listener("other", "other")],
        target_groups: vec![tg, other_group],
    })
    .await
    .unwrap();
    all_healthy(&lb, "tg").await;
    all_healthy(&lb, "other").await;
    let addr = lb.local_addr("web").unwrap();
    let foreign = get_with(lb.local_addr("other").unwrap(), "/", None)
        .await
        .cookie("AWSALB")
        .unwrap();

    let real: BTreeSet<String> = futures_util::future::join_all(
        (0..2).map(|_| async { get_with(addr, "/", None).await.cookie("AWSALB").unwrap() }),
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(real.len(), 2, "one token per target: {real:?}");

    for forged in [
        "AWSALB=0123456789abcdef".to_string(),
        format!("AWSALB={}", elsewhere.addr),
        format!("AWSALB={foreign}"),
        "AWSALB=".to_string(),
    ] {
        let mut bodies = BTreeSet::new();
        for _ in 0..4 {
            let answer = get_with(addr, "/", Some(&forged)).await;
            assert_ne!(answer.body, "elsewhere", "{forged} reached another address");
            let reset = answer.cookie("AWSALB").expect("a real cookie is set");
            assert!(real.contains(&reset), "{forged}: {reset} names a target");
            bodies.insert(answer.body);
        }
        assert_eq!(
            bodies.len(),
            2,
            "{forged} is selected as without: {bodies:?}"
        );
    }
    assert_eq!(
        elsewhere.requests.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_cookie_stickiness_follows_the_applications_cookie() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut tg = group("tg", vec![a.target(), b.target()]);
    tg.stickiness = Stickiness::AppCookie {
        cookie_name: "session".to_string(),
        duration: Duration::from_secs(45),
    };
    lb.apply(single(tg)).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    // No application cookie, no stickiness cookie.
    let plain = get_with(addr, "/", None).await;
    assert_eq!(plain.cookie("AWSALBAPP-0"), None, "{:?}", plain.set_cookies);

    let login = get_with(addr, "/login", None).await;
    assert_eq!(
        login.cookie("session").as_deref(),
        Some(login.body.as_str())
    );
    let token = login.cookie("AWSALBAPP-0").expect("AWSALBAPP-0 alongside");
    assert!(login
        .set_cookies
        .contains(&format!("AWSALBAPP-0={token}; Max-Age=45; Path=/")));
    let cookie = format!("session={}; AWSALBAPP-0={token}", login.body);
    for _ in 0..6 {
        let answer = get_with(addr, "/", Some(&cookie)).await;
        assert_eq!(answer.body, login.body);
        assert_eq!(answer.cookie("AWSALBAPP-0"), None, "nothing to renew");
    }
    // A forged one is ignored, and the client is given a real one.
    let forged = get_with(addr, "/", Some("AWSALBAPP-0=ffffffffffffffff")).await;
    let reset = forged.cookie("AWSALBAPP-0").expect("a real cookie");
    assert_ne!(reset, "ffffffffffffffff");
    let again = get_with(addr, "/", Some(&format!("AWSALBAPP-0={reset}"))).await;
    assert_eq!(again.body, forged.body);
}

#[tokio::test]
async fn app_cookie_stickiness_without_a_cookie_name_is_refused() {
    let lb = LoadBalancer::new(Limits::default());
    let mut tg = group("tg", Vec::new());
    tg.stickiness = Stickiness::AppCookie {
        cookie_name: String::new(),
        duration: Duration::from_secs(45),
    };
    match lb.apply(single(tg)).await {
        Err(LbError::InvalidConfig(message)) => assert!(message.contains("cookie name")),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(lb.local_addr("web").is_none(), "nothing was applied");
}

/// Connects from `client` to a TCP listener and reads which backend answered.
async fn tcp_get_from(client: IpAddr, addr: SocketAddr) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(client, 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_ip_stickiness_keeps_a_clients_connections_on_one_target() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let lb = LoadBalancer::new(Limits::default());
    let mut tg = group("tg", backends.iter().map(Backend::target).collect());
    tg.protocol = ListenerProtocol::Tcp;
    tg.stickiness = Stickiness::SourceIp;
    let listener = ListenerConfig::forwarding(
        "tcp",
        "127.0.0.1:0".parse().unwrap(),
        ListenerProtocol::Tcp,
        "tg",
    );
    lb.apply(LbConfig {
        listeners: vec![listener],
        target_groups: vec![tg],
    })
    .await
    .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("tcp").unwrap();

    let clients: Vec<IpAddr> = (2..22u8).map(|n| IpAddr::from([127, 0, 0, n])).collect();
    let mut placed = Vec::new();
    for client in &clients {
        let target = tcp_get_from(*client, addr).await;
        for _ in 0..3 {
            assert_eq!(tcp_get_from(*client, addr).await, target, "{client}");
        }
        placed.push(target);
    }
    let used: BTreeSet<&String> = placed.iter().collect();
    assert!(used.len() >= 2, "20 addresses on one target: {placed:?}");

    // One target fails: its clients move, everyone else stays.
    let gone = placed[0].clone();
    backends
        .iter()
        .find(|backend| backend.name == gone)
        .unwrap()
        .set_health(500);
    wait_for(&lb, "tg", |health| {
        state_of(health, &gone) == Some(TargetState::Unhealthy)
    })
    .await;
    for (client, before) in clients.iter().zip(&placed) {
        let now = tcp_get_from(*client, addr).await;
        if *before == gone {
            assert_ne!(now, gone, "{client}");
        } else {
            assert_eq!(&now, before, "{client}");
        }
    }
}
