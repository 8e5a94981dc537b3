use berth_api::elbv2 as wire;

use super::actions::{check_target_group, rule_action};
use super::model::{ListenerRecord, LoadBalancerRecord, LoadBalancerType, Protocol};
use super::target_groups::protocol;
use super::{
    arns, check_port, listener_by_arn, load_balancer_by_arn, page, present, resource_tags,
    Elbv2Error, Elbv2ErrorCode, Elbv2Result,
};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

/// The protocol a listener of `load_balancer` speaks: the one given, or the load
/// balancer's own (HTTP for application, TCP for network), which is the only one
/// berth's data plane serves for it.
fn listener_protocol(
    load_balancer: &LoadBalancerRecord,
    given: Option<&str>,
) -> Result<Protocol, Elbv2Error> {
    let allowed = match load_balancer.load_balancer_type {
        LoadBalancerType::Application => Protocol::Http,
        LoadBalancerType::Network => Protocol::Tcp,
    };
    let listener_protocol = match given {
        None => allowed,
        Some(text) => protocol("protocol", text)?,
    };
    if listener_protocol != allowed {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::UnsupportedProtocol,
            format!(
                "Protocol '{}' is not supported for load balancers of type '{}': use '{}'",
                listener_protocol.as_elbv2(),
                load_balancer.load_balancer_type.as_elbv2(),
                allowed.as_elbv2()
            ),
        ));
    }
    Ok(listener_protocol)
}

/// Refuses a port another listener holds (other than `except`): on the same load
/// balancer as ELBv2 does, and on any other too, since berth's load balancers share the
/// machine's addresses.
fn check_port_free(
    state: &State,
    load_balancer: &LoadBalancerRecord,
    load_balancer_arn: &str,
    port: u16,
    except: Option<&str>,
) -> Result<(), Elbv2Error> {
    let Some(other) = state
        .listeners
        .values()
        .find(|l| l.port == port && Some(l.id.as_str()) != except)
    else {
        return Ok(());
    };
    if other.load_balancer == load_balancer.id {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::DuplicateListener,
            format!(
                "A listener already exists on port {port} of load balancer '{load_balancer_arn}'"
            ),
        ));
    }
    let owner = state
        .load_balancers
        .get(&other.load_balancer)
        .map(|lb| lb.name.clone())
        .unwrap_or_default();
    Err(Elbv2Error::new(
        Elbv2ErrorCode::DuplicateListener,
        format!(
            "Port {port} is already used by a listener of load balancer '{owner}': berth's load balancers share this machine's addresses, so each listener needs its own port"
        ),
    ))
}

fn listeners_result(
    state: &State,
    ctx: &Context,
    record: ListenerRecord,
) -> Outcome<wire::ListenersResult> {
    let mut preview = state.clone();
    preview.apply(Command::PutListener(Box::new(record.clone())));
    Outcome {
        response: wire::ListenersResult {
            listeners: present::listener(&preview, ctx.scope, &record)
                .into_iter()
                .collect(),
            next_marker: None,
        },
        commands: vec![Command::PutListener(Box::new(record))],
    }
}

pub fn create_listener(
    state: &State,
    request: wire::CreateListenerRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::ListenersResult> {
    let load_balancer = load_balancer_by_arn(state, &request.load_balancer_arn)?;
    let listener_protocol = listener_protocol(load_balancer, request.protocol.as_deref())?;
    let port = check_port(
        "port",
        request.port.ok_or_else(|| Elbv2Error::missing("port"))?,
    )?;
    let default_action = rule_action(
        state,
        load_balancer,
        listener_protocol,
        "defaultActions",
        &request.default_actions,
    )?;
    let tags = resource_tags(request.tags)?;
    if let Some(existing) = state
        .listeners
        .values()
        .find(|l| l.load_balancer == load_balancer.id && l.port == port)
    {
        if existing.protocol == listener_protocol && existing.default_action == default_action {
            // An identical create answers with the existing listener, as in ELBv2.
            return Ok(Outcome::read_only(wire::ListenersResult {
                listeners: present::listener(state, ctx.scope, existing)
                    .into_iter()
                    .collect(),
                next_marker: None,
            }));
        }
    }
    check_port_free(state, load_balancer, &request.load_balancer_arn, port, None)?;
    let record = ListenerRecord {
        id: arns::new_resource_id(ctx.ids),
        load_balancer: load_balancer.id.clone(),
        port,
        protocol: listener_protocol,
        default_action,
        rules: Vec::new(),
        default_rule_tags: Vec::new(),
        attributes: Default::default(),
        tags,
        created_at: ctx.now,
    };
    Ok(listeners_result(state, ctx, record))
}

/// Changes a listener's port, protocol or default actions; what is not given stays.
/// A new port moves the data plane's socket: the old port stops serving.
pub fn modify_listener(
    state: &State,
    request: wire::ModifyListenerRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::ListenersResult> {
    let existing = listener_by_arn(state, &request.listener_arn)?;
    let load_balancer = state
        .load_balancers
        .get(&existing.load_balancer)
        .ok_or_else(|| {
            Elbv2Error::new(
                Elbv2ErrorCode::ListenerNotFound,
                format!("Listener '{}' not found", request.listener_arn),
            )
        })?;
    let load_balancer_arn = arns::load_balancer_arn(ctx.scope, load_balancer);
    let listener_protocol = match request.protocol.as_deref() {
        None => existing.protocol,
        given => listener_protocol(load_balancer, given)?,
    };
    let port = match request.port {
        None => existing.port,
        Some(port) => check_port("port", port)?,
    };
    let mut record = existing.clone();
    if request.default_actions.is_empty() {
        for id in existing.target_groups() {
            if let Some(target_group) = state.target_groups.get(id) {
                let arn = arns::target_group_arn(ctx.scope, target_group);
                check_target_group(state, load_balancer, listener_protocol, target_group, &arn)?;
            }
        }
    } else {
        record.default_action = rule_action(
            state,
            load_balancer,
            listener_protocol,
            "defaultActions",
            &request.default_actions,
        )?;
    }
    check_port_free(
        state,
        load_balancer,
        &load_balancer_arn,
        port,
        Some(&existing.id),
    )?;
    record.port = port;
    record.protocol = listener_protocol;
    let mut outcome = listeners_result(state, ctx, record.clone());
    if &record == existing {
        outcome.commands.clear();
    }
    Ok(outcome)
}

pub fn describe_listeners(
    state: &State,
    request: wire::DescribeListenersRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::ListenersResult> {
    let chosen: Vec<&ListenerRecord> =
        match (&request.load_balancer_arn, request.listener_arns.is_empty()) {
            (Some(_), false) => {
                return Err(Elbv2Error::validation(
                    "Listener ARNs and a load balancer ARN cannot be specified at the same time",
                ))
            }
            (None, true) => {
                return Err(Elbv2Error::validation(
                    "You must specify either listener ARNs or a load balancer ARN",
                ))
            }
            (Some(arn), true) => {
                let load_balancer = load_balancer_by_arn(state, arn)?;
                let mut listeners: Vec<&ListenerRecord> = state
                    .listeners
                    .values()
                    .filter(|l| l.load_balancer == load_balancer.id)
                    .collect();
                listeners.sort_by_key(|l| l.port);
                listeners
            }
            (None, false) => request
                .listener_arns
                .iter()
                .map(|arn| listener_by_arn(state, arn))
                .collect::<Result<_, _>>()?,
        };
    let (chosen, next_marker) = page(chosen, request.marker.as_deref(), request.page_size)?;
    Ok(Outcome::read_only(wire::ListenersResult {
        listeners: chosen
            .into_iter()
            .filter_map(|l| present::listener(state, ctx.scope, l))
            .collect(),
        next_marker,
    }))
}

/// Deletes a listener with its rules.
pub fn delete_listener(
    state: &State,
    request: wire::DeleteListenerRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let listener = listener_by_arn(state, &request.listener_arn)?;
    Ok(Outcome {
        commands: vec![Command::RemoveListener(listener.id.clone())],
        response: wire::EmptyResult,
    })
}
