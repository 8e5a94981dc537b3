//! Load balancer and listener attributes and ModifyListener, pure: ELBv2's keys and
//! defaults (API_LoadBalancerAttribute, API_ListenerAttribute), its errors, and the
//! values berth acts on.

mod common;

use berth_core::api::elbv2 as wire;
use berth_core::ecs::Context;
use berth_core::elbv2::{self, Elbv2Error, Elbv2ErrorCode, Elbv2Result};
use berth_core::State;
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

fn create_lb(world: &mut World, name: &str, kind: &str) -> String {
    ok(
        world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: name.into(),
            load_balancer_type: Some(kind.into()),
            ..Default::default()
        },
    )
    .load_balancers[0]
        .load_balancer_arn
        .clone()
}

fn create_tg(world: &mut World, name: &str, protocol: &str) -> String {
    ok(
        world,
        elbv2::create_target_group,
        wire::CreateTargetGroupRequest {
            name: name.into(),
            protocol: Some(protocol.into()),
            port: Some(80),
            target_type: Some("ip".into()),
            ..Default::default()
        },
    )
    .target_groups[0]
        .target_group_arn
        .clone()
}

fn forward(tg_arn: &str) -> Vec<wire::Action> {
    vec![wire::Action {
        action_type: "forward".into(),
        target_group_arn: Some(tg_arn.into()),
        ..Default::default()
    }]
}

fn create_listener(world: &mut World, lb_arn: &str, port: i64, tg_arn: &str) -> String {
    ok(
        world,
        elbv2::create_listener,
        wire::CreateListenerRequest {
            load_balancer_arn: lb_arn.into(),
            port: Some(port),
            default_actions: forward(tg_arn),
            ..Default::default()
        },
    )
    .listeners[0]
        .listener_arn
        .clone()
}

fn attribute(key: &str, value: &str) -> wire::Attribute {
    wire::Attribute {
        key: key.into(),
        value: value.into(),
    }
}

fn as_map(result: wire::AttributesResult) -> std::collections::BTreeMap<String, String> {
    result
        .attributes
        .into_iter()
        .map(|a| (a.key, a.value))
        .collect()
}

fn lb_attributes(world: &mut World, lb_arn: &str) -> std::collections::BTreeMap<String, String> {
    as_map(ok(
        world,
        elbv2::describe_load_balancer_attributes,
        wire::LoadBalancerArnRequest {
            load_balancer_arn: lb_arn.into(),
        },
    ))
}

fn modify_lb(
    lb_arn: &str,
    attributes: &[(&str, &str)],
) -> wire::ModifyLoadBalancerAttributesRequest {
    wire::ModifyLoadBalancerAttributesRequest {
        load_balancer_arn: lb_arn.into(),
        attributes: attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
    }
}

fn modify_listener_attributes(
    listener_arn: &str,
    attributes: &[(&str, &str)],
) -> wire::ModifyListenerAttributesRequest {
    wire::ModifyListenerAttributesRequest {
        listener_arn: listener_arn.into(),
        attributes: attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
    }
}

#[test]
fn an_application_load_balancer_describes_elbv2s_defaults() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", "application");
    let attributes = lb_attributes(&mut world, &lb);
    let expected = [
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("client_keep_alive.seconds", "3600"),
        ("connection_logs.s3.enabled", "false"),
        ("deletion_protection.enabled", "false"),
        ("idle_timeout.timeout_seconds", "60"),
        ("load_balancing.cross_zone.enabled", "true"),
        ("routing.http.desync_mitigation_mode", "defensive"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http.preserve_host_header.enabled", "false"),
        ("routing.http.xff_header_processing.mode", "append"),
        ("routing.http2.enabled", "true"),
        ("waf.fail_open.enabled", "false"),
        ("zonal_shift.config.enabled", "false"),
    ];
    for (key, value) in expected {
        assert_eq!(
            attributes.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert!(!attributes.contains_key("dns_record.client_routing_policy"));
}

#[test]
fn a_network_load_balancer_describes_its_own_keys() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "tcp", "network");
    let attributes = lb_attributes(&mut world, &lb);
    assert_eq!(attributes["load_balancing.cross_zone.enabled"], "false");
    assert_eq!(
        attributes["dns_record.client_routing_policy"],
        "any_availability_zone"
    );
    assert_eq!(attributes["deletion_protection.enabled"], "false");
    assert!(!attributes.contains_key("idle_timeout.timeout_seconds"));
    assert!(!attributes.contains_key("routing.http2.enabled"));
}

#[test]
fn modified_attributes_are_kept_and_the_rest_keep_their_defaults() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", "application");
    let answer = as_map(ok(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(
            &lb,
            &[
                ("idle_timeout.timeout_seconds", "5"),
                ("routing.http2.enabled", "false"),
                ("routing.http.desync_mitigation_mode", "strictest"),
            ],
        ),
    ));
    assert_eq!(answer["idle_timeout.timeout_seconds"], "5");
    let described = lb_attributes(&mut world, &lb);
    assert_eq!(described, answer);
    assert_eq!(described["routing.http2.enabled"], "false");
    assert_eq!(
        described["routing.http.desync_mitigation_mode"],
        "strictest"
    );
    assert_eq!(described["client_keep_alive.seconds"], "3600");
    // A second modify changes only what it names.
    ok(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(&lb, &[("idle_timeout.timeout_seconds", "4000")]),
    );
    let described = lb_attributes(&mut world, &lb);
    assert_eq!(described["idle_timeout.timeout_seconds"], "4000");
    assert_eq!(described["routing.http2.enabled"], "false");
}

#[test]
fn unknown_keys_and_bad_values_are_refused_naming_the_key_and_nothing_is_stored() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", "application");
    let message = fails(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(
            &lb,
            &[("idle_timeout.timeout_seconds", "30"), ("no.such.key", "1")],
        ),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(
        message.contains("'no.such.key' is not recognized"),
        "{message}"
    );
    // A network load balancer's key on an application one: ELBv2's other error.
    let message = fails(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(
            &lb,
            &[("dns_record.client_routing_policy", "any_availability_zone")],
        ),
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(
        message.contains("'dns_record.client_routing_policy' is not supported")
            && message.contains("'application'"),
        "{message}"
    );
    for (key, value) in [
        ("idle_timeout.timeout_seconds", "0"),
        ("idle_timeout.timeout_seconds", "4001"),
        ("idle_timeout.timeout_seconds", "ten"),
        ("client_keep_alive.seconds", "59"),
        ("routing.http2.enabled", "yes"),
        ("routing.http.desync_mitigation_mode", "lenient"),
        ("load_balancing.cross_zone.enabled", "false"),
    ] {
        let message = fails(
            &mut world,
            elbv2::modify_load_balancer_attributes,
            modify_lb(&lb, &[(key, value)]),
            Elbv2ErrorCode::ValidationError,
        );
        assert!(message.contains(key), "{key}={value}: {message}");
    }
    let message = fails(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(&lb, &[("access_logs.s3.enabled", "true")]),
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(message.contains("access_logs.s3.bucket"), "{message}");
    assert_eq!(
        lb_attributes(&mut world, &lb)["idle_timeout.timeout_seconds"],
        "60"
    );
}

#[test]
fn deletion_protection_refuses_delete_until_turned_off() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", "application");
    ok(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(&lb, &[("deletion_protection.enabled", "true")]),
    );
    let message = fails(
        &mut world,
        elbv2::delete_load_balancer,
        wire::DeleteLoadBalancerRequest {
            load_balancer_arn: lb.clone(),
        },
        Elbv2ErrorCode::OperationNotPermitted,
    );
    assert!(message.contains("deletion protection"), "{message}");
    ok(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(&lb, &[("deletion_protection.enabled", "false")]),
    );
    ok(
        &mut world,
        elbv2::delete_load_balancer,
        wire::DeleteLoadBalancerRequest {
            load_balancer_arn: lb,
        },
    );
    assert!(world.state.load_balancers.is_empty());
}

#[test]
fn listener_attributes_follow_the_listeners_protocol() {
    let mut world = World::new();
    let nlb = create_lb(&mut world, "tcp", "network");
    let tcp_group = create_tg(&mut world, "tcp-tg", "TCP");
    let tcp = create_listener(&mut world, &nlb, 9000, &tcp_group);
    let described = as_map(ok(
        &mut world,
        elbv2::describe_listener_attributes,
        wire::ListenerArnRequest {
            listener_arn: tcp.clone(),
        },
    ));
    assert_eq!(
        described,
        [("tcp.idle_timeout.seconds".to_string(), "350".to_string())].into()
    );
    let changed = as_map(ok(
        &mut world,
        elbv2::modify_listener_attributes,
        modify_listener_attributes(&tcp, &[("tcp.idle_timeout.seconds", "120")]),
    ));
    assert_eq!(changed["tcp.idle_timeout.seconds"], "120");
    let listener = world.state.listeners.values().next().unwrap().clone();
    assert_eq!(
        elbv2::client_idle_timeout_seconds(&world.state, &listener),
        Some(120)
    );
    for value in ["59", "6001"] {
        let message = fails(
            &mut world,
            elbv2::modify_listener_attributes,
            modify_listener_attributes(&tcp, &[("tcp.idle_timeout.seconds", value)]),
            Elbv2ErrorCode::ValidationError,
        );
        assert!(message.contains("tcp.idle_timeout.seconds"), "{message}");
    }
    let message = fails(
        &mut world,
        elbv2::modify_listener_attributes,
        modify_listener_attributes(&tcp, &[("routing.http.response.server.enabled", "false")]),
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert!(message.contains("'TCP'"), "{message}");

    let alb = create_lb(&mut world, "web", "application");
    let http_group = create_tg(&mut world, "web-tg", "HTTP");
    let http = create_listener(&mut world, &alb, 8080, &http_group);
    let described = as_map(ok(
        &mut world,
        elbv2::describe_listener_attributes,
        wire::ListenerArnRequest {
            listener_arn: http.clone(),
        },
    ));
    assert_eq!(described["routing.http.response.server.enabled"], "true");
    assert!(!described.contains_key("tcp.idle_timeout.seconds"));
    let message = fails(
        &mut world,
        elbv2::modify_listener_attributes,
        modify_listener_attributes(&http, &[("bogus", "1")]),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("'bogus' is not recognized"), "{message}");
}

#[test]
fn an_http_listeners_idle_timeout_is_its_load_balancers() {
    let mut world = World::new();
    let alb = create_lb(&mut world, "web", "application");
    let group = create_tg(&mut world, "web-tg", "HTTP");
    create_listener(&mut world, &alb, 8080, &group);
    let listener = world.state.listeners.values().next().unwrap().clone();
    assert_eq!(
        elbv2::client_idle_timeout_seconds(&world.state, &listener),
        Some(60)
    );
    ok(
        &mut world,
        elbv2::modify_load_balancer_attributes,
        modify_lb(&alb, &[("idle_timeout.timeout_seconds", "7")]),
    );
    assert_eq!(
        elbv2::client_idle_timeout_seconds(&world.state, &listener),
        Some(7)
    );
}

#[test]
fn modify_listener_moves_the_port_and_changes_the_default_action() {
    let mut world = World::new();
    let alb = create_lb(&mut world, "web", "application");
    let first = create_tg(&mut world, "first", "HTTP");
    let second = create_tg(&mut world, "second", "HTTP");
    let listener = create_listener(&mut world, &alb, 8080, &first);
    let other = create_lb(&mut world, "other", "application");
    let other_group = create_tg(&mut world, "other-tg", "HTTP");
    create_listener(&mut world, &other, 9090, &other_group);

    let moved = ok(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            port: Some(8081),
            ..Default::default()
        },
    );
    assert_eq!(moved.listeners[0].port, 8081);
    assert_eq!(
        moved.listeners[0].default_actions[0].target_group_arn,
        Some(first.clone())
    );
    let switched = ok(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            default_actions: forward(&second),
            ..Default::default()
        },
    );
    assert_eq!(switched.listeners[0].port, 8081);
    assert_eq!(
        switched.listeners[0].default_actions[0].target_group_arn,
        Some(second.clone())
    );

    // A port another listener holds, a protocol the load balancer does not speak, a
    // group of another load balancer, a bad port: refused, nothing changes.
    let message = fails(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            port: Some(9090),
            ..Default::default()
        },
        Elbv2ErrorCode::DuplicateListener,
    );
    assert!(message.contains("9090"), "{message}");
    fails(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            protocol: Some("TCP".into()),
            ..Default::default()
        },
        Elbv2ErrorCode::UnsupportedProtocol,
    );
    fails(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            default_actions: forward(&other_group),
            ..Default::default()
        },
        Elbv2ErrorCode::TargetGroupAssociationLimit,
    );
    let message = fails(
        &mut world,
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: listener.clone(),
            port: Some(70000),
            ..Default::default()
        },
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("'port'"), "{message}");
    // The first group is free again: deleting it works now.
    ok(
        &mut world,
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: first,
        },
    );
}
