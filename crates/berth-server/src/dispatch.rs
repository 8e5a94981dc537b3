//! Routes `X-Amz-Target` to an action: parse the body, run it, serialize the answer.

use berth_api as api;
use berth_core::ecs::{self, Context, EcsResult};
use berth_core::{EcsError, State};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|e| ApiError {
                status: 400,
                error_type: "SerializationException".to_string(),
                message: format!("the request body is not one JSON object: {e}"),
            })?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError {
                    status: 400,
                    error_type: "SerializationException".to_string(),
                    message: format!("the request body is not valid JSON: {inner}"),
                })
            } else {
                Err(ApiError {
                    status: 400,
                    error_type: "InvalidParameterException".to_string(),
                    message: format!("field '{path}': {inner}"),
                })
            }
        }
    }
}

fn run<Req: DeserializeOwned, Resp: Serialize>(
    control_plane: &ControlPlane,
    region: &str,
    body: &[u8],
    action: fn(&State, Req, &mut Context) -> EcsResult<Resp>,
) -> Result<Vec<u8>, ApiError> {
    let request: Req = parse(body)?;
    let response = control_plane.run(region, request, action)?;
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
        "CreateCluster" => run(cp, region, body, ecs::create_cluster),
        "DescribeClusters" => run(cp, region, body, ecs::describe_clusters),
        "ListClusters" => run(cp, region, body, ecs::list_clusters),
        "DeleteCluster" => run(cp, region, body, ecs::delete_cluster),
        "RegisterTaskDefinition" => run(cp, region, body, ecs::register_task_definition),
        "DescribeTaskDefinition" => run(cp, region, body, ecs::describe_task_definition),
        "DeregisterTaskDefinition" => run(cp, region, body, ecs::deregister_task_definition),
        "ListTaskDefinitions" => run(cp, region, body, ecs::list_task_definitions),
        "ListTaskDefinitionFamilies" => run(cp, region, body, ecs::list_task_definition_families),
        "RunTask" => run(cp, region, body, ecs::run_task),
        "StopTask" => run(cp, region, body, ecs::stop_task),
        "DescribeTasks" => run(cp, region, body, ecs::describe_tasks),
        "ListTasks" => run(cp, region, body, ecs::list_tasks),
        "CreateService" => run(cp, region, body, ecs::create_service),
        "UpdateService" => run(cp, region, body, ecs::update_service),
        "DescribeServices" => run(cp, region, body, ecs::describe_services),
        "ListServices" => run(cp, region, body, ecs::list_services),
        "DeleteService" => run(cp, region, body, ecs::delete_service),
        "TagResource" => run(cp, region, body, ecs::tag_resource),
        "UntagResource" => run(cp, region, body, ecs::untag_resource),
        "ListTagsForResource" => run(cp, region, body, ecs::list_tags_for_resource),
        "ListContainerInstances" => run(cp, region, body, ecs::list_container_instances),
        "DescribeContainerInstances" => run(cp, region, body, ecs::describe_container_instances),
        _ => Err(unknown()),
    }
}

async fn berth_action(
    control_plane: &ControlPlane,
    action: &str,
    _region: &str,
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
            let source = control_plane.log_source().ok_or_else(|| ApiError {
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
        _ => Err(ApiError {
            status: 400,
            error_type: String::new(),
            message: String::new(),
        }),
    }
}
