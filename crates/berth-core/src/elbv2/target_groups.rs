use berth_api::elbv2 as wire;

use super::model::{
    HealthCheck, IpAddressType, LoadBalancingAlgorithm, Protocol, TargetGroupAttributes,
    TargetGroupRecord, TargetType,
};
use super::{
    arns, check_name, check_port, load_balancer_by_arn, page, present, resource_tags, stickiness,
    target_group_by_arn, target_group_in_use, Elbv2Error, Elbv2ErrorCode, Elbv2Result,
};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

/// Reads a protocol berth's data plane speaks; names the field otherwise.
pub(crate) fn protocol(field: &str, given: &str) -> Result<Protocol, Elbv2Error> {
    match given {
        "HTTP" => Ok(Protocol::Http),
        "TCP" => Ok(Protocol::Tcp),
        "HTTPS" | "TLS" => Err(Elbv2Error::invalid_configuration(format!(
            "{field} '{given}' is not supported: berth keeps no certificates yet; use HTTP or TCP"
        ))),
        "UDP" | "TCP_UDP" | "GENEVE" | "QUIC" | "TCP_QUIC" => Err(Elbv2Error::invalid_configuration(format!(
            "{field} '{given}' is not supported: berth's load balancer forwards HTTP and TCP"
        ))),
        other => Err(Elbv2Error::constraint(
            field,
            other,
            "Member must satisfy enum value set: [HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP, GENEVE, QUIC, TCP_QUIC]",
        )),
    }
}

/// ELBv2's defaults for a new target group of `protocol`.
pub fn default_health_check(protocol: Protocol) -> HealthCheck {
    match protocol {
        Protocol::Http => HealthCheck {
            enabled: true,
            protocol: Protocol::Http,
            port: "traffic-port".to_string(),
            path: Some("/".to_string()),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: Some("200".to_string()),
        },
        Protocol::Tcp => HealthCheck {
            enabled: true,
            protocol: Protocol::Tcp,
            port: "traffic-port".to_string(),
            path: None,
            interval_seconds: 30,
            timeout_seconds: 10,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: None,
        },
    }
}

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<u32, Elbv2Error> {
    if value < min {
        return Err(Elbv2Error::constraint(
            field,
            value,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(Elbv2Error::constraint(
            field,
            value,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(value as u32)
}

/// `200`, `200,204`, `200-299`: codes from 200 to 499, as an ALB accepts.
fn check_matcher(code: &str) -> Result<(), Elbv2Error> {
    let valid_code = |text: &str| {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (200..=499).contains(c))
    };
    let ok = !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((low, high)) => match (valid_code(low), valid_code(high)) {
                (Some(low), Some(high)) => low <= high,
                _ => false,
            },
            None => valid_code(part).is_some(),
        });
    if ok {
        Ok(())
    } else {
        Err(Elbv2Error::constraint(
            "matcher.httpCode",
            code,
            "Member must be HTTP codes from 200 to 499 as '200', '200,202' or '200-299'",
        ))
    }
}

/// Applies the given health-check parameters over `base` and checks the result.
pub(crate) fn apply_health_check(
    base: HealthCheck,
    given: wire::HealthCheckParameters,
    target_group_protocol: Protocol,
) -> Result<HealthCheck, Elbv2Error> {
    let mut health = base;
    if let Some(text) = given.protocol.as_deref() {
        let chosen = protocol("healthCheckProtocol", text)?;
        if target_group_protocol == Protocol::Http && chosen == Protocol::Tcp {
            return Err(Elbv2Error::invalid_configuration(
                "Health check protocol 'TCP' is not supported for target groups with protocol 'HTTP'",
            ));
        }
        if chosen != health.protocol {
            health.protocol = chosen;
            match chosen {
                Protocol::Http => {
                    health.path = health.path.or_else(|| Some("/".to_string()));
                    health.matcher = health.matcher.or_else(|| Some("200".to_string()));
                }
                Protocol::Tcp => {
                    health.path = None;
                    health.matcher = None;
                }
            }
        }
    }
    if let Some(port) = given.port {
        if port != "traffic-port" {
            let number = port.parse::<i64>().map_err(|_| {
                Elbv2Error::constraint(
                    "healthCheckPort",
                    &port,
                    "Member must be 'traffic-port' or a port from 1 to 65535",
                )
            })?;
            check_port("healthCheckPort", number)?;
        }
        health.port = port;
    }
    if let Some(enabled) = given.enabled {
        if !enabled {
            return Err(Elbv2Error::invalid_configuration(
                "Health checks cannot be disabled for target groups with target type 'instance' or 'ip'",
            ));
        }
    }
    if let Some(path) = given.path {
        if health.protocol != Protocol::Http {
            return Err(Elbv2Error::invalid_configuration(
                "A health check path can only be given for HTTP health checks",
            ));
        }
        if path.is_empty() || path.len() > 1024 || !path.starts_with('/') {
            return Err(Elbv2Error::constraint(
                "healthCheckPath",
                &path,
                "Member must start with '/' and have length between 1 and 1024",
            ));
        }
        health.path = Some(path);
    }
    if let Some(value) = given.interval_seconds {
        health.interval_seconds = in_range("healthCheckIntervalSeconds", value, 5, 300)?;
    }
    if let Some(value) = given.timeout_seconds {
        health.timeout_seconds = in_range("healthCheckTimeoutSeconds", value, 2, 120)?;
    }
    if let Some(value) = given.healthy_threshold_count {
        health.healthy_threshold_count = in_range("healthyThresholdCount", value, 2, 10)?;
    }
    if let Some(value) = given.unhealthy_threshold_count {
        health.unhealthy_threshold_count = in_range("unhealthyThresholdCount", value, 2, 10)?;
    }
    if let Some(matcher) = given.matcher {
        if matcher.grpc_code.is_some() {
            return Err(Elbv2Error::invalid_configuration(
                "gRPC health checks are not supported: berth's target groups speak HTTP/1.1",
            ));
        }
        if let Some(code) = matcher.http_code {
            if health.protocol != Protocol::Http {
                return Err(Elbv2Error::invalid_configuration(
                    "A health check matcher can only be given for HTTP health checks",
                ));
            }
            check_matcher(&code)?;
            health.matcher = Some(code);
        }
    }
    if health.timeout_seconds >= health.interval_seconds {
        return Err(Elbv2Error::validation(format!(
            "Health check timeout '{}' must be smaller than the interval '{}'",
            health.timeout_seconds, health.interval_seconds
        )));
    }
    Ok(health)
}

pub fn create_target_group(
    state: &State,
    request: wire::CreateTargetGroupRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::TargetGroupsResult> {
    check_name("name", &request.name)?;
    let target_type = match request.target_type.as_deref() {
        None | Some("instance") => TargetType::Instance,
        Some("ip") => TargetType::Ip,
        Some(other @ ("lambda" | "alb")) => {
            return Err(Elbv2Error::invalid_configuration(format!(
                "Target type '{other}' is not supported: berth's targets are container instances ('instance') or addresses ('ip')"
            )))
        }
        Some(other) => {
            return Err(Elbv2Error::constraint(
                "targetType",
                other,
                "Member must satisfy enum value set: [instance, ip, lambda, alb]",
            ))
        }
    };
    let protocol = protocol(
        "protocol",
        request
            .protocol
            .as_deref()
            .ok_or_else(|| Elbv2Error::missing("protocol"))?,
    )?;
    let port = check_port(
        "port",
        request.port.ok_or_else(|| Elbv2Error::missing("port"))?,
    )?;
    match (protocol, request.protocol_version.as_deref()) {
        (_, None) | (Protocol::Http, Some("HTTP1")) => {}
        (_, Some(other)) => {
            return Err(Elbv2Error::invalid_configuration(format!(
            "Protocol version '{other}' is not supported: berth's HTTP target groups speak HTTP1"
        )))
        }
    }
    let ip_address_type = match request.ip_address_type.as_deref() {
        None | Some("ipv4") => IpAddressType::Ipv4,
        Some(other) => {
            return Err(Elbv2Error::invalid_configuration(format!(
                "IP address type '{other}' is not supported: berth's target groups are IPv4 only"
            )))
        }
    };
    let health_check = apply_health_check(
        default_health_check(protocol),
        request.health_check,
        protocol,
    )?;
    let tags = resource_tags(request.tags)?;
    let mut record = TargetGroupRecord {
        id: String::new(),
        name: request.name,
        protocol,
        protocol_version: request.protocol_version,
        port,
        vpc_id: request.vpc_id,
        target_type,
        ip_address_type,
        health_check,
        attributes: TargetGroupAttributes::default(),
        tags,
        created_at: ctx.now,
    };
    if let Some(existing) = state
        .target_groups
        .values()
        .find(|tg| tg.name == record.name)
    {
        // An identical create answers with the existing group, as in ELBv2.
        let same = TargetGroupRecord {
            id: existing.id.clone(),
            created_at: existing.created_at,
            tags: existing.tags.clone(),
            attributes: existing.attributes.clone(),
            ..record.clone()
        };
        if &same == existing {
            return Ok(Outcome::read_only(wire::TargetGroupsResult {
                target_groups: vec![present::target_group(state, ctx.scope, existing)],
                next_marker: None,
            }));
        }
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::DuplicateTargetGroupName,
            format!(
                "A target group with the same name '{}' exists, but with different settings",
                record.name
            ),
        ));
    }
    record.id = arns::new_resource_id(ctx.ids);
    Ok(Outcome {
        response: wire::TargetGroupsResult {
            target_groups: vec![present::target_group(state, ctx.scope, &record)],
            next_marker: None,
        },
        commands: vec![Command::PutTargetGroup(Box::new(record))],
    })
}

pub fn describe_target_groups(
    state: &State,
    request: wire::DescribeTargetGroupsRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::TargetGroupsResult> {
    let filters = [
        request.load_balancer_arn.is_some(),
        !request.target_group_arns.is_empty(),
        !request.names.is_empty(),
    ];
    if filters.iter().filter(|f| **f).count() > 1 {
        return Err(Elbv2Error::validation(
            "Only one of load balancer ARN, target group ARNs or names can be specified",
        ));
    }
    let chosen: Vec<&TargetGroupRecord> = if let Some(arn) = &request.load_balancer_arn {
        let load_balancer = load_balancer_by_arn(state, arn)?;
        let mut used: Vec<&TargetGroupRecord> = state
            .listeners
            .values()
            .filter(|l| l.load_balancer == load_balancer.id)
            .flat_map(|l| l.target_groups())
            .filter_map(|id| state.target_groups.get(id))
            .collect();
        used.sort_by(|a, b| a.name.cmp(&b.name));
        used.dedup_by(|a, b| a.id == b.id);
        used
    } else if !request.target_group_arns.is_empty() {
        request
            .target_group_arns
            .iter()
            .map(|arn| target_group_by_arn(state, arn))
            .collect::<Result<_, _>>()?
    } else if !request.names.is_empty() {
        let missing: Vec<&str> = request
            .names
            .iter()
            .filter(|name| !state.target_groups.values().any(|tg| &tg.name == *name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::TargetGroupNotFound,
                format!("Target groups '[{}]' not found", missing.join(", ")),
            ));
        }
        request
            .names
            .iter()
            .filter_map(|name| state.target_groups.values().find(|tg| &tg.name == name))
            .collect()
    } else {
        let mut all: Vec<&TargetGroupRecord> = state.target_groups.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    };
    let (chosen, next_marker) = page(chosen, request.marker.as_deref(), request.page_size)?;
    Ok(Outcome::read_only(wire::TargetGroupsResult {
        target_groups: chosen
            .into_iter()
            .map(|tg| present::target_group(state, ctx.scope, tg))
            .collect(),
        next_marker,
    }))
}

pub fn modify_target_group(
    state: &State,
    request: wire::ModifyTargetGroupRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::TargetGroupsResult> {
    let existing = target_group_by_arn(state, &request.target_group_arn)?;
    let mut record = existing.clone();
    record.health_check = apply_health_check(
        existing.health_check.clone(),
        request.health_check,
        existing.protocol,
    )?;
    Ok(Outcome {
        response: wire::TargetGroupsResult {
            target_groups: vec![present::target_group(state, ctx.scope, &record)],
            next_marker: None,
        },
        commands: vec![Command::PutTargetGroup(Box::new(record))],
    })
}

/// Deletes a target group and its registrations; ResourceInUse while a listener
/// forwards to it. Deleting one that does not exist succeeds, as in ELBv2.
pub fn delete_target_group(
    state: &State,
    request: wire::TargetGroupArnRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let target_group = match target_group_by_arn(state, &request.target_group_arn) {
        Ok(target_group) => target_group,
        Err(error) if error.code == Elbv2ErrorCode::TargetGroupNotFound => {
            return Ok(Outcome::read_only(wire::EmptyResult))
        }
        Err(error) => return Err(error),
    };
    if target_group_in_use(state, &target_group.id) {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::ResourceInUse,
            format!(
                "Target group '{}' is currently in use by a listener or a rule",
                arns::target_group_arn(ctx.scope, target_group)
            ),
        ));
    }
    let mut commands: Vec<Command> = targets_of(state, &target_group.id)
        .map(|t| Command::RemoveTarget(t.key()))
        .collect();
    commands.push(Command::RemoveTargetGroup(target_group.id.clone()));
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}

/// Every registration of a target group, draining ones included.
pub fn targets_of<'s>(
    state: &'s State,
    target_group: &str,
) -> impl Iterator<Item = &'s super::model::TargetRecord> + 's {
    let prefix = format!("{target_group}/");
    state
        .targets
        .range(prefix.clone()..)
        .take_while(move |(key, _)| key.starts_with(&prefix))
        .map(|(_, t)| &**t)
}

/// Every attribute of the group as ELBv2 lists them, set or default, sorted by key.
fn attributes_result(target_group: &TargetGroupRecord) -> wire::AttributesResult {
    let attributes = &target_group.attributes;
    let mut pairs = vec![
        (
            "deregistration_delay.timeout_seconds",
            attributes.deregistration_delay_seconds.to_string(),
        ),
        (
            "load_balancing.algorithm.type",
            attributes.load_balancing_algorithm.as_elbv2().to_string(),
        ),
    ];
    pairs.extend(stickiness::pairs(
        &attributes.stickiness,
        target_group.protocol,
    ));
    pairs.sort_by_key(|(key, _)| *key);
    wire::AttributesResult {
        attributes: pairs
            .into_iter()
            .map(|(key, value)| wire::Attribute {
                key: key.to_string(),
                value,
            })
            .collect(),
    }
}

pub fn describe_target_group_attributes(
    state: &State,
    request: wire::TargetGroupArnRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let target_group = target_group_by_arn(state, &request.target_group_arn)?;
    Ok(Outcome::read_only(attributes_result(target_group)))
}

pub fn modify_target_group_attributes(
    state: &State,
    request: wire::ModifyTargetGroupAttributesRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let existing = target_group_by_arn(state, &request.target_group_arn)?;
    let mut record = existing.clone();
    for attribute in request.attributes {
        let value = attribute.value.trim();
        match attribute.key.as_str() {
            "deregistration_delay.timeout_seconds" => {
                let seconds = value.parse::<i64>().map_err(|_| {
                    Elbv2Error::constraint(
                        "deregistration_delay.timeout_seconds",
                        value,
                        "Member must be an integer from 0 to 3600",
                    )
                })?;
                record.attributes.deregistration_delay_seconds =
                    in_range("deregistration_delay.timeout_seconds", seconds, 0, 3600)?;
            }
            "load_balancing.algorithm.type" => {
                record.attributes.load_balancing_algorithm = match value {
                    "round_robin" => LoadBalancingAlgorithm::RoundRobin,
                    "least_outstanding_requests" => {
                        LoadBalancingAlgorithm::LeastOutstandingRequests
                    }
                    other => {
                        return Err(Elbv2Error::constraint(
                            "load_balancing.algorithm.type",
                            other,
                            "Member must be 'round_robin' or 'least_outstanding_requests'",
                        ))
                    }
                };
            }
            key if stickiness::is_stickiness_key(key) => stickiness::apply(
                &mut record.attributes.stickiness,
                record.protocol,
                key,
                value,
            )?,
            other => {
                return Err(Elbv2Error::validation(format!(
                    "Target group attribute key '{other}' is not recognized"
                )))
            }
        }
    }
    stickiness::check(&record.attributes.stickiness, record.protocol)?;
    let response = attributes_result(&record);
    let commands = if &record == existing {
        vec![]
    } else {
        vec![Command::PutTargetGroup(Box::new(record))]
    };
    Ok(Outcome { commands, response })
}
