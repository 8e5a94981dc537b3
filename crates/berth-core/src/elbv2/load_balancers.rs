use berth_api::elbv2 as wire;

use super::model::{IpAddressType, LoadBalancerRecord, LoadBalancerType, Scheme};
use super::{
    arns, check_name, load_balancer_by_arn, page, present, resource_tags, Elbv2Error,
    Elbv2ErrorCode, Elbv2Result,
};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

pub fn create_load_balancer(
    state: &State,
    request: wire::CreateLoadBalancerRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::LoadBalancersResult> {
    check_name("name", &request.name)?;
    if request.name.starts_with("internal-") {
        return Err(Elbv2Error::constraint(
            "name",
            &request.name,
            "Member must not begin with 'internal-'",
        ));
    }
    let load_balancer_type = match request.load_balancer_type.as_deref() {
        None | Some("application") => LoadBalancerType::Application,
        Some("network") => LoadBalancerType::Network,
        Some("gateway") => {
            return Err(Elbv2Error::invalid_configuration(
                "berth has no gateway load balancers: use type 'application' or 'network'",
            ))
        }
        Some(other) => {
            return Err(Elbv2Error::constraint(
                "type",
                other,
                "Member must satisfy enum value set: [application, network, gateway]",
            ))
        }
    };
    let scheme = match request.scheme.as_deref() {
        None => Scheme::default(),
        Some(given) => Scheme::from_elbv2(given).ok_or_else(|| {
            Elbv2Error::constraint(
                "scheme",
                given,
                "Member must satisfy enum value set: [internet-facing, internal]",
            )
        })?,
    };
    let ip_address_type = match request.ip_address_type.as_deref() {
        None | Some("ipv4") => IpAddressType::Ipv4,
        Some("dualstack" | "dualstack-without-public-ipv4") => {
            return Err(Elbv2Error::invalid_configuration(
                "berth's load balancers are IPv4 only: use IpAddressType 'ipv4'",
            ))
        }
        Some(other) => return Err(Elbv2Error::constraint(
            "ipAddressType",
            other,
            "Member must satisfy enum value set: [ipv4, dualstack, dualstack-without-public-ipv4]",
        )),
    };
    let tags = resource_tags(request.tags)?;
    if let Some(existing) = state
        .load_balancers
        .values()
        .find(|lb| lb.name == request.name)
    {
        // ELBv2 answers a repeated identical create with the existing load balancer.
        if existing.load_balancer_type == load_balancer_type && existing.scheme == scheme {
            return Ok(Outcome::read_only(wire::LoadBalancersResult {
                load_balancers: vec![present::load_balancer(ctx.scope, existing)],
                next_marker: None,
            }));
        }
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::DuplicateLoadBalancerName,
            format!(
                "A load balancer with the name '{}' already exists",
                request.name
            ),
        ));
    }
    let record = LoadBalancerRecord {
        id: arns::new_resource_id(ctx.ids),
        name: request.name,
        load_balancer_type,
        scheme,
        ip_address_type,
        subnets: request.subnets,
        security_groups: request.security_groups,
        attributes: Default::default(),
        tags,
        created_at: ctx.now,
    };
    Ok(Outcome {
        response: wire::LoadBalancersResult {
            load_balancers: vec![present::load_balancer(ctx.scope, &record)],
            next_marker: None,
        },
        commands: vec![Command::PutLoadBalancer(Box::new(record))],
    })
}

pub fn describe_load_balancers(
    state: &State,
    request: wire::DescribeLoadBalancersRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::LoadBalancersResult> {
    if !request.load_balancer_arns.is_empty() && !request.names.is_empty() {
        return Err(Elbv2Error::validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    let chosen: Vec<&LoadBalancerRecord> = if !request.load_balancer_arns.is_empty() {
        request
            .load_balancer_arns
            .iter()
            .map(|arn| load_balancer_by_arn(state, arn))
            .collect::<Result<_, _>>()?
    } else if !request.names.is_empty() {
        let missing: Vec<&str> = request
            .names
            .iter()
            .filter(|name| !state.load_balancers.values().any(|lb| &lb.name == *name))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::LoadBalancerNotFound,
                format!("Load balancers '[{}]' not found", missing.join(", ")),
            ));
        }
        request
            .names
            .iter()
            .filter_map(|name| state.load_balancers.values().find(|lb| &lb.name == name))
            .collect()
    } else {
        let mut all: Vec<&LoadBalancerRecord> = state.load_balancers.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    };
    let (chosen, next_marker) = page(chosen, request.marker.as_deref(), request.page_size)?;
    Ok(Outcome::read_only(wire::LoadBalancersResult {
        load_balancers: chosen
            .into_iter()
            .map(|lb| present::load_balancer(ctx.scope, lb))
            .collect(),
        next_marker,
    }))
}

/// Deletes a load balancer and its listeners. Its target groups stay, as in ELBv2.
/// Deleting one that does not exist succeeds, as in ELBv2; one with deletion protection
/// on is refused (OperationNotPermitted).
pub fn delete_load_balancer(
    state: &State,
    request: wire::DeleteLoadBalancerRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let load_balancer = match load_balancer_by_arn(state, &request.load_balancer_arn) {
        Ok(load_balancer) => load_balancer,
        Err(error) if error.code == Elbv2ErrorCode::LoadBalancerNotFound => {
            return Ok(Outcome::read_only(wire::EmptyResult))
        }
        Err(error) => return Err(error),
    };
    super::attributes::check_deletable(ctx.scope, load_balancer)?;
    let mut commands: Vec<Command> = state
        .listeners
        .values()
        .filter(|l| l.load_balancer == load_balancer.id)
        .map(|l| Command::RemoveListener(l.id.clone()))
        .collect();
    commands.push(Command::RemoveLoadBalancer(load_balancer.id.clone()));
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}
