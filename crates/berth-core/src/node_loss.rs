//! Losing a machine. The tasks on a container instance whose agent lost contact (no
//! heartbeat within the window), or that was deregistered, are given up at once: their
//! load-balancer targets go without draining (nothing there can finish a request we
//! could see), and the tasks are STOPPED, so their services start replacements on the
//! instances that remain, honouring placement. ECS itself never reschedules the tasks
//! of a disconnected agent; berth does, since a small team's machine that died is not
//! coming back on its own.
//!
//! A lost task is stopped for good: when its agent comes back (a partition that
//! healed, a machine that rebooted), it finds the task STOPPED and stops whatever still
//! runs of it, so a service never keeps more than its tasks' worth after the heal.

use crate::ecs::Context;
use crate::elbv2::model::target_key;
use crate::model::{
    ContainerInstance, ContainerInstanceStatus, ContainerStatus, DesiredStatus, ServiceEvent,
    StopCode, Task, TaskStatus, MAX_SERVICE_EVENTS,
};
use crate::state::{service_key, Command, State};
use std::collections::BTreeMap;

/// Why a task's instance no longer runs it, or None when the instance is fine.
fn lost_because(state: &State, task: &Task) -> Option<String> {
    let id = task.container_instance_id.as_deref()?;
    match state.container_instances.get(id) {
        None => Some(format!("its container instance {id} is gone")),
        Some(instance) if is_deregistered(instance) => {
            Some(format!("its container instance {id} was deregistered"))
        }
        Some(instance) if !instance.agent_connected => Some(format!(
            "its container instance {id} lost contact with the control plane"
        )),
        Some(_) => None,
    }
}

fn is_deregistered(instance: &ContainerInstance) -> bool {
    instance.status == ContainerInstanceStatus::Inactive
}

/// The commands that give up every task on a lost instance: targets removed at once,
/// the task STOPPED with the reason, one event per service and instance.
pub fn give_up_lost_tasks(state: &State, ctx: &mut Context) -> Vec<Command> {
    let mut commands = Vec::new();
    // (service key, reason) -> how many of its tasks went.
    let mut lost_per_service: BTreeMap<(String, String), usize> = BTreeMap::new();
    for task in state.tasks.values().filter(|t| !t.is_stopped()) {
        let Some(because) = lost_because(state, task) else {
            continue;
        };
        for target in &task.load_balancer_targets {
            let key = target_key(&target.target_group, &target.id, target.port);
            if state.targets.contains_key(&key) {
                commands.push(Command::RemoveTarget(key));
            }
        }
        let mut lost = Task::clone(task);
        lost.desired_status = DesiredStatus::Stopped;
        lost.last_status = TaskStatus::Stopped;
        // ECS's code for a task whose host went away under it.
        lost.stop_code = Some(StopCode::TerminationNotice);
        lost.stopped_reason = Some(format!("Task stopped: {because}"));
        lost.stopping_at = lost.stopping_at.or(Some(ctx.now));
        lost.execution_stopped_at = lost.execution_stopped_at.or(Some(ctx.now));
        lost.stopped_at = Some(ctx.now);
        lost.load_balancer_targets.clear();
        lost.stop_after = None;
        for container in &mut lost.containers {
            if container.last_status != ContainerStatus::Stopped {
                container.last_status = ContainerStatus::Stopped;
                container.reason = Some(format!("Stopped: {because}"));
            }
        }
        lost.version += 1;
        if let Some(service) = &task.service {
            *lost_per_service
                .entry((service_key(&task.cluster, service), because))
                .or_default() += 1;
        }
        commands.push(Command::PutTask(Box::new(lost)));
    }
    let mut services: BTreeMap<String, crate::model::Service> = BTreeMap::new();
    for ((key, because), count) in lost_per_service {
        let Some(service) = services.get(&key).cloned().or_else(|| {
            state
                .services
                .get(&key)
                .map(|s| crate::model::Service::clone(s))
        }) else {
            continue;
        };
        let mut service = service;
        let tasks = if count == 1 { "task" } else { "tasks" };
        service.events.insert(
            0,
            ServiceEvent {
                id: ctx.ids.uuid(),
                created_at: ctx.now,
                message: format!(
                    "(service {}) gave up {count} {tasks}: {because}; replacing them on the other instances",
                    service.name
                ),
            },
        );
        service.events.truncate(MAX_SERVICE_EVENTS);
        service.steady = false;
        services.insert(key, service);
    }
    commands.extend(
        services
            .into_values()
            .map(|service| Command::PutService(Box::new(service))),
    );
    commands
}
