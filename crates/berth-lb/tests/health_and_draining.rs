//! Active health checks moving targets in and out of rotation, `Initial` targets,
//! deregistration draining, and health surviving `apply`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_lb::{LbConfig, Limits, LoadBalancer, TargetState};
use common::*;
use hyper::StatusCode;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_endpoint_leaves_rotation_and_comes_back() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    // interval 100 ms, unhealthy threshold 2, healthy threshold 2.
    lb.apply(single(group("tg", vec![a.target(), b.target()])))
        .await
        .unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    b.set_health(500);
    let failing_since = Instant::now();
    wait_for(&lb, "tg", |health| {
        state_of(health, "b") == Some(TargetState::Unhealthy)
    })
    .await;
    let left_after = failing_since.elapsed();
    // interval x unhealthy threshold, plus one interval of phase and slack.
    assert!(
        left_after <= Duration::from_millis(600),
        "left rotation after {left_after:?}"
    );
    let health = lb.target_health("tg").unwrap();
    let b_health = health.iter().find(|t| t.id == "b").unwrap();
    assert_eq!(b_health.reason, Some("Target.ResponseCodeMismatch"));
    assert_eq!(
        b_health.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );
    for _ in 0..10 {
        assert_eq!(get(addr, "/").await.1, "a");
    }

    b.set_health(200);
    let passing_since = Instant::now();
    wait_for(&lb, "tg", |health| {
        state_of(health, "b") == Some(TargetState::Healthy)
    })
    .await;
    let back_after = passing_since.elapsed();
    assert!(
        back_after >= Duration::from_millis(100),
        "back after {back_after:?}: one pass is not the threshold"
    );
    assert!(
        back_after <= Duration::from_millis(600),
        "back after {back_after:?}"
    );
    let answers: Vec<String> = futures_util::future::join_all((0..10).map(|_| get(addr, "/")))
        .await
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    assert!(answers.iter().any(|answer| answer == "b"), "{answers:?}");
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_targets_get_no_traffic_until_their_first_passing_check() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    b.set_health(503);
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![a.target(), b.target()]);
    config.health_check.unhealthy_threshold = 100;
    lb.apply(single(config)).await.unwrap();
    wait_for(&lb, "tg", |health| {
        state_of(health, "a") == Some(TargetState::Healthy)
    })
    .await;
    let health = lb.target_health("tg").unwrap();
    let b_health = health.iter().find(|t| t.id == "b").unwrap();
    assert_eq!(b_health.state, TargetState::Initial);
    let addr = lb.local_addr("web").unwrap();
    for _ in 0..10 {
        assert_eq!(get(addr, "/").await.1, "a");
    }
    assert_eq!(b.requests.load(Ordering::SeqCst), 0);

    // One passing check is enough for an initial target (healthy threshold is 2).
    b.set_health(200);
    wait_for(&lb, "tg", |health| {
        state_of(health, "b") == Some(TargetState::Healthy)
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(get(addr, "/").await.1);
    }
    assert!(answers.iter().any(|answer| answer == "b"), "{answers:?}");
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_target_drains_then_disappears() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![a.target(), b.target()]);
    config.deregistration_delay = Duration::from_millis(1500);
    lb.apply(single(config.clone())).await.unwrap();
    all_healthy(&lb, "tg").await;
    let addr = lb.local_addr("web").unwrap();

    // Start slow requests until one is in flight on b.
    let mut slow_on_b = None;
    for _ in 0..4 {
        let before = b.requests.load(Ordering::SeqCst);
        let slow = tokio::spawn(async move { get(addr, "/slow?1000").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        if b.requests.load(Ordering::SeqCst) > before {
            slow_on_b = Some(slow);
            break;
        }
    }
    let slow_on_b = slow_on_b.expect("a slow request should land on b");

    config.targets = vec![a.target()];
    let removed_at = Instant::now();
    lb.apply(single(config)).await.unwrap();
    let health = lb.target_health("tg").unwrap();
    let b_health = health.iter().find(|t| t.id == "b").unwrap();
    assert_eq!(b_health.state, TargetState::Draining);
    assert_eq!(b_health.reason, Some("Target.DeregistrationInProgress"));
    for _ in 0..10 {
        assert_eq!(get(addr, "/").await.1, "a");
    }
    assert_eq!(slow_on_b.await.unwrap(), (StatusCode::OK, "b".to_string()));

    wait_for(&lb, "tg", |health| state_of(health, "b").is_none()).await;
    let gone_after = removed_at.elapsed();
    assert!(
        gone_after >= Duration::from_millis(1400),
        "gone after {gone_after:?}"
    );
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_targets_keep_their_health_across_applies() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![a.target()]);
    config.health_check.interval = Duration::from_secs(30);
    lb.apply(single(config.clone())).await.unwrap();
    all_healthy(&lb, "tg").await;
    config.targets.push(b.target());
    lb.apply(single(config)).await.unwrap();
    let health = lb.target_health("tg").unwrap();
    assert_eq!(state_of(&health, "a"), Some(TargetState::Healthy));
    assert!(matches!(
        state_of(&health, "b"),
        Some(TargetState::Initial | TargetState::Healthy)
    ));
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_checks_make_targets_healthy_and_groups_without_listener_are_unused() {
    let a = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut routed = group("routed", vec![a.target()]);
    routed.health_check.enabled = false;
    let idle = group("idle", vec![a.target()]);
    lb.apply(LbConfig {
        listeners: vec![http_listener("web", "routed")],
        target_groups: vec![routed, idle],
    })
    .await
    .unwrap();
    assert_eq!(
        state_of(&lb.target_health("routed").unwrap(), "a"),
        Some(TargetState::Healthy)
    );
    let idle_health = lb.target_health("idle").unwrap();
    assert_eq!(idle_health[0].state, TargetState::Unused);
    assert_eq!(idle_health[0].reason, Some("Target.NotInUse"));
    assert!(lb.target_health("nope").is_none());
    assert_eq!(get(lb.local_addr("web").unwrap(), "/").await.1, "a");
    lb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn health_transitions_follow_paused_time() {
    // With tokio's paused clock the checker's intervals cost no real time; the
    // backend's sockets still work because auto-advance waits for idle IO.
    let a = Backend::start("a").await;
    let lb = LoadBalancer::new(Limits::default());
    let mut config = group("tg", vec![a.target()]);
    config.health_check.interval = Duration::from_secs(10);
    config.health_check.timeout = Duration::from_secs(5);
    lb.apply(single(config)).await.unwrap();
    all_healthy(&lb, "tg").await;
    a.set_health(500);
    let started = Instant::now();
    wait_for_within(&lb, "tg", Duration::from_secs(60), |health| {
        state_of(health, "a") == Some(TargetState::Unhealthy)
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(10) && elapsed <= Duration::from_secs(21),
        "{elapsed:?}"
    );
    lb.shutdown().await;
}
