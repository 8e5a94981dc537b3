//! The ELBv2 actions (load balancers, target groups, listeners, targets, tags) as pure
//! functions: (state, request, context) -> commands + result, like `ecs::*`.
//!
//! What berth decides where ELBv2 leaves room:
//! - DNSName is `NAME.berth.internal`: a stable name, not something a resolver answers
//!   for; listeners are reached at the address the data plane binds.
//! - Target type `instance`: the target id is an ECS container instance id berth knows
//!   (or its ARN, kept as the id); the data plane reaches it at its node's address.
//!   Target type `ip`: any IPv4 address.
//! - Protocols: HTTP and TCP. HTTPS/TLS need certificates berth does not keep yet.
//! - A deregistered target drains for `deregistration_delay.timeout_seconds`, then
//!   `reconcile` removes it. Health comes from the data plane through
//!   `Command::PutTargetHealth`.

mod actions;
pub mod arns;
mod attributes;
mod error;
mod listeners;
mod load_balancers;
pub mod model;
mod present;
mod rules;
mod stickiness;
mod tags;
mod target_groups;
mod targets;

pub use actions::{
    MAX_FORWARD_TARGET_GROUPS, MAX_VALUES_PER_CONDITION, MAX_VALUES_PER_RULE,
    MAX_WILDCARDS_PER_RULE,
};
pub use arns::{parse_elbv2_arn, Elbv2Ref};
pub use attributes::{
    client_idle_timeout_seconds, describe_listener_attributes, describe_load_balancer_attributes,
    modify_listener_attributes, modify_load_balancer_attributes,
};
pub use error::{Elbv2Error, Elbv2ErrorCode};
pub use listeners::*;
pub use load_balancers::*;
pub use present::target_health_view;
pub use rules::*;
pub use tags::*;
pub use target_groups::*;
pub use targets::*;

use model::{ListenerRecord, LoadBalancerRecord, ResourceTag, TargetGroupRecord, TargetRecord};

use crate::ecs::Outcome;
use crate::state::State;

pub type Elbv2Result<R> = Result<Outcome<R>, Elbv2Error>;

/// The most tags one resource carries, as in ELBv2.
pub const MAX_TAGS: usize = 50;

pub(crate) fn load_balancer_by_arn<'s>(
    state: &'s State,
    arn: &str,
) -> Result<&'s LoadBalancerRecord, Elbv2Error> {
    match parse_elbv2_arn(arn) {
        Some(Elbv2Ref::LoadBalancer { name, id }) => state
            .load_balancers
            .get(&id)
            .filter(|lb| lb.name == name)
            .ok_or_else(|| {
                Elbv2Error::new(
                    Elbv2ErrorCode::LoadBalancerNotFound,
                    format!("Load balancer '{arn}' not found"),
                )
            }),
        _ => Err(Elbv2Error::validation(format!(
            "'{arn}' is not a valid load balancer ARN"
        ))),
    }
}

pub(crate) fn target_group_by_arn<'s>(
    state: &'s State,
    arn: &str,
) -> Result<&'s TargetGroupRecord, Elbv2Error> {
    match parse_elbv2_arn(arn) {
        Some(Elbv2Ref::TargetGroup { name, id }) => state
            .target_groups
            .get(&id)
            .filter(|tg| tg.name == name)
            .ok_or_else(|| {
                Elbv2Error::new(
                    Elbv2ErrorCode::TargetGroupNotFound,
                    format!("Target group '{arn}' not found"),
                )
            }),
        _ => Err(Elbv2Error::validation(format!(
            "'{arn}' is not a valid target group ARN"
        ))),
    }
}

pub(crate) fn listener_by_arn<'s>(
    state: &'s State,
    arn: &str,
) -> Result<&'s ListenerRecord, Elbv2Error> {
    match parse_elbv2_arn(arn) {
        Some(Elbv2Ref::Listener {
            load_balancer_id,
            id,
        }) => state
            .listeners
            .get(&id)
            .filter(|l| l.load_balancer == load_balancer_id)
            .ok_or_else(|| {
                Elbv2Error::new(
                    Elbv2ErrorCode::ListenerNotFound,
                    format!("Listener '{arn}' not found"),
                )
            }),
        _ => Err(Elbv2Error::validation(format!(
            "'{arn}' is not a valid listener ARN"
        ))),
    }
}

/// Whether any listener forwards to the target group, by its default action or a rule
/// (its targets get traffic).
pub fn target_group_in_use(state: &State, target_group: &str) -> bool {
    state
        .listeners
        .values()
        .any(|l| l.forwards_to(target_group))
}

/// How long a deregistered target drains, in seconds: its group's deregistration delay
/// when a listener sends it traffic and it ever passed a health check; 0 (it goes at
/// once) otherwise, since a target the balancer never chose has no requests to finish.
pub fn drain_seconds(state: &State, target: &TargetRecord) -> u64 {
    let Some(group) = state.target_groups.get(&target.target_group) else {
        return 0;
    };
    if !target.ever_healthy() || !target_group_in_use(state, &group.id) {
        return 0;
    }
    u64::from(group.attributes.deregistration_delay_seconds)
}

/// ELBv2's name rule for load balancers and target groups.
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), Elbv2Error> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Elbv2Error::constraint(
            field,
            value,
            "Member must have 1 to 32 alphanumeric characters or hyphens, and must not begin or end with a hyphen",
        ))
    }
}

/// Checks a port given on the wire: 1-65535.
pub(crate) fn check_port(field: &str, port: i64) -> Result<u16, Elbv2Error> {
    u16::try_from(port).ok().filter(|p| *p >= 1).ok_or_else(|| {
        Elbv2Error::constraint(
            field,
            port,
            "Member must have value greater than or equal to 1 and less than or equal to 65535",
        )
    })
}

pub(crate) fn resource_tags(
    given: Vec<berth_api::elbv2::Tag>,
) -> Result<Vec<ResourceTag>, Elbv2Error> {
    let mut tags: Vec<ResourceTag> = Vec::with_capacity(given.len());
    for tag in given {
        if tag.key.is_empty() || tag.key.len() > 128 {
            return Err(Elbv2Error::constraint(
                "tags.member.key",
                &tag.key,
                "Member must have length between 1 and 128",
            ));
        }
        if tag.value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(Elbv2Error::constraint(
                "tags.member.value",
                tag.value.as_deref().unwrap_or_default(),
                "Member must have length less than or equal to 256",
            ));
        }
        if tags.iter().any(|t| t.key == tag.key) {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::DuplicateTagKeys,
                format!("Tag key '{}' was given more than once", tag.key),
            ));
        }
        tags.push(ResourceTag {
            key: tag.key,
            value: tag.value,
        });
    }
    if tags.len() > MAX_TAGS {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::TooManyTags,
            format!(
                "a resource carries at most {MAX_TAGS} tags, {} given",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// One page of a Describe* answer: `Marker` is the offset of the next page.
pub(crate) fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    page_size: Option<i64>,
) -> Result<(Vec<T>, Option<String>), Elbv2Error> {
    let start = match marker.filter(|m| !m.is_empty()) {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Elbv2Error::validation(format!("Marker '{text}' is not valid")))?,
    };
    let size =
        match page_size {
            None => 400,
            Some(n) if (1..=400).contains(&n) => n as usize,
            Some(n) => return Err(Elbv2Error::constraint(
                "pageSize",
                n,
                "Member must have value greater than or equal to 1 and less than or equal to 400",
            )),
        };
    let total = items.len();
    let end = start.saturating_add(size).min(total);
    let page: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    let next = (end < total).then(|| end.to_string());
    Ok((page, next))
}

/// Removes targets whose deregistration delay has passed. Part of `berth_core::reconcile`.
pub fn reconcile(state: &State, now: crate::Timestamp) -> Vec<crate::Command> {
    state
        .targets
        .values()
        .filter(|t| t.draining_until.is_some_and(|until| until <= now))
        .map(|t| crate::Command::RemoveTarget(t.key()))
        .collect()
}
