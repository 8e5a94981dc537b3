//! The service scheduler: keeps each service's desiredCount of healthy tasks running,
//! replaces failed ones (with backoff for a definition that keeps crashing), rolls
//! deployments within minimumHealthyPercent / maximumPercent, and drains deleted services.
//!
//! Input: the state, `now` and an id source. Output: commands. Calling it again on the
//! state those commands produce gives no further commands until something changes.

use crate::ecs::demand_of;
use crate::ecs::{
    launch_type_of_provider, new_task, start_rollback, stopping, Context, Placed, StrategyPlacer,
    TaskOrigin,
};
use crate::elbv2::model::TargetHealthState;
use crate::model::{
    stopped_for_failed_checks, ContainerInstanceStatus, DeploymentStatus, HealthStatus,
    PropagateTags, RolloutState, SchedulingStrategy, Service, ServiceEvent, ServiceStatus,
    StopCode, Task, TaskStatus, CONTAINER_CHECKS_FAILED, ELB_CHECKS_FAILED, MAX_SERVICE_EVENTS,
};
use crate::placement::{
    group_for, PlacementConstraint, PlacementFailure, PlacementSpec, PlacementStrategy, Scheduler,
    SpreadField,
};
use crate::service_deployments;
use crate::service_targets;
use crate::state::{Command, State};
use crate::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// A task that ran less than this before it stopped on its own counts as a crash.
pub const CRASH_WINDOW_MS: u64 = 30_000;
/// A rollout completes only once each of its tasks has run this long (and is healthy):
/// a task that crashes right after it started still fails its deployment, so the
/// circuit breaker can still fire and a rollback still has somewhere to go back to.
pub const ROLLOUT_STABLE_MS: u64 = CRASH_WINDOW_MS;
/// The crash-loop backoff never waits longer than this between launches.
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// Stopped tasks stay describable this long, then are forgotten.
pub const STOPPED_TASK_RETENTION_MS: u64 = 3 * 60 * 60 * 1000;

/// The delay before the next launch after `failures` crashes in a row: the first
/// replacement is immediate, then 1 s, 2 s, 4 s ... up to `MAX_BACKOFF_MS`.
pub fn backoff_after(failures: u32) -> u64 {
    if failures <= 1 {
        return 0;
    }
    let exponent = (failures - 2).min(16);
    (1000u64 << exponent).min(MAX_BACKOFF_MS)
}

/// Circuit-breaker threshold: clamp(ceil(0.5 * desired), 3, 200) failed tasks.
pub fn failure_threshold(desired: i64) -> i64 {
    ((desired + 1) / 2).clamp(3, 200)
}

pub fn reconcile(state: &State, ctx: &mut Context) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut working = state.clone();
    // Tasks on a lost machine go first, so their replacements are placed this round.
    for command in crate::node_loss::give_up_lost_tasks(state, ctx) {
        working.apply(command.clone());
        commands.push(command);
    }
    let keys: Vec<String> = state
        .services
        .iter()
        .filter(|(_, s)| s.status != ServiceStatus::Inactive)
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        let Some(service) = working.services.get(&key).map(|s| Service::clone(s)) else {
            continue;
        };
        let service_commands = reconcile_service(&working, service, ctx);
        for command in service_commands {
            working.apply(command.clone());
            commands.push(command);
        }
    }
    commands.extend(forget_old_stopped_tasks(state, ctx.now));
    commands.extend(crate::elbv2::reconcile(state, ctx.now));
    commands
}

fn forget_old_stopped_tasks(state: &State, now: Timestamp) -> Vec<Command> {
    state
        .tasks
        .values()
        .filter(|t| {
            t.stopped_at
                .is_some_and(|at| now.millis_since(at) > STOPPED_TASK_RETENTION_MS)
        })
        .map(|t| Command::RemoveTask(t.id.clone()))
        .collect()
}

fn push_event(service: &mut Service, message: String, ctx: &mut Context) {
    service.events.insert(
        0,
        ServiceEvent {
            id: ctx.ids.uuid(),
            created_at: ctx.now,
            message,
        },
    );
    service.events.truncate(MAX_SERVICE_EVENTS);
}

/// A task with no health check of any kind (no container health check, no load
/// balancer) counts as healthy for the scheduler only once it has run this long, so a
/// release whose containers exit right after they start never replaces tasks that
/// work (Docker swarm's update monitor waits 5 s by default for the same reason).
pub const UNCHECKED_TASK_SETTLE_MS: u64 = 5_000;

/// Which tasks of one service count as healthy: RUNNING and not to be stopped,
/// container health checks passing, and, for a load-balanced service, every target
/// healthy. The one rule for rollouts, steady state and service discovery's endpoints;
/// the scheduler's view ([`ServiceHealth::settling`]) also waits
/// [`UNCHECKED_TASK_SETTLE_MS`] for a task that nothing checks.
pub struct ServiceHealth {
    /// Tasks whose targets are all healthy; None when the service has no load balancer.
    healthy_targets: Option<BTreeSet<String>>,
    /// Set for the scheduler's view: the time unchecked tasks' run is measured to.
    now: Option<Timestamp>,
}

impl ServiceHealth {
    /// The health of `tasks`, which are `service`'s, by the store's target verdicts.
    pub fn of<'t>(
        state: &State,
        service: &Service,
        tasks: impl Iterator<Item = &'t Task>,
    ) -> ServiceHealth {
        ServiceHealth {
            healthy_targets: service_targets::tasks_with_healthy_targets(state, service, tasks),
            now: None,
        }
    }

    /// The scheduler's view at `now`: a task that nothing checks counts as healthy only
    /// after it has run [`UNCHECKED_TASK_SETTLE_MS`].
    pub fn settling(self, now: Timestamp) -> ServiceHealth {
        ServiceHealth {
            now: Some(now),
            ..self
        }
    }

    fn settled(&self, task: &Task) -> bool {
        self.healthy_targets.is_some()
            || self
                .now
                .is_none_or(|now| task.has_run_for(now, UNCHECKED_TASK_SETTLE_MS))
    }

    pub fn healthy(&self, task: &Task) -> bool {
        task.is_live()
            && task.last_status == TaskStatus::Running
            && match task.health_status {
                HealthStatus::Healthy => true,
                HealthStatus::Unhealthy => false,
                HealthStatus::Unknown => !task.has_health_checks() && self.settled(task),
            }
            && self
                .healthy_targets
                .as_ref()
                .is_none_or(|ok| ok.contains(&task.id))
    }

    /// Lower sorts first when choosing which tasks to stop: not-yet-running before
    /// running, unhealthy before healthy, newer before older.
    fn stop_preference(&self, task: &Task) -> (bool, bool, std::cmp::Reverse<Timestamp>) {
        (
            task.last_status == TaskStatus::Running,
            self.healthy(task),
            std::cmp::Reverse(task.created_at),
        )
    }
}

/// Marks a task for stopping and drains its targets first (the agent waits for them).
fn stop(
    state: &State,
    task: &Task,
    reason: &str,
    extra: &mut Vec<Command>,
    now: Timestamp,
) -> Task {
    let mut stopped = stopping(task, StopCode::ServiceSchedulerInitiated, reason, now);
    if stopped != *task {
        extra.extend(service_targets::deregister(state, &mut stopped, now));
    }
    stopped
}

fn reconcile_service(state: &State, original: Service, ctx: &mut Context) -> Vec<Command> {
    let mut service = original.clone();
    let mut task_commands: Vec<Task> = Vec::new();
    let name = service.name.clone();
    let mut tasks: Vec<Task> = state
        .tasks_of_service(&service.cluster, &name)
        .cloned()
        .collect();

    let mut extra: Vec<Command> = Vec::new();
    account_stopped_tasks(&mut service, &mut tasks, &mut task_commands, ctx);
    for task in tasks.iter().filter(|t| t.is_stopped()) {
        extra.extend(service_targets::forget_stopped(state, task));
    }
    if service.status == ServiceStatus::Active {
        for task in tasks.iter_mut().filter(|t| {
            t.is_live() && matches!(t.last_status, TaskStatus::Activating | TaskStatus::Running)
        }) {
            let before = task.clone();
            extra.extend(service_targets::register(state, &service, task, ctx.now));
            if *task != before {
                task_commands.push(task.clone());
            }
        }
    }
    // Targets just registered are `initial`: the health below is the store's.
    let health = ServiceHealth::of(state, &service, tasks.iter()).settling(ctx.now);
    for task in tasks
        .iter_mut()
        .filter(|t| !t.ever_healthy && health.healthy(t))
    {
        task.ever_healthy = true;
        task_commands.push(task.clone());
    }
    replace_unhealthy_tasks(
        state,
        &service,
        &mut tasks,
        &mut task_commands,
        &mut extra,
        ctx,
    );

    // The instances a DAEMON service runs on, found once per pass.
    let daemon = (service.scheduling_strategy == SchedulingStrategy::Daemon)
        .then(|| daemon_instances(state, &service));
    if let (Some(instances), ServiceStatus::Active) = (&daemon, service.status) {
        let instances = instances.len() as i64;
        service.desired_count = instances;
        if let Some(primary) = service
            .deployments
            .iter_mut()
            .find(|d| d.status == DeploymentStatus::Primary)
        {
            primary.desired_count = instances;
        }
    }

    let mut stopped_ids = Vec::new();
    let mut started_ids = Vec::new();
    if service.status == ServiceStatus::Draining {
        for task in tasks.iter_mut().filter(|t| t.is_live()) {
            *task = stop(state, task, "Service is being deleted", &mut extra, ctx.now);
            stopped_ids.push(task.id.clone());
            task_commands.push(task.clone());
        }
        if tasks.iter().all(|t| t.is_stopped()) {
            service.status = ServiceStatus::Inactive;
            for deployment in &mut service.deployments {
                deployment.status = DeploymentStatus::Inactive;
                deployment.updated_at = ctx.now;
            }
        }
    } else {
        roll(
            state,
            &health,
            daemon.as_ref(),
            &mut service,
            &mut tasks,
            &mut task_commands,
            &mut extra,
            &mut started_ids,
            &mut stopped_ids,
            ctx,
        );
    }

    if !stopped_ids.is_empty() {
        let list: Vec<String> = stopped_ids
            .iter()
            .map(|id| format!("(task {id})"))
            .collect();
        let message = format!(
            "(service {name}) has stopped {} running tasks: {}.",
            stopped_ids.len(),
            list.join(" ")
        );
        push_event(&mut service, message, ctx);
    }
    if !started_ids.is_empty() {
        let list: Vec<String> = started_ids
            .iter()
            .map(|id| format!("(task {id})"))
            .collect();
        let message = format!(
            "(service {name}) has started {} tasks: {}.",
            started_ids.len(),
            list.join(" ")
        );
        push_event(&mut service, message, ctx);
    }
    update_deployments(&health, &mut service, &tasks, ctx);

    let mut commands: Vec<Command> = Vec::new();
    // Later entries for the same task win; keep one command per task.
    let mut seen = std::collections::BTreeSet::new();
    for task in task_commands.into_iter().rev() {
        if seen.insert(task.id.clone()) {
            commands.push(Command::PutTask(Box::new(task)));
        }
    }
    commands.reverse();
    commands.extend(extra);
    if service != original {
        commands.push(Command::PutService(Box::new(service)));
    }
    commands
}

/// Counts each task's stop once: crashes feed the backoff and the circuit breaker.
fn account_stopped_tasks(
    service: &mut Service,
    tasks: &mut [Task],
    out: &mut Vec<Task>,
    ctx: &mut Context,
) {
    for task in tasks
        .iter_mut()
        .filter(|t| t.is_stopped() && !t.stop_accounted)
    {
        task.stop_accounted = true;
        out.push(task.clone());
        let failed = matches!(
            task.stop_code,
            Some(StopCode::EssentialContainerExited | StopCode::TaskFailedToStart)
        ) || task
            .stopped_reason
            .as_deref()
            .is_some_and(stopped_for_failed_checks);
        if !failed {
            continue;
        }
        let ran_for = match (task.started_at, task.stopped_at) {
            (Some(started), Some(stopped)) => stopped.millis_since(started),
            _ => 0,
        };
        // A crash soon after start, or a task that never served, is a failed launch.
        if ran_for < CRASH_WINDOW_MS || !task.ever_healthy {
            service.consecutive_failures = service.consecutive_failures.saturating_add(1);
            if let Some(deployment) = service
                .deployments
                .iter_mut()
                .find(|d| Some(&d.id) == task.deployment_id.as_ref())
            {
                deployment.failed_tasks += 1;
                deployment.updated_at = ctx.now;
            }
        } else {
            service.consecutive_failures = 1;
        }
        let delay = backoff_after(service.consecutive_failures);
        service.next_launch_at = (delay > 0).then(|| ctx.now.plus_millis(delay));
        let reason = task.stopped_reason.clone().unwrap_or_default();
        let message = format!(
            "(service {}) (task {}) stopped: {reason}{}",
            service.name,
            task.id,
            essential_exits(task)
        );
        push_event(service, message, ctx);
    }
}

/// What the essential containers of a stopped task said as they went, for its event:
/// ` (container web exited with code 3: OutOfMemoryError...)`, or nothing.
fn essential_exits(task: &Task) -> String {
    let exits: Vec<String> = task
        .containers
        .iter()
        .filter(|c| c.essential && (c.exit_code.is_some() || c.reason.is_some()))
        .map(|c| {
            let mut text = format!("container {}", c.name);
            if let Some(code) = c.exit_code {
                text.push_str(&format!(" exited with code {code}"));
            }
            if let Some(reason) = &c.reason {
                text.push_str(&format!(": {reason}"));
            }
            text
        })
        .collect();
    if exits.is_empty() {
        String::new()
    } else {
        format!(" ({})", exits.join("; "))
    }
}

/// A task whose health checks fail (outside the grace period) is replaced.
fn replace_unhealthy_tasks(
    state: &State,
    service: &Service,
    tasks: &mut [Task],
    out: &mut Vec<Task>,
    extra: &mut Vec<Command>,
    ctx: &mut Context,
) {
    let grace_ms = service
        .health_check_grace_period_seconds
        .unwrap_or(0)
        .max(0) as u64
        * 1000;
    for task in tasks.iter_mut().filter(|t| t.is_live()) {
        let reason = if task.health_status == HealthStatus::Unhealthy {
            CONTAINER_CHECKS_FAILED.to_string()
        } else if service_targets::target_health(state, task) == Some(TargetHealthState::Unhealthy)
        {
            let group = task
                .load_balancer_targets
                .iter()
                .filter_map(|t| state.target_groups.get(&t.target_group))
                .map(|g| g.name.clone())
                .next()
                .unwrap_or_default();
            format!("{ELB_CHECKS_FAILED} in (target-group {group})")
        } else {
            continue;
        };
        let since = task.started_at.unwrap_or(task.created_at);
        if ctx.now.millis_since(since) < grace_ms {
            continue;
        }
        *task = stop(state, task, &reason, extra, ctx.now);
        out.push(task.clone());
    }
}

/// Whether a task runs on a container instance that is being drained: the service
/// replaces it (within its deployment configuration) as a rollout replaces old tasks.
fn on_draining_instance(state: &State, task: &Task) -> bool {
    task.container_instance_id
        .as_deref()
        .and_then(|id| state.container_instances.get(id))
        .is_some_and(|i| i.status == ContainerInstanceStatus::Draining)
}

/// The instances a DAEMON service runs one task on: every ACTIVE, connected container
/// instance of its cluster that meets the placement constraints of the service and of
/// its current task definition, including instances that join later.
fn daemon_instances<'s>(state: &'s State, service: &Service) -> BTreeSet<&'s str> {
    let definition_constraints = service
        .primary()
        .and_then(|p| state.definition(&p.family, p.revision))
        .map(|d| d.spec.placement_constraints.clone())
        .unwrap_or_default();
    let constraints = PlacementSpec::parse(
        &definition_constraints,
        &service.placement_constraints,
        &[],
        Scheduler::Service,
    )
    .map(|spec| spec.constraints)
    .unwrap_or_default();
    state
        .container_instances
        .values()
        .filter(|i| {
            i.cluster == service.cluster
                && i.status == ContainerInstanceStatus::Active
                && i.agent_connected
        })
        .filter(|i| {
            constraints.iter().all(|c| match c {
                PlacementConstraint::MemberOf(expression) => expression.matches(&i.attributes),
                PlacementConstraint::DistinctInstance => true,
            })
        })
        .map(|i| i.id.as_str())
        .collect()
}

#[allow(clippy::too_many_arguments)] // one pass over one service's tasks, with its outputs
fn roll(
    state: &State,
    health: &ServiceHealth,
    daemon: Option<&BTreeSet<&str>>,
    service: &mut Service,
    tasks: &mut [Task],
    out: &mut Vec<Task>,
    extra: &mut Vec<Command>,
    started: &mut Vec<String>,
    stopped: &mut Vec<String>,
    ctx: &mut Context,
) {
    let Some(primary) = service.primary().cloned() else {
        return;
    };
    let desired = service.desired_count.max(0);
    let max_total = desired * service.maximum_percent() / 100;
    let min_healthy = (desired * service.minimum_healthy_percent() + 99) / 100;
    // A task of the current deployment stays current unless its instance is draining
    // (or, for a DAEMON service, no longer one it runs on): such a task is replaced as
    // an old deployment's is, within minimumHealthyPercent and maximumPercent.
    let is_primary = |t: &Task| {
        t.deployment_id.as_deref() == Some(primary.id.as_str())
            && !on_draining_instance(state, t)
            && daemon.is_none_or(|ids| {
                t.container_instance_id
                    .as_deref()
                    .is_some_and(|id| ids.contains(id))
            })
    };

    // 1. Too many tasks of the current deployment: scale in.
    let mut primary_live: Vec<usize> = (0..tasks.len())
        .filter(|&i| tasks[i].is_live() && is_primary(&tasks[i]))
        .collect();
    if primary_live.len() as i64 > desired {
        primary_live.sort_by_key(|&i| health.stop_preference(&tasks[i]));
        let excess = primary_live.len() - desired as usize;
        for &i in primary_live.iter().take(excess) {
            let reason = format!("Scaling activity initiated by (deployment {})", primary.id);
            tasks[i] = stop(state, &tasks[i], &reason, extra, ctx.now);
            stopped.push(tasks[i].id.clone());
            out.push(tasks[i].clone());
        }
    }

    // 2. Tasks of older deployments: stop the ones that serve nobody at once, healthy
    //    ones only while enough healthy tasks remain.
    let mut healthy_total = tasks.iter().filter(|t| health.healthy(t)).count() as i64;
    let mut old: Vec<usize> = (0..tasks.len())
        .filter(|&i| tasks[i].is_live() && !is_primary(&tasks[i]))
        .collect();
    old.sort_by_key(|&i| health.stop_preference(&tasks[i]));
    for i in old {
        let healthy = health.healthy(&tasks[i]);
        if healthy && healthy_total <= min_healthy {
            continue;
        }
        if healthy {
            healthy_total -= 1;
        }
        let reason = if tasks[i].deployment_id.as_deref() != Some(primary.id.as_str()) {
            format!("Deployment replaced by (deployment {})", primary.id)
        } else if on_draining_instance(state, &tasks[i]) {
            "Container instance is being drained".to_string()
        } else {
            "Container instance no longer meets the daemon's placement constraints".to_string()
        };
        tasks[i] = stop(state, &tasks[i], &reason, extra, ctx.now);
        stopped.push(tasks[i].id.clone());
        out.push(tasks[i].clone());
    }

    // 3. Start tasks of the current deployment, within maximumPercent.
    let primary_count = tasks
        .iter()
        .filter(|t| t.is_live() && is_primary(t))
        .count() as i64;
    let live_total = tasks.iter().filter(|t| t.is_live()).count() as i64;
    let wanted = (desired - primary_count).max(0);
    let room = (max_total.max(desired) - live_total).max(0);
    let mut to_start = wanted.min(room);
    if to_start == 0 {
        return;
    }
    if service.next_launch_at.is_some_and(|at| ctx.now < at) {
        return;
    }
    if primary.rollout_state == RolloutState::Failed {
        return;
    }
    let Some(definition) = state.definition(&primary.family, primary.revision) else {
        return;
    };
    // The definition was admitted under the policy (and the rules) of its day; a
    // stricter one since (a restart with other flags, a newer berth) stops new tasks,
    // said once per episode.
    let admitted = crate::ecs::definition_spec(definition)
        .and_then(|_| ctx.policy.check_task_definition(&definition.spec));
    if let Err(refused) = admitted {
        if !service.placement_blocked {
            let message = format!(
                "(service {}) was unable to place a task: {}",
                service.name, refused.message
            );
            push_event(service, message, ctx);
            service.placement_blocked = true;
        }
        return;
    }
    let spec = match PlacementSpec::parse(
        &definition.spec.placement_constraints,
        &service.placement_constraints,
        &service.placement_strategy,
        Scheduler::Service,
    ) {
        // A DAEMON service has one task on each instance: no strategy, never two.
        Ok(mut spec) if daemon.is_some() => {
            spec.constraints.push(PlacementConstraint::DistinctInstance);
            spec.strategies = vec![PlacementStrategy::Spread(SpreadField::InstanceId)];
            spec
        }
        Ok(spec) => spec,
        Err(refused) => {
            // Stored before berth checked it as it does now: said once per episode.
            if !service.placement_blocked {
                let message = format!(
                    "(service {}) was unable to place a task: {refused}",
                    service.name
                );
                push_event(service, message, ctx);
                service.placement_blocked = true;
            }
            return;
        }
    };
    let overrides = berth_api::TaskOverride::default();
    let demand = demand_of(
        definition,
        &overrides,
        group_for(Some(&service.name), None, &definition.family),
    );
    // Base and weight count over the service's tasks that have not stopped.
    let mut placed: BTreeMap<String, u64> = BTreeMap::new();
    for task in state.tasks.values().filter(|t| {
        t.cluster == service.cluster
            && t.service.as_deref() == Some(service.name.as_str())
            && !t.is_stopped()
    }) {
        if let Some(provider) = &task.capacity_provider_name {
            *placed.entry(provider.clone()).or_default() += 1;
        }
    }
    let strategy = service.capacity_provider_strategy.clone();
    let mut placer =
        StrategyPlacer::new(state, &service.cluster, &spec, &demand, &strategy, placed);
    while to_start > 0 {
        let random = ctx.ids.deployment_digits();
        match placer.place(random) {
            Ok(Placed {
                capacity_provider,
                instance_id,
            }) => {
                let origin = TaskOrigin {
                    started_by: Some(primary.id.clone()),
                    group: Some(format!("service:{}", service.name)),
                    service: Some(service.name.clone()),
                    deployment_id: Some(primary.id.clone()),
                    launch_type: capacity_provider
                        .as_deref()
                        .map(launch_type_of_provider)
                        .or(service.launch_type),
                    capacity_provider_name: capacity_provider,
                    tags: if service.propagate_tags == PropagateTags::Service {
                        service.tags.clone()
                    } else {
                        vec![]
                    },
                };
                let task = new_task(
                    definition,
                    &service.cluster,
                    instance_id,
                    overrides.clone(),
                    origin,
                    ctx,
                );
                started.push(task.id.clone());
                out.push(task);
                service.placement_blocked = false;
            }
            Err((_, PlacementFailure::NoInstances | PlacementFailure::Insufficient(_))) => {
                // Said once per episode, not on every pass while it lasts.
                if !service.placement_blocked {
                    let message = format!(
                        "(service {}) was unable to place a task because no container instance met all of its requirements.",
                        service.name
                    );
                    push_event(service, message, ctx);
                    service.placement_blocked = true;
                }
                break;
            }
        }
        to_start -= 1;
    }
}

/// Deployment counts, rollout states, circuit breaker, steady-state event.
fn update_deployments(
    health: &ServiceHealth,
    service: &mut Service,
    tasks: &[Task],
    ctx: &mut Context,
) {
    let new_tasks: Vec<&Task> = tasks.iter().collect();
    let live_of = |id: &str| {
        new_tasks
            .iter()
            .filter(|t| t.is_live() && t.deployment_id.as_deref() == Some(id))
            .count()
    };
    let unstopped_of = |id: &str| {
        new_tasks
            .iter()
            .filter(|t| !t.is_stopped() && t.deployment_id.as_deref() == Some(id))
            .count()
    };
    let healthy_of = |id: &str| {
        new_tasks
            .iter()
            .filter(|t| health.healthy(t) && t.deployment_id.as_deref() == Some(id))
            .count()
    };
    let now = ctx.now;
    let settled_of = |id: &str| {
        new_tasks
            .iter()
            .filter(|t| t.is_live() && t.deployment_id.as_deref() == Some(id))
            .all(|t| t.has_run_for(now, ROLLOUT_STABLE_MS))
    };

    if service.status == ServiceStatus::Active {
        // Old deployments go once their last task has stopped.
        service
            .deployments
            .retain(|d| d.status == DeploymentStatus::Primary || unstopped_of(&d.id) > 0);
        for deployment in service
            .deployments
            .iter_mut()
            .filter(|d| d.status != DeploymentStatus::Primary)
        {
            let live = live_of(&deployment.id) as i64;
            if deployment.desired_count != live {
                deployment.desired_count = live;
                deployment.updated_at = ctx.now;
            }
        }
    }
    let desired = service.desired_count;
    let breaker = service
        .deployment_configuration
        .deployment_circuit_breaker
        .clone()
        .unwrap_or_default();
    let only_primary = service.deployments.len() == 1;
    let mut rollback_to = None;
    if let Some(primary) = service
        .deployments
        .iter_mut()
        .find(|d| d.status == DeploymentStatus::Primary)
    {
        if primary.desired_count != desired && service.status == ServiceStatus::Active {
            primary.desired_count = desired;
            primary.updated_at = ctx.now;
        }
        if primary.rollout_state == RolloutState::InProgress {
            if only_primary
                && healthy_of(&primary.id) as i64 == desired
                && live_of(&primary.id) as i64 == desired
                && settled_of(&primary.id)
            {
                primary.rollout_state = RolloutState::Completed;
                primary.rollout_state_reason = format!("ECS deployment {} completed.", primary.id);
                primary.updated_at = ctx.now;
                service.last_completed = Some((primary.family.clone(), primary.revision));
            } else if breaker.enable && primary.failed_tasks >= failure_threshold(desired) {
                primary.rollout_state = RolloutState::Failed;
                primary.rollout_state_reason = format!(
                    "ECS deployment circuit breaker: tasks failed to start ({} failed tasks).",
                    primary.failed_tasks
                );
                primary.updated_at = ctx.now;
                if breaker.rollback {
                    rollback_to = service.last_completed.clone().filter(|(f, r)| {
                        (f.as_str(), *r) != (primary.family.as_str(), primary.revision)
                    });
                }
            }
        }
    }
    if let Some((family, revision)) = rollback_to {
        let failed_id = service.primary().map(|p| p.id.clone()).unwrap_or_default();
        start_rollback(service, &family, revision, ctx);
        let message = format!(
            "(service {}) rolling back to deployment of {family}:{revision} after deployment {failed_id} failed.",
            service.name
        );
        push_event(service, message, ctx);
    }
    service_deployments::follow_rollouts(service, ctx.now);

    let running = tasks
        .iter()
        .filter(|t| t.is_live() && t.last_status == TaskStatus::Running)
        .count() as i64;
    let all_healthy = tasks
        .iter()
        .filter(|t| t.is_live())
        .all(|t| health.healthy(t));
    let steady = service.status == ServiceStatus::Active
        && service.deployments.len() == 1
        && running == desired
        && all_healthy
        && tasks.iter().filter(|t| t.is_live()).count() as i64 == desired;
    if steady && !service.steady {
        let message = format!("(service {}) has reached a steady state.", service.name);
        push_event(service, message, ctx);
    }
    // A service that has run steadily past the crash window has stopped crashing.
    let settled = tasks
        .iter()
        .filter(|t| t.is_live())
        .all(|t| t.has_run_for(ctx.now, CRASH_WINDOW_MS));
    if steady && settled && service.consecutive_failures > 0 {
        service.consecutive_failures = 0;
        service.next_launch_at = None;
    }
    service.steady = steady;
}
