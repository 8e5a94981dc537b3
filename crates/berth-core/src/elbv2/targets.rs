use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use berth_api::elbv2 as wire;

use super::model::{target_key, TargetGroupRecord, TargetHealth, TargetRecord, TargetType};
use super::target_groups::targets_of;
use super::{
    check_port, drain_seconds, present, target_group_by_arn, Elbv2Error, Elbv2ErrorCode,
    Elbv2Result,
};
use crate::ecs::{Context, Outcome};
use crate::ids::container_instance_ref;
use crate::model::{ContainerInstanceStatus, ContainerStatus, TaskStatus};
use crate::policy::PrivilegePolicy;
use crate::state::{Command, State};

/// The TCP host ports that tasks running on each container instance have published
/// (their containers' network bindings): what an `instance` target may point at
/// without [`crate::PrivilegeKind::LocalTargets`]. Berth's service scheduler registers
/// exactly these, once the task's ports are bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedPorts(BTreeSet<(String, u16)>);

impl PublishedPorts {
    pub fn of(state: &State) -> Self {
        let mut ports = BTreeSet::new();
        let running = state.tasks.values().filter(|task| {
            matches!(
                task.last_status,
                TaskStatus::Activating | TaskStatus::Running | TaskStatus::Deactivating
            )
        });
        for task in running {
            let Some(instance) = &task.container_instance_id else {
                continue;
            };
            let bindings = task
                .containers
                .iter()
                .filter(|container| container.last_status != ContainerStatus::Stopped)
                .flat_map(|container| container.network_bindings.iter())
                .filter(|binding| binding.protocol.as_deref().is_none_or(|p| p == "tcp"));
            for binding in bindings {
                if let Some(port) = binding.host_port.and_then(|p| u16::try_from(p).ok()) {
                    ports.insert((instance.clone(), port));
                }
            }
        }
        PublishedPorts(ports)
    }

    pub fn contains(&self, instance: &str, port: u16) -> bool {
        self.0.contains(&(instance.to_string(), port))
    }
}

/// Why the privilege policy keeps a target (of a group of `target_type`) away from the
/// data plane, if it does: RegisterTargets refuses it, and one registered under a
/// looser policy, or whose task has gone since, is not served. The one rule for both.
pub fn refused_target(
    policy: &PrivilegePolicy,
    published: &PublishedPorts,
    target_type: TargetType,
    id: &str,
    port: u16,
) -> Option<String> {
    match target_type {
        TargetType::Ip => policy.check_ip_target(id.parse().ok()?).err(),
        TargetType::Instance => policy
            .check_instance_target(id, port, published.contains(id, port))
            .err(),
    }
}

/// A target as given on the wire, checked against its group: (id, port).
/// `policy` is checked for new targets only: deregistering one must work whatever the
/// policy says now.
fn resolve_target(
    target_group: &TargetGroupRecord,
    index: usize,
    given: &wire::TargetDescription,
    policy: Option<&PrivilegePolicy>,
) -> Result<(String, u16), Elbv2Error> {
    let port = match given.port {
        None => target_group.port,
        Some(port) => check_port(&format!("targets.member.{}.port", index + 1), port)?,
    };
    let id = match target_group.target_type {
        TargetType::Ip => {
            let Ok(address) = given.id.parse::<Ipv4Addr>() else {
                return Err(Elbv2Error::new(
                    Elbv2ErrorCode::InvalidTarget,
                    format!("The IP address '{}' is not a valid IPv4 address", given.id),
                ));
            };
            if let Some(policy) = policy {
                policy
                    .check_ip_target(IpAddr::V4(address))
                    .map_err(|message| Elbv2Error::new(Elbv2ErrorCode::InvalidTarget, message))?;
            }
            given.id.clone()
        }
        TargetType::Instance => container_instance_ref(&given.id).1,
    };
    Ok((id, port))
}

pub fn register_targets(
    state: &State,
    request: wire::TargetsRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let target_group = target_group_by_arn(state, &request.target_group_arn)?;
    if request.targets.is_empty() {
        return Err(Elbv2Error::missing("targets"));
    }
    let mut commands = Vec::new();
    let mut seen = Vec::new();
    let published = PublishedPorts::of(state);
    for (index, given) in request.targets.iter().enumerate() {
        let (id, port) = resolve_target(target_group, index, given, Some(ctx.policy))?;
        if target_group.target_type == TargetType::Instance {
            if state
                .container_instances
                .get(&id)
                .is_none_or(|i| i.status == ContainerInstanceStatus::Inactive)
            {
                return Err(Elbv2Error::new(
                    Elbv2ErrorCode::InvalidTarget,
                    format!(
                        "The following targets are not container instances berth knows: '{}'",
                        given.id
                    ),
                ));
            }
            ctx.policy
                .check_instance_target(&id, port, published.contains(&id, port))
                .map_err(|message| Elbv2Error::new(Elbv2ErrorCode::InvalidTarget, message))?;
        }
        let key = target_key(&target_group.id, &id, port);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        // Registering a registered target changes nothing; a draining one starts over.
        if state
            .targets
            .get(&key)
            .is_some_and(|t| t.draining_until.is_none())
        {
            continue;
        }
        commands.push(Command::PutTarget(Box::new(TargetRecord {
            target_group: target_group.id.clone(),
            id,
            port,
            availability_zone: given.availability_zone.clone(),
            registered_at: ctx.now,
            health: TargetHealth::default(),
            draining_until: None,
            passed_check: false,
        })));
    }
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}

/// Starts draining the targets: they stay for the group's deregistration delay (then
/// `reconcile` removes them), or go at once when no listener uses the group.
pub fn deregister_targets(
    state: &State,
    request: wire::TargetsRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let target_group = target_group_by_arn(state, &request.target_group_arn)?;
    if request.targets.is_empty() {
        return Err(Elbv2Error::missing("targets"));
    }
    let mut commands = Vec::new();
    let mut seen = Vec::new();
    for (index, given) in request.targets.iter().enumerate() {
        let (id, port) = resolve_target(target_group, index, given, None)?;
        let key = target_key(&target_group.id, &id, port);
        let Some(target) = state.targets.get(&key) else {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::InvalidTarget,
                format!(
                    "The following targets are not registered in target group '{}': '{id}:{port}'",
                    request.target_group_arn
                ),
            ));
        };
        if seen.contains(&key) || target.draining_until.is_some() {
            continue;
        }
        seen.push(key.clone());
        let delay = drain_seconds(state, target);
        if delay > 0 {
            let mut draining = TargetRecord::clone(target);
            draining.draining_until = Some(ctx.now.plus_secs(delay));
            commands.push(Command::PutTarget(Box::new(draining)));
        } else {
            commands.push(Command::RemoveTarget(key));
        }
    }
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}

pub fn describe_target_health(
    state: &State,
    request: wire::TargetsRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::TargetHealthResult> {
    let target_group = target_group_by_arn(state, &request.target_group_arn)?;
    // A target whose delay has passed is gone, even before `reconcile` removed it.
    let present_now = |t: &&TargetRecord| t.draining_until.is_none_or(|until| until > ctx.now);
    let descriptions = if request.targets.is_empty() {
        targets_of(state, &target_group.id)
            .filter(present_now)
            .map(|t| present::target_health_view(state, target_group, t))
            .collect()
    } else {
        let mut descriptions = Vec::new();
        for (index, given) in request.targets.iter().enumerate() {
            let (id, port) = resolve_target(target_group, index, given, None)?;
            let key = target_key(&target_group.id, &id, port);
            match state.targets.get(&key).map(|t| &**t).filter(present_now) {
                Some(target) => {
                    descriptions.push(present::target_health_view(state, target_group, target))
                }
                None => descriptions.push(wire::TargetHealthDescription {
                    target: wire::TargetDescription {
                        id,
                        port: Some(i64::from(port)),
                        availability_zone: None,
                    },
                    health_check_port: present::health_check_port(target_group, port),
                    state: "unused".to_string(),
                    reason: Some("Target.NotRegistered".to_string()),
                    description: Some("Target is not registered to the target group".to_string()),
                }),
            }
        }
        descriptions
    };
    Ok(Outcome::read_only(wire::TargetHealthResult {
        target_health_descriptions: descriptions,
    }))
}
