use berth_api as api;

use super::{check_name, paginate, Context, EcsResult, Outcome};
use crate::error::{EcsError, ErrorCode};
use crate::ids::cluster_name;
use crate::model::{
    Cluster, ClusterStatus, ContainerInstance, ContainerInstanceStatus, ServiceStatus,
};
use crate::present;
use crate::state::{Command, State};

pub fn create_cluster(
    state: &State,
    request: api::CreateClusterRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = request
        .cluster_name
        .unwrap_or_else(|| "default".to_string());
    check_name("clusterName", &name)?;
    super::tags::check_tags(&request.tags)?;
    if let Some(existing) = state
        .clusters
        .get(&name)
        .filter(|c| c.status == ClusterStatus::Active)
    {
        // CreateCluster is idempotent in ECS: the existing cluster is returned.
        return Ok(Outcome::read_only(api::ClusterResponse {
            cluster: present::cluster(state, ctx.scope, existing),
        }));
    }
    let cluster = Cluster {
        name: name.clone(),
        status: ClusterStatus::Active,
        tags: request.tags,
        settings: request.settings,
        configuration: request.configuration,
        created_at: ctx.now,
    };
    let mut commands = vec![Command::PutCluster(cluster.clone())];
    commands.extend(join_every_cluster_nodes(state, &name, ctx));
    let mut preview = state.clone();
    for command in commands.iter().cloned() {
        preview.apply(command);
    }
    Ok(Outcome {
        commands,
        response: api::ClusterResponse {
            cluster: present::cluster(&preview, ctx.scope, &cluster),
        },
    })
}

/// Nodes that serve every cluster (a `berth dev` machine) join a new cluster at once.
pub fn join_every_cluster_nodes(state: &State, cluster: &str, ctx: &mut Context) -> Vec<Command> {
    state
        .nodes
        .values()
        .filter(|node| node.joins_every_cluster)
        .filter(|node| {
            !state.container_instances.values().any(|i| {
                i.node_id == node.id
                    && i.cluster == cluster
                    && i.status != ContainerInstanceStatus::Inactive
            })
        })
        .map(|node| {
            Command::PutContainerInstance(ContainerInstance {
                id: ctx.ids.task_id(),
                cluster: cluster.to_string(),
                node_id: node.id.clone(),
                hostname: node.hostname.clone(),
                status: ContainerInstanceStatus::Active,
                agent_connected: node.connected,
                registered_cpu: node.cpu,
                registered_memory: node.memory,
                agent_version: node.agent_version.clone(),
                docker_version: node.docker_version.clone(),
                attributes: node.attributes.clone(),
                registered_at: ctx.now,
                version: 1,
                tags: vec![],
                auto_joined: true,
            })
        })
        .collect()
}

pub fn describe_clusters(
    state: &State,
    request: api::DescribeClustersRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeClustersResponse> {
    let wanted = request
        .clusters
        .unwrap_or_else(|| vec!["default".to_string()]);
    let include_tags = request.include.iter().any(|i| i == "TAGS");
    let mut response = api::DescribeClustersResponse::default();
    for given in wanted {
        let name = cluster_name(Some(&given));
        match state.clusters.get(&name) {
            Some(cluster) => {
                let mut shown = present::cluster(state, ctx.scope, cluster);
                if !include_tags {
                    shown.tags.clear();
                }
                response.clusters.push(shown)
            }
            None => response.failures.push(api::Failure {
                arn: Some(ctx.scope.cluster(&name)),
                reason: Some("MISSING".to_string()),
                detail: None,
            }),
        }
    }
    Ok(Outcome::read_only(response))
}

pub fn list_clusters(
    state: &State,
    request: api::ListRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListClustersResponse> {
    let arns: Vec<String> = state
        .clusters
        .values()
        .filter(|c| c.status == ClusterStatus::Active)
        .map(|c| ctx.scope.cluster(&c.name))
        .collect();
    let (cluster_arns, next_token) = paginate(
        &arns,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(api::ListClustersResponse {
        cluster_arns,
        next_token,
    }))
}

pub fn delete_cluster(
    state: &State,
    request: api::DeleteClusterRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = cluster_name(Some(&request.cluster));
    let cluster = super::active_cluster(state, &name)?;
    if state
        .services
        .values()
        .any(|s| s.cluster == name && s.status != ServiceStatus::Inactive)
    {
        return Err(EcsError::new(
            ErrorCode::ClusterContainsServicesException,
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    if state
        .tasks
        .values()
        .any(|t| t.cluster == name && !t.is_stopped())
    {
        return Err(EcsError::new(
            ErrorCode::ClusterContainsTasksException,
            "The Cluster cannot be deleted while Tasks are active.",
        ));
    }
    let instances: Vec<&ContainerInstance> = state
        .container_instances
        .values()
        .filter(|i| i.cluster == name && i.status != ContainerInstanceStatus::Inactive)
        .collect();
    if instances.iter().any(|i| !i.auto_joined) {
        return Err(EcsError::new(
            ErrorCode::ClusterContainsContainerInstancesException,
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        ));
    }
    let mut commands: Vec<Command> = instances
        .into_iter()
        .map(|i| {
            let mut gone = i.clone();
            gone.status = ContainerInstanceStatus::Inactive;
            gone.version += 1;
            Command::PutContainerInstance(gone)
        })
        .collect();
    let mut deleted = cluster.clone();
    deleted.status = ClusterStatus::Inactive;
    commands.push(Command::PutCluster(deleted.clone()));
    let mut preview = state.clone();
    for command in commands.iter().cloned() {
        preview.apply(command);
    }
    Ok(Outcome {
        commands,
        response: api::ClusterResponse {
            cluster: present::cluster(&preview, ctx.scope, &deleted),
        },
    })
}
