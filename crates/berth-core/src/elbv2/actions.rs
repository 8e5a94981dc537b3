//! The one parse of an action (a listener's `DefaultActions`, a rule's `Actions`) and
//! of a rule's `Conditions`, with ELBv2's rules and limits: CreateListener,
//! ModifyListener, CreateRule and ModifyRule all read them here.

use std::net::IpAddr;

use berth_api::elbv2 as wire;

use super::model::{
    ActionKind, CidrBlock, ConditionMatch, FixedResponseAction, ForwardAction, LoadBalancerRecord,
    Protocol, QueryStringPair, RedirectAction, RedirectStatus, RuleAction, RuleCondition,
    TargetGroupRecord, WeightedTargetGroup,
};
use super::{target_group_by_arn, Elbv2Error, Elbv2ErrorCode};
use crate::state::State;

/// The most target groups one forward splits over, as in ELBv2.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;
/// ELBv2's limits on a rule's match values.
pub const MAX_VALUES_PER_CONDITION: usize = 3;
pub const MAX_VALUES_PER_RULE: usize = 5;
pub const MAX_WILDCARDS_PER_RULE: usize = 5;

const ACTION_TYPES: &str =
    "[forward, authenticate-oidc, authenticate-cognito, redirect, fixed-response]";
const CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

fn invalid_action(message: impl Into<String>) -> Elbv2Error {
    Elbv2Error::new(Elbv2ErrorCode::InvalidLoadBalancerAction, message)
}

/// The one action `actions` make for a listener of `load_balancer` speaking
/// `listener_protocol`; `field` is the wire name of the list (`defaultActions`,
/// `actions`). Target groups are looked up and checked against the listener.
pub(crate) fn rule_action(
    state: &State,
    load_balancer: &LoadBalancerRecord,
    listener_protocol: Protocol,
    field: &str,
    actions: &[wire::Action],
) -> Result<RuleAction, Elbv2Error> {
    let action = match actions {
        [] => return Err(Elbv2Error::missing(field)),
        [action] => action,
        _ => {
            return Err(invalid_action(format!(
                "{field}: a rule takes exactly one of the actions 'forward', 'redirect' and 'fixed-response' (berth supports no other action type), {} given",
                actions.len()
            )))
        }
    };
    let at = format!("{field}.member.1");
    if let Some(order) = action.order {
        if !(1..=50000).contains(&order) {
            return Err(Elbv2Error::constraint(
                &format!("{at}.order"),
                order,
                "Member must have value greater than or equal to 1 and less than or equal to 50000",
            ));
        }
    }
    let kind = match action.action_type.as_str() {
        "forward" => {
            only_config(action, &at, "forward")?;
            ActionKind::Forward(forward(state, load_balancer, listener_protocol, &at, action)?)
        }
        "fixed-response" => {
            only_config(action, &at, "fixed-response")?;
            ActionKind::FixedResponse(fixed_response(&at, action)?)
        }
        "redirect" => {
            only_config(action, &at, "redirect")?;
            ActionKind::Redirect(redirect(&at, action)?)
        }
        "authenticate-oidc" | "authenticate-cognito" => {
            return Err(invalid_action(format!(
                "{at}.type: authenticate actions are supported only on HTTPS listeners, and berth's listeners speak HTTP or TCP"
            )))
        }
        other => {
            return Err(Elbv2Error::constraint(
                &format!("{at}.type"),
                other,
                &format!("Member must satisfy enum value set: {ACTION_TYPES}"),
            ))
        }
    };
    if listener_protocol == Protocol::Tcp && !matches!(kind, ActionKind::Forward(_)) {
        return Err(invalid_action(format!(
            "{at}.type: action type '{}' is not supported by TCP listeners: they forward to one target group",
            kind.as_elbv2()
        )));
    }
    Ok(RuleAction {
        order: action.order,
        kind,
    })
}

/// Refuses the configuration of another action type than `action_type`.
fn only_config(action: &wire::Action, at: &str, action_type: &str) -> Result<(), Elbv2Error> {
    let given = [
        ("forward", "ForwardConfig", action.forward_config.is_some()),
        (
            "fixed-response",
            "FixedResponseConfig",
            action.fixed_response_config.is_some(),
        ),
        (
            "redirect",
            "RedirectConfig",
            action.redirect_config.is_some(),
        ),
        (
            "forward",
            "TargetGroupArn",
            action.target_group_arn.is_some(),
        ),
        (
            "authenticate",
            "AuthenticateOidcConfig",
            action.authenticate_config,
        ),
    ];
    match given
        .iter()
        .find(|(owner, _, present)| *present && *owner != action_type)
    {
        Some((owner, name, _)) => Err(invalid_action(format!(
            "{at}: '{name}' belongs to actions of type '{owner}', not '{action_type}'"
        ))),
        None => Ok(()),
    }
}

fn forward(
    state: &State,
    load_balancer: &LoadBalancerRecord,
    listener_protocol: Protocol,
    at: &str,
    action: &wire::Action,
) -> Result<ForwardAction, Elbv2Error> {
    let config = action.forward_config.clone().unwrap_or_default();
    let mut tuples = config.target_groups;
    match (&action.target_group_arn, tuples.as_slice()) {
        (None, []) => return Err(Elbv2Error::missing(&format!("{at}.targetGroupArn"))),
        (Some(arn), []) => tuples.push(wire::TargetGroupTuple {
            target_group_arn: Some(arn.clone()),
            weight: None,
        }),
        (Some(arn), [only]) if only.target_group_arn.as_ref() == Some(arn) => {}
        (Some(_), _) => {
            return Err(invalid_action(format!(
                "{at}: with both 'TargetGroupArn' and 'ForwardConfig', ForwardConfig must name that one target group only"
            )))
        }
        (None, _) => {}
    }
    if tuples.len() > MAX_FORWARD_TARGET_GROUPS {
        return Err(Elbv2Error::constraint(
            &format!("{at}.forwardConfig.targetGroups"),
            tuples.len(),
            &format!("Member must have length less than or equal to {MAX_FORWARD_TARGET_GROUPS}"),
        ));
    }
    if listener_protocol == Protocol::Tcp && tuples.len() > 1 {
        return Err(invalid_action(format!(
            "{at}.forwardConfig.targetGroups: a TCP listener forwards to one target group, {} given",
            tuples.len()
        )));
    }
    let mut target_groups: Vec<WeightedTargetGroup> = Vec::with_capacity(tuples.len());
    for (index, tuple) in tuples.iter().enumerate() {
        let member = format!("{at}.forwardConfig.targetGroups.member.{}", index + 1);
        let arn = tuple
            .target_group_arn
            .as_deref()
            .ok_or_else(|| Elbv2Error::missing(&format!("{member}.targetGroupArn")))?;
        let weight = match tuple.weight {
            None => 1,
            Some(weight) => u32::try_from(weight)
                .ok()
                .filter(|w| *w <= 999)
                .ok_or_else(|| {
                    Elbv2Error::constraint(
                        &format!("{member}.weight"),
                        weight,
                        "Member must have value greater than or equal to 0 and less than or equal to 999",
                    )
                })?,
        };
        let target_group = target_group_by_arn(state, arn)?;
        check_target_group(state, load_balancer, listener_protocol, target_group, arn)?;
        if target_groups
            .iter()
            .any(|g| g.target_group == target_group.id)
        {
            return Err(invalid_action(format!(
                "{member}.targetGroupArn: target group '{arn}' is named more than once"
            )));
        }
        target_groups.push(WeightedTargetGroup {
            target_group: target_group.id.clone(),
            weight,
        });
    }
    let mut stickiness_duration_seconds = None;
    if let Some(stickiness) = config.stickiness {
        if stickiness.enabled == Some(true) {
            return Err(invalid_action(format!(
                "{at}.forwardConfig.targetGroupStickinessConfig.enabled: berth does not keep a client on one target group of a forward; each request picks a group by weight (set it to false)"
            )));
        }
        if let Some(seconds) = stickiness.duration_seconds {
            stickiness_duration_seconds = Some(
                u32::try_from(seconds)
                    .ok()
                    .filter(|s| (1..=604_800).contains(s))
                    .ok_or_else(|| {
                        Elbv2Error::constraint(
                            &format!("{at}.forwardConfig.targetGroupStickinessConfig.durationSeconds"),
                            seconds,
                            "Member must have value greater than or equal to 1 and less than or equal to 604800",
                        )
                    })?,
            );
        }
    }
    Ok(ForwardAction {
        target_groups,
        stickiness_duration_seconds,
    })
}

/// A target group a listener of `load_balancer` may forward to: of the listener's
/// protocol, and used by no other load balancer (ELBv2's association rule).
pub(crate) fn check_target_group(
    state: &State,
    load_balancer: &LoadBalancerRecord,
    listener_protocol: Protocol,
    target_group: &TargetGroupRecord,
    target_group_arn: &str,
) -> Result<(), Elbv2Error> {
    if target_group.protocol != listener_protocol {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::IncompatibleProtocols,
            format!(
                "Listener protocol '{}' is not compatible with target group protocol '{}' of '{target_group_arn}'",
                listener_protocol.as_elbv2(),
                target_group.protocol.as_elbv2()
            ),
        ));
    }
    if state
        .listeners
        .values()
        .any(|l| l.load_balancer != load_balancer.id && l.forwards_to(&target_group.id))
    {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::TargetGroupAssociationLimit,
            format!("The following target groups cannot be associated with more than one load balancer: {target_group_arn}"),
        ));
    }
    Ok(())
}

fn fixed_response(at: &str, action: &wire::Action) -> Result<FixedResponseAction, Elbv2Error> {
    let at = format!("{at}.fixedResponseConfig");
    let config = action
        .fixed_response_config
        .clone()
        .ok_or_else(|| Elbv2Error::missing(&at))?;
    let code = config
        .status_code
        .ok_or_else(|| Elbv2Error::missing(&format!("{at}.statusCode")))?;
    let status_code = code
        .parse::<u16>()
        .ok()
        .filter(|c| code.len() == 3 && matches!(c / 100, 2 | 4 | 5))
        .ok_or_else(|| {
            Elbv2Error::constraint(
                &format!("{at}.statusCode"),
                &code,
                "Member must satisfy regular expression pattern: ^(2|4|5)\\d\\d$",
            )
        })?;
    if let Some(content_type) = &config.content_type {
        if !CONTENT_TYPES.contains(&content_type.as_str()) {
            return Err(Elbv2Error::constraint(
                &format!("{at}.contentType"),
                content_type,
                &format!("Member must be one of {}", CONTENT_TYPES.join(", ")),
            ));
        }
    }
    let message_body = config.message_body.filter(|body| !body.is_empty());
    if let Some(body) = &message_body {
        if body.chars().count() > 1024 {
            return Err(Elbv2Error::constraint(
                &format!("{at}.messageBody"),
                format!("({} characters)", body.chars().count()),
                "Member must have length less than or equal to 1024",
            ));
        }
    }
    Ok(FixedResponseAction {
        status_code,
        content_type: config.content_type,
        message_body,
    })
}

fn redirect(at: &str, action: &wire::Action) -> Result<RedirectAction, Elbv2Error> {
    let at = format!("{at}.redirectConfig");
    let config = action
        .redirect_config
        .clone()
        .ok_or_else(|| Elbv2Error::missing(&at))?;
    let code = config
        .status_code
        .ok_or_else(|| Elbv2Error::missing(&format!("{at}.statusCode")))?;
    let status = RedirectStatus::from_elbv2(&code).ok_or_else(|| {
        Elbv2Error::constraint(
            &format!("{at}.statusCode"),
            &code,
            "Member must satisfy enum value set: [HTTP_301, HTTP_302]",
        )
    })?;
    let protocol = config.protocol.unwrap_or_else(|| "#{protocol}".to_string());
    if !["HTTP", "HTTPS", "#{protocol}"].contains(&protocol.as_str()) {
        return Err(Elbv2Error::constraint(
            &format!("{at}.protocol"),
            &protocol,
            "Member must satisfy regular expression pattern: ^(HTTPS?|#\\{protocol\\})$",
        ));
    }
    let port = config.port.unwrap_or_else(|| "#{port}".to_string());
    if port != "#{port}" && !port.parse::<u16>().is_ok_and(|p| p >= 1) {
        return Err(Elbv2Error::constraint(
            &format!("{at}.port"),
            &port,
            "Member must be a port from 1 to 65535 or #{port}",
        ));
    }
    let host = config.host.unwrap_or_else(|| "#{host}".to_string());
    let path = config.path.unwrap_or_else(|| "/#{path}".to_string());
    let query = config.query.unwrap_or_else(|| "#{query}".to_string());
    for (name, value, min) in [("host", &host, 1), ("path", &path, 1), ("query", &query, 0)] {
        let length = value.chars().count();
        if length < min || length > 128 {
            return Err(Elbv2Error::constraint(
                &format!("{at}.{name}"),
                value,
                &format!("Member must have length between {min} and 128"),
            ));
        }
    }
    if !path.starts_with('/') {
        return Err(invalid_action(format!(
            "{at}.path: '{path}' must start with '/'"
        )));
    }
    if query.starts_with('?') {
        return Err(invalid_action(format!(
            "{at}.query: '{query}' must not start with '?'"
        )));
    }
    if protocol == "#{protocol}" && port == "#{port}" && host == "#{host}" && path == "/#{path}" {
        return Err(invalid_action(format!(
            "{at}: a redirect must change the protocol, port, host or path; with all of them left as they are it would redirect to itself"
        )));
    }
    Ok(RedirectAction {
        protocol,
        port,
        host,
        path,
        query,
        status,
    })
}

/// A rule's conditions, with ELBv2's limits: one of each of `host-header`,
/// `http-request-method`, `path-pattern` and `source-ip`, any number of `http-header`
/// and `query-string`; at most 3 values a condition, 5 a rule, 5 wildcards a rule.
pub(crate) fn rule_conditions(
    conditions: &[wire::RuleCondition],
) -> Result<Vec<RuleCondition>, Elbv2Error> {
    if conditions.is_empty() {
        return Err(Elbv2Error::validation(
            "conditions: a rule needs at least one condition",
        ));
    }
    let parsed: Vec<RuleCondition> = conditions
        .iter()
        .enumerate()
        .map(|(index, c)| rule_condition(&format!("conditions.member.{}", index + 1), c))
        .collect::<Result<_, _>>()?;
    for unique in [
        "host-header",
        "http-request-method",
        "path-pattern",
        "source-ip",
    ] {
        if parsed
            .iter()
            .filter(|c| c.matches.field() == unique)
            .count()
            > 1
        {
            return Err(Elbv2Error::validation(format!(
                "conditions: a rule can have only one '{unique}' condition"
            )));
        }
    }
    let values: Vec<&str> = parsed
        .iter()
        .flat_map(|c| match_values(&c.matches))
        .collect();
    if values.len() > MAX_VALUES_PER_RULE {
        return Err(Elbv2Error::validation(format!(
            "conditions: a rule can have at most {MAX_VALUES_PER_RULE} condition values in all, {} given",
            values.len()
        )));
    }
    let wildcards = parsed
        .iter()
        .filter(|c| {
            !matches!(
                c.matches,
                ConditionMatch::HttpRequestMethod(_) | ConditionMatch::SourceIp(_)
            )
        })
        .flat_map(|c| match_values(&c.matches))
        .flat_map(|value| value.chars())
        .filter(|ch| matches!(ch, '*' | '?'))
        .count();
    if wildcards > MAX_WILDCARDS_PER_RULE {
        return Err(Elbv2Error::validation(format!(
            "conditions: a rule can have at most {MAX_WILDCARDS_PER_RULE} wildcards ('*', '?') in all, {wildcards} given"
        )));
    }
    Ok(parsed)
}

/// The values a condition compares with (a query pair's key counts with its value).
fn match_values(matches: &ConditionMatch) -> Vec<&str> {
    match matches {
        ConditionMatch::PathPattern(values)
        | ConditionMatch::HostHeader(values)
        | ConditionMatch::HttpRequestMethod(values)
        | ConditionMatch::HttpHeader { values, .. } => values.iter().map(String::as_str).collect(),
        ConditionMatch::QueryString(pairs) => pairs
            .iter()
            .flat_map(|p| p.key.as_deref().into_iter().chain([p.value.as_str()]))
            .collect(),
        ConditionMatch::SourceIp(_) => Vec::new(),
    }
}

fn rule_condition(at: &str, c: &wire::RuleCondition) -> Result<RuleCondition, Elbv2Error> {
    let field = c
        .field
        .as_deref()
        .ok_or_else(|| Elbv2Error::missing(&format!("{at}.field")))?;
    let configs = [
        (
            "host-header",
            "HostHeaderConfig",
            c.host_header_config.is_some(),
        ),
        (
            "path-pattern",
            "PathPatternConfig",
            c.path_pattern_config.is_some(),
        ),
        (
            "http-header",
            "HttpHeaderConfig",
            c.http_header_config.is_some(),
        ),
        (
            "query-string",
            "QueryStringConfig",
            c.query_string_config.is_some(),
        ),
        (
            "http-request-method",
            "HttpRequestMethodConfig",
            c.http_request_method_config.is_some(),
        ),
        ("source-ip", "SourceIpConfig", c.source_ip_config.is_some()),
    ];
    let Some((_, config_name, _)) = configs.iter().find(|(name, _, _)| *name == field) else {
        return Err(Elbv2Error::constraint(
            &format!("{at}.field"),
            field,
            "Member must be one of host-header, path-pattern, http-header, query-string, http-request-method, source-ip",
        ));
    };
    if let Some((owner, name, _)) = configs
        .iter()
        .find(|(owner, _, present)| *present && *owner != field)
    {
        return Err(Elbv2Error::validation(format!(
            "{at}: '{name}' belongs to conditions of field '{owner}', not '{field}'"
        )));
    }
    let config_given = configs.iter().any(|(_, _, present)| *present);
    let given_as_values = !c.values.is_empty();
    if given_as_values && config_given {
        return Err(Elbv2Error::validation(format!(
            "{at}: give the values of a '{field}' condition either as 'Values' or in '{config_name}', not both"
        )));
    }
    if given_as_values && !matches!(field, "host-header" | "path-pattern") {
        return Err(Elbv2Error::validation(format!(
            "{at}.values: 'Values' can only be used with 'host-header' and 'path-pattern' conditions; give a '{field}' condition's values in '{config_name}'"
        )));
    }
    let strings = |config: &Option<Vec<String>>| -> Vec<String> {
        if given_as_values {
            c.values.clone()
        } else {
            config.clone().unwrap_or_default()
        }
    };
    let matches = match field {
        "path-pattern" => {
            let values = strings(&c.path_pattern_config);
            check_texts(
                at,
                &values,
                |v| v.chars().all(|ch| ch.is_ascii_graphic()),
                "visible ASCII characters",
            )?;
            ConditionMatch::PathPattern(values)
        }
        "host-header" => {
            let values = strings(&c.host_header_config);
            check_texts(
                at,
                &values,
                |v| {
                    v.contains('.')
                        && v.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "-_.*?".contains(ch))
                },
                "letters, digits, '-', '_', '.', '*' and '?', with at least one '.'",
            )?;
            ConditionMatch::HostHeader(values)
        }
        "http-header" => {
            let config = c.http_header_config.clone().unwrap_or_default();
            let name = config.http_header_name.ok_or_else(|| {
                Elbv2Error::missing(&format!("{at}.httpHeaderConfig.httpHeaderName"))
            })?;
            if name.is_empty()
                || name.len() > 40
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch))
            {
                return Err(Elbv2Error::constraint(
                    &format!("{at}.httpHeaderConfig.httpHeaderName"),
                    &name,
                    "Member must be a header name of 1 to 40 token characters",
                ));
            }
            check_texts(
                at,
                &config.values,
                |v| v.chars().all(|ch| ch == ' ' || ch.is_ascii_graphic()),
                "visible ASCII characters and spaces",
            )?;
            ConditionMatch::HttpHeader {
                name,
                values: config.values,
            }
        }
        "query-string" => {
            let given = c.query_string_config.clone().unwrap_or_default();
            let mut pairs = Vec::with_capacity(given.len());
            for pair in given {
                let value = pair.value.filter(|v| !v.is_empty()).ok_or_else(|| {
                    Elbv2Error::missing(&format!("{at}.queryStringConfig.values.member.value"))
                })?;
                let texts: Vec<String> = pair.key.iter().cloned().chain([value.clone()]).collect();
                check_texts(
                    at,
                    &texts,
                    |v| v.chars().all(|ch| ch.is_ascii_graphic()),
                    "visible ASCII characters",
                )?;
                pairs.push(QueryStringPair {
                    key: pair.key,
                    value,
                });
            }
            check_count(at, pairs.len())?;
            ConditionMatch::QueryString(pairs)
        }
        "http-request-method" => {
            let values = strings(&c.http_request_method_config);
            check_texts(
                at,
                &values,
                |v| {
                    v.len() <= 40
                        && v.chars()
                            .all(|ch| ch.is_ascii_uppercase() || ch == '-' || ch == '_')
                },
                "upper-case letters, '-' and '_' (at most 40)",
            )?;
            ConditionMatch::HttpRequestMethod(values)
        }
        _ => {
            let values = strings(&c.source_ip_config);
            check_count(at, values.len())?;
            let blocks = values
                .iter()
                .map(|v| {
                    cidr_block(v).ok_or_else(|| {
                        Elbv2Error::validation(format!(
                            "{at}.sourceIpConfig.values: '{v}' is not an IP address range in CIDR notation (10.0.0.0/8, 2001:db8::/32)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            ConditionMatch::SourceIp(blocks)
        }
    };
    Ok(RuleCondition {
        matches,
        given_as_values,
    })
}

fn check_count(at: &str, count: usize) -> Result<(), Elbv2Error> {
    if count == 0 {
        return Err(Elbv2Error::validation(format!(
            "{at}: a condition needs at least one value"
        )));
    }
    if count > MAX_VALUES_PER_CONDITION {
        return Err(Elbv2Error::validation(format!(
            "{at}: a condition can have at most {MAX_VALUES_PER_CONDITION} values, {count} given"
        )));
    }
    Ok(())
}

/// Values of 1-128 characters that `allowed` accepts.
fn check_texts(
    at: &str,
    values: &[String],
    allowed: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), Elbv2Error> {
    check_count(at, values.len())?;
    for value in values {
        if value.is_empty() || value.chars().count() > 128 {
            return Err(Elbv2Error::constraint(
                &format!("{at}.values"),
                value,
                "Member must have length between 1 and 128",
            ));
        }
        if !allowed(value) {
            return Err(Elbv2Error::validation(format!(
                "{at}.values: '{value}' may hold only {what}"
            )));
        }
    }
    Ok(())
}

fn cidr_block(text: &str) -> Option<CidrBlock> {
    let (address, prefix) = text.split_once('/')?;
    let network: IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(CidrBlock { network, prefix })
}
