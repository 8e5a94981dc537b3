//! ELBv2 records -> ELBv2 wire shapes.

use berth_api::elbv2 as wire;

use super::arns::{listener_arn, load_balancer_arn, rule_arn, target_group_arn};
use super::model::{
    ActionKind, ConditionMatch, ListenerRecord, LoadBalancerRecord, ResourceTag, RuleAction,
    RuleCondition, RuleRecord, TargetGroupRecord, TargetRecord,
};
use super::target_group_in_use;
use crate::ids::ArnScope;
use crate::state::State;

pub(crate) fn dns_name(load_balancer: &LoadBalancerRecord) -> String {
    format!("{}.berth.internal", load_balancer.name)
}

pub(crate) fn load_balancer(
    scope: &ArnScope,
    load_balancer: &LoadBalancerRecord,
) -> wire::LoadBalancer {
    wire::LoadBalancer {
        load_balancer_arn: load_balancer_arn(scope, load_balancer),
        dns_name: dns_name(load_balancer),
        created_time_millis: load_balancer.created_at.0,
        load_balancer_name: load_balancer.name.clone(),
        scheme: load_balancer.scheme.as_elbv2().to_string(),
        state_code: "active".to_string(),
        load_balancer_type: load_balancer.load_balancer_type.as_elbv2().to_string(),
        subnets: load_balancer.subnets.clone(),
        security_groups: load_balancer.security_groups.clone(),
        ip_address_type: load_balancer.ip_address_type.as_elbv2().to_string(),
    }
}

pub(crate) fn target_group(
    state: &State,
    scope: &ArnScope,
    target_group: &TargetGroupRecord,
) -> wire::TargetGroup {
    let mut load_balancer_arns: Vec<String> = state
        .listeners
        .values()
        .filter(|l| l.forwards_to(&target_group.id))
        .filter_map(|l| state.load_balancers.get(&l.load_balancer))
        .map(|lb| load_balancer_arn(scope, lb))
        .collect();
    load_balancer_arns.sort();
    load_balancer_arns.dedup();
    let health = &target_group.health_check;
    wire::TargetGroup {
        target_group_arn: target_group_arn(scope, target_group),
        target_group_name: target_group.name.clone(),
        protocol: Some(target_group.protocol.as_elbv2().to_string()),
        protocol_version: target_group.protocol_version.clone(),
        port: Some(i64::from(target_group.port)),
        vpc_id: target_group.vpc_id.clone(),
        health_check_protocol: Some(health.protocol.as_elbv2().to_string()),
        health_check_port: health.port.clone(),
        health_check_enabled: health.enabled,
        health_check_interval_seconds: i64::from(health.interval_seconds),
        health_check_timeout_seconds: i64::from(health.timeout_seconds),
        healthy_threshold_count: i64::from(health.healthy_threshold_count),
        unhealthy_threshold_count: i64::from(health.unhealthy_threshold_count),
        health_check_path: health.path.clone(),
        matcher: health.matcher.as_ref().map(|code| wire::Matcher {
            http_code: Some(code.clone()),
            grpc_code: None,
        }),
        load_balancer_arns,
        target_type: target_group.target_type.as_elbv2().to_string(),
        ip_address_type: target_group.ip_address_type.as_elbv2().to_string(),
    }
}

pub(crate) fn listener(
    state: &State,
    scope: &ArnScope,
    listener: &ListenerRecord,
) -> Option<wire::Listener> {
    let load_balancer = state.load_balancers.get(&listener.load_balancer)?;
    Some(wire::Listener {
        listener_arn: listener_arn(scope, load_balancer, listener),
        load_balancer_arn: load_balancer_arn(scope, load_balancer),
        port: i64::from(listener.port),
        protocol: listener.protocol.as_elbv2().to_string(),
        default_actions: vec![action(state, scope, &listener.default_action)],
        // Runtime truth, not stored: the API edge adds it.
        serving_state: None,
    })
}

/// An action as ELBv2 describes it: a forward with its `TargetGroupArn` when it has one
/// group, and always its `ForwardConfig` with weights and stickiness (off).
pub(crate) fn action(state: &State, scope: &ArnScope, action: &RuleAction) -> wire::Action {
    let mut view = wire::Action {
        action_type: action.kind.as_elbv2().to_string(),
        order: action.order,
        ..Default::default()
    };
    match &action.kind {
        ActionKind::Forward(forward) => {
            let target_groups: Vec<wire::TargetGroupTuple> = forward
                .target_groups
                .iter()
                .map(|group| wire::TargetGroupTuple {
                    target_group_arn: state
                        .target_groups
                        .get(&group.target_group)
                        .map(|tg| target_group_arn(scope, tg)),
                    weight: Some(i64::from(group.weight)),
                })
                .collect();
            if let [only] = target_groups.as_slice() {
                view.target_group_arn = only.target_group_arn.clone();
            }
            view.forward_config = Some(wire::ForwardConfig {
                target_groups,
                stickiness: Some(wire::TargetGroupStickinessConfig {
                    enabled: Some(false),
                    duration_seconds: forward.stickiness_duration_seconds.map(i64::from),
                }),
            });
        }
        ActionKind::FixedResponse(fixed) => {
            view.fixed_response_config = Some(wire::FixedResponseConfig {
                message_body: fixed.message_body.clone(),
                status_code: Some(fixed.status_code.to_string()),
                content_type: fixed.content_type.clone(),
            });
        }
        ActionKind::Redirect(redirect) => {
            view.redirect_config = Some(wire::RedirectConfig {
                protocol: Some(redirect.protocol.clone()),
                port: Some(redirect.port.clone()),
                host: Some(redirect.host.clone()),
                path: Some(redirect.path.clone()),
                query: Some(redirect.query.clone()),
                status_code: Some(redirect.status.as_elbv2().to_string()),
            });
        }
    }
    view
}

/// A condition as ELBv2 describes it: in its `*Config`, and in `Values` too when it
/// was given that way.
fn condition(condition: &RuleCondition) -> wire::RuleCondition {
    let mut view = wire::RuleCondition {
        field: Some(condition.matches.field().to_string()),
        ..Default::default()
    };
    match &condition.matches {
        ConditionMatch::PathPattern(values) => {
            view.path_pattern_config = Some(values.clone());
            if condition.given_as_values {
                view.values = values.clone();
            }
        }
        ConditionMatch::HostHeader(values) => {
            view.host_header_config = Some(values.clone());
            if condition.given_as_values {
                view.values = values.clone();
            }
        }
        ConditionMatch::HttpHeader { name, values } => {
            view.http_header_config = Some(wire::HttpHeaderConditionConfig {
                http_header_name: Some(name.clone()),
                values: values.clone(),
            })
        }
        ConditionMatch::QueryString(pairs) => {
            view.query_string_config = Some(
                pairs
                    .iter()
                    .map(|pair| wire::QueryStringKeyValue {
                        key: pair.key.clone(),
                        value: Some(pair.value.clone()),
                    })
                    .collect(),
            )
        }
        ConditionMatch::HttpRequestMethod(values) => {
            view.http_request_method_config = Some(values.clone())
        }
        ConditionMatch::SourceIp(blocks) => {
            view.source_ip_config = Some(blocks.iter().map(ToString::to_string).collect())
        }
    }
    view
}

/// A listener's rule, or (`rule` None) its default rule.
pub(crate) fn rule(
    state: &State,
    scope: &ArnScope,
    listener: &ListenerRecord,
    rule: Option<&RuleRecord>,
) -> Option<wire::Rule> {
    let load_balancer = state.load_balancers.get(&listener.load_balancer)?;
    Some(match rule {
        None => wire::Rule {
            rule_arn: rule_arn(scope, load_balancer, listener, &listener.id),
            priority: "default".to_string(),
            conditions: Vec::new(),
            actions: vec![action(state, scope, &listener.default_action)],
            is_default: true,
        },
        Some(rule) => wire::Rule {
            rule_arn: rule_arn(scope, load_balancer, listener, &rule.id),
            priority: rule.priority.to_string(),
            conditions: rule.conditions.iter().map(condition).collect(),
            actions: vec![action(state, scope, &rule.action)],
            is_default: false,
        },
    })
}

pub(crate) fn tags(tags: &[ResourceTag]) -> Vec<wire::Tag> {
    tags.iter()
        .map(|t| wire::Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

/// How DescribeTargetHealth shows a registered target: draining while its
/// deregistration delay runs, `unused` while no listener forwards to its group,
/// otherwise what the data plane reported (`initial` until it reports).
pub fn target_health_view(
    state: &State,
    target_group: &TargetGroupRecord,
    target: &TargetRecord,
) -> wire::TargetHealthDescription {
    let (state_name, reason, description) = if target.draining_until.is_some() {
        (
            "draining",
            Some("Target.DeregistrationInProgress".to_string()),
            Some("Target deregistration is in progress".to_string()),
        )
    } else if !target_group_in_use(state, &target_group.id) {
        (
            "unused",
            Some("Target.NotInUse".to_string()),
            Some(
                "Target group is not configured to receive traffic from the load balancer"
                    .to_string(),
            ),
        )
    } else if target.health.state == super::model::TargetHealthState::Initial
        && target.health.reason.is_none()
    {
        (
            "initial",
            Some("Elb.RegistrationInProgress".to_string()),
            Some("Target registration is in progress".to_string()),
        )
    } else {
        (
            target.health.state.as_elbv2(),
            target.health.reason.clone(),
            target.health.description.clone(),
        )
    };
    wire::TargetHealthDescription {
        target: wire::TargetDescription {
            id: target.id.clone(),
            port: Some(i64::from(target.port)),
            availability_zone: target.availability_zone.clone(),
        },
        health_check_port: health_check_port(target_group, target.port),
        state: state_name.to_string(),
        reason,
        description,
    }
}

pub(crate) fn health_check_port(target_group: &TargetGroupRecord, traffic_port: u16) -> String {
    if target_group.health_check.port == "traffic-port" {
        traffic_port.to_string()
    } else {
        target_group.health_check.port.clone()
    }
}
