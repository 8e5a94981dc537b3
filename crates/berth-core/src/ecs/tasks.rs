use berth_api as api;

use super::capacity_providers::{launch_type_of_provider, Placed, StrategyPlacer};
use super::{paginate, parse_optional_word, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::{cluster_name, container_instance_ref, task_definition_ref, task_ref};
use crate::model::{
    ContainerRecord, ContainerStatus, DesiredStatus, HealthStatus, LaunchType, PropagateTags,
    StopCode, Task, TaskDefinitionRecord, TaskDefinitionStatus, TaskStatus,
};
use crate::placement::{group_for, Demand, PlacementFailure, PlacementSpec, Scheduler};
use crate::present;
use crate::resources::{reservation, FixedHostPorts};
use crate::spec::TaskSpec;
use crate::state::{Command, State};
use crate::validation::apply_overrides;

/// Who asked for a new task and how it is labelled.
#[derive(Debug, Clone, Default)]
pub struct TaskOrigin {
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub service: Option<String>,
    pub deployment_id: Option<String>,
    pub launch_type: Option<LaunchType>,
    /// The provider of its capacity provider strategy it was placed with.
    pub capacity_provider_name: Option<String>,
    pub tags: Vec<api::Tag>,
}

/// A new PROVISIONING task of `definition` on `instance_id`.
pub fn new_task(
    definition: &TaskDefinitionRecord,
    cluster: &str,
    instance_id: &str,
    overrides: api::TaskOverride,
    origin: TaskOrigin,
    ctx: &mut Context,
) -> Task {
    let (reserved_cpu, reserved_memory) = reservation(&definition.spec, &overrides);
    let containers = definition
        .spec
        .container_definitions
        .iter()
        .map(|c| ContainerRecord {
            id: ctx.ids.uuid(),
            name: c.name.clone().unwrap_or_default(),
            image: c.image.clone().unwrap_or_default(),
            essential: c.essential.unwrap_or(true),
            image_digest: None,
            runtime_id: None,
            last_status: ContainerStatus::Pending,
            exit_code: None,
            reason: None,
            network_bindings: vec![],
            health_status: HealthStatus::Unknown,
            has_health_check: c.health_check.is_some(),
            cpu: c.cpu,
            memory: c.memory,
            memory_reservation: c.memory_reservation,
        })
        .collect();
    Task {
        id: ctx.ids.task_id(),
        cluster: cluster.to_string(),
        family: definition.family.clone(),
        revision: definition.revision,
        container_instance_id: Some(instance_id.to_string()),
        last_status: TaskStatus::Provisioning,
        desired_status: DesiredStatus::Running,
        health_status: HealthStatus::Unknown,
        cpu: overrides
            .cpu
            .clone()
            .or_else(|| definition.spec.cpu.clone()),
        memory: overrides
            .memory
            .clone()
            .or_else(|| definition.spec.memory.clone()),
        reserved_cpu,
        reserved_memory,
        overrides,
        started_by: origin.started_by,
        group: origin.group,
        service: origin.service,
        deployment_id: origin.deployment_id,
        launch_type: origin.launch_type,
        capacity_provider_name: origin.capacity_provider_name,
        network_mode: definition.task_spec().ok().map(|spec| spec.network_mode),
        private_ipv4_address: None,
        tags: origin.tags,
        containers,
        created_at: ctx.now,
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        execution_stopped_at: None,
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        version: 1,
        stop_accounted: false,
        ever_healthy: false,
        load_balancer_targets: vec![],
        stop_after: None,
    }
}

pub fn demand_of(
    definition: &TaskDefinitionRecord,
    overrides: &api::TaskOverride,
    group: String,
) -> Demand {
    let (cpu, memory) = reservation(&definition.spec, overrides);
    Demand {
        cpu,
        memory,
        host_ports: definition.spec.fixed_host_ports().into_iter().collect(),
        group,
        capacity_provider: None,
    }
}

/// The definition's spec, or why a record stored before one of today's rules cannot run.
pub(crate) fn definition_spec(definition: &TaskDefinitionRecord) -> Result<&TaskSpec, EcsError> {
    definition.task_spec().map_err(|refused| {
        EcsError::client(format!(
            "TaskDefinition {}:{} cannot run: {refused}",
            definition.family, definition.revision
        ))
    })
}

/// The spec a task of `definition` with `overrides` runs.
pub fn spec_with_overrides(
    definition: &TaskDefinitionRecord,
    overrides: &api::TaskOverride,
) -> Result<TaskSpec, EcsError> {
    apply_overrides(
        definition_spec(definition)?,
        &definition.family,
        definition.revision,
        overrides,
    )
}

/// The effective spec of `task` (of `definition`): what its agent runs. The task's
/// overrides are applied, and its network mode is the one it was placed with.
pub fn effective_spec(
    definition: &TaskDefinitionRecord,
    task: &Task,
) -> Result<TaskSpec, EcsError> {
    let mut spec = spec_with_overrides(definition, &task.overrides)?;
    if let Some(mode) = task.network_mode {
        spec.network_mode = mode;
    }
    Ok(spec)
}

/// The definition to run: ACTIVE, by family, family:revision or ARN.
pub(crate) fn runnable_definition<'s>(
    state: &'s State,
    given: &str,
) -> Result<&'s TaskDefinitionRecord, EcsError> {
    if given.trim().is_empty() {
        return Err(EcsError::invalid_parameter(
            "taskDefinition must not be empty",
        ));
    }
    let record = super::find_task_definition(state, given).ok_or_else(|| {
        let (family, _) = task_definition_ref(given);
        EcsError::client(format!(
            "TaskDefinition not found: '{given}' (family '{family}')"
        ))
    })?;
    match record.status {
        TaskDefinitionStatus::Active => {}
        TaskDefinitionStatus::Inactive => {
            return Err(EcsError::client(format!(
                "TaskDefinition is inactive: {}:{} was deregistered",
                record.family, record.revision
            )))
        }
        TaskDefinitionStatus::DeleteInProgress => {
            return Err(EcsError::client(format!(
                "TaskDefinition is being deleted: {}:{} is DELETE_IN_PROGRESS",
                record.family, record.revision
            )))
        }
    }
    definition_spec(record)?;
    Ok(record)
}

/// The one check of a task's placement: the definition's constraints with the request's
/// (or the service's) constraints and strategies, parsed into the spec placement uses.
pub(crate) fn check_placement(
    definition: &TaskDefinitionRecord,
    constraints: &[api::PlacementConstraint],
    strategies: &[api::PlacementStrategy],
    scheduler: Scheduler,
) -> Result<PlacementSpec, EcsError> {
    PlacementSpec::parse(
        &definition.spec.placement_constraints,
        constraints,
        strategies,
        scheduler,
    )
    .map_err(|e| EcsError::invalid_parameter(e.to_string()))
}

/// A task definition's own `placementConstraints` (memberOf only).
pub(crate) fn check_definition_placement(
    constraints: &[api::PlacementConstraint],
) -> Result<(), EcsError> {
    crate::placement::parse_definition_constraints(constraints, "placementConstraints")
        .map(|_| ())
        .map_err(|e| EcsError::invalid_parameter(e.to_string()))
}

pub fn run_task(
    state: &State,
    request: api::RunTaskRequest,
    ctx: &mut Context,
) -> EcsResult<api::RunTaskResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    super::tags::check_tags(&request.tags)?;
    let launch_type =
        parse_optional_word::<LaunchType>("launchType", request.launch_type.as_deref())?;
    // Checked, not acted on: berth copies no tags onto a task RunTask starts.
    parse_optional_word::<PropagateTags>("propagateTags", request.propagate_tags.as_deref())?;
    // The one given, else the cluster's default when no launch type is given either.
    let strategy = super::capacity_providers::strategy_for(
        super::active_cluster(state, &cluster)?,
        launch_type,
        &request.capacity_provider_strategy,
    )?;
    let definition = runnable_definition(state, &request.task_definition)?;
    ctx.policy.check_task_definition(&definition.spec)?;
    let count = request.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(EcsError::invalid_parameter(format!(
            "count must be between 1 and 10, got {count}"
        )));
    }
    let overrides = request.overrides.clone().unwrap_or_default();
    spec_with_overrides(definition, &overrides)?;
    let spec = check_placement(
        definition,
        &request.placement_constraints,
        &request.placement_strategy,
        Scheduler::RunTask,
    )?;
    if request.started_by.as_deref().is_some_and(|s| s.len() > 128) {
        return Err(EcsError::invalid_parameter(
            "startedBy is longer than 128 characters",
        ));
    }
    let group = request
        .group
        .clone()
        .unwrap_or_else(|| format!("family:{}", definition.family));
    let demand = demand_of(
        definition,
        &overrides,
        group_for(None, Some(&group), &definition.family),
    );
    let mut placer = StrategyPlacer::new(
        state,
        &cluster,
        &spec,
        &demand,
        &strategy,
        Default::default(),
    );
    let mut response = api::RunTaskResponse::default();
    let mut commands = Vec::new();
    for _ in 0..count {
        let random = ctx.ids.deployment_digits();
        match placer.place(random) {
            Ok(Placed {
                capacity_provider,
                instance_id,
            }) => {
                let origin = TaskOrigin {
                    started_by: request.started_by.clone(),
                    group: Some(group.clone()),
                    launch_type: capacity_provider
                        .as_deref()
                        .map(launch_type_of_provider)
                        .or(launch_type),
                    capacity_provider_name: capacity_provider,
                    tags: request.tags.clone(),
                    ..Default::default()
                };
                let task = new_task(
                    definition,
                    &cluster,
                    instance_id,
                    overrides.clone(),
                    origin,
                    ctx,
                );
                response.tasks.push(present::task(ctx.scope, &task));
                commands.push(Command::PutTask(Box::new(task)));
            }
            Err((only, PlacementFailure::NoInstances)) => {
                if response.tasks.is_empty() {
                    return Err(EcsError::invalid_parameter(match only {
                        Some(provider) => format!(
                            "No Container Instances were found in your capacity provider. ('{provider}')"
                        ),
                        None => "No Container Instances were found in your cluster.".to_string(),
                    }));
                }
                break;
            }
            Err((_, PlacementFailure::Insufficient(reasons))) => {
                for (instance_id, reason) in reasons {
                    response.failures.push(api::Failure {
                        arn: Some(ctx.scope.container_instance(&cluster, &instance_id)),
                        reason: Some(reason.as_ecs().to_string()),
                        detail: None,
                    });
                }
                break;
            }
        }
    }
    Ok(Outcome { commands, response })
}

/// A task of `cluster` given by id or ARN.
pub(crate) fn find_task<'s>(state: &'s State, cluster: &str, given: &str) -> Option<&'s Task> {
    let (arn_cluster, id) = task_ref(given);
    if arn_cluster.as_deref().is_some_and(|c| c != cluster) {
        return None;
    }
    state
        .tasks
        .get(&id)
        .map(|t| &**t)
        .filter(|t| t.cluster == cluster)
}

/// Marks a task for stopping: the agent sends SIGTERM, then SIGKILL after stopTimeout.
pub fn stopping(task: &Task, code: StopCode, reason: &str, now: crate::Timestamp) -> Task {
    let mut task = task.clone();
    if task.desired_status == DesiredStatus::Stopped || task.is_stopped() {
        return task;
    }
    task.desired_status = DesiredStatus::Stopped;
    task.stop_code = Some(code);
    task.stopped_reason = Some(reason.to_string());
    task.stopping_at = Some(now);
    task.version += 1;
    task
}

pub fn stop_task(
    state: &State,
    request: api::StopTaskRequest,
    ctx: &mut Context,
) -> EcsResult<api::StopTaskResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.task.trim().is_empty() {
        return Err(EcsError::invalid_parameter("task must not be empty"));
    }
    let task = find_task(state, &cluster, &request.task).ok_or_else(|| {
        EcsError::invalid_parameter(format!(
            "The referenced task was not found: {}",
            request.task
        ))
    })?;
    let reason = request
        .reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or("Task stopped by user");
    if reason.len() > 255 {
        return Err(EcsError::invalid_parameter(
            "reason is longer than 255 characters",
        ));
    }
    let mut stopped = stopping(task, StopCode::UserInitiated, reason, ctx.now);
    let mut commands = Vec::new();
    if &stopped != task {
        // Its targets drain first; the agent sends SIGTERM after that.
        commands = crate::service_targets::deregister(state, &mut stopped, ctx.now);
        commands.push(Command::PutTask(Box::new(stopped.clone())));
    }
    let response = api::StopTaskResponse {
        task: present::task(ctx.scope, &stopped),
    };
    Ok(Outcome { commands, response })
}

pub fn describe_tasks(
    state: &State,
    request: api::DescribeTasksRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeTasksResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.tasks.is_empty() {
        return Err(EcsError::invalid_parameter("Tasks cannot be empty."));
    }
    if request.tasks.len() > 100 {
        return Err(EcsError::invalid_parameter(
            "tasks can name at most 100 tasks",
        ));
    }
    let include_tags = request.include.iter().any(|i| i == "TAGS");
    let mut response = api::DescribeTasksResponse::default();
    for given in &request.tasks {
        match find_task(state, &cluster, given) {
            Some(task) => {
                let mut shown = present::task(ctx.scope, task);
                if !include_tags {
                    shown.tags.clear();
                }
                response.tasks.push(shown)
            }
            None => {
                let (_, id) = task_ref(given);
                response.failures.push(api::Failure {
                    arn: Some(ctx.scope.task(&cluster, &id)),
                    reason: Some("MISSING".to_string()),
                    detail: None,
                })
            }
        }
    }
    Ok(Outcome::read_only(response))
}

pub fn list_tasks(
    state: &State,
    request: api::ListTasksRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListTasksResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    let desired = match request.desired_status.as_deref() {
        None | Some("RUNNING") => DesiredStatus::Running,
        Some("STOPPED") => DesiredStatus::Stopped,
        Some("PENDING") => DesiredStatus::Running,
        Some(other) => {
            return Err(EcsError::invalid_parameter(format!(
                "desiredStatus '{other}' is invalid: use RUNNING, PENDING or STOPPED"
            )))
        }
    };
    let launch_type =
        parse_optional_word::<LaunchType>("launchType", request.launch_type.as_deref())?;
    let instance = request
        .container_instance
        .as_deref()
        .map(|c| container_instance_ref(c).1);
    let service = request
        .service_name
        .as_deref()
        .map(|s| crate::ids::service_ref(s).1);
    if let Some(name) = &service {
        if state.service(&cluster, name).is_none() {
            return Err(EcsError::service_not_found());
        }
    }
    let mut tasks: Vec<&Task> = state
        .tasks
        .values()
        .map(|t| &**t)
        .filter(|t| t.cluster == cluster && t.desired_status == desired)
        .filter(|t| {
            instance
                .as_ref()
                .is_none_or(|i| t.container_instance_id.as_ref() == Some(i))
        })
        .filter(|t| request.family.as_ref().is_none_or(|f| &t.family == f))
        .filter(|t| request.started_by.is_none() || t.started_by == request.started_by)
        .filter(|t| service.is_none() || t.service == service)
        .filter(|t| launch_type.is_none_or(|l| t.launch_type.unwrap_or_default() == l))
        .collect();
    tasks.sort_by_key(|t| (t.created_at, t.id.clone()));
    let arns: Vec<String> = tasks
        .iter()
        .map(|t| ctx.scope.task(&t.cluster, &t.id))
        .collect();
    let (task_arns, next_token) = paginate(
        &arns,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(api::ListTasksResponse {
        task_arns,
        next_token,
    }))
}
