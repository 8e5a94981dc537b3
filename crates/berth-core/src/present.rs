//! Turns berth's records into ECS's wire shapes, with the defaults ECS echoes.

use berth_api as api;

use crate::ids::ArnScope;
use crate::model::{
    Cluster, ContainerInstance, ContainerInstanceStatus, Service, ServiceDeploymentRecord,
    ServiceStatus, Task, TaskDefinitionRecord, TaskStatus,
};
use crate::resources::FixedHostPorts;
use crate::spec::NetworkMode;
use crate::state::State;

pub fn cluster(state: &State, scope: &ArnScope, cluster: &Cluster) -> api::Cluster {
    let tasks = state.tasks.values().filter(|t| t.cluster == cluster.name);
    let (mut running, mut pending) = (0, 0);
    for task in tasks {
        match task.last_status {
            TaskStatus::Running => running += 1,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => pending += 1,
            _ => {}
        }
    }
    api::Cluster {
        cluster_arn: scope.cluster(&cluster.name),
        cluster_name: cluster.name.clone(),
        status: cluster.status.as_ecs().to_string(),
        registered_container_instances_count: state
            .container_instances
            .values()
            .filter(|i| i.cluster == cluster.name && i.status != ContainerInstanceStatus::Inactive)
            .count() as i64,
        running_tasks_count: running,
        pending_tasks_count: pending,
        active_services_count: state
            .services
            .values()
            .filter(|s| s.cluster == cluster.name && s.status == ServiceStatus::Active)
            .count() as i64,
        statistics: vec![],
        tags: cluster.tags.clone(),
        settings: cluster.settings.clone(),
        capacity_providers: cluster.capacity_providers.clone(),
        default_capacity_provider_strategy: cluster.default_capacity_provider_strategy.clone(),
        configuration: cluster.configuration.clone(),
    }
}

pub fn task_definition(scope: &ArnScope, record: &TaskDefinitionRecord) -> api::TaskDefinition {
    let spec = &record.spec;
    let network_mode = spec
        .network_mode
        .clone()
        .unwrap_or_else(|| "bridge".to_string());
    let container_definitions = spec
        .container_definitions
        .iter()
        .map(|c| container_definition(c, &network_mode))
        .collect();
    let compatibilities = compatibilities(spec, &network_mode);
    api::TaskDefinition {
        task_definition_arn: scope.task_definition(&record.family, record.revision),
        container_definitions,
        family: record.family.clone(),
        task_role_arn: spec.task_role_arn.clone(),
        execution_role_arn: spec.execution_role_arn.clone(),
        network_mode,
        revision: i64::from(record.revision),
        volumes: spec.volumes.clone(),
        status: record.status.as_ecs().to_string(),
        requires_attributes: vec![],
        placement_constraints: spec.placement_constraints.clone(),
        compatibilities,
        runtime_platform: spec.runtime_platform.clone(),
        requires_compatibilities: spec.requires_compatibilities.clone(),
        cpu: spec.cpu.clone(),
        memory: spec.memory.clone(),
        pid_mode: spec.pid_mode.clone(),
        ipc_mode: spec.ipc_mode.clone(),
        proxy_configuration: spec.proxy_configuration.clone(),
        inference_accelerators: spec.inference_accelerators.clone(),
        ephemeral_storage: spec.ephemeral_storage.clone(),
        registered_at: record.registered_at.as_epoch_seconds(),
        deregistered_at: record.deregistered_at.map(|t| t.as_epoch_seconds()),
        registered_by: None,
        enable_fault_injection: spec.enable_fault_injection,
    }
}

/// The launch types ECS validated a definition against, as ECS computes them: EC2
/// always; EXTERNAL (ECS Anywhere) unless the network mode is awsvpc, which external
/// instances lack; FARGATE when the definition could run there: awsvpc, with task-level
/// cpu and memory.
fn compatibilities(spec: &api::RegisterTaskDefinitionRequest, network_mode: &str) -> Vec<String> {
    let mut compatibilities = vec!["EC2"];
    if network_mode == "awsvpc" {
        let sized = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
        if sized(&spec.cpu) && sized(&spec.memory) {
            compatibilities.push("FARGATE");
        }
    } else {
        compatibilities.push("EXTERNAL");
    }
    compatibilities.into_iter().map(String::from).collect()
}

/// ECS echoes `cpu: 0, essential: true` and empty lists for what was left out.
fn container_definition(
    definition: &api::ContainerDefinition,
    network_mode: &str,
) -> api::ContainerDefinition {
    let mut shown = definition.clone();
    shown.cpu.get_or_insert(0);
    shown.essential.get_or_insert(true);
    shown.environment.get_or_insert_with(Vec::new);
    shown.mount_points.get_or_insert_with(Vec::new);
    shown.volumes_from.get_or_insert_with(Vec::new);
    let port_mappings = shown.port_mappings.get_or_insert_with(Vec::new);
    for mapping in port_mappings.iter_mut() {
        mapping.protocol.get_or_insert_with(|| "tcp".to_string());
        if matches!(network_mode, "host" | "awsvpc") && mapping.host_port.is_none() {
            mapping.host_port = mapping.container_port;
        }
    }
    shown
}

pub fn task(scope: &ArnScope, task: &Task) -> api::Task {
    let task_arn = scope.task(&task.cluster, &task.id);
    let containers = task
        .containers
        .iter()
        .map(|c| api::Container {
            container_arn: scope.container(&task.cluster, &task.id, &c.id),
            task_arn: task_arn.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            image_digest: c.image_digest.clone(),
            runtime_id: c.runtime_id.clone(),
            last_status: c.last_status.as_ecs().to_string(),
            exit_code: c.exit_code,
            reason: c.reason.clone(),
            network_bindings: c.network_bindings.clone(),
            network_interfaces: match (&task.private_ipv4_address, task.network_mode) {
                (Some(ip), Some(NetworkMode::Awsvpc)) => vec![api::NetworkInterface {
                    attachment_id: Some(eni_attachment_id(&task.id)),
                    private_ipv4_address: Some(ip.clone()),
                }],
                _ => vec![],
            },
            health_status: c.health_status.as_ecs().to_string(),
            cpu: c.cpu.map(|v| v.to_string()),
            memory: c.memory.map(|v| v.to_string()),
            memory_reservation: c.memory_reservation.map(|v| v.to_string()),
        })
        .collect();
    let attachments = match (&task.private_ipv4_address, task.network_mode) {
        (ip, Some(NetworkMode::Awsvpc)) => vec![api::Attachment {
            id: Some(eni_attachment_id(&task.id)),
            attachment_type: Some("ElasticNetworkInterface".to_string()),
            status: Some(
                if task.is_stopped() {
                    "DELETED"
                } else {
                    "ATTACHED"
                }
                .to_string(),
            ),
            details: ip
                .iter()
                .map(|ip| api::KeyValuePair {
                    name: Some("privateIPv4Address".to_string()),
                    value: Some(ip.clone()),
                })
                .collect(),
        }],
        _ => vec![],
    };
    let ts = |t: Option<crate::Timestamp>| t.map(|t| t.as_epoch_seconds());
    api::Task {
        task_arn,
        cluster_arn: scope.cluster(&task.cluster),
        task_definition_arn: scope.task_definition(&task.family, task.revision),
        container_instance_arn: task
            .container_instance_id
            .as_ref()
            .map(|id| scope.container_instance(&task.cluster, id)),
        last_status: task.last_status.as_ecs().to_string(),
        desired_status: task.desired_status.as_ecs().to_string(),
        health_status: task.health_status.as_ecs().to_string(),
        cpu: task.cpu.clone(),
        memory: task.memory.clone(),
        containers,
        launch_type: Some(task.launch_type.unwrap_or_default().as_ecs().to_string()),
        capacity_provider_name: task.capacity_provider_name.clone(),
        overrides: task.overrides.clone(),
        started_by: task.started_by.clone(),
        group: task.group.clone(),
        version: task.version as i64,
        created_at: task.created_at.as_epoch_seconds(),
        pull_started_at: ts(task.pull_started_at),
        pull_stopped_at: ts(task.pull_stopped_at),
        started_at: ts(task.started_at),
        connectivity: task.started_at.map(|_| "CONNECTED".to_string()),
        connectivity_at: ts(task.started_at),
        stopping_at: ts(task.stopping_at),
        execution_stopped_at: ts(task.execution_stopped_at),
        stopped_at: ts(task.stopped_at),
        stop_code: task.stop_code.map(|c| c.as_ecs().to_string()),
        stopped_reason: task.stopped_reason.clone(),
        attachments,
        tags: task.tags.clone(),
        enable_execute_command: Some(false),
    }
}

fn eni_attachment_id(task_id: &str) -> String {
    // A stable, UUID-shaped id derived from the task id.
    let hex: String = task_id
        .chars()
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub fn service(state: &State, scope: &ArnScope, service: &Service) -> api::Service {
    let tasks: Vec<&Task> = state
        .tasks_of_service(&service.cluster, &service.name)
        .collect();
    let count = |deployment: Option<&str>, running: bool| {
        tasks
            .iter()
            .filter(|t| t.desired_status == crate::model::DesiredStatus::Running)
            .filter(|t| deployment.is_none() || t.deployment_id.as_deref() == deployment)
            .filter(|t| {
                if running {
                    t.last_status == TaskStatus::Running
                } else {
                    matches!(
                        t.last_status,
                        TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
                    )
                }
            })
            .count() as i64
    };
    let launch_type = service.launch_type.unwrap_or_default().as_ecs();
    // Fargate services show their platform; EC2 and EXTERNAL ones have none.
    // berth's capacity providers are Fargate's: a service with a strategy is a Fargate one.
    let fargate = service.launch_type == Some(crate::model::LaunchType::Fargate)
        || !service.capacity_provider_strategy.is_empty();
    // ECS shows a launch type or a strategy, never both.
    let shown_launch_type =
        (service.capacity_provider_strategy.is_empty()).then(|| launch_type.to_string());
    let platform_version = fargate.then(|| {
        service
            .platform_version
            .clone()
            .unwrap_or_else(|| "LATEST".to_string())
    });
    let platform_family = fargate.then(|| {
        state
            .definition(&service.family, service.revision)
            .and_then(|d| d.spec.runtime_platform.as_ref())
            .and_then(|p| p.get("operatingSystemFamily"))
            .and_then(|f| f.as_str())
            .filter(|f| *f != "LINUX")
            .unwrap_or("Linux")
            .to_string()
    });
    let deployments = service
        .deployments
        .iter()
        .map(|d| api::Deployment {
            id: d.id.clone(),
            status: d.status.as_ecs().to_string(),
            task_definition: scope.task_definition(&d.family, d.revision),
            desired_count: d.desired_count,
            pending_count: count(Some(&d.id), false),
            running_count: count(Some(&d.id), true),
            failed_tasks: d.failed_tasks,
            created_at: d.created_at.as_epoch_seconds(),
            updated_at: d.updated_at.as_epoch_seconds(),
            launch_type: shown_launch_type.clone(),
            network_configuration: d.network_configuration.clone(),
            rollout_state: d.rollout_state.as_ecs().to_string(),
            rollout_state_reason: d.rollout_state_reason.clone(),
        })
        .collect();
    let mut deployment_configuration = service.deployment_configuration.clone();
    deployment_configuration.maximum_percent = Some(service.maximum_percent());
    deployment_configuration.minimum_healthy_percent = Some(service.minimum_healthy_percent());
    deployment_configuration
        .deployment_circuit_breaker
        .get_or_insert_with(Default::default);
    api::Service {
        service_arn: scope.service(&service.cluster, &service.name),
        service_name: service.name.clone(),
        cluster_arn: scope.cluster(&service.cluster),
        load_balancers: service.load_balancers.clone(),
        service_registries: vec![],
        status: service.status.as_ecs().to_string(),
        desired_count: service.desired_count,
        running_count: count(None, true),
        pending_count: count(None, false),
        launch_type: shown_launch_type.clone(),
        capacity_provider_strategy: service.capacity_provider_strategy.clone(),
        platform_version,
        platform_family,
        task_definition: scope.task_definition(&service.family, service.revision),
        deployment_configuration,
        deployments,
        role_arn: service.role_arn.clone(),
        events: service
            .events
            .iter()
            .map(|e| api::ServiceEvent {
                id: e.id.clone(),
                created_at: e.created_at.as_epoch_seconds(),
                message: e.message.clone(),
            })
            .collect(),
        created_at: service.created_at.as_epoch_seconds(),
        placement_constraints: service.placement_constraints.clone(),
        placement_strategy: service.placement_strategy.clone(),
        network_configuration: service.network_configuration.clone(),
        health_check_grace_period_seconds: service.health_check_grace_period_seconds,
        scheduling_strategy: service.scheduling_strategy.as_ecs().to_string(),
        deployment_controller: api::DeploymentController {
            controller_type: "ECS".to_string(),
        },
        tags: service.tags.clone(),
        created_by: None,
        enable_ecs_managed_tags: service.enable_ecs_managed_tags,
        propagate_tags: service.propagate_tags.as_ecs().to_string(),
        enable_execute_command: service.enable_execute_command,
        availability_zone_rebalancing: service.availability_zone_rebalancing.as_ecs().to_string(),
    }
}

/// The tasks of `deployment` (an `ecs-svc/` id) wanted running: (running, pending).
fn deployment_task_counts(state: &State, service: &Service, deployment: &str) -> (i64, i64) {
    let (mut running, mut pending) = (0, 0);
    for task in state
        .tasks_of_service(&service.cluster, &service.name)
        .filter(|t| t.desired_status == crate::model::DesiredStatus::Running)
        .filter(|t| t.deployment_id.as_deref() == Some(deployment))
    {
        match task.last_status {
            TaskStatus::Running => running += 1,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => pending += 1,
            _ => {}
        }
    }
    (running, pending)
}

/// A revision's summary: the service's live deployments that run it (the target's own
/// deployment, or a rollback to it), with their counts.
fn revision_summary(
    state: &State,
    scope: &ArnScope,
    service: &Service,
    revision_id: &str,
) -> api::ServiceRevisionSummary {
    let runs_it = |deployment: &str| {
        service.service_deployments.iter().any(|r| {
            (r.id == revision_id && r.deployment_id == deployment)
                || r.rollback
                    .as_ref()
                    .is_some_and(|b| b.revision_id == revision_id && b.deployment_id == deployment)
        })
    };
    let mut summary = api::ServiceRevisionSummary {
        arn: scope.service_revision(&service.cluster, &service.name, revision_id),
        ..Default::default()
    };
    for deployment in service.deployments.iter().filter(|d| runs_it(&d.id)) {
        let (running, pending) = deployment_task_counts(state, service, &deployment.id);
        summary.requested_task_count += deployment.desired_count;
        summary.running_task_count += running;
        summary.pending_task_count += pending;
    }
    summary
}

/// ListServiceDeployments' entry for one of the service's deployments.
pub fn service_deployment_brief(
    scope: &ArnScope,
    service: &Service,
    record: &ServiceDeploymentRecord,
) -> api::ServiceDeploymentBrief {
    api::ServiceDeploymentBrief {
        service_deployment_arn: scope.service_deployment(
            &service.cluster,
            &service.name,
            &record.id,
        ),
        service_arn: scope.service(&service.cluster, &service.name),
        cluster_arn: scope.cluster(&service.cluster),
        started_at: Some(record.created_at.as_epoch_seconds()),
        created_at: Some(record.created_at.as_epoch_seconds()),
        finished_at: record.finished_at.map(|t| t.as_epoch_seconds()),
        target_service_revision_arn: scope.service_revision(
            &service.cluster,
            &service.name,
            &record.id,
        ),
        status: record.status.as_ecs().to_string(),
        status_reason: Some(record.status_reason.clone()),
    }
}

/// DescribeServiceDeployments' view of one of the service's deployments.
pub fn service_deployment(
    state: &State,
    scope: &ArnScope,
    service: &Service,
    record: &ServiceDeploymentRecord,
) -> api::ServiceDeployment {
    let breaker = record
        .deployment_configuration
        .deployment_circuit_breaker
        .clone()
        .unwrap_or_default();
    let breaker_status = if !breaker.enable {
        "DISABLED"
    } else if record.rollback.is_some()
        || record.failed_tasks >= crate::failure_threshold(record.desired_count)
    {
        "TRIGGERED"
    } else if record.status.is_finished() {
        "MONITORING_COMPLETE"
    } else {
        "MONITORING"
    };
    let mut target = revision_summary(state, scope, service, &record.id);
    if !record.status.is_finished() {
        target.requested_task_count = record.desired_count;
    }
    let mut deployment_configuration = record.deployment_configuration.clone();
    deployment_configuration
        .maximum_percent
        .get_or_insert(crate::model::DEFAULT_MAXIMUM_PERCENT);
    deployment_configuration
        .minimum_healthy_percent
        .get_or_insert(crate::model::DEFAULT_MINIMUM_HEALTHY_PERCENT);
    deployment_configuration
        .deployment_circuit_breaker
        .get_or_insert_with(Default::default);
    api::ServiceDeployment {
        service_deployment_arn: scope.service_deployment(
            &service.cluster,
            &service.name,
            &record.id,
        ),
        service_arn: scope.service(&service.cluster, &service.name),
        cluster_arn: scope.cluster(&service.cluster),
        created_at: Some(record.created_at.as_epoch_seconds()),
        started_at: Some(record.created_at.as_epoch_seconds()),
        finished_at: record.finished_at.map(|t| t.as_epoch_seconds()),
        stopped_at: record.stopped_at.map(|t| t.as_epoch_seconds()),
        updated_at: Some(record.updated_at.as_epoch_seconds()),
        source_service_revisions: record
            .source_revisions
            .iter()
            .map(|id| revision_summary(state, scope, service, id))
            .collect(),
        target_service_revision: Some(target),
        status: record.status.as_ecs().to_string(),
        status_reason: Some(record.status_reason.clone()),
        deployment_configuration: Some(deployment_configuration),
        rollback: record.rollback.as_ref().map(|b| api::Rollback {
            reason: Some(b.reason.clone()),
            started_at: Some(b.started_at.as_epoch_seconds()),
            service_revision_arn: (!b.revision_id.is_empty())
                .then(|| scope.service_revision(&service.cluster, &service.name, &b.revision_id)),
        }),
        deployment_circuit_breaker: Some(api::ServiceDeploymentCircuitBreaker {
            status: breaker_status.to_string(),
            failure_count: record.failed_tasks,
            threshold: crate::failure_threshold(record.desired_count),
        }),
    }
}

/// DescribeServiceRevisions' view of the revision a service deployment rolled out.
pub fn service_revision(
    state: &State,
    scope: &ArnScope,
    service: &Service,
    record: &ServiceDeploymentRecord,
) -> api::ServiceRevision {
    let revision = &record.revision;
    let container_images = state
        .definition(&revision.family, revision.revision)
        .map(|d| {
            d.spec
                .container_definitions
                .iter()
                .map(|c| api::ContainerImage {
                    container_name: c.name.clone().unwrap_or_default(),
                    image: c.image.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    // ECS shows a launch type or a strategy, never both (as on the service).
    let launch_type = revision.capacity_provider_strategy.is_empty().then(|| {
        revision
            .launch_type
            .unwrap_or_default()
            .as_ecs()
            .to_string()
    });
    api::ServiceRevision {
        service_revision_arn: scope.service_revision(&service.cluster, &service.name, &record.id),
        service_arn: scope.service(&service.cluster, &service.name),
        cluster_arn: scope.cluster(&service.cluster),
        task_definition: scope.task_definition(&revision.family, revision.revision),
        capacity_provider_strategy: revision.capacity_provider_strategy.clone(),
        launch_type,
        platform_version: revision.platform_version.clone(),
        load_balancers: revision.load_balancers.clone(),
        network_configuration: revision.network_configuration.clone(),
        container_images,
        guard_duty_enabled: false,
        created_at: Some(revision.created_at.as_epoch_seconds()),
    }
}

pub fn container_instance(
    state: &State,
    scope: &ArnScope,
    instance: &ContainerInstance,
) -> api::ContainerInstance {
    let live: Vec<&Task> = state
        .tasks
        .values()
        .map(|t| &**t)
        .filter(|t| t.container_instance_id.as_deref() == Some(&instance.id) && !t.is_stopped())
        .collect();
    let used_cpu: u64 = live.iter().map(|t| t.reserved_cpu).sum();
    let used_memory: u64 = live.iter().map(|t| t.reserved_memory).sum();
    // As ECS reports them: the host ports the instance's tasks hold, a set of strings.
    let mut used_ports: Vec<(String, u16)> = live
        .iter()
        .filter_map(|t| state.definition(&t.family, t.revision))
        .flat_map(|d| d.spec.fixed_host_ports())
        .collect();
    used_ports.sort();
    used_ports.dedup();
    let ports = |name: &str, used: &[(String, u16)], protocol: &str| api::Resource {
        name: Some(name.to_string()),
        resource_type: Some("STRINGSET".to_string()),
        integer_value: Some(0),
        double_value: Some(0.0),
        long_value: Some(0),
        string_set_value: Some(
            used.iter()
                .filter(|(p, _)| p.eq_ignore_ascii_case(protocol))
                .map(|(_, port)| port.to_string())
                .collect(),
        ),
    };
    let resource = |name: &str, value: u64| api::Resource {
        name: Some(name.to_string()),
        resource_type: Some("INTEGER".to_string()),
        integer_value: Some(value as i64),
        double_value: Some(0.0),
        long_value: Some(0),
        string_set_value: None,
    };
    api::ContainerInstance {
        container_instance_arn: scope.container_instance(&instance.cluster, &instance.id),
        ec2_instance_id: instance.hostname.clone(),
        capacity_provider_name: instance.capacity_provider_name.clone(),
        version: instance.version as i64,
        version_info: api::VersionInfo {
            agent_version: Some(instance.agent_version.clone()),
            agent_hash: None,
            docker_version: Some(format!("DockerVersion: {}", instance.docker_version)),
        },
        remaining_resources: vec![
            resource("CPU", instance.registered_cpu.saturating_sub(used_cpu)),
            resource(
                "MEMORY",
                instance.registered_memory.saturating_sub(used_memory),
            ),
            ports("PORTS", &used_ports, "tcp"),
            ports("PORTS_UDP", &used_ports, "udp"),
        ],
        // The agent reserves no host port of its own (ECS's lists its SSH and Docker
        // ports here).
        registered_resources: vec![
            resource("CPU", instance.registered_cpu),
            resource("MEMORY", instance.registered_memory),
            ports("PORTS", &[], "tcp"),
            ports("PORTS_UDP", &[], "udp"),
        ],
        status: instance.status.as_ecs().to_string(),
        status_reason: None,
        agent_connected: instance.agent_connected,
        running_tasks_count: live
            .iter()
            .filter(|t| t.last_status == TaskStatus::Running)
            .count() as i64,
        pending_tasks_count: live
            .iter()
            .filter(|t| t.last_status < TaskStatus::Running)
            .count() as i64,
        attributes: instance
            .attributes
            .iter()
            .map(|(name, value)| api::Attribute {
                name: name.clone(),
                value: Some(value.clone()),
                target_type: None,
                target_id: None,
            })
            .collect(),
        registered_at: instance.registered_at.as_epoch_seconds(),
        tags: instance.tags.clone(),
    }
}
