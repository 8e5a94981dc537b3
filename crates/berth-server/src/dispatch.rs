//! Routes `X-Amz-Target` to an ECS action, and an awsQuery `Action` to an ELBv2 action:
//! parse the body, run it, serialize the answer.

use berth_api as api;
use berth_api::elbv2 as elbv2_api;
use berth_api::elbv2::{Form, FromForm, QueryResult};
use berth_core::ecs::{self, Context, EcsResult};
use berth_core::elbv2::{self, Elbv2Error, Elbv2ErrorCode, Elbv2Result};
use berth_core::{EcsError, State};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::listener_serving::BIND_ANSWER_WAIT;
use crate::ControlPlane;

/// An error answer: HTTP status, `__type` and a message naming what is wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub error_type: String,
    pub message: String,
}

impl From<EcsError> for ApiError {
    fn from(error: EcsError) -> Self {
        ApiError {
            status: error.code.http_status(),
            error_type: error.code.as_str().to_string(),
            message: error.message,
        }
    }
}

/// Reads an awsJson body with berth-api's one decoder; the error names the field.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    use berth_api::limits::DecodeError;
    berth_api::limits::decode_json(body).map_err(|error| ApiError {
        status: 400,
        error_type: match error {
            DecodeError::Syntax(_) => "SerializationException",
            DecodeError::Shape(_) | DecodeError::Field { .. } => "InvalidParameterException",
        }
        .to_string(),
        message: error.to_string(),
    })
}

async fn run<Req, Resp>(
    control_plane: &ControlPlane,
    region: &str,
    body: &[u8],
    action: fn(&State, Req, &mut Context) -> EcsResult<Resp>,
) -> Result<Vec<u8>, ApiError>
where
    Req: DeserializeOwned + ecs::EcsRequest + Clone + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let request: Req = parse(body)?;
    let response = control_plane.run(region, request, action).await?;
    serde_json::to_vec(&response).map_err(|e| ApiError {
        status: 500,
        error_type: "ServerException".to_string(),
        message: format!("the response could not be encoded: {e}"),
    })
}

pub async fn dispatch(
    control_plane: &ControlPlane,
    target: &str,
    region: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let unknown = || ApiError {
        status: 400,
        error_type: "UnknownOperationException".to_string(),
        message: format!("berth does not know the operation '{target}'"),
    };
    let Some((prefix, action)) = target.split_once('.') else {
        return Err(unknown());
    };
    if prefix == api::BERTH_TARGET_PREFIX {
        return berth_action(control_plane, action, region, body)
            .await
            .map_err(|e| {
                if e.error_type.is_empty() {
                    unknown()
                } else {
                    e
                }
            });
    }
    if prefix != api::ECS_TARGET_PREFIX {
        return Err(unknown());
    }
    let cp = control_plane;
    match action {
        "CreateCluster" => run(cp, region, body, ecs::create_cluster).await,
        "DescribeClusters" => run(cp, region, body, ecs::describe_clusters).await,
        "ListClusters" => run(cp, region, body, ecs::list_clusters).await,
        "DeleteCluster" => run(cp, region, body, ecs::delete_cluster).await,
        "UpdateCluster" => run(cp, region, body, ecs::update_cluster).await,
        "UpdateClusterSettings" => run(cp, region, body, ecs::update_cluster_settings).await,
        "PutClusterCapacityProviders" => {
            run(cp, region, body, ecs::put_cluster_capacity_providers).await
        }
        "CreateCapacityProvider" => run(cp, region, body, ecs::create_capacity_provider).await,
        "UpdateCapacityProvider" => run(cp, region, body, ecs::update_capacity_provider).await,
        "DeleteCapacityProvider" => run(cp, region, body, ecs::delete_capacity_provider).await,
        "DescribeCapacityProviders" => {
            run(cp, region, body, ecs::describe_capacity_providers).await
        }
        "RegisterTaskDefinition" => run(cp, region, body, ecs::register_task_definition).await,
        "DescribeTaskDefinition" => run(cp, region, body, ecs::describe_task_definition).await,
        "DeregisterTaskDefinition" => run(cp, region, body, ecs::deregister_task_definition).await,
        "DeleteTaskDefinitions" => run(cp, region, body, ecs::delete_task_definitions).await,
        "ListTaskDefinitions" => run(cp, region, body, ecs::list_task_definitions).await,
        "ListTaskDefinitionFamilies" => {
            run(cp, region, body, ecs::list_task_definition_families).await
        }
        "RunTask" => run(cp, region, body, ecs::run_task).await,
        "StopTask" => run(cp, region, body, ecs::stop_task).await,
        "DescribeTasks" => run(cp, region, body, ecs::describe_tasks).await,
        "ListTasks" => run(cp, region, body, ecs::list_tasks).await,
        "CreateService" => run(cp, region, body, ecs::create_service).await,
        "UpdateService" => run(cp, region, body, ecs::update_service).await,
        "DescribeServices" => run(cp, region, body, ecs::describe_services).await,
        "ListServices" => run(cp, region, body, ecs::list_services).await,
        "DeleteService" => run(cp, region, body, ecs::delete_service).await,
        "ListServiceDeployments" => run(cp, region, body, ecs::list_service_deployments).await,
        "DescribeServiceDeployments" => {
            run(cp, region, body, ecs::describe_service_deployments).await
        }
        "DescribeServiceRevisions" => run(cp, region, body, ecs::describe_service_revisions).await,
        "TagResource" => run(cp, region, body, ecs::tag_resource).await,
        "UntagResource" => run(cp, region, body, ecs::untag_resource).await,
        "ListTagsForResource" => run(cp, region, body, ecs::list_tags_for_resource).await,
        "ListContainerInstances" => run(cp, region, body, ecs::list_container_instances).await,
        "DescribeContainerInstances" => {
            run(cp, region, body, ecs::describe_container_instances).await
        }
        "UpdateContainerInstancesState" => {
            run(cp, region, body, ecs::update_container_instances_state).await
        }
        "DeregisterContainerInstance" => {
            run(cp, region, body, ecs::deregister_container_instance).await
        }
        "PutAccountSetting" => run(cp, region, body, ecs::put_account_setting).await,
        "PutAccountSettingDefault" => run(cp, region, body, ecs::put_account_setting_default).await,
        "ListAccountSettings" => run(cp, region, body, ecs::list_account_settings).await,
        "DeleteAccountSetting" => run(cp, region, body, ecs::delete_account_setting).await,
        "ListServicesByNamespace" => run(cp, region, body, ecs::list_services_by_namespace).await,
        _ => Err(unknown()),
    }
}

async fn berth_action(
    control_plane: &ControlPlane,
    action: &str,
    region: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match action {
        "GetTaskLogs" => {
            let request: api::GetTaskLogsRequest = parse(body)?;
            let cluster = berth_core::ids::cluster_name(request.cluster.as_deref());
            let (_, task_id) = berth_core::ids::task_ref(&request.task);
            let known = control_plane
                .store
                .read(|s| s.tasks.get(&task_id).is_some_and(|t| t.cluster == cluster));
            if !known {
                return Err(EcsError::invalid_parameter(format!(
                    "task '{}' was not found in cluster '{cluster}'",
                    request.task
                ))
                .into());
            }
            let source = control_plane.task_agents().ok_or_else(|| ApiError {
                status: 500,
                error_type: "ServerException".to_string(),
                message: "no agent serves logs on this server".to_string(),
            })?;
            let tail = request.tail.map(|t| t.max(0) as u64);
            let lines = source
                .task_logs(
                    &task_id,
                    request.container_name.as_deref(),
                    request.since,
                    tail,
                )
                .await
                .map_err(|message| ApiError {
                    status: 500,
                    error_type: "ServerException".to_string(),
                    message,
                })?;
            serde_json::to_vec(&api::GetTaskLogsResponse { lines }).map_err(|e| ApiError {
                status: 500,
                error_type: "ServerException".to_string(),
                message: e.to_string(),
            })
        }
        "GetTaskStats" => {
            let request: api::GetTaskStatsRequest = parse(body)?;
            let response =
                crate::task_stats::get_task_stats(control_plane, region, request).await?;
            serde_json::to_vec(&response).map_err(|e| ApiError {
                status: 500,
                error_type: "ServerException".to_string(),
                message: e.to_string(),
            })
        }
        _ => Err(ApiError {
            status: 400,
            error_type: String::new(),
            message: String::new(),
        }),
    }
}

/// An ELBv2 answer: HTTP status and the XML document (result or `<ErrorResponse>`).
#[derive(Debug)]
pub struct QueryAnswer {
    pub status: u16,
    pub document: String,
}

fn query_error(error: &Elbv2Error, request_id: &str) -> QueryAnswer {
    QueryAnswer {
        status: error.code.http_status(),
        document: elbv2_api::error_document(
            error.code.is_sender_fault(),
            error.code.as_str(),
            &error.message,
            request_id,
        ),
    }
}

/// Runs one ELBv2 action atomically against the store, as `ControlPlane::run` does for ECS.
async fn run_elbv2<Req, Resp>(
    control_plane: &ControlPlane,
    region: &str,
    form: &Form,
    action: fn(&State, Req, &mut Context) -> Elbv2Result<Resp>,
) -> Result<Resp, Elbv2Error>
where
    Req: FromForm + Clone + Send + 'static,
    Resp: QueryResult + Send + 'static,
{
    let request = Req::from_form(&form.root()).map_err(|error| {
        Elbv2Error::validation(format!(
            "1 validation error detected: parameter '{}' {}",
            error.field, error.message
        ))
    })?;
    let outcome = control_plane
        .transact(region, move |state, ctx| {
            action(state, request.clone(), ctx).map(|o| (o.commands, o.response))
        })
        .await;
    match outcome {
        Ok(result) => result,
        Err(store_error) => {
            tracing::error!(error = %store_error, "store write failed");
            Err(Elbv2Error::new(
                Elbv2ErrorCode::InternalFailure,
                "the store could not save the change; nothing was changed",
            ))
        }
    }
}

async fn answer_elbv2<Req, Resp>(
    control_plane: &ControlPlane,
    region: &str,
    form: &Form,
    name: &str,
    request_id: &str,
    action: fn(&State, Req, &mut Context) -> Elbv2Result<Resp>,
) -> QueryAnswer
where
    Req: FromForm + Clone + Send + 'static,
    Resp: QueryResult + Send + 'static,
{
    match run_elbv2(control_plane, region, form, action).await {
        Ok(result) => QueryAnswer {
            status: 200,
            document: elbv2_api::response_document(name, &result, request_id),
        },
        Err(error) => {
            if error.code.http_status() >= 500 {
                tracing::error!(
                    action = name,
                    code = error.code.as_str(),
                    "{}",
                    error.message
                );
            }
            query_error(&error, request_id)
        }
    }
}

/// CreateListener and ModifyListener: stored as any action; then, when a balancer runs
/// beside this control plane and the listener's port is new, answered only once the
/// balancer has tried to bind it (waiting at most `BIND_ANSWER_WAIT`). A port it cannot
/// bind fails the request and is taken back: a created listener is removed, a modified
/// one put back as it was, so a failed request leaves nothing changed, as a refused one.
async fn answer_bound_listener<Req>(
    control_plane: &ControlPlane,
    region: &str,
    form: &Form,
    name: &str,
    request_id: &str,
    action: fn(&State, Req, &mut Context) -> Elbv2Result<elbv2_api::ListenersResult>,
) -> QueryAnswer
where
    Req: FromForm + Clone + Send + 'static,
{
    let before = control_plane.store.snapshot();
    let answer = match run_elbv2(control_plane, region, form, action).await {
        Ok(result) => match check_bound(control_plane, &before, &result).await {
            Ok(()) => Ok(with_serving_state(control_plane, result)),
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    match answer {
        Ok(result) => QueryAnswer {
            status: 200,
            document: elbv2_api::response_document(name, &result, request_id),
        },
        Err(error) => query_error(&error, request_id),
    }
}

/// Waits for the balancer's word on the listener `result` names, if its port is new
/// since `before`; takes the change back if the balancer cannot bind it.
async fn check_bound(
    control_plane: &ControlPlane,
    before: &State,
    result: &elbv2_api::ListenersResult,
) -> Result<(), Elbv2Error> {
    let Some(listener_id) = result
        .listeners
        .first()
        .and_then(|l| listener_id(&l.listener_arn))
    else {
        return Ok(());
    };
    let previous = before.listeners.get(&listener_id).cloned();
    let Some(stored) = control_plane
        .store
        .read(|state| state.listeners.get(&listener_id).cloned())
    else {
        return Ok(());
    };
    if previous.as_ref().is_some_and(|p| p.port == stored.port) {
        return Ok(());
    }
    let revision = *control_plane.store.watch().borrow();
    let status = control_plane
        .listener_serving
        .status_after(revision, &listener_id, BIND_ANSWER_WAIT)
        .await;
    let Some(berth_lb::ListenerStatus::NotServing { failure, .. }) = status else {
        return Ok(());
    };
    // Taken back only if nobody changed it since.
    let undo = {
        let stored = stored.clone();
        let previous = previous.clone();
        move |state: &State, _: &mut Context| {
            let commands = match (state.listeners.get(&stored.id), &previous) {
                (Some(now), None) if *now == stored => {
                    vec![berth_core::Command::RemoveListener(stored.id.clone())]
                }
                (Some(now), Some(previous)) if *now == stored => {
                    vec![berth_core::Command::PutListener(Box::new(previous.clone()))]
                }
                _ => Vec::new(),
            };
            Ok::<_, std::convert::Infallible>((commands, ()))
        }
    };
    let region = control_plane.default_region.clone();
    if let Err(store_error) = control_plane.transact(&region, undo).await {
        tracing::error!(error = %store_error, "store write failed");
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::InternalFailure,
            format!(
                "the load balancer cannot bind port {} ({failure}), and the store could not take the change back",
                stored.port
            ),
        ));
    }
    let message = match previous {
        None => format!(
            "Port {} cannot be bound by berth's load balancer: {failure}; the listener was not created",
            stored.port
        ),
        Some(previous) => format!(
            "Port {} cannot be bound by berth's load balancer: {failure}; the listener keeps port {}",
            stored.port, previous.port
        ),
    };
    Err(Elbv2Error::new(
        Elbv2ErrorCode::InvalidConfigurationRequest,
        message,
    ))
}

/// The listener id at the end of a listener ARN.
fn listener_id(arn: &str) -> Option<String> {
    match elbv2::parse_elbv2_arn(arn) {
        Some(elbv2::Elbv2Ref::Listener { id, .. }) => Some(id),
        _ => None,
    }
}

/// Adds the balancer's word on each listener (berth's own `BerthServingState`).
fn with_serving_state(
    control_plane: &ControlPlane,
    mut result: elbv2_api::ListenersResult,
) -> elbv2_api::ListenersResult {
    use elbv2_api::{ServingCode, ServingState};
    for listener in &mut result.listeners {
        let Some(id) = listener_id(&listener.listener_arn) else {
            continue;
        };
        listener.serving_state =
            control_plane
                .listener_serving
                .status(&id)
                .map(|status| match status {
                    berth_lb::ListenerStatus::Serving { .. } => ServingState {
                        code: ServingCode::Serving,
                        reason: None,
                    },
                    berth_lb::ListenerStatus::NotServing {
                        failure,
                        still_serving_at,
                    } => ServingState {
                        code: ServingCode::NotServing,
                        reason: Some(match still_serving_at {
                            Some(old) => format!("{failure} (still serving at {old})"),
                            None => failure.to_string(),
                        }),
                    },
                });
    }
    result
}

async fn answer_described_listeners(
    control_plane: &ControlPlane,
    region: &str,
    form: &Form,
    name: &str,
    request_id: &str,
) -> QueryAnswer {
    match run_elbv2(control_plane, region, form, elbv2::describe_listeners).await {
        Ok(result) => QueryAnswer {
            status: 200,
            document: elbv2_api::response_document(
                name,
                &with_serving_state(control_plane, result),
                request_id,
            ),
        },
        Err(error) => query_error(&error, request_id),
    }
}

/// Routes an awsQuery request (ELBv2) by its `Action` parameter.
pub async fn dispatch_query(
    control_plane: &ControlPlane,
    region: &str,
    body: &[u8],
    request_id: &str,
) -> QueryAnswer {
    let form = match Form::parse(body) {
        Ok(form) => form,
        Err(error) => {
            return query_error(
                &Elbv2Error::new(
                    Elbv2ErrorCode::ValidationError,
                    format!("the request body is not a valid form: {error}"),
                ),
                request_id,
            )
        }
    };
    let action = form.action().unwrap_or("").to_string();
    if let Some(version) = form.root().string("Version") {
        if version != elbv2_api::ELBV2_VERSION {
            return query_error(
                &Elbv2Error::new(
                    Elbv2ErrorCode::InvalidAction,
                    format!(
                        "berth speaks ELBv2 version {}, not '{version}'",
                        elbv2_api::ELBV2_VERSION
                    ),
                ),
                request_id,
            );
        }
    }
    let (cp, r, f, id) = (control_plane, region, &form, request_id);
    match action.as_str() {
        "CreateLoadBalancer" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::create_load_balancer).await
        }
        "DescribeLoadBalancers" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::describe_load_balancers).await
        }
        "DeleteLoadBalancer" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::delete_load_balancer).await
        }
        "DescribeLoadBalancerAttributes" => {
            answer_elbv2(
                cp,
                r,
                f,
                &action,
                id,
                elbv2::describe_load_balancer_attributes,
            )
            .await
        }
        "ModifyLoadBalancerAttributes" => {
            answer_elbv2(
                cp,
                r,
                f,
                &action,
                id,
                elbv2::modify_load_balancer_attributes,
            )
            .await
        }
        "CreateTargetGroup" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::create_target_group).await
        }
        "DescribeTargetGroups" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::describe_target_groups).await
        }
        "ModifyTargetGroup" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::modify_target_group).await
        }
        "DeleteTargetGroup" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::delete_target_group).await
        }
        "DescribeTargetGroupAttributes" => {
            answer_elbv2(
                cp,
                r,
                f,
                &action,
                id,
                elbv2::describe_target_group_attributes,
            )
            .await
        }
        "ModifyTargetGroupAttributes" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::modify_target_group_attributes).await
        }
        "CreateListener" => {
            answer_bound_listener(cp, r, f, &action, id, elbv2::create_listener).await
        }
        "DescribeListeners" => answer_described_listeners(cp, r, f, &action, id).await,
        "ModifyListener" => {
            answer_bound_listener(cp, r, f, &action, id, elbv2::modify_listener).await
        }
        "DeleteListener" => answer_elbv2(cp, r, f, &action, id, elbv2::delete_listener).await,
        "DescribeListenerAttributes" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::describe_listener_attributes).await
        }
        "ModifyListenerAttributes" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::modify_listener_attributes).await
        }
        "CreateRule" => answer_elbv2(cp, r, f, &action, id, elbv2::create_rule).await,
        "DescribeRules" => answer_elbv2(cp, r, f, &action, id, elbv2::describe_rules).await,
        "ModifyRule" => answer_elbv2(cp, r, f, &action, id, elbv2::modify_rule).await,
        "DeleteRule" => answer_elbv2(cp, r, f, &action, id, elbv2::delete_rule).await,
        "SetRulePriorities" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::set_rule_priorities).await
        }
        "RegisterTargets" => answer_elbv2(cp, r, f, &action, id, elbv2::register_targets).await,
        "DeregisterTargets" => answer_elbv2(cp, r, f, &action, id, elbv2::deregister_targets).await,
        "DescribeTargetHealth" => {
            answer_elbv2(cp, r, f, &action, id, elbv2::describe_target_health).await
        }
        "AddTags" => answer_elbv2(cp, r, f, &action, id, elbv2::add_tags).await,
        "RemoveTags" => answer_elbv2(cp, r, f, &action, id, elbv2::remove_tags).await,
        "DescribeTags" => answer_elbv2(cp, r, f, &action, id, elbv2::describe_tags).await,
        "" => query_error(
            &Elbv2Error::new(Elbv2ErrorCode::InvalidAction, "the request names no Action"),
            request_id,
        ),
        other => query_error(
            &Elbv2Error::new(
                Elbv2ErrorCode::InvalidAction,
                format!("berth does not know the ELBv2 action '{other}'"),
            ),
            request_id,
        ),
    }
}
