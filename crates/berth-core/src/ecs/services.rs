use berth_api as api;

use super::tasks::{check_placement, runnable_definition};
use super::{check_name, paginate, parse_optional_word, Context, EcsResult, Outcome};
use crate::error::{EcsError, ErrorCode};
use crate::ids::{cluster_name, service_ref};
use crate::model::{
    AvailabilityZoneRebalancing, ContainerInstanceStatus, Deployment, DeploymentStatus, LaunchType,
    PropagateTags, RolloutState, SchedulingStrategy, Service, ServiceStatus, TaskDefinitionRecord,
};
use crate::placement::Scheduler;
use crate::present;
use crate::service_deployments;
use crate::state::{Command, State};

/// ECS's rules for a service's deployment configuration (pure: `berth apply` calls it too).
pub fn check_deployment_configuration(
    config: &api::DeploymentConfiguration,
) -> Result<(), EcsError> {
    let max = config
        .maximum_percent
        .unwrap_or(crate::model::DEFAULT_MAXIMUM_PERCENT);
    let min = config
        .minimum_healthy_percent
        .unwrap_or(crate::model::DEFAULT_MINIMUM_HEALTHY_PERCENT);
    if !(0..=100).contains(&min) {
        return Err(EcsError::invalid_parameter(format!(
            "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100, got {min}"
        )));
    }
    if !(100..=200).contains(&max) {
        return Err(EcsError::invalid_parameter(format!(
            "deploymentConfiguration.maximumPercent must be between 100 and 200, got {max}"
        )));
    }
    if max == 100 && min == 100 {
        return Err(EcsError::invalid_parameter(
            "deploymentConfiguration: maximumPercent 100 with minimumHealthyPercent 100 leaves no room to replace a task; lower minimumHealthyPercent or raise maximumPercent",
        ));
    }
    Ok(())
}

/// ECS's range for a service's desiredCount (pure: `berth apply` calls it too).
pub fn check_desired_count(count: i64) -> Result<(), EcsError> {
    if !(0..=10_000).contains(&count) {
        return Err(EcsError::invalid_parameter(format!(
            "desiredCount must be between 0 and 10000, got {count}"
        )));
    }
    Ok(())
}

fn check_load_balancers(
    state: &State,
    load_balancers: &[api::LoadBalancer],
    definition: &TaskDefinitionRecord,
) -> Result<(), EcsError> {
    if load_balancers.len() > 5 {
        return Err(EcsError::invalid_parameter(
            "loadBalancers can name at most 5 target groups",
        ));
    }
    for (i, lb) in load_balancers.iter().enumerate() {
        let arn = lb.target_group_arn.as_deref().unwrap_or_default();
        if arn.is_empty() {
            return Err(EcsError::invalid_parameter(format!(
                "loadBalancers[{i}].targetGroupArn is required (berth's load balancers are ELBv2 target groups)"
            )));
        }
        let Some(group_id) = crate::service_targets::target_group_id(state, arn) else {
            return Err(EcsError::invalid_parameter(format!(
                "loadBalancers[{i}].targetGroupArn '{arn}' is not a target group berth has"
            )));
        };
        if !crate::elbv2::target_group_in_use(state, &group_id) {
            return Err(EcsError::invalid_parameter(format!(
                "The target group with targetGroupArn {arn} does not have an associated load balancer."
            )));
        }
        let network_mode = definition.spec.network_mode.as_deref().unwrap_or("bridge");
        let target_type = state.target_groups.get(&group_id).map(|g| g.target_type);
        match (target_type, network_mode) {
            (Some(crate::elbv2::model::TargetType::Ip), mode) if mode != "awsvpc" => {
                return Err(EcsError::invalid_parameter(format!(
                    "loadBalancers[{i}]: target group {arn} has target type ip, which needs networkMode awsvpc (task definition {}:{} uses {mode})",
                    definition.family, definition.revision
                )))
            }
            (Some(crate::elbv2::model::TargetType::Instance), "awsvpc") => {
                return Err(EcsError::invalid_parameter(format!(
                    "loadBalancers[{i}]: target group {arn} has target type instance, which cannot reach awsvpc tasks; use target type ip"
                )))
            }
            _ => {}
        }
        check_load_balancer_container(
            i,
            lb,
            &definition.spec.container_definitions,
            &format!("{}:{}", definition.family, definition.revision),
        )?;
    }
    Ok(())
}

/// A service's `loadBalancers[index]` names a container of its task definition
/// (`task_definition`, `family:revision`, for the message) that maps `containerPort`.
/// Pure, so `berth apply` checks a file with it before it changes anything.
pub fn check_load_balancer_container(
    index: usize,
    load_balancer: &api::LoadBalancer,
    containers: &[api::ContainerDefinition],
    task_definition: &str,
) -> Result<(), EcsError> {
    let container = load_balancer.container_name.as_deref().unwrap_or_default();
    let Some(def) = containers
        .iter()
        .find(|c| c.name.as_deref() == Some(container))
    else {
        return Err(EcsError::invalid_parameter(format!(
            "loadBalancers[{index}].containerName '{container}' names no container of task definition {task_definition}"
        )));
    };
    let port = load_balancer.container_port.unwrap_or_default();
    if !def
        .port_mappings
        .iter()
        .flatten()
        .any(|m| m.container_port == Some(port))
    {
        return Err(EcsError::invalid_parameter(format!(
            "loadBalancers[{index}].containerPort {port} is not a port mapping of container '{container}'"
        )));
    }
    Ok(())
}

fn new_deployment(
    service: &Service,
    family: &str,
    revision: u32,
    network_configuration: Option<serde_json::Value>,
    ctx: &mut Context,
) -> Deployment {
    Deployment {
        id: format!("ecs-svc/{}", ctx.ids.deployment_digits()),
        status: DeploymentStatus::Primary,
        family: family.to_string(),
        revision,
        desired_count: service.desired_count,
        failed_tasks: 0,
        created_at: ctx.now,
        updated_at: ctx.now,
        rollout_state: RolloutState::InProgress,
        rollout_state_reason: "ECS deployment ecs-svc in progress.".to_string(),
        network_configuration,
    }
}

/// The service becomes a new PRIMARY deployment of `family:revision`; the old PRIMARY
/// drains. The deployment history gets a new service deployment.
pub fn start_deployment(service: &mut Service, family: &str, revision: u32, ctx: &mut Context) {
    let sources = service_deployments::sources(service);
    let id = begin_deployment(service, family, revision, ctx);
    service_deployments::started(service, &id, sources, ctx.now);
}

/// The circuit breaker rolls the failed PRIMARY deployment back to `family:revision`:
/// a new PRIMARY deployment, which the failed one's service deployment follows.
pub(crate) fn start_rollback(
    service: &mut Service,
    family: &str,
    revision: u32,
    ctx: &mut Context,
) {
    let failed = service.primary().map(|p| p.id.clone()).unwrap_or_default();
    let id = begin_deployment(service, family, revision, ctx);
    service_deployments::rolling_back(service, &failed, &id, (family, revision), ctx.now);
}

/// A new PRIMARY deployment of `family:revision`; returns its id.
fn begin_deployment(
    service: &mut Service,
    family: &str,
    revision: u32,
    ctx: &mut Context,
) -> String {
    for deployment in service
        .deployments
        .iter_mut()
        .filter(|d| d.status == DeploymentStatus::Primary)
    {
        deployment.status = DeploymentStatus::Active;
        deployment.updated_at = ctx.now;
    }
    let mut deployment = new_deployment(
        service,
        family,
        revision,
        service.network_configuration.clone(),
        ctx,
    );
    deployment.rollout_state_reason = format!("ECS deployment {} in progress.", deployment.id);
    service.family = family.to_string();
    service.revision = revision;
    let id = deployment.id.clone();
    service.deployments.insert(0, deployment);
    service.steady = false;
    service.consecutive_failures = 0;
    service.next_launch_at = None;
    id
}

pub fn create_service(
    state: &State,
    request: api::CreateServiceRequest,
    ctx: &mut Context,
) -> EcsResult<api::ServiceResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    check_name("serviceName", &request.service_name)?;
    super::tags::check_tags(&request.tags)?;
    let given = request
        .task_definition
        .as_deref()
        .ok_or_else(|| EcsError::invalid_parameter("taskDefinition is required"))?;
    let definition = runnable_definition(state, given)?;
    ctx.policy.check_task_definition(&definition.spec)?;
    let scheduling_strategy =
        parse_optional_word("schedulingStrategy", request.scheduling_strategy.as_deref())?
            .unwrap_or(SchedulingStrategy::Replica);
    let launch_type =
        parse_optional_word::<LaunchType>("launchType", request.launch_type.as_deref())?;
    let propagate_tags = parse_optional_word("propagateTags", request.propagate_tags.as_deref())?
        .unwrap_or(PropagateTags::None);
    // ECS's default for a new service.
    let availability_zone_rebalancing = parse_optional_word(
        "availabilityZoneRebalancing",
        request.availability_zone_rebalancing.as_deref(),
    )?
    .unwrap_or(AvailabilityZoneRebalancing::Enabled);
    let capacity_provider_strategy = super::capacity_providers::strategy_for(
        super::active_cluster(state, &cluster)?,
        launch_type,
        &request.capacity_provider_strategy,
    )?;
    let platform_version = fargate_platform_version(
        launch_type,
        !capacity_provider_strategy.is_empty(),
        request.platform_version,
    )?;
    let desired_count = match scheduling_strategy {
        SchedulingStrategy::Replica => request.desired_count.unwrap_or(0),
        SchedulingStrategy::Daemon => {
            if request.desired_count.is_some_and(|c| c != 0) {
                return Err(EcsError::invalid_parameter(
                    "desiredCount cannot be set for a service with schedulingStrategy DAEMON",
                ));
            }
            state
                .container_instances
                .values()
                .filter(|i| i.cluster == cluster && i.status == ContainerInstanceStatus::Active)
                .count() as i64
        }
    };
    check_desired_count(desired_count)?;
    let mut deployment_configuration = request.deployment_configuration.clone().unwrap_or_default();
    if scheduling_strategy == SchedulingStrategy::Daemon {
        // ECS's defaults for a daemon: an instance's old task stops before its new one
        // starts (one task per instance at most).
        deployment_configuration.maximum_percent.get_or_insert(100);
        deployment_configuration
            .minimum_healthy_percent
            .get_or_insert(0);
    }
    check_deployment_configuration(&deployment_configuration)?;
    check_placement(
        definition,
        &request.placement_constraints,
        &request.placement_strategy,
        Scheduler::Service,
    )?;
    check_load_balancers(state, &request.load_balancers, definition)?;
    if let Some(grace) = request.health_check_grace_period_seconds {
        if !(0..=2_147_483_647).contains(&grace) {
            return Err(EcsError::invalid_parameter(
                "healthCheckGracePeriodSeconds must not be negative",
            ));
        }
    }
    if let Some(existing) = state.service(&cluster, &request.service_name) {
        if existing.status != ServiceStatus::Inactive {
            return Err(EcsError::invalid_parameter(
                "Creation of service was not idempotent.",
            ));
        }
    }
    let mut placement_constraints = request.placement_constraints.clone();
    if scheduling_strategy == SchedulingStrategy::Daemon {
        placement_constraints.push(api::PlacementConstraint {
            constraint_type: Some("distinctInstance".to_string()),
            expression: None,
        });
    }
    let mut service = Service {
        cluster: cluster.clone(),
        name: request.service_name.clone(),
        status: ServiceStatus::Active,
        desired_count,
        family: definition.family.clone(),
        revision: definition.revision,
        deployment_configuration,
        deployments: vec![],
        load_balancers: request.load_balancers.clone(),
        placement_constraints,
        placement_strategy: request.placement_strategy.clone(),
        network_configuration: request.network_configuration.clone(),
        health_check_grace_period_seconds: request.health_check_grace_period_seconds,
        scheduling_strategy,
        launch_type,
        role_arn: request.role.clone(),
        enable_ecs_managed_tags: request.enable_ecs_managed_tags.unwrap_or(false),
        propagate_tags,
        enable_execute_command: request.enable_execute_command.unwrap_or(false),
        availability_zone_rebalancing,
        platform_version,
        capacity_provider_strategy,
        tags: request.tags.clone(),
        events: vec![],
        created_at: ctx.now,
        consecutive_failures: 0,
        next_launch_at: None,
        last_completed: None,
        service_deployments: vec![],
        steady: false,
        placement_blocked: false,
    };
    start_deployment(&mut service, &definition.family, definition.revision, ctx);
    let response = api::ServiceResponse {
        service: present::service(state, ctx.scope, &service),
    };
    Ok(Outcome {
        commands: vec![Command::PutService(Box::new(service))],
        response,
    })
}

/// `platformVersion` applies to Fargate only (the FARGATE launch type, or a strategy over
/// berth's Fargate capacity providers), as in ECS; berth keeps and echoes it.
fn fargate_platform_version(
    launch_type: Option<LaunchType>,
    capacity_provider_strategy: bool,
    given: Option<String>,
) -> Result<Option<String>, EcsError> {
    let fargate = launch_type == Some(LaunchType::Fargate) || capacity_provider_strategy;
    match given {
        None => Ok(None),
        Some(version) if fargate => Ok(Some(version)),
        Some(_) => Err(EcsError::invalid_parameter(
            "The platform version must be null when specifying an EC2 launch type.",
        )),
    }
}

/// The service named by name or ARN in the request's cluster.
pub(super) fn find_service<'s>(
    state: &'s State,
    cluster: &str,
    given: &str,
) -> Result<&'s Service, EcsError> {
    let (arn_cluster, name) = service_ref(given);
    if arn_cluster.as_deref().is_some_and(|c| c != cluster) {
        return Err(EcsError::service_not_found());
    }
    state
        .service(cluster, &name)
        .ok_or_else(EcsError::service_not_found)
}

pub fn update_service(
    state: &State,
    request: api::UpdateServiceRequest,
    ctx: &mut Context,
) -> EcsResult<api::ServiceResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.service.trim().is_empty() {
        return Err(EcsError::invalid_parameter("service must not be empty"));
    }
    let current = find_service(state, &cluster, &request.service)?;
    if current.status != ServiceStatus::Active {
        return Err(EcsError::new(
            ErrorCode::ServiceNotActiveException,
            "Service was not ACTIVE.",
        ));
    }
    let mut service = current.clone();
    if let Some(count) = request.desired_count {
        check_desired_count(count)?;
        if service.scheduling_strategy == SchedulingStrategy::Daemon {
            return Err(EcsError::invalid_parameter(
                "desiredCount cannot be set for a DAEMON service",
            ));
        }
        service.desired_count = count;
        if let Some(primary) = service
            .deployments
            .iter_mut()
            .find(|d| d.status == DeploymentStatus::Primary)
        {
            primary.desired_count = count;
            primary.updated_at = ctx.now;
        }
        if count != current.desired_count {
            service.steady = false;
        }
    }
    if let Some(config) = &request.deployment_configuration {
        let mut merged = service.deployment_configuration.clone();
        if config.maximum_percent.is_some() {
            merged.maximum_percent = config.maximum_percent;
        }
        if config.minimum_healthy_percent.is_some() {
            merged.minimum_healthy_percent = config.minimum_healthy_percent;
        }
        if config.deployment_circuit_breaker.is_some() {
            merged.deployment_circuit_breaker = config.deployment_circuit_breaker.clone();
        }
        check_deployment_configuration(&merged)?;
        service.deployment_configuration = merged;
    }
    let mut redeploy = request.force_new_deployment.unwrap_or(false);
    let mut definition = state
        .definition(&service.family, service.revision)
        .ok_or_else(|| {
            EcsError::new(
                ErrorCode::ServerException,
                "the service's task definition is missing",
            )
        })?;
    if let Some(given) = request.task_definition.as_deref() {
        let wanted = runnable_definition(state, given)?;
        ctx.policy.check_task_definition(&wanted.spec)?;
        if (wanted.family.as_str(), wanted.revision) != (service.family.as_str(), service.revision)
        {
            redeploy = true;
        }
        definition = wanted;
    }
    // The placement the service will have, with the definition it will run (what is
    // stored was checked when it was given).
    if request.placement_constraints.is_some()
        || request.placement_strategy.is_some()
        || request.task_definition.is_some()
    {
        check_placement(
            definition,
            request
                .placement_constraints
                .as_deref()
                .unwrap_or(&service.placement_constraints),
            request
                .placement_strategy
                .as_deref()
                .unwrap_or(&service.placement_strategy),
            Scheduler::Service,
        )?;
    }
    if let Some(load_balancers) = &request.load_balancers {
        check_load_balancers(state, load_balancers, definition)?;
        service.load_balancers = load_balancers.clone();
        redeploy = true;
    }
    if let Some(constraints) = request.placement_constraints {
        service.placement_constraints = constraints;
        redeploy = true;
    }
    if let Some(strategy) = request.placement_strategy {
        service.placement_strategy = strategy;
        redeploy = true;
    }
    if let Some(network) = request.network_configuration {
        service.network_configuration = Some(network);
        redeploy = true;
    }
    if let Some(grace) = request.health_check_grace_period_seconds {
        if grace < 0 {
            return Err(EcsError::invalid_parameter(
                "healthCheckGracePeriodSeconds must not be negative",
            ));
        }
        service.health_check_grace_period_seconds = Some(grace);
    }
    if let Some(value) = request.enable_execute_command {
        service.enable_execute_command = value;
    }
    if let Some(value) = request.enable_ecs_managed_tags {
        service.enable_ecs_managed_tags = value;
    }
    if let Some(value) = parse_optional_word("propagateTags", request.propagate_tags.as_deref())? {
        service.propagate_tags = value;
    }
    // Not a new deployment, as in ECS.
    if let Some(value) = parse_optional_word(
        "availabilityZoneRebalancing",
        request.availability_zone_rebalancing.as_deref(),
    )? {
        service.availability_zone_rebalancing = value;
    }
    if let Some(given) = &request.capacity_provider_strategy {
        // A strategy replaces the service's launch type; `[]` means the cluster's default.
        let strategy = super::capacity_providers::strategy_for(
            super::active_cluster(state, &cluster)?,
            None,
            given,
        )?;
        let switching = service.launch_type.is_some() && !strategy.is_empty();
        if switching || strategy != service.capacity_provider_strategy {
            if !request.force_new_deployment.unwrap_or(false) {
                return Err(EcsError::invalid_parameter(
                    "When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.",
                ));
            }
            if !strategy.is_empty() {
                service.launch_type = None;
            }
            service.capacity_provider_strategy = strategy;
            redeploy = true;
        }
    }
    if let Some(version) = request.platform_version {
        let version = fargate_platform_version(
            service.launch_type,
            !service.capacity_provider_strategy.is_empty(),
            Some(version),
        )?;
        if version != service.platform_version {
            service.platform_version = version;
            redeploy = true;
        }
    }
    if redeploy {
        start_deployment(&mut service, &definition.family, definition.revision, ctx);
    }
    let response = api::ServiceResponse {
        service: present::service(state, ctx.scope, &service),
    };
    let commands = if &service != current {
        vec![Command::PutService(Box::new(service))]
    } else {
        vec![]
    };
    Ok(Outcome { commands, response })
}

pub fn describe_services(
    state: &State,
    request: api::DescribeServicesRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeServicesResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.services.is_empty() {
        return Err(EcsError::invalid_parameter("Services cannot be empty."));
    }
    if request.services.len() > 10 {
        return Err(EcsError::invalid_parameter(
            "services can name at most 10 services",
        ));
    }
    let include_tags = request.include.iter().any(|i| i == "TAGS");
    let mut response = api::DescribeServicesResponse::default();
    for given in &request.services {
        match find_service(state, &cluster, given) {
            Ok(service) => {
                let mut shown = present::service(state, ctx.scope, service);
                if !include_tags {
                    shown.tags.clear();
                }
                response.services.push(shown)
            }
            Err(_) => response.failures.push(api::Failure {
                arn: Some(ctx.scope.service(&cluster, &service_ref(given).1)),
                reason: Some("MISSING".to_string()),
                detail: None,
            }),
        }
    }
    Ok(Outcome::read_only(response))
}

pub fn list_services(
    state: &State,
    request: api::ListServicesRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListServicesResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    let scheduling_strategy = parse_optional_word::<SchedulingStrategy>(
        "schedulingStrategy",
        request.scheduling_strategy.as_deref(),
    )?;
    let launch_type =
        parse_optional_word::<LaunchType>("launchType", request.launch_type.as_deref())?;
    let arns: Vec<String> = state
        .services
        .values()
        .filter(|s| s.cluster == cluster && s.status == ServiceStatus::Active)
        .filter(|s| scheduling_strategy.is_none_or(|k| s.scheduling_strategy == k))
        .filter(|s| {
            launch_type.is_none_or(|l| {
                let strategy = &s.capacity_provider_strategy;
                s.launch_type
                    .or_else(|| super::capacity_providers::launch_type_of_strategy(strategy))
                    .unwrap_or_default()
                    == l
            })
        })
        .map(|s| ctx.scope.service(&s.cluster, &s.name))
        .collect();
    let (service_arns, next_token) = paginate(
        &arns,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(api::ListServicesResponse {
        service_arns,
        next_token,
    }))
}

pub fn delete_service(
    state: &State,
    request: api::DeleteServiceRequest,
    ctx: &mut Context,
) -> EcsResult<api::ServiceResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    let current = find_service(state, &cluster, &request.service)?;
    if current.status == ServiceStatus::Inactive {
        return Err(EcsError::new(
            ErrorCode::ServiceNotActiveException,
            "Service was not ACTIVE.",
        ));
    }
    if current.desired_count > 0
        && !request.force.unwrap_or(false)
        && current.scheduling_strategy == SchedulingStrategy::Replica
    {
        return Err(EcsError::invalid_parameter(
            "The service cannot be stopped while it is scaled above 0.",
        ));
    }
    let mut service = current.clone();
    service.status = ServiceStatus::Draining;
    service.desired_count = 0;
    service_deployments::service_deleted(&mut service, ctx.now);
    for deployment in &mut service.deployments {
        deployment.desired_count = 0;
        deployment.updated_at = ctx.now;
    }
    let response = api::ServiceResponse {
        service: present::service(state, ctx.scope, &service),
    };
    Ok(Outcome {
        commands: vec![Command::PutService(Box::new(service))],
        response,
    })
}

/// ListServicesByNamespace: berth has no Cloud Map namespaces (its services reach each
/// other by name through its own service discovery, which has no namespace to name), so
/// every namespace is one it does not know, answered as ECS answers one.
pub fn list_services_by_namespace(
    _state: &State,
    request: api::ListServicesByNamespaceRequest,
    _ctx: &mut Context,
) -> EcsResult<api::ListServicesByNamespaceResponse> {
    if request.namespace.is_empty() {
        return Err(EcsError::invalid_parameter("namespace is required"));
    }
    paginate::<String>(&[], request.next_token.as_deref(), request.max_results, 100)?;
    Err(EcsError::new(
        ErrorCode::NamespaceNotFoundException,
        format!(
            "The specified namespace wasn't found: '{}' (berth has no Cloud Map namespaces; services reach each other by name within their cluster)",
            request.namespace
        ),
    ))
}
