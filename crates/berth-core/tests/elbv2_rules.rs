//! Listener default actions and listener rules, pure: every action type, every
//! condition, the rule actions (CreateRule, DescribeRules, ModifyRule, DeleteRule,
//! SetRulePriorities) and each refusal ELBv2 makes, with its code.

mod common;

use berth_core::api::elbv2 as wire;
use berth_core::elbv2::model::{ActionKind, ConditionMatch};
use berth_core::elbv2::{self, Elbv2ErrorCode};
use common::World;

fn create_lb(world: &mut World, name: &str, kind: Option<&str>) -> String {
    world
        .elbv2_ok(
            elbv2::create_load_balancer,
            wire::CreateLoadBalancerRequest {
                name: name.into(),
                load_balancer_type: kind.map(str::to_string),
                ..Default::default()
            },
        )
        .load_balancers[0]
        .load_balancer_arn
        .clone()
}

fn create_tg(world: &mut World, name: &str, protocol: &str) -> String {
    world
        .elbv2_ok(
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

fn forward(tg: &str) -> wire::Action {
    wire::Action {
        action_type: "forward".into(),
        target_group_arn: Some(tg.into()),
        ..Default::default()
    }
}

fn weighted(groups: &[(&str, i64)]) -> wire::Action {
    wire::Action {
        action_type: "forward".into(),
        forward_config: Some(wire::ForwardConfig {
            target_groups: groups
                .iter()
                .map(|(arn, weight)| wire::TargetGroupTuple {
                    target_group_arn: Some(arn.to_string()),
                    weight: Some(*weight),
                })
                .collect(),
            stickiness: None,
        }),
        ..Default::default()
    }
}

fn fixed(status: &str, body: &str) -> wire::Action {
    wire::Action {
        action_type: "fixed-response".into(),
        fixed_response_config: Some(wire::FixedResponseConfig {
            status_code: Some(status.into()),
            content_type: Some("text/plain".into()),
            message_body: Some(body.into()),
        }),
        ..Default::default()
    }
}

fn redirect(host: &str) -> wire::Action {
    wire::Action {
        action_type: "redirect".into(),
        redirect_config: Some(wire::RedirectConfig {
            host: Some(host.into()),
            status_code: Some("HTTP_302".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn listener_request(lb: &str, port: i64, action: wire::Action) -> wire::CreateListenerRequest {
    wire::CreateListenerRequest {
        load_balancer_arn: lb.into(),
        port: Some(port),
        default_actions: vec![action],
        ..Default::default()
    }
}

fn create_listener(world: &mut World, lb: &str, port: i64, action: wire::Action) -> String {
    world
        .elbv2_ok(elbv2::create_listener, listener_request(lb, port, action))
        .listeners[0]
        .listener_arn
        .clone()
}

fn path(values: &[&str]) -> wire::RuleCondition {
    wire::RuleCondition {
        field: Some("path-pattern".into()),
        path_pattern_config: Some(values.iter().map(|v| v.to_string()).collect()),
        ..Default::default()
    }
}

fn header(name: &str, values: &[&str]) -> wire::RuleCondition {
    wire::RuleCondition {
        field: Some("http-header".into()),
        http_header_config: Some(wire::HttpHeaderConditionConfig {
            http_header_name: Some(name.into()),
            values: values.iter().map(|v| v.to_string()).collect(),
        }),
        ..Default::default()
    }
}

fn rule_request(
    listener: &str,
    priority: i64,
    conditions: Vec<wire::RuleCondition>,
    action: wire::Action,
) -> wire::CreateRuleRequest {
    wire::CreateRuleRequest {
        listener_arn: listener.into(),
        priority: Some(priority),
        conditions,
        actions: vec![action],
        tags: vec![],
    }
}

fn create_rule(
    world: &mut World,
    listener: &str,
    priority: i64,
    conditions: Vec<wire::RuleCondition>,
    action: wire::Action,
) -> String {
    world
        .elbv2_ok(
            elbv2::create_rule,
            rule_request(listener, priority, conditions, action),
        )
        .rules[0]
        .rule_arn
        .clone()
}

fn describe(world: &mut World, listener: &str) -> Vec<wire::Rule> {
    world
        .elbv2_ok(
            elbv2::describe_rules,
            wire::DescribeRulesRequest {
                listener_arn: Some(listener.into()),
                ..Default::default()
            },
        )
        .rules
}

#[test]
fn default_actions_forward_by_weight_answer_fixed_responses_and_redirect() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let blue = create_tg(&mut world, "blue", "HTTP");
    let green = create_tg(&mut world, "green", "HTTP");

    let split = create_listener(&mut world, &lb, 80, weighted(&[(&blue, 3), (&green, 1)]));
    let fixed_arn = create_listener(&mut world, &lb, 81, fixed("503", "down for maintenance"));
    let moved = create_listener(&mut world, &lb, 82, redirect("new.example.com"));

    let listeners = world
        .elbv2_ok(
            elbv2::describe_listeners,
            wire::DescribeListenersRequest {
                load_balancer_arn: Some(lb.clone()),
                ..Default::default()
            },
        )
        .listeners;
    let split_action = &listeners[0].default_actions[0];
    assert_eq!(listeners[0].listener_arn, split);
    assert_eq!(split_action.action_type, "forward");
    // Two groups: no TargetGroupArn, the weights in ForwardConfig.
    assert_eq!(split_action.target_group_arn, None);
    let groups = &split_action.forward_config.as_ref().unwrap().target_groups;
    assert_eq!(groups[0].target_group_arn.as_deref(), Some(blue.as_str()));
    assert_eq!(groups[0].weight, Some(3));
    assert_eq!(groups[1].weight, Some(1));

    assert_eq!(listeners[1].listener_arn, fixed_arn);
    let fixed_config = listeners[1].default_actions[0]
        .fixed_response_config
        .as_ref()
        .unwrap();
    assert_eq!(fixed_config.status_code.as_deref(), Some("503"));
    assert_eq!(fixed_config.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        fixed_config.message_body.as_deref(),
        Some("down for maintenance")
    );

    assert_eq!(listeners[2].listener_arn, moved);
    let redirect_config = listeners[2].default_actions[0]
        .redirect_config
        .as_ref()
        .unwrap();
    // Parts not given are ELBv2's defaults, echoed.
    assert_eq!(redirect_config.host.as_deref(), Some("new.example.com"));
    assert_eq!(redirect_config.protocol.as_deref(), Some("#{protocol}"));
    assert_eq!(redirect_config.port.as_deref(), Some("#{port}"));
    assert_eq!(redirect_config.path.as_deref(), Some("/#{path}"));
    assert_eq!(redirect_config.query.as_deref(), Some("#{query}"));
    assert_eq!(redirect_config.status_code.as_deref(), Some("HTTP_302"));

    // Both groups of the weighted forward are in use by the load balancer.
    let green_group = world
        .elbv2_ok(
            elbv2::describe_target_groups,
            wire::DescribeTargetGroupsRequest {
                target_group_arns: vec![green.clone()],
                ..Default::default()
            },
        )
        .target_groups;
    assert_eq!(green_group[0].load_balancer_arns, vec![lb.clone()]);

    // ModifyListener swaps the default action for another type.
    let modified = world.elbv2_ok(
        elbv2::modify_listener,
        wire::ModifyListenerRequest {
            listener_arn: fixed_arn.clone(),
            default_actions: vec![forward(&green)],
            ..Default::default()
        },
    );
    let action = &modified.listeners[0].default_actions[0];
    assert_eq!(action.target_group_arn.as_deref(), Some(green.as_str()));
    let stickiness = action
        .forward_config
        .as_ref()
        .unwrap()
        .stickiness
        .as_ref()
        .unwrap();
    assert_eq!(stickiness.enabled, Some(false));
}

#[test]
fn default_actions_are_refused_with_elbv2s_codes_and_the_field_named() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let nlb = create_lb(&mut world, "tcp", Some("network"));
    let tg = create_tg(&mut world, "web", "HTTP");
    let tcp_tg = create_tg(&mut world, "tcp", "TCP");
    let tcp_tg2 = create_tg(&mut world, "tcp2", "TCP");
    let refuse = |world: &mut World, lb: &str, action: wire::Action, code| {
        world.elbv2_fails(
            elbv2::create_listener,
            listener_request(lb, 80, action),
            code,
        )
    };

    let mut sticky = weighted(&[(&tg, 1)]);
    sticky.forward_config.as_mut().unwrap().stickiness = Some(wire::TargetGroupStickinessConfig {
        enabled: Some(true),
        duration_seconds: Some(60),
    });
    let message = refuse(
        &mut world,
        &lb,
        sticky,
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    assert!(
        message.contains("targetGroupStickinessConfig.enabled"),
        "{message}"
    );

    let message = refuse(
        &mut world,
        &lb,
        fixed("302", ""),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(
        message.contains("fixedResponseConfig.statusCode"),
        "{message}"
    );
    let mut bad_type = fixed("200", "x");
    bad_type
        .fixed_response_config
        .as_mut()
        .unwrap()
        .content_type = Some("image/png".into());
    let message = refuse(&mut world, &lb, bad_type, Elbv2ErrorCode::ValidationError);
    assert!(message.contains("contentType"), "{message}");
    let message = refuse(
        &mut world,
        &lb,
        fixed("200", &"x".repeat(1025)),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("messageBody"), "{message}");

    let mut bad_status = redirect("a.example");
    bad_status.redirect_config.as_mut().unwrap().status_code = Some("HTTP_307".into());
    refuse(&mut world, &lb, bad_status, Elbv2ErrorCode::ValidationError);
    let mut bad_path = redirect("a.example");
    bad_path.redirect_config.as_mut().unwrap().path = Some("nope".into());
    let message = refuse(
        &mut world,
        &lb,
        bad_path,
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    assert!(message.contains("redirectConfig.path"), "{message}");

    let message = refuse(
        &mut world,
        &lb,
        weighted(&[(&tg, 1000)]),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("weight"), "{message}");
    let six: Vec<String> = (0..6)
        .map(|i| create_tg(&mut world, &format!("g{i}"), "HTTP"))
        .collect();
    let six_groups: Vec<(&str, i64)> = six.iter().map(|arn| (arn.as_str(), 1)).collect();
    refuse(
        &mut world,
        &lb,
        weighted(&six_groups),
        Elbv2ErrorCode::ValidationError,
    );
    let mut both = weighted(&[(&six[0], 1)]);
    both.target_group_arn = Some(six[1].clone());
    refuse(
        &mut world,
        &lb,
        both,
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    let mut misplaced = forward(&tg);
    misplaced.redirect_config = Some(wire::RedirectConfig::default());
    let message = refuse(
        &mut world,
        &lb,
        misplaced,
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    assert!(message.contains("RedirectConfig"), "{message}");
    let message = refuse(
        &mut world,
        &lb,
        wire::Action {
            action_type: "authenticate-oidc".into(),
            ..Default::default()
        },
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    assert!(message.contains("HTTPS"), "{message}");
    refuse(
        &mut world,
        &lb,
        wire::Action {
            action_type: "teleport".into(),
            ..Default::default()
        },
        Elbv2ErrorCode::ValidationError,
    );
    let mut ordered = forward(&tg);
    ordered.order = Some(0);
    refuse(&mut world, &lb, ordered, Elbv2ErrorCode::ValidationError);
    world.elbv2_fails(
        elbv2::create_listener,
        wire::CreateListenerRequest {
            default_actions: vec![forward(&tg), fixed("200", "x")],
            ..listener_request(&lb, 80, forward(&tg))
        },
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );

    // TCP listeners forward to one group and do nothing else.
    let message = refuse(
        &mut world,
        &nlb,
        fixed("200", "x"),
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    assert!(message.contains("TCP listeners"), "{message}");
    refuse(
        &mut world,
        &nlb,
        weighted(&[(&tcp_tg, 1), (&tcp_tg2, 1)]),
        Elbv2ErrorCode::InvalidLoadBalancerAction,
    );
    create_listener(&mut world, &nlb, 9000, weighted(&[(&tcp_tg, 1)]));
}

#[test]
fn rules_are_created_listed_by_priority_with_the_default_last_and_paged() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let web = create_tg(&mut world, "web", "HTTP");
    let api = create_tg(&mut world, "api", "HTTP");
    let listener = create_listener(&mut world, &lb, 80, forward(&web));

    // Before any rule, the default rule alone.
    let rules = describe(&mut world, &listener);
    assert_eq!(rules.len(), 1);
    assert!(rules[0].is_default);
    assert_eq!(rules[0].priority, "default");
    assert!(rules[0].rule_arn.contains(":listener-rule/app/web/"));

    let by_values = wire::RuleCondition {
        field: Some("path-pattern".into()),
        values: vec!["/api/*".into()],
        ..Default::default()
    };
    let api_rule = create_rule(&mut world, &listener, 10, vec![by_values], forward(&api));
    let host = wire::RuleCondition {
        field: Some("host-header".into()),
        host_header_config: Some(vec!["*.example.com".into()]),
        ..Default::default()
    };
    let query = wire::RuleCondition {
        field: Some("query-string".into()),
        query_string_config: Some(vec![
            wire::QueryStringKeyValue {
                key: Some("version".into()),
                value: Some("2".into()),
            },
            wire::QueryStringKeyValue {
                key: None,
                value: Some("beta".into()),
            },
        ]),
        ..Default::default()
    };
    let methods = wire::RuleCondition {
        field: Some("http-request-method".into()),
        http_request_method_config: Some(vec!["GET".into()]),
        ..Default::default()
    };
    let source = wire::RuleCondition {
        field: Some("source-ip".into()),
        source_ip_config: Some(vec!["10.0.0.0/8".into(), "2001:db8::/32".into()]),
        ..Default::default()
    };
    let fixed_rule = create_rule(
        &mut world,
        &listener,
        5,
        vec![host, query, methods],
        fixed("404", "nothing here"),
    );
    let source_rule = create_rule(
        &mut world,
        &listener,
        7,
        vec![source],
        redirect("a.example"),
    );

    let rules = describe(&mut world, &listener);
    let order: Vec<&str> = rules.iter().map(|r| r.priority.as_str()).collect();
    assert_eq!(order, ["5", "7", "10", "default"]);
    assert_eq!(rules[0].rule_arn, fixed_rule);
    assert_eq!(rules[1].rule_arn, source_rule);
    assert_eq!(rules[2].rule_arn, api_rule);
    // Given as Values: echoed both ways. Given as a config: the config only.
    assert_eq!(rules[2].conditions[0].values, ["/api/*"]);
    assert_eq!(
        rules[2].conditions[0].path_pattern_config.as_deref(),
        Some(&["/api/*".to_string()][..])
    );
    assert!(rules[0].conditions[0].values.is_empty());
    let pairs = rules[0].conditions[1].query_string_config.as_ref().unwrap();
    assert_eq!(pairs[1].key, None);
    assert_eq!(pairs[1].value.as_deref(), Some("beta"));
    assert_eq!(
        rules[1].conditions[0].source_ip_config.as_deref(),
        Some(&["10.0.0.0/8".to_string(), "2001:db8::/32".to_string()][..])
    );
    assert_eq!(
        rules[2].actions[0].target_group_arn.as_deref(),
        Some(api.as_str())
    );

    // The group only a rule forwards to is in use by the load balancer.
    let by_lb = world
        .elbv2_ok(
            elbv2::describe_target_groups,
            wire::DescribeTargetGroupsRequest {
                load_balancer_arn: Some(lb.clone()),
                ..Default::default()
            },
        )
        .target_groups;
    let names: Vec<&str> = by_lb.iter().map(|g| g.target_group_name.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(by_lb[0].load_balancer_arns, vec![lb.clone()]);
    let message = world.elbv2_fails(
        elbv2::delete_target_group,
        wire::TargetGroupArnRequest {
            target_group_arn: api.clone(),
        },
        Elbv2ErrorCode::ResourceInUse,
    );
    assert!(message.contains(&api), "{message}");

    // By rule ARNs, and in pages of two.
    let chosen = world
        .elbv2_ok(
            elbv2::describe_rules,
            wire::DescribeRulesRequest {
                rule_arns: vec![api_rule.clone(), rules[3].rule_arn.clone()],
                ..Default::default()
            },
        )
        .rules;
    assert_eq!(chosen[0].priority, "10");
    assert!(chosen[1].is_default);
    let first = world.elbv2_ok(
        elbv2::describe_rules,
        wire::DescribeRulesRequest {
            listener_arn: Some(listener.clone()),
            page_size: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(first.rules.len(), 2);
    let second = world.elbv2_ok(
        elbv2::describe_rules,
        wire::DescribeRulesRequest {
            listener_arn: Some(listener.clone()),
            page_size: Some(2),
            marker: first.next_marker.clone(),
            ..Default::default()
        },
    );
    assert_eq!(second.rules.len(), 2);
    assert!(second.rules[1].is_default);
    assert_eq!(second.next_marker, None);
    world.elbv2_fails(
        elbv2::describe_rules,
        wire::DescribeRulesRequest::default(),
        Elbv2ErrorCode::ValidationError,
    );

    // The stored record holds typed conditions.
    let record = world.state.listeners.values().next().unwrap();
    let stored = record.rules.iter().find(|r| r.priority == 7).unwrap();
    assert!(matches!(
        &stored.conditions[0].matches,
        ConditionMatch::SourceIp(blocks) if blocks.len() == 2
    ));
    assert!(matches!(stored.action.kind, ActionKind::Redirect(_)));
}

#[test]
fn create_rule_refuses_with_elbv2s_codes_and_stores_nothing() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let other_lb = create_lb(&mut world, "other", None);
    let nlb = create_lb(&mut world, "tcp", Some("network"));
    let web = create_tg(&mut world, "web", "HTTP");
    let others = create_tg(&mut world, "others", "HTTP");
    let tcp_tg = create_tg(&mut world, "tcp", "TCP");
    let listener = create_listener(&mut world, &lb, 80, forward(&web));
    create_listener(&mut world, &other_lb, 81, forward(&others));
    let tcp_listener = create_listener(&mut world, &nlb, 9000, forward(&tcp_tg));
    create_rule(&mut world, &listener, 1, vec![path(&["/a"])], forward(&web));

    let mut refuse = |conditions: Vec<wire::RuleCondition>, priority, action, code| {
        world.elbv2_fails(
            elbv2::create_rule,
            rule_request(&listener, priority, conditions, action),
            code,
        )
    };
    let message = refuse(
        vec![path(&["/b"])],
        1,
        forward(&web),
        Elbv2ErrorCode::PriorityInUse,
    );
    assert!(message.contains("'1'"), "{message}");
    for priority in [0, 50001] {
        refuse(
            vec![path(&["/b"])],
            priority,
            forward(&web),
            Elbv2ErrorCode::ValidationError,
        );
    }
    let gone = web.replace("targetgroup/web/", "targetgroup/gone/");
    refuse(
        vec![path(&["/b"])],
        2,
        forward(&gone),
        Elbv2ErrorCode::TargetGroupNotFound,
    );
    // A group another load balancer's listener uses.
    refuse(
        vec![path(&["/b"])],
        2,
        forward(&others),
        Elbv2ErrorCode::TargetGroupAssociationLimit,
    );
    refuse(
        vec![path(&["/b"])],
        2,
        forward(&tcp_tg),
        Elbv2ErrorCode::IncompatibleProtocols,
    );
    let message = refuse(vec![], 2, forward(&web), Elbv2ErrorCode::ValidationError);
    assert!(message.contains("at least one condition"), "{message}");
    let message = refuse(
        vec![path(&["/b"]), path(&["/c"])],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("only one 'path-pattern'"), "{message}");
    let message = refuse(
        vec![path(&["/a", "/b", "/c", "/d"])],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("at most 3 values"), "{message}");
    let message = refuse(
        vec![path(&["/a", "/b", "/c"]), header("X-A", &["1", "2", "3"])],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("at most 5 condition values"), "{message}");
    let message = refuse(
        vec![path(&["/a*b*c*", "*d*e*"])],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("at most 5 wildcards"), "{message}");
    let header_values = wire::RuleCondition {
        field: Some("http-header".into()),
        values: vec!["x".into()],
        ..Default::default()
    };
    let message = refuse(
        vec![header_values],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("HttpHeaderConfig"), "{message}");
    let mut twice = path(&["/a"]);
    twice.values = vec!["/a".into()];
    refuse(
        vec![twice],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    let mut mismatched = path(&["/a"]);
    mismatched.host_header_config = Some(vec!["a.example".into()]);
    let message = refuse(
        vec![mismatched],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("HostHeaderConfig"), "{message}");
    let bad_cidr = wire::RuleCondition {
        field: Some("source-ip".into()),
        source_ip_config: Some(vec!["10.0.0.0/33".into()]),
        ..Default::default()
    };
    let message = refuse(
        vec![bad_cidr],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    assert!(message.contains("10.0.0.0/33"), "{message}");
    let no_dot = wire::RuleCondition {
        field: Some("host-header".into()),
        host_header_config: Some(vec!["localhost".into()]),
        ..Default::default()
    };
    refuse(
        vec![no_dot],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    let lower_method = wire::RuleCondition {
        field: Some("http-request-method".into()),
        http_request_method_config: Some(vec!["get".into()]),
        ..Default::default()
    };
    refuse(
        vec![lower_method],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    let unknown_field = wire::RuleCondition {
        field: Some("cookie".into()),
        values: vec!["x".into()],
        ..Default::default()
    };
    refuse(
        vec![unknown_field],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );
    let bad_header_name = header("X A", &["1"]);
    refuse(
        vec![bad_header_name],
        2,
        forward(&web),
        Elbv2ErrorCode::ValidationError,
    );

    // TCP listeners have no rules.
    world.elbv2_fails(
        elbv2::create_rule,
        rule_request(&tcp_listener, 1, vec![path(&["/a"])], forward(&tcp_tg)),
        Elbv2ErrorCode::InvalidConfigurationRequest,
    );
    assert_eq!(describe(&mut world, &listener).len(), 2);
}

#[test]
fn a_load_balancer_holds_at_most_100_rules() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let web = create_tg(&mut world, "web", "HTTP");
    let listener = create_listener(&mut world, &lb, 80, forward(&web));
    for priority in 1..=100 {
        create_rule(
            &mut world,
            &listener,
            priority,
            vec![path(&[&format!("/{priority}")])],
            forward(&web),
        );
    }
    world.elbv2_fails(
        elbv2::create_rule,
        rule_request(&listener, 101, vec![path(&["/x"])], forward(&web)),
        Elbv2ErrorCode::TooManyRules,
    );
}

#[test]
fn rules_are_modified_reprioritised_tagged_and_deleted_but_the_default_rule_stays() {
    let mut world = World::new();
    let lb = create_lb(&mut world, "web", None);
    let web = create_tg(&mut world, "web", "HTTP");
    let api = create_tg(&mut world, "api", "HTTP");
    let listener = create_listener(&mut world, &lb, 80, forward(&web));
    let first = create_rule(&mut world, &listener, 1, vec![path(&["/a"])], forward(&api));
    let second = create_rule(
        &mut world,
        &listener,
        2,
        vec![header("X-Env", &["beta"])],
        fixed("200", "beta"),
    );
    let default_rule = describe(&mut world, &listener)[2].rule_arn.clone();

    // ModifyRule replaces what is sent and keeps the rest.
    let modified = world.elbv2_ok(
        elbv2::modify_rule,
        wire::ModifyRuleRequest {
            rule_arn: first.clone(),
            conditions: Some(vec![path(&["/b/*"])]),
            actions: None,
        },
    );
    assert_eq!(
        modified.rules[0].conditions[0]
            .path_pattern_config
            .as_deref(),
        Some(&["/b/*".to_string()][..])
    );
    assert_eq!(
        modified.rules[0].actions[0].target_group_arn.as_deref(),
        Some(api.as_str())
    );
    world.elbv2_ok(
        elbv2::modify_rule,
        wire::ModifyRuleRequest {
            rule_arn: first.clone(),
            conditions: None,
            actions: Some(vec![redirect("b.example")]),
        },
    );
    // The api group is no longer used: it can go.
    let rules = describe(&mut world, &listener);
    assert_eq!(rules[0].actions[0].action_type, "redirect");
    assert_eq!(rules[0].priority, "1");
    // The default rule takes actions (its listener's default action), not conditions.
    world.elbv2_ok(
        elbv2::modify_rule,
        wire::ModifyRuleRequest {
            rule_arn: default_rule.clone(),
            conditions: None,
            actions: Some(vec![fixed("404", "none")]),
        },
    );
    let listeners = world
        .elbv2_ok(
            elbv2::describe_listeners,
            wire::DescribeListenersRequest {
                listener_arns: vec![listener.clone()],
                ..Default::default()
            },
        )
        .listeners;
    assert_eq!(
        listeners[0].default_actions[0].action_type,
        "fixed-response"
    );
    world.elbv2_fails(
        elbv2::modify_rule,
        wire::ModifyRuleRequest {
            rule_arn: default_rule.clone(),
            conditions: Some(vec![path(&["/x"])]),
            actions: None,
        },
        Elbv2ErrorCode::OperationNotPermitted,
    );
    world.elbv2_fails(
        elbv2::modify_rule,
        wire::ModifyRuleRequest {
            rule_arn: first.clone(),
            conditions: Some(vec![path(&["/x", "/y", "/z", "/w"])]),
            actions: None,
        },
        Elbv2ErrorCode::ValidationError,
    );

    // SetRulePriorities: a swap is fine, a clash is not, the default rule has none.
    let pair = |arn: &str, priority| wire::RulePriorityPair {
        rule_arn: Some(arn.to_string()),
        priority: Some(priority),
    };
    let swapped = world.elbv2_ok(
        elbv2::set_rule_priorities,
        wire::SetRulePrioritiesRequest {
            rule_priorities: vec![pair(&first, 2), pair(&second, 1)],
        },
    );
    assert_eq!(swapped.rules[0].priority, "2");
    let rules = describe(&mut world, &listener);
    assert_eq!(rules[0].rule_arn, second);
    assert_eq!(rules[1].rule_arn, first);
    world.elbv2_fails(
        elbv2::set_rule_priorities,
        wire::SetRulePrioritiesRequest {
            rule_priorities: vec![pair(&first, 1)],
        },
        Elbv2ErrorCode::PriorityInUse,
    );
    world.elbv2_fails(
        elbv2::set_rule_priorities,
        wire::SetRulePrioritiesRequest {
            rule_priorities: vec![pair(&default_rule, 9)],
        },
        Elbv2ErrorCode::OperationNotPermitted,
    );

    // Rules carry tags, the default rule too, each on its own.
    world.elbv2_ok(
        elbv2::add_tags,
        wire::AddTagsRequest {
            resource_arns: vec![first.clone(), second.clone(), default_rule.clone()],
            tags: vec![wire::Tag {
                key: "team".into(),
                value: Some("edge".into()),
            }],
        },
    );
    world.elbv2_ok(
        elbv2::remove_tags,
        wire::RemoveTagsRequest {
            resource_arns: vec![second.clone()],
            tag_keys: vec!["team".into()],
        },
    );
    let tags = world
        .elbv2_ok(
            elbv2::describe_tags,
            wire::DescribeTagsRequest {
                resource_arns: vec![first.clone(), second.clone(), default_rule.clone()],
            },
        )
        .tag_descriptions;
    assert_eq!(tags[0].tags.len(), 1);
    assert!(tags[1].tags.is_empty());
    assert_eq!(tags[2].tags[0].value.as_deref(), Some("edge"));

    // DeleteRule: never the default; a deleted rule is not found.
    let message = world.elbv2_fails(
        elbv2::delete_rule,
        wire::DeleteRuleRequest {
            rule_arn: default_rule.clone(),
        },
        Elbv2ErrorCode::OperationNotPermitted,
    );
    assert!(message.contains("default rule"), "{message}");
    world.elbv2_ok(
        elbv2::delete_rule,
        wire::DeleteRuleRequest {
            rule_arn: first.clone(),
        },
    );
    world.elbv2_fails(
        elbv2::delete_rule,
        wire::DeleteRuleRequest {
            rule_arn: first.clone(),
        },
        Elbv2ErrorCode::RuleNotFound,
    );
    assert_eq!(describe(&mut world, &listener).len(), 2);

    // Deleting the listener deletes its rules.
    world.elbv2_ok(
        elbv2::delete_listener,
        wire::DeleteListenerRequest {
            listener_arn: listener.clone(),
        },
    );
    world.elbv2_fails(
        elbv2::describe_rules,
        wire::DescribeRulesRequest {
            rule_arns: vec![second],
            ..Default::default()
        },
        Elbv2ErrorCode::RuleNotFound,
    );
    // With no listener left, both groups can go.
    for arn in [web, api] {
        world.elbv2_ok(
            elbv2::delete_target_group,
            wire::TargetGroupArnRequest {
                target_group_arn: arn,
            },
        );
    }
}
