//! A service's tasks in its target groups: registered once they run, counted healthy
//! only while their targets are, and drained before their containers get SIGTERM.

use std::collections::BTreeSet;

use crate::elbv2::model::{target_key, TargetHealthState, TargetRecord, TargetType};
use crate::elbv2::{drain_seconds, parse_elbv2_arn, Elbv2Ref};
use crate::model::{Service, Task, TaskStatus, TaskTarget};
use crate::state::{Command, State};
use crate::Timestamp;

/// The target group id an ARN names, if it is a target group berth has.
pub fn target_group_id(state: &State, arn: &str) -> Option<String> {
    match parse_elbv2_arn(arn)? {
        Elbv2Ref::TargetGroup { id, .. } if state.target_groups.contains_key(&id) => Some(id),
        _ => None,
    }
}

/// The targets a RUNNING task of `service` is to be registered as: the host port of
/// `containerName`/`containerPort` on its container instance, or its own address for
/// ip target groups. Empty while the task has no port binding yet.
fn targets_for(state: &State, service: &Service, task: &Task) -> Vec<TaskTarget> {
    let mut targets = Vec::new();
    for lb in &service.load_balancers {
        let Some(group_id) = lb
            .target_group_arn
            .as_deref()
            .and_then(|a| target_group_id(state, a))
        else {
            continue;
        };
        let Some(group) = state.target_groups.get(&group_id) else {
            continue;
        };
        let container_name = lb.container_name.as_deref().unwrap_or_default();
        let container_port = lb.container_port.unwrap_or_default();
        let target = match group.target_type {
            TargetType::Instance => {
                let Some(instance) = task.container_instance_id.clone() else {
                    continue;
                };
                let host_port = task
                    .containers
                    .iter()
                    .filter(|c| c.name == container_name)
                    .flat_map(|c| c.network_bindings.iter())
                    .find(|b| b.container_port == Some(container_port))
                    .and_then(|b| b.host_port)
                    .and_then(|p| u16::try_from(p).ok());
                let Some(port) = host_port else { continue };
                TaskTarget {
                    target_group: group_id,
                    id: instance,
                    port,
                }
            }
            TargetType::Ip => {
                let Some(ip) = task.private_ipv4_address.clone() else {
                    continue;
                };
                let Ok(port) = u16::try_from(container_port) else {
                    continue;
                };
                TaskTarget {
                    target_group: group_id,
                    id: ip,
                    port,
                }
            }
        };
        targets.push(target);
    }
    targets
}

/// Registers a running (or ACTIVATING) task that is not registered yet; an ACTIVATING
/// task becomes RUNNING once its targets are registered.
pub fn register(state: &State, service: &Service, task: &mut Task, now: Timestamp) -> Vec<Command> {
    if service.load_balancers.is_empty() || !task.load_balancer_targets.is_empty() {
        if task.last_status == TaskStatus::Activating {
            // Nothing (left) to register: the load balancers went, or it already is.
            task.last_status = TaskStatus::Running;
            task.version += 1;
        }
        return Vec::new();
    }
    let targets = targets_for(state, service, task);
    if targets.len() < service.load_balancers.len() {
        return Vec::new();
    }
    if task.last_status == TaskStatus::Activating {
        task.last_status = TaskStatus::Running;
    }
    let commands = targets
        .iter()
        .filter(|t| {
            !state
                .targets
                .contains_key(&target_key(&t.target_group, &t.id, t.port))
        })
        .map(|t| {
            Command::PutTarget(Box::new(TargetRecord {
                target_group: t.target_group.clone(),
                id: t.id.clone(),
                port: t.port,
                availability_zone: None,
                registered_at: now,
                health: Default::default(),
                draining_until: None,
                passed_check: false,
            }))
        })
        .collect();
    task.load_balancer_targets = targets;
    task.version += 1;
    commands
}

/// Deregisters a task being stopped: its targets drain for their groups'
/// deregistration delay, it leaves service discovery's endpoints
/// (`service_discovery::endpoint_drain_until`), and the task's containers are stopped
/// only after that.
pub fn deregister(state: &State, task: &mut Task, now: Timestamp) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut stop_after = crate::service_discovery::endpoint_drain_until(state, task, now);
    for target in &task.load_balancer_targets {
        let key = target_key(&target.target_group, &target.id, target.port);
        let Some(record) = state.targets.get(&key) else {
            continue;
        };
        if record.draining_until.is_some() {
            stop_after = stop_after.max(record.draining_until.unwrap_or(now));
            continue;
        }
        let delay = drain_seconds(state, record);
        if delay == 0 {
            commands.push(Command::RemoveTarget(key));
            continue;
        }
        let until = now.plus_secs(delay);
        stop_after = stop_after.max(until);
        let mut draining = TargetRecord::clone(record);
        draining.draining_until = Some(until);
        commands.push(Command::PutTarget(Box::new(draining)));
    }
    if stop_after > now {
        task.stop_after = Some(stop_after);
    }
    commands
}

/// The targets of a task that stopped, or that is stopping because it ended on its own,
/// go at once: nothing is there to drain.
pub fn forget_stopped(state: &State, task: &Task) -> Vec<Command> {
    task.load_balancer_targets
        .iter()
        .map(|t| target_key(&t.target_group, &t.id, t.port))
        .filter(|key| {
            state
                .targets
                .get(key)
                .is_some_and(|r| r.draining_until.is_none())
        })
        .map(Command::RemoveTarget)
        .collect()
}

/// The worst health of a task's targets, or None when it has none.
pub fn target_health(state: &State, task: &Task) -> Option<TargetHealthState> {
    let mut worst: Option<TargetHealthState> = None;
    for target in &task.load_balancer_targets {
        let key = target_key(&target.target_group, &target.id, target.port);
        let state_now = state
            .targets
            .get(&key)
            .map(|r| r.health.state)
            .unwrap_or(TargetHealthState::Initial);
        worst = Some(match (worst, state_now) {
            (Some(TargetHealthState::Unhealthy), _) | (_, TargetHealthState::Unhealthy) => {
                TargetHealthState::Unhealthy
            }
            (Some(TargetHealthState::Initial), _) | (_, TargetHealthState::Initial) => {
                TargetHealthState::Initial
            }
            _ => TargetHealthState::Healthy,
        });
    }
    worst
}

/// The tasks of a load-balanced service whose every target is healthy.
pub fn tasks_with_healthy_targets<'t>(
    state: &State,
    service: &Service,
    tasks: impl Iterator<Item = &'t Task>,
) -> Option<BTreeSet<String>> {
    if service.load_balancers.is_empty() {
        return None;
    }
    Some(
        tasks
            .filter(|t| {
                t.load_balancer_targets.len() >= service.load_balancers.len()
                    && target_health(state, t) == Some(TargetHealthState::Healthy)
            })
            .map(|t| t.id.clone())
            .collect(),
    )
}
