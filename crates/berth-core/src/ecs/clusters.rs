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
    check_settings(&request.settings)?;
    if let Some(configuration) = &request.configuration {
        check_configuration(configuration)?;
    }
    check_service_connect_defaults(request.service_connect_defaults.as_ref())?;
    let (capacity_providers, default_capacity_provider_strategy) =
        super::capacity_providers::checked_cluster_providers(
            state,
            &request.capacity_providers,
            &request.default_capacity_provider_strategy,
        )?;
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
        settings: super::new_cluster_settings(state, request.settings),
        configuration: request.configuration,
        capacity_providers,
        default_capacity_provider_strategy,
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
                capacity_provider_name: node.capacity_provider.clone(),
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
    // ECS returns a cluster's tags, settings and configuration only when asked to.
    let included = |field: &str| request.include.iter().any(|i| i == field);
    let mut response = api::DescribeClustersResponse::default();
    for given in wanted {
        let name = cluster_name(Some(&given));
        match state.clusters.get(&name) {
            Some(cluster) => {
                let mut shown = present::cluster(state, ctx.scope, cluster);
                if !included("TAGS") {
                    shown.tags.clear();
                }
                if !included("SETTINGS") {
                    shown.settings.clear();
                }
                if !included("CONFIGURATIONS") {
                    shown.configuration = None;
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
        .map(|i| &**i)
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

/// UpdateCluster: new settings, configuration (execute command, managed storage), kept
/// and echoed. What is not given stays as it was.
pub fn update_cluster(
    state: &State,
    request: api::UpdateClusterRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = cluster_name(Some(&request.cluster));
    let mut cluster = super::active_cluster(state, &name)?.clone();
    if let Some(settings) = &request.settings {
        check_settings(settings)?;
    }
    if let Some(configuration) = &request.configuration {
        check_configuration(configuration)?;
    }
    check_service_connect_defaults(request.service_connect_defaults.as_ref())?;
    if let Some(settings) = request.settings {
        merge_settings(&mut cluster.settings, settings);
    }
    if let Some(configuration) = request.configuration {
        cluster.configuration = Some(configuration);
    }
    Ok(updated(state, ctx, cluster))
}

/// UpdateClusterSettings: the cluster's `containerInsights`, kept and echoed.
pub fn update_cluster_settings(
    state: &State,
    request: api::UpdateClusterSettingsRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = cluster_name(Some(&request.cluster));
    let mut cluster = super::active_cluster(state, &name)?.clone();
    if request.settings.is_empty() {
        return Err(EcsError::invalid_parameter("settings cannot be empty."));
    }
    check_settings(&request.settings)?;
    merge_settings(&mut cluster.settings, request.settings);
    Ok(updated(state, ctx, cluster))
}

fn updated(state: &State, ctx: &Context, cluster: Cluster) -> Outcome<api::ClusterResponse> {
    let mut preview = state.clone();
    preview.apply(Command::PutCluster(cluster.clone()));
    Outcome {
        response: api::ClusterResponse {
            cluster: present::cluster(&preview, ctx.scope, &cluster),
        },
        commands: vec![Command::PutCluster(cluster)],
    }
}

/// A setting given again replaces the one of the same name.
fn merge_settings(kept: &mut Vec<api::ClusterSetting>, given: Vec<api::ClusterSetting>) {
    for setting in given {
        kept.retain(|s| s.name != setting.name);
        kept.push(setting);
    }
}

/// The one cluster setting ECS has: `containerInsights` = enhanced | enabled | disabled.
/// berth has no CloudWatch; the value is kept and echoed.
fn check_settings(settings: &[api::ClusterSetting]) -> Result<(), EcsError> {
    for setting in settings {
        if setting.name != CONTAINER_INSIGHTS {
            return Err(super::invalid_word(
                "settings.name",
                &setting.name,
                [CONTAINER_INSIGHTS],
            ));
        }
        if !CONTAINER_INSIGHTS_VALUES.contains(&setting.value.as_str()) {
            return Err(super::invalid_word(
                "settings.value",
                &setting.value,
                CONTAINER_INSIGHTS_VALUES,
            ));
        }
    }
    Ok(())
}

const CONTAINER_INSIGHTS: &str = "containerInsights";
const CONTAINER_INSIGHTS_VALUES: [&str; 3] = ["enhanced", "enabled", "disabled"];
const EXECUTE_COMMAND_LOGGING: [&str; 3] = ["NONE", "DEFAULT", "OVERRIDE"];

/// `configuration`: `executeCommandConfiguration` and `managedStorageConfiguration`,
/// kept and echoed (berth has no KMS, CloudWatch or S3 to send anything to).
fn check_configuration(configuration: &serde_json::Value) -> Result<(), EcsError> {
    let Some(fields) = configuration.as_object() else {
        return Err(EcsError::invalid_parameter(
            "configuration must be an object",
        ));
    };
    let Some(execute_command) = fields.get("executeCommandConfiguration") else {
        return Ok(());
    };
    let logging = execute_command.get("logging").and_then(|l| l.as_str());
    if let Some(logging) = logging {
        if !EXECUTE_COMMAND_LOGGING.contains(&logging) {
            return Err(super::invalid_word(
                "configuration.executeCommandConfiguration.logging",
                logging,
                EXECUTE_COMMAND_LOGGING,
            ));
        }
    }
    let has_log_configuration = execute_command
        .get("logConfiguration")
        .is_some_and(|c| !c.is_null());
    if logging == Some("OVERRIDE") && !has_log_configuration {
        return Err(EcsError::invalid_parameter(
            "configuration.executeCommandConfiguration.logConfiguration is required when logging is OVERRIDE",
        ));
    }
    Ok(())
}

/// A default Service Connect namespace needs Cloud Map, which berth does not have: it is
/// refused by name rather than kept without effect. An empty namespace (ECS's way to
/// remove the default) is accepted: there is none to remove.
fn check_service_connect_defaults(given: Option<&serde_json::Value>) -> Result<(), EcsError> {
    let namespace = given
        .and_then(|d| d.get("namespace"))
        .and_then(|n| n.as_str())
        .unwrap_or("");
    if namespace.is_empty() {
        return Ok(());
    }
    Err(EcsError::invalid_parameter(format!(
        "serviceConnectDefaults.namespace '{namespace}' cannot be set: berth has no Cloud Map namespaces or Service Connect (its services reach each other by name through service discovery)"
    )))
}
