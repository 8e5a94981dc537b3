use berth_api as api;

use super::{active_cluster, invalid_word, paginate, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::{cluster_name, container_instance_ref};
use crate::model::{ContainerInstanceStatus, EcsWord};
use crate::present;
use crate::state::State;

pub fn list_container_instances(
    state: &State,
    request: api::ListContainerInstancesRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListContainerInstancesResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    active_cluster(state, &cluster)?;
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
    active_cluster(state, &cluster)?;
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
