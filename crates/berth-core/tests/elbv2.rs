//! The ELBv2 actions, pure: every action and rule, with a hand-driven clock.

mod common;

use berth_core::api::elbv2 as wire;
use berth_core::ecs::Context;
use berth_core::elbv2::model::{TargetHealth, TargetHealthState};
use berth_core::elbv2::{self, Elbv2Error, Elbv2ErrorCode, Elbv2Result};
use berth_core::{reconcile, Command, State};
use common::World;

fn act<Q, R>(
    world: &mut World,
    action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
    request: Q,
) -> Result<R, Elbv2Error> {
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    let outcome = action(&world.state, request, &mut ctx)?;
    world.apply(&outcome.commands);
    Ok(outcome.response)
}

fn ok<Q, R>(
    world: &mut World,
    action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
    request: Q,
) -> R {
    act(world, action, request).unwrap_or_else(|e| panic!("action failed: {e}"))
}

/// Runs an action that must fail with `code`; checks nothing changed; returns the message.
fn fails<Q, R: std::fmt::Debug>(
    world: &mut World,
    action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
    request: Q,
    code: Elbv2ErrorCode,
) -> String {
    let before = world.state.clone();
    let error = match act(world, action, request) {
        Ok(response) => panic!("action succeeded but should fail: {response:?}"),
        Err(error) => error,
    };
    assert_eq!(error.code, code, "{}", error.message);
    assert!(world.state == before, "a failed action changed the state");
    error.message
}

fn create_lb(world: &mut World, name: &str) -> String {
    let result = ok(
        world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: name.into(),
            ..Default::default()
        },
    );
    result.load_balancers[0].load_balancer_arn.clone()
}

fn tg_request(name: &str, protocol: &str, target_type: &str) -> wire::CreateTargetGroupRequest {
    wire::CreateTargetGroupRequest {
        name: name.into(),
        protocol: Some(protocol.into()),
        port: Some(80),
        target_type: Some(target_type.into()),
        ..Default::default()
    }
}

fn create_tg(world: &mut World, name: &str) -> String {
    let result = ok(
        world,
        elbv2::create_target_group,
        tg_request(name, "HTTP", "ip"),
    );
    result.target_groups[0].target_group_arn.clone()
}

fn forward(tg_arn: &str) -> Vec<wire::Action> {
    vec![wire::Action {
        action_type: "forward".into(),
        target_group_arn: Some(tg_arn.into()),
        ..Default::default()
    }]
}

fn create_listener(
    world: &mut World,
    lb_arn: &str,
    port: i64,
    tg_arn: &str,
) -> Result<String, Elbv2Error> {
    act(
        world,
        elbv2::create_listener,
        wire::CreateListenerRequest {
            load_balancer_arn: lb_arn.into(),
            port: Some(port),
            default_actions: forward(tg_arn),
            ..Default::default()
        },
    )
    .map(|r| r.listeners[0].listener_arn.clone())
}

fn target(id: &str, port: Option<i64>) -> wire::TargetDescription {
    wire::TargetDescription {
        id: id.into(),
        port,
        availability_zone: None,
    }
}

fn targets(tg_arn: &str, list: Vec<wire::TargetDescription>) -> wire::TargetsRequest {
    wire::TargetsRequest {
        target_group_arn: tg_arn.into(),
        targets: list,
    }
}

fn health(world: &mut World, tg_arn: &str) -> Vec<(String, i64, String, Option<String>)> {
    ok(
        world,
        elbv2::describe_target_health,
        targets(tg_arn, vec![]),
    )
    .target_health_descriptions
    .into_iter()
    .map(|d| (d.target.id, d.target.port.unwrap(), d.state, d.reason))
    .collect()
}

#[test]
fn load_balancers_are_created_described_and_deleted_with_their_listeners() {
    let mut world = World::new();
    let arn = create_lb(&mut world, "web");
    assert!(arn
        .starts_with("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"));
    assert_eq!(arn.rsplit('/').next().unwrap().len(), 16);
    let described = ok(
        &mut world,
        elbv2::describe_load_balancers,
        wire::DescribeLoadBalancersRequest {
            names: vec!["web".into()],
            ..Default::default()
        },
    );
    let lb = &described.load_balancers[0];
    assert_eq!(lb.dns_name, "web.berth.internal");
    assert_eq!(lb.state_code, "active");
    assert_eq!(lb.scheme, "internet-facing");
    assert_eq!(lb.created_time_millis, world.now.0);
    // The same create again answers with the same load balancer.
    assert_eq!(create_lb(&mut world, "web"), arn);
    fails(
        &mut world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: "web".into(),
            load_balancer_type: Some("network".into()),
            ..Default::default()
        },
        Elbv2ErrorCode::DuplicateLoadBalancerName,
    );
    let message = fails(
        &mut world,
        elbv2::describe_load_balancers,
        wire::DescribeLoadBalancersRequest {
            names: vec!["nope".into()],
            ..Default::default()
        },
        Elbv2ErrorCode::LoadBalancerNotFound,
    );
    assert!(message.contains("nope"));
    for bad in ["-web", "web-", "a_b", "internal-x", &"x".repeat(33)] {
        fails(
            &mut world,
            elbv2::create_load_balancer,
            wire::CreateLoadBalancerRequest {
                name: bad.into(),
                ..Default::default()
            },
            Elbv2ErrorCode::ValidationError,
        );
    }
    fails(
        &mut world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: "gw".into(),
            load_balancer_type: Some("gateway".into()),
            ..Default::default()
        },
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );

    let tg = create_tg(&mut world, "tg");
    create_listener(&mut world, &arn, 80, &tg).unwrap();
    ok(
        &mut world,
        elbv2::delete_load_balancer,
        wire::DeleteLoadBalancerRequest {
            load_balancer_arn: arn.clone(),
        },
    );
    assert!(world.state.load_balancers.is_empty());
    assert!(world.state.listeners.is_empty());
    assert_eq!(
        world.state.target_groups.len(),
        1,
        "target groups outlive their load balancer"
    );
    // Deleting it again succeeds, as in ELBv2; a malformed ARN does not.
    ok(
        &mut world,
        elbv2::delete_load_balancer,
        wire::DeleteLoadBalancerRequest {
            load_balancer_arn: arn,
        },
    );
    fails(
        &mut world,
        elbv2::delete_load_balancer,
        wire::DeleteLoadBalancerRequest {
            load_balancer_arn: "web".into(),
        },
        Elbv2ErrorCode::ValidationError,
    );
}

#[test]
fn target_groups_get_elbv2_defaults_and_range_checks_that_name_the_field() {
    let mut world = World::new();
    let result = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("web", "HTTP", "instance"),
    );
    let tg = &result.target_groups[0];
    assert!(tg.target_group_arn.contains(":targetgroup/web/"));
    assert_eq!(tg.health_check_path.as_deref(), Some("/"));
    assert_eq!(tg.health_check_port, "traffic-port");
    assert_eq!(
        (
            tg.health_check_interval_seconds,
            tg.health_check_timeout_seconds,
            tg.healthy_threshold_count,
            tg.unhealthy_threshold_count
        ),
        (30, 5, 5, 2)
    );
    assert_eq!(
        tg.matcher.as_ref().unwrap().http_code.as_deref(),
        Some("200")
    );
    let tcp = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("tcp", "TCP", "ip"),
    );
    assert_eq!(tcp.target_groups[0].health_check_timeout_seconds, 10);
    assert_eq!(tcp.target_groups[0].health_check_path, None);
    assert_eq!(tcp.target_groups[0].matcher, None);

    let with = |f: fn(&mut wire::HealthCheckParameters)| {
        let mut request = tg_request("other", "HTTP", "ip");
        f(&mut request.health_check);
        request
    };
    let cases: Vec<(wire::CreateTargetGroupRequest, Elbv2ErrorCode, &str)> = vec![
        (
            with(|h| h.interval_seconds = Some(3)),
            Elbv2ErrorCode::ValidationError,
            "'healthCheckIntervalSeconds'",
        ),
        (
            with(|h| h.interval_seconds = Some(301)),
            Elbv2ErrorCode::ValidationError,
            "'healthCheckIntervalSeconds'",
        ),
        (
            with(|h| h.timeout_seconds = Some(1)),
            Elbv2ErrorCode::ValidationError,
            "'healthCheckTimeoutSeconds'",
        ),
        (
            with(|h| h.timeout_seconds = Some(30)),
            Elbv2ErrorCode::ValidationError,
            "smaller than the interval",
        ),
        (
            with(|h| h.healthy_threshold_count = Some(11)),
            Elbv2ErrorCode::ValidationError,
            "'healthyThresholdCount'",
        ),
        (
            with(|h| h.unhealthy_threshold_count = Some(1)),
            Elbv2ErrorCode::ValidationError,
            "'unhealthyThresholdCount'",
        ),
        (
            with(|h| h.path = Some("health".into())),
            Elbv2ErrorCode::ValidationError,
            "'healthCheckPath'",
        ),
        (
            with(|h| h.port = Some("0".into())),
            Elbv2ErrorCode::ValidationError,
            "'healthCheckPort'",
        ),
        (
            with(|h| h.enabled = Some(false)),
            Elbv2ErrorCode::InvalidConfigurationRequest,
            "cannot be disabled",
        ),
        (
            with(|h| h.protocol = Some("TCP".into())),
            Elbv2ErrorCode::InvalidConfigurationRequest,
            "TCP",
        ),
        (
            with(|h| {
                h.matcher = Some(wire::Matcher {
                    http_code: Some("600".into()),
                    grpc_code: None,
                })
            }),
            Elbv2ErrorCode::ValidationError,
            "'matcher.httpCode'",
        ),
        (
            tg_request("https", "HTTPS", "ip"),
            Elbv2ErrorCode::InvalidConfigurationRequest,
            "certificates",
        ),
        (
            tg_request("lambda", "HTTP", "lambda"),
            Elbv2ErrorCode::InvalidConfigurationRequest,
            "lambda",
        ),
        (
            tg_request("bad name", "HTTP", "ip"),
            Elbv2ErrorCode::ValidationError,
            "'name'",
        ),
        (
            wire::CreateTargetGroupRequest {
                name: "noport".into(),
                protocol: Some("HTTP".into()),
                ..Default::default()
            },
            Elbv2ErrorCode::ValidationError,
            "'port'",
        ),
        (
            wire::CreateTargetGroupRequest {
                port: Some(70000),
                ..tg_request("bigport", "HTTP", "ip")
            },
            Elbv2ErrorCode::ValidationError,
            "'port'",
        ),
        (
            tg_request("web", "TCP", "ip"),
            Elbv2ErrorCode::DuplicateTargetGroupName,
            "web",
        ),
    ];
    for (request, code, words) in cases {
        let message = fails(&mut world, elbv2::create_target_group, request, code);
        assert!(message.contains(words), "'{words}' not in: {message}");
    }
    let good = with(|h| {
        h.matcher = Some(wire::Matcher {
            http_code: Some("200,202-204".into()),
            grpc_code: None,
        });
        h.interval_seconds = Some(5);
        h.timeout_seconds = Some(2);
    });
    ok(&mut world, elbv2::create_target_group, good);
    // An identical create answers with the existing group.
    let again = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("web", "HTTP", "instance"),
    );
    assert_eq!(again.target_groups[0].target_group_arn, tg.target_group_arn);
    assert_eq!(world.state.target_groups.len(), 3);
}

#[test]
fn modify_target_group_changes_health_checks_and_checks_them_whole() {
    let mut world = World::new();
    let tg = create_tg(&mut world, "web");
    let result = ok(
        &mut world,
        elbv2::modify_target_group,
        wire::ModifyTargetGroupRequest {
            target_group_arn: tg.clone(),
            health_check: wire::HealthCheckParameters {
                interval_seconds: Some(10),
                healthy_threshold_count: Some(3),
                path: Some("/health".into()),
                ..Default::default()
            },
        },
    );
    let modified = &result.target_groups[0];
    assert_eq!(modified.health_check_interval_seconds, 10);
    assert_eq!(modified.health_check_path.as_deref(), Some("/health"));
    // timeout 10 is not below the new interval of 10.
    fails(
        &mut world,
        elbv2::modify_target_group,
        wire::ModifyTargetGroupRequest {
            target_group_arn: tg.clone(),
            health_check: wire::HealthCheckParameters {
                timeout_seconds: Some(10),
                ..Default::default()
            },
        },
        Elbv2ErrorCode::ValidationError,
    );
    let unknown = tg.replace("targetgroup/web/", "targetgroup/gone/");
    let message = fails(
        &mut world,
        elbv2::modify_target_group,
        wire::ModifyTargetGroupRequest {
            target_group_arn: unknown,
            health_check: Default::default(),
        },
        Elbv2ErrorCode::TargetGroupNotFound,
    );
    assert!(message.contains("gone"));
}

#[test]
fn attributes_default_and_change_within_range() {
    let mut world = World::new();
    let tg = create_tg(&mut world, "web");
    let attributes = ok(
        &mut world,
        elbv2::describe_target_group_attributes,
        wire::TargetGroupArnRequest {
            target_group_arn: tg.clone(),
        },
    );
    let value = |result: &wire::AttributesResult, key: &str| {
        result
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.clone())
    };
    assert_eq!(
        value(&attributes, "deregistration_delay.timeout_seconds").as_deref(),
        Some("300")
    );
    assert_eq!(
        value(&attributes, "load_balancing.algorithm.type").as_deref(),
        Some("round_robin")
    );
    let modify = |key: &str, value: &str| wire::ModifyTargetGroupAttributesRequest {
        target_group_arn: tg.clone(),
        attributes: vec![wire::Attribute {
            key: key.into(),
            value: value.into(),
        }],
    };
    let changed = ok(
        &mut world,
        elbv2::modify_target_group_attributes,
        modify("deregistration_delay.timeout_seconds", "5"),
    );
    assert_eq!(
        value(&changed, "deregistration_delay.timeout_seconds").as_deref(),
        Some("5")
    );
    let changed = ok(
        &mut world,
        elbv2::modify_target_group_attributes,
        modify(
            "load_balancing.algorithm.type",
            "least_outstanding_requests",
        ),
    );
    assert_eq!(
        value(&changed, "load_balancing.algorithm.type").as_deref(),
        Some("least_outstanding_requests")
    );
    for (key, bad, code) in [
        (
            "deregistration_delay.timeout_seconds",
            "3601",
            Elbv2ErrorCode::ValidationError,
        ),
        (
            "deregistration_delay.timeout_seconds",
            "-1",
            Elbv2ErrorCode::ValidationError,
        ),
        (
            "deregistration_delay.timeout_seconds",
            "soon",
            Elbv2ErrorCode::ValidationError,
        ),
        (
            "load_balancing.algorithm.type",
            "weighted_random",
            Elbv2ErrorCode::ValidationError,
        ),
        (
            "stickiness.enabled",
            "maybe",
            Elbv2ErrorCode::ValidationError,
        ),
        (
            "stickiness.lb_cookie.duration_seconds",
            "604801",
            Elbv2ErrorCode::ValidationError,
        ),
        ("no.such.key", "1", Elbv2ErrorCode::ValidationError),
    ] {
        let message = fails(
            &mut world,
            elbv2::modify_target_group_attributes,
            modify(key, bad),
            code,
        );
        assert!(
            message.contains(key) || message.contains("stickiness"),
            "{message}"
        );
    }
}

#[test]
fn stickiness_is_kept_described_and_checked_as_a_whole() {
    let mut world = World::new();
    let tg = create_tg(&mut world, "web");
    let modify = |pairs: &[(&str, &str)]| wire::ModifyTargetGroupAttributesRequest {
        target_group_arn: tg.clone(),
        attributes: pairs
            .iter()
            .map(|(key, value)| wire::Attribute {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect(),
    };
    let pairs = |result: &wire::AttributesResult| -> Vec<(String, String)> {
        result
            .attributes
            .iter()
            .filter(|a| a.key.starts_with("stickiness."))
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect()
    };
    let changed = ok(
        &mut world,
        elbv2::modify_target_group_attributes,
        modify(&[
            ("stickiness.enabled", "true"),
            ("stickiness.type", "app_cookie"),
            ("stickiness.app_cookie.cookie_name", "session"),
            ("stickiness.app_cookie.duration_seconds", "600"),
        ]),
    );
    let expected: Vec<(String, String)> = [
        ("stickiness.app_cookie.cookie_name", "session"),
        ("stickiness.app_cookie.duration_seconds", "600"),
        ("stickiness.enabled", "true"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.type", "app_cookie"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(pairs(&changed), expected);
    let described = ok(
        &mut world,
        elbv2::describe_target_group_attributes,
        wire::TargetGroupArnRequest {
            target_group_arn: tg.clone(),
        },
    );
    assert_eq!(pairs(&described), expected);

    // One bad attribute and none of the request is stored, the good ones neither.
    let message = fails(
        &mut world,
        elbv2::modify_target_group_attributes,
        modify(&[
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "0"),
        ]),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(
        message.contains("stickiness.lb_cookie.duration_seconds"),
        "{message}"
    );
    // Clearing the cookie name of app_cookie stickiness that is on is refused.
    let message = fails(
        &mut world,
        elbv2::modify_target_group_attributes,
        modify(&[("stickiness.app_cookie.cookie_name", "")]),
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(
        message.contains("stickiness.app_cookie.cookie_name"),
        "{message}"
    );

    // A TCP group knows source_ip and no cookie keys.
    let tcp = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("tcp", "TCP", "ip"),
    )
    .target_groups[0]
        .target_group_arn
        .clone();
    let described = ok(
        &mut world,
        elbv2::describe_target_group_attributes,
        wire::TargetGroupArnRequest {
            target_group_arn: tcp.clone(),
        },
    );
    assert_eq!(
        pairs(&described),
        vec![
            ("stickiness.enabled".to_string(), "false".to_string()),
            ("stickiness.type".to_string(), "source_ip".to_string())
        ]
    );
    let message = fails(
        &mut world,
        elbv2::modify_target_group_attributes,
        wire::ModifyTargetGroupAttributesRequest {
            target_group_arn: tcp.clone(),
            attributes: vec![wire::Attribute {
                key: "stickiness.type".into(),
                value: "lb_cookie".into(),
            }],
        },
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(message.contains("'lb_cookie'"), "{message}");
    ok(
        &mut world,
        elbv2::modify_target_group_attributes,
        wire::ModifyTargetGroupAttributesRequest {
            target_group_arn: tcp,
            attributes: vec![wire::Attribute {
                key: "stickiness.enabled".into(),
                value: "true".into(),
            }],
        },
    );
}

#[test]
fn listeners_forward_to_one_compatible_target_group_of_one_load_balancer() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web");
    let other_lb = create_lb(&mut world, "other");
    let tg = create_tg(&mut world, "web");
    let tcp_tg = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("tcp", "TCP", "ip"),
    )
    .target_groups[0]
        .target_group_arn
        .clone();
    let listener = create_listener(&mut world, &lb, 80, &tg).unwrap();
    assert!(listener.contains(":listener/app/web/"), "{listener}");
    let described = ok(
        &mut world,
        elbv2::describe_listeners,
        wire::DescribeListenersRequest {
            load_balancer_arn: Some(lb.clone()),
            ..Default::default()
        },
    );
    assert_eq!(described.listeners[0].protocol, "HTTP");
    assert_eq!(
        described.listeners[0].default_actions[0]
            .target_group_arn
            .as_deref(),
        Some(tg.as_str())
    );
    let by_lb = ok(
        &mut world,
        elbv2::describe_target_groups,
        wire::DescribeTargetGroupsRequest {
            load_balancer_arn: Some(lb.clone()),
            ..Default::default()
        },
    );
    assert_eq!(by_lb.target_groups.len(), 1);
    assert_eq!(by_lb.target_groups[0].load_balancer_arns, vec![lb.clone()]);

    assert_eq!(
        create_listener(&mut world, &lb, 81, &tcp_tg)
            .unwrap_err()
            .code,
        Elbv2ErrorCode::IncompatibleProtocols
    );
    assert_eq!(
        create_listener(&mut world, &other_lb, 80, &tg)
            .unwrap_err()
            .code,
        Elbv2ErrorCode::TargetGroupAssociationLimit
    );
    let tg2 = create_tg(&mut world, "web2");
    assert_eq!(
        create_listener(&mut world, &lb, 80, &tg2).unwrap_err().code,
        Elbv2ErrorCode::DuplicateListener
    );
    // An identical create answers with the existing listener.
    assert_eq!(create_listener(&mut world, &lb, 80, &tg).unwrap(), listener);
    let unknown_tg = tg.replace("targetgroup/web/", "targetgroup/gone/");
    assert_eq!(
        create_listener(&mut world, &lb, 82, &unknown_tg)
            .unwrap_err()
            .code,
        Elbv2ErrorCode::TargetGroupNotFound
    );
    let https = wire::CreateListenerRequest {
        load_balancer_arn: lb.clone(),
        protocol: Some("HTTPS".into()),
        port: Some(443),
        default_actions: forward(&tg),
        ..Default::default()
    };
    let message = fails(
        &mut world,
        elbv2::create_listener,
        https,
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(message.contains("certificates"), "{message}");
    let tcp_on_alb = wire::CreateListenerRequest {
        load_balancer_arn: lb.clone(),
        protocol: Some("TCP".into()),
        port: Some(90),
        default_actions: forward(&tcp_tg),
        ..Default::default()
    };
    fails(
        &mut world,
        elbv2::create_listener,
        tcp_on_alb,
        Elbv2ErrorCode::UnsupportedProtocol,
    );
    let redirect = wire::CreateListenerRequest {
        load_balancer_arn: lb.clone(),
        port: Some(91),
        // A redirect that changes nothing would redirect to itself.
        default_actions: vec![wire::Action {
            action_type: "redirect".into(),
            redirect_config: Some(wire::RedirectConfig {
                status_code: Some("HTTP_301".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    fails(
        &mut world,
        elbv2::create_listener,
        redirect,
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    fails(
        &mut world,
        elbv2::describe_listeners,
        wire::DescribeListenersRequest::default(),
        Elbv2ErrorCode::ValidationError,
    );

    // A target group in use cannot go; once its listener is gone it can.
    let message = fails(
        &mut world,
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: tg.clone(),
        },
        Elbv2ErrorCode::ResourceInUse,
    );
    assert!(message.contains(&tg));
    ok(
        &mut world,
        elbv2::delete_listener,
        wire::DeleteListenerRequest {
            listener_arn: listener.clone(),
        },
    );
    fails(
        &mut world,
        elbv2::delete_listener,
        wire::DeleteListenerRequest {
            listener_arn: listener,
        },
        Elbv2ErrorCode::ListenerNotFound,
    );
    ok(
        &mut world,
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: tg,
        },
    );
    assert_eq!(world.state.target_groups.len(), 2);
}

#[test]
fn targets_are_unused_then_initial_then_reported_then_draining_then_gone() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web");
    let tg = create_tg(&mut world, "web");
    ok(
        &mut world,
        elbv2::register_targets,
        targets(
            &tg,
            vec![
                target("10.0.0.1", Some(8080)),
                target("10.0.0.2", None),
                target("10.0.0.2", None),
            ],
        ),
    );
    assert_eq!(world.state.targets.len(), 2);
    let seen = health(&mut world, &tg);
    assert_eq!(
        seen[0],
        (
            "10.0.0.1".into(),
            8080,
            "unused".into(),
            Some("Target.NotInUse".into())
        )
    );
    assert_eq!(seen[1].1, 80, "the target group's port is the default");

    create_listener(&mut world, &lb, 80, &tg).unwrap();
    let seen = health(&mut world, &tg);
    assert!(
        seen.iter()
            .all(|t| t.2 == "initial" && t.3.as_deref() == Some("Elb.RegistrationInProgress")),
        "{seen:?}"
    );

    // The data plane reports.
    let tg_id = tg.rsplit('/').next().unwrap().to_string();
    world.apply(&[
        Command::PutTargetHealth {
            target_group: tg_id.clone(),
            target_id: "10.0.0.1".into(),
            port: 8080,
            health: TargetHealth {
                state: TargetHealthState::Healthy,
                reason: None,
                description: None,
            },
        },
        Command::PutTargetHealth {
            target_group: tg_id.clone(),
            target_id: "10.0.0.2".into(),
            port: 80,
            health: TargetHealth {
                state: TargetHealthState::Unhealthy,
                reason: Some("Target.ResponseCodeMismatch".into()),
                description: Some("Health checks failed with these codes: [500]".into()),
            },
        },
        Command::PutTargetHealth {
            target_group: tg_id,
            target_id: "10.9.9.9".into(),
            port: 80,
            health: TargetHealth::default(),
        },
    ]);
    assert_eq!(
        world.state.targets.len(),
        2,
        "a report on an unknown target registers nothing"
    );
    let seen = health(&mut world, &tg);
    assert_eq!(seen[0].2, "healthy");
    assert_eq!(
        seen[1],
        (
            "10.0.0.2".into(),
            80,
            "unhealthy".into(),
            Some("Target.ResponseCodeMismatch".into())
        )
    );

    // Deregistration drains for the delay, then reconcile removes the target.
    ok(
        &mut world,
        elbv2::modify_target_group_attributes,
        wire::ModifyTargetGroupAttributesRequest {
            target_group_arn: tg.clone(),
            attributes: vec![wire::Attribute {
                key: "deregistration_delay.timeout_seconds".into(),
                value: "5".into(),
            }],
        },
    );
    ok(
        &mut world,
        elbv2::deregister_targets,
        targets(&tg, vec![target("10.0.0.1", Some(8080))]),
    );
    let seen = health(&mut world, &tg);
    assert_eq!(
        seen[0],
        (
            "10.0.0.1".into(),
            8080,
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        )
    );
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    assert!(
        reconcile(&world.state, &mut ctx).is_empty(),
        "nothing to do before the delay"
    );
    world.advance_secs(5);
    assert_eq!(
        health(&mut world, &tg).len(),
        1,
        "past the delay the target is not shown"
    );
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    let commands = reconcile(&world.state, &mut ctx);
    assert_eq!(
        commands,
        vec![Command::RemoveTarget(format!(
            "{}/10.0.0.1/8080",
            tg.rsplit('/').next().unwrap()
        ))]
    );
    world.apply(&commands);
    assert_eq!(world.state.targets.len(), 1);

    // Filtered describe names unregistered targets; bad targets are refused.
    let filtered = ok(
        &mut world,
        elbv2::describe_target_health,
        targets(&tg, vec![target("10.0.0.1", Some(8080))]),
    );
    assert_eq!(
        filtered.target_health_descriptions[0].reason.as_deref(),
        Some("Target.NotRegistered")
    );
    fails(
        &mut world,
        elbv2::deregister_targets,
        targets(&tg, vec![target("10.0.0.1", Some(8080))]),
        Elbv2ErrorCode::InvalidTarget,
    );
    fails(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("not-an-ip", None)]),
        Elbv2ErrorCode::InvalidTarget,
    );
    let message = fails(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("10.0.0.3", Some(0))]),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("'targets.member.1.port'"), "{message}");
    fails(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![]),
        Elbv2ErrorCode::ValidationError,
    );
}

#[test]
fn deregistering_from_an_unused_group_removes_at_once() {
    let mut world = World::new();
    let tg = create_tg(&mut world, "web");
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("10.0.0.1", None)]),
    );
    ok(
        &mut world,
        elbv2::deregister_targets,
        targets(&tg, vec![target("10.0.0.1", None)]),
    );
    assert!(world.state.targets.is_empty());
}

#[test]
fn instance_targets_are_container_instances_berth_knows() {
    let mut world = World::with_node();
    let instance = world
        .state
        .container_instances
        .keys()
        .next()
        .unwrap()
        .clone();
    let tg = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("web", "HTTP", "instance"),
    )
    .target_groups[0]
        .target_group_arn
        .clone();
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target(&instance, Some(32768))]),
    );
    let arn = world.scope.container_instance("default", &instance);
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target(&arn, Some(32769))]),
    );
    let ids: Vec<String> = health(&mut world, &tg).into_iter().map(|t| t.0).collect();
    assert_eq!(ids, [instance.clone(), instance]);
    let message = fails(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("i-0123456789", None)]),
        Elbv2ErrorCode::InvalidTarget,
    );
    assert!(message.contains("i-0123456789"));
}

#[test]
fn deleting_a_target_group_forgets_its_targets() {
    let mut world = World::new();
    let tg = create_tg(&mut world, "web");
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("10.0.0.1", None)]),
    );
    ok(
        &mut world,
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: tg.clone(),
        },
    );
    assert!(world.state.targets.is_empty() && world.state.target_groups.is_empty());
    // Again: succeeds, as in ELBv2.
    ok(
        &mut world,
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: tg.clone(),
        },
    );
    fails(
        &mut world,
        elbv2::describe_target_health,
        targets(&tg, vec![]),
        Elbv2ErrorCode::TargetGroupNotFound,
    );
}

#[test]
fn describe_filters_exclude_each_other_and_pages_have_markers() {
    let mut world = World::new();
    for name in ["a", "b", "c"] {
        create_tg(&mut world, name);
    }
    let first = ok(
        &mut world,
        elbv2::describe_target_groups,
        wire::DescribeTargetGroupsRequest {
            page_size: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(first.target_groups.len(), 2);
    let marker = first.next_marker.clone().unwrap();
    let rest = ok(
        &mut world,
        elbv2::describe_target_groups,
        wire::DescribeTargetGroupsRequest {
            marker: Some(marker),
            ..Default::default()
        },
    );
    assert_eq!(rest.target_groups[0].target_group_name, "c");
    assert_eq!(rest.next_marker, None);
    fails(
        &mut world,
        elbv2::describe_target_groups,
        wire::DescribeTargetGroupsRequest {
            names: vec!["a".into()],
            target_group_arns: vec![first.target_groups[0].target_group_arn.clone()],
            ..Default::default()
        },
        Elbv2ErrorCode::ValidationError,
    );
    fails(
        &mut world,
        elbv2::describe_target_groups,
        wire::DescribeTargetGroupsRequest {
            page_size: Some(401),
            ..Default::default()
        },
        Elbv2ErrorCode::ValidationError,
    );
}

#[test]
fn tags_are_added_replaced_removed_and_described() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web");
    let tg = create_tg(&mut world, "web");
    let tag = |key: &str, value: &str| wire::Tag {
        key: key.into(),
        value: Some(value.into()),
    };
    ok(
        &mut world,
        elbv2::add_tags,
        wire::AddTagsRequest {
            resource_arns: vec![lb.clone(), tg.clone()],
            tags: vec![tag("team", "a"), tag("env", "dev")],
        },
    );
    ok(
        &mut world,
        elbv2::add_tags,
        wire::AddTagsRequest {
            resource_arns: vec![lb.clone()],
            tags: vec![tag("team", "b")],
        },
    );
    ok(
        &mut world,
        elbv2::remove_tags,
        wire::RemoveTagsRequest {
            resource_arns: vec![tg.clone()],
            tag_keys: vec!["env".into()],
        },
    );
    let described = ok(
        &mut world,
        elbv2::describe_tags,
        wire::DescribeTagsRequest {
            resource_arns: vec![lb, tg],
        },
    );
    assert_eq!(
        described.tag_descriptions[0].tags,
        [tag("team", "b"), tag("env", "dev")]
    );
    assert_eq!(described.tag_descriptions[1].tags, [tag("team", "a")]);
    fails(
        &mut world,
        elbv2::add_tags,
        wire::AddTagsRequest {
            resource_arns: vec!["arn:aws:ecs:us-east-1:0:cluster/x".into()],
            tags: vec![tag("a", "b")],
        },
        Elbv2ErrorCode::ValidationError,
    );
    fails(
        &mut world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: "dup".into(),
            tags: vec![tag("a", "1"), tag("a", "2")],
            ..Default::default()
        },
        Elbv2ErrorCode::DuplicateTagKeys,
    );
}

#[test]
fn a_port_serves_one_listener_across_load_balancers() {
    let mut world = World::new();
    let first = create_lb(&mut world, "first");
    let second = create_lb(&mut world, "second");
    let tg_first = create_tg(&mut world, "web-first");
    let tg_second = create_tg(&mut world, "web-second");
    create_listener(&mut world, &first, 8080, &tg_first).unwrap();
    let error = create_listener(&mut world, &second, 8080, &tg_second).unwrap_err();
    assert_eq!(error.code, Elbv2ErrorCode::DuplicateListener);
    assert!(
        error.message.contains("8080") && error.message.contains("first"),
        "{}",
        error.message
    );
    create_listener(&mut world, &second, 8081, &tg_second).unwrap();
}

#[test]
fn ip_targets_at_this_machines_own_addresses_follow_the_privilege_policy() {
    let mut world = World::new();
    world.policy = berth_core::PrivilegePolicy::deny_all();
    let tg = create_tg(&mut world, "local");
    for address in ["127.0.0.1", "127.0.0.53", "169.254.169.254", "0.0.0.0"] {
        let message = fails(
            &mut world,
            elbv2::register_targets,
            targets(
                &tg,
                vec![target("10.0.0.1", None), target(address, Some(9650))],
            ),
            Elbv2ErrorCode::InvalidTarget,
        );
        assert_eq!(
            message,
            format!(
                "the ip target {address} (a loopback, link-local or unspecified address) is \
                 refused by this server's privilege policy; the operator allows it by starting \
                 berth with --allow-privileged local-targets"
            )
        );
    }
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("10.0.0.1", None)]),
    );

    // Allowed (as `berth dev` on loopback does by default), then forbidden again: a
    // target registered meanwhile can still be deregistered.
    world.policy = berth_core::PrivilegePolicy::allowing([berth_core::PrivilegeKind::LocalTargets]);
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target("127.0.0.1", Some(9650))]),
    );
    world.policy = berth_core::PrivilegePolicy::deny_all();
    ok(
        &mut world,
        elbv2::deregister_targets,
        targets(&tg, vec![target("127.0.0.1", Some(9650))]),
    );
}

/// Without `local-targets` an instance target must be a host port that a task running
/// on that container instance has published: any other port on 127.0.0.1 would put a
/// loopback-only service behind a listener open to the network.
#[test]
fn instance_targets_need_a_published_host_port_unless_the_policy_allows_local_targets() {
    use berth_core::api::NetworkBinding;
    use berth_core::elbv2::model::TargetType;
    use berth_core::elbv2::{refused_target, PublishedPorts};
    use berth_core::model::TaskStatus;
    use berth_core::{ecs, PrivilegeKind, PrivilegePolicy, TaskReport};
    use common::req;
    use serde_json::json;

    let mut world = World::with_node();
    let instance = world
        .state
        .container_instances
        .keys()
        .next()
        .unwrap()
        .clone();
    let tg = ok(
        &mut world,
        elbv2::create_target_group,
        tg_request("web", "HTTP", "instance"),
    )
    .target_groups[0]
        .target_group_arn
        .clone();
    world.register(json!({
        "family": "web",
        "containerDefinitions": [{
            "name": "app", "image": "nginx:1.27", "memory": 128, "essential": true,
            "portMappings": [{ "containerPort": 80, "hostPort": 0 }]
        }]
    }));
    let task = world
        .ok(ecs::run_task, req(json!({ "taskDefinition": "web" })))
        .tasks[0]
        .task_arn
        .clone();
    let task_id = task.rsplit('/').next().unwrap().to_string();
    let mut report = world.running_report(&task_id, |_| Default::default());
    let binding = |protocol: &str, host_port: i64| NetworkBinding {
        bind_ip: Some("0.0.0.0".into()),
        container_port: Some(80),
        host_port: Some(host_port),
        protocol: Some(protocol.into()),
    };
    report.containers[0].network_bindings = vec![binding("tcp", 32768), binding("udp", 32770)];
    world.send_reports(&[report]);

    world.policy = PrivilegePolicy::deny_all();
    for port in [5432, 32770] {
        let message = fails(
            &mut world,
            elbv2::register_targets,
            targets(
                &tg,
                vec![
                    target(&instance, Some(32768)),
                    target(&instance, Some(port)),
                ],
            ),
            Elbv2ErrorCode::InvalidTarget,
        );
        assert_eq!(
            message,
            format!(
                "the instance target '{instance}' port {port} (not a host port a task running \
                 on that container instance has published) is refused by this server's \
                 privilege policy; the operator allows it by starting berth with \
                 --allow-privileged local-targets"
            )
        );
    }
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target(&instance, Some(32768))]),
    );
    let refused = |world: &World, policy: &PrivilegePolicy, port: u16| {
        let published = PublishedPorts::of(&world.state);
        refused_target(policy, &published, TargetType::Instance, &instance, port)
    };
    assert_eq!(refused(&world, &world.policy, 32768), None);

    // Allowed, a loopback port registers; the task going takes its port's permission
    // with it.
    world.policy = PrivilegePolicy::allowing([PrivilegeKind::LocalTargets]);
    ok(
        &mut world,
        elbv2::register_targets,
        targets(&tg, vec![target(&instance, Some(5432))]),
    );
    assert_eq!(refused(&world, &world.policy, 5432), None);
    world.send_reports(&[TaskReport::status(&task_id, TaskStatus::Stopped)]);
    let strict = PrivilegePolicy::deny_all();
    assert!(refused(&world, &strict, 32768).is_some());
    assert!(refused(&world, &strict, 5432).is_some());
    assert_eq!(refused(&world, &world.policy, 32768), None);
}
