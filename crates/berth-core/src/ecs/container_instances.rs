use berth_api as api;

use super::{invalid_word, paginate, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::{cluster_name, container_instance_ref};
use crate::model::{ContainerInstanceStatus, EcsWord};
use crate::present;
use crate::state::{Command, State};

pub fn list_container_instances(
    state: &State,
    request: api::ListContainerInstancesRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListContainerInstancesResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    // Any status but INACTIVE: a deregistered instance is never listed.
    let status = match request.status.as_deref() {
        None => None,
        Some(given) => match ContainerInstanceStatus::from_ecs(given) {
            Some(status) if status != ContainerInstanceStatus::Inactive => Some(status),
            _ => {
                let listable = ContainerInstanceStatus::ALL
                    .iter()
                    .filter(|s| **s != ContainerInstanceStatus::Inactive);
                return Err(invalid_word("status", given, listable.map(|s| s.as_ecs())));
            }
        },
    };
    let arns: Vec<String> = state
        .container_instances
        .values()
        .filter(|i| i.cluster == cluster && i.status != ContainerInstanceStatus::Inactive)
        .filter(|i| status.is_none_or(|s| i.status == s))
        .map(|i| ctx.scope.container_instance(&i.cluster, &i.id))
        .collect();
    let (container_instance_arns, next_token) = paginate(
        &arns,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(api::ListContainerInstancesResponse {
        container_instance_arns,
        next_token,
    }))
}

pub fn describe_container_instances(
    state: &State,
    request: api::DescribeContainerInstancesRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeContainerInstancesResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.container_instances.is_empty() {
        return Err(EcsError::invalid_parameter(
            "containerInstances cannot be empty.",
        ));
    }
    let mut response = api::DescribeContainerInstancesResponse::default();
    for given in &request.container_instances {
        let (_, id) = container_instance_ref(given);
        match state
            .container_instances
            .get(&id)
            .filter(|i| i.cluster == cluster)
        {
            Some(instance) => response
                .container_instances
                .push(present::container_instance(state, ctx.scope, instance)),
            None => response.failures.push(api::Failure {
                arn: Some(ctx.scope.container_instance(&cluster, &id)),
                reason: Some("MISSING".to_string()),
                detail: None,
            }),
        }
    }
    Ok(Outcome::read_only(response))
}

/// The most instances one UpdateContainerInstancesState takes, as ECS.
const MAX_UPDATE_INSTANCES: usize = 10;

/// DRAINING moves an instance's service tasks elsewhere (the scheduler replaces them
/// within each service's deployment configuration, deregistering each from its load
/// balancer first) and keeps new tasks off it; ACTIVE takes it back.
pub fn update_container_instances_state(
    state: &State,
    request: api::UpdateContainerInstancesStateRequest,
    ctx: &mut Context,
) -> EcsResult<api::UpdateContainerInstancesStateResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    let settable = [
        ContainerInstanceStatus::Active,
        ContainerInstanceStatus::Draining,
    ];
    let status = ContainerInstanceStatus::from_ecs(&request.status)
        .filter(|s| settable.contains(s))
        .ok_or_else(|| {
            invalid_word(
                "status",
                &request.status,
                settable.iter().map(|s| s.as_ecs()),
            )
        })?;
    if request.container_instances.is_empty() {
        return Err(EcsError::invalid_parameter(
            "containerInstances cannot be empty.",
        ));
    }
    if request.container_instances.len() > MAX_UPDATE_INSTANCES {
        return Err(EcsError::invalid_parameter(format!(
            "containerInstances can have at most {MAX_UPDATE_INSTANCES} items; got {}",
            request.container_instances.len()
        )));
    }
    let mut working = state.clone();
    let mut commands = Vec::new();
    let mut response = api::UpdateContainerInstancesStateResponse::default();
    for given in &request.container_instances {
        let (_, id) = container_instance_ref(given);
        let found = working
            .container_instances
            .get(&id)
            .filter(|i| i.cluster == cluster && i.status != ContainerInstanceStatus::Inactive)
            .map(|i| crate::model::ContainerInstance::clone(i));
        let Some(mut instance) = found else {
            response.failures.push(api::Failure {
                arn: Some(ctx.scope.container_instance(&cluster, &id)),
                reason: Some("MISSING".to_string()),
                detail: None,
            });
            continue;
        };
        if instance.status != status {
            instance.status = status;
            instance.version += 1;
            let command = Command::PutContainerInstance(instance.clone());
            working.apply(command.clone());
            commands.push(command);
        }
        response
            .container_instances
            .push(present::container_instance(&working, ctx.scope, &instance));
    }
    Ok(Outcome { commands, response })
}

/// Removes an instance from its cluster. With tasks still on it, ECS refuses unless
/// `force`; forced, berth gives those tasks up (their services replace them elsewhere)
/// and the instance's agent stops what still runs of them, so nothing is orphaned.
pub fn deregister_container_instance(
    state: &State,
    request: api::DeregisterContainerInstanceRequest,
    ctx: &mut Context,
) -> EcsResult<api::DeregisterContainerInstanceResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.container_instance.trim().is_empty() {
        return Err(EcsError::invalid_parameter(
            "containerInstance must not be empty",
        ));
    }
    let (_, id) = container_instance_ref(&request.container_instance);
    let mut instance = state
        .container_instances
        .get(&id)
        .filter(|i| i.cluster == cluster && i.status != ContainerInstanceStatus::Inactive)
        .map(|i| crate::model::ContainerInstance::clone(i))
        .ok_or_else(|| {
            EcsError::invalid_parameter(format!(
                "The referenced container instance was not found: {}",
                request.container_instance
            ))
        })?;
    let has_tasks = state
        .tasks
        .values()
        .any(|t| t.container_instance_id.as_deref() == Some(id.as_str()) && !t.is_stopped());
    if has_tasks && !request.force.unwrap_or(false) {
        return Err(EcsError::invalid_parameter(
            "Found running tasks on the instance.",
        ));
    }
    instance.status = ContainerInstanceStatus::Inactive;
    instance.version += 1;
    let mut working = state.clone();
    let command = Command::PutContainerInstance(instance.clone());
    working.apply(command.clone());
    Ok(Outcome {
        commands: vec![command],
        response: api::DeregisterContainerInstanceResponse {
            container_instance: present::container_instance(&working, ctx.scope, &instance),
        },
    })
}
