//! Listener rules end to end on loopback: a path rule and a header rule forward to
//! their own target groups, the default catches the rest, a weighted forward splits
//! exactly, fixed responses and redirects are answered by the balancer itself, and a
//! re-applied configuration re-routes a listener that keeps its socket.

mod common;

use std::collections::HashMap;

use berth_lb::{
    Action, Condition, FixedResponse, LbConfig, Limits, ListenerConfig, ListenerProtocol,
    LoadBalancer, Pattern, Redirect, Rule, WeightedGroup,
};
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};

fn pattern(text: &str) -> Pattern {
    Pattern(text.to_string())
}

fn weighted(groups: &[(&str, u32)]) -> Action {
    Action::Forward(
        groups
            .iter()
            .map(|(id, weight)| WeightedGroup {
                target_group_id: id.to_string(),
                weight: *weight,
            })
            .collect(),
    )
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request<TestBody> {
    let mut builder = Request::get(path).header("host", "app.example.test");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_by_priority_and_the_balancer_answers_its_own_actions() {
    let web = Backend::start("web").await;
    let api = Backend::start("api").await;
    let canary = Backend::start("canary").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut listener = http_listener("front", "web");
    listener.rules = vec![
        Rule {
            priority: 5,
            conditions: vec![Condition::PathPattern(vec![pattern("/old/*")])],
            action: Action::Redirect(Redirect {
                protocol: "#{protocol}".into(),
                host: "new.example.test".into(),
                port: "#{port}".into(),
                path: "/v2/#{path}".into(),
                query: "#{query}".into(),
                status: 301,
            }),
        },
        Rule {
            priority: 20,
            conditions: vec![Condition::PathPattern(vec![pattern("/api/*")])],
            action: Action::forward_to("api"),
        },
        Rule {
            priority: 10,
            conditions: vec![
                Condition::PathPattern(vec![pattern("/api/*")]),
                Condition::HttpHeader {
                    name: "x-canary".into(),
                    values: vec![pattern("yes")],
                },
            ],
            action: Action::forward_to("canary"),
        },
        Rule {
            priority: 30,
            conditions: vec![Condition::PathPattern(vec![pattern("/maintenance")])],
            action: Action::FixedResponse(FixedResponse {
                status: 503,
                content_type: Some("application/json".into()),
                body: r#"{"down":"for maintenance"}"#.into(),
            }),
        },
    ];
    let mut named: Vec<&str> = listener.target_groups().collect();
    named.sort();
    assert_eq!(
        named,
        ["api", "canary", "web"],
        "every group its actions name"
    );
    let config = LbConfig {
        listeners: vec![listener.clone()],
        target_groups: vec![
            group("web", vec![web.target()]),
            group("api", vec![api.target()]),
            group("canary", vec![canary.target()]),
        ],
    };
    lb.apply(config.clone()).await.unwrap();
    for id in ["web", "api", "canary"] {
        all_healthy(&lb, id).await;
    }
    let addr = lb.local_addr("front").unwrap();
    let mut sender = connect(addr).await;

    assert_eq!(send(&mut sender, request("/", &[])).await.1, "web");
    assert_eq!(send(&mut sender, request("/api/users", &[])).await.1, "api");
    assert_eq!(
        send(&mut sender, request("/api/users", &[("x-canary", "YES")]))
            .await
            .1,
        "canary",
        "priority 10 before 20; header values compare case-insensitively"
    );
    assert_eq!(
        send(&mut sender, request("/web/x", &[("x-canary", "yes")]))
            .await
            .1,
        "web",
        "every condition of a rule must match"
    );

    sender.ready().await.unwrap();
    let response = sender
        .send_request(request("/maintenance", &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"down":"for maintenance"}"#);

    sender.ready().await.unwrap();
    let response = sender
        .send_request(request("/old/page?x=1", &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()["location"],
        format!("http://new.example.test:{}/v2/old/page?x=1", addr.port())
    );
    let requests_before = web.requests.load(std::sync::atomic::Ordering::SeqCst)
        + api.requests.load(std::sync::atomic::Ordering::SeqCst)
        + canary.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        requests_before, 4,
        "answers of the balancer's own reach no target"
    );

    // Re-applied with other rules, the listener keeps its socket and routes anew.
    let mut changed = config;
    changed.listeners[0].rules.clear();
    changed.listeners[0].default_action = weighted(&[("web", 1), ("api", 3)]);
    lb.apply(changed).await.unwrap();
    assert_eq!(lb.local_addr("front"), Some(addr));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..200 {
        let (status, body) = send(&mut sender, request("/api/users", &[])).await;
        assert_eq!(status, StatusCode::OK);
        *counts.entry(body).or_default() += 1;
    }
    assert_eq!(counts.get("web"), Some(&50), "{counts:?}");
    assert_eq!(counts.get("api"), Some(&150), "{counts:?}");
    assert_eq!(counts.get("canary"), None, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_naming_an_unknown_group_or_a_tcp_listener_with_rules_is_refused() {
    let web = Backend::start("web").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut listener = http_listener("front", "web");
    listener.rules = vec![Rule {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec![pattern("/x")])],
        action: Action::forward_to("missing"),
    }];
    let error = lb
        .apply(LbConfig {
            listeners: vec![listener],
            target_groups: vec![group("web", vec![web.target()])],
        })
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("unknown target group missing"),
        "{error}"
    );
    assert_eq!(lb.local_addr("front"), None, "nothing was applied");

    let mut tcp_group = group("db", vec![web.target()]);
    tcp_group.protocol = ListenerProtocol::Tcp;
    let mut tcp = ListenerConfig::forwarding(
        "db",
        "127.0.0.1:0".parse().unwrap(),
        ListenerProtocol::Tcp,
        "db",
    );
    tcp.rules = vec![Rule {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec![pattern("/x")])],
        action: Action::forward_to("db"),
    }];
    let error = lb
        .apply(LbConfig {
            listeners: vec![tcp],
            target_groups: vec![tcp_group],
        })
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("tcp listener db must forward to exactly one target group"),
        "{error}"
    );
    assert_eq!(lb.local_addr("db"), None);
}
