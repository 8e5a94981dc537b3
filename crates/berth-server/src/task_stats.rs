//! `BerthV1.GetTaskStats`: berth-core decides which tasks it covers, on the store's
//! snapshot; each one's figures come from the agent that runs it (`TaskAgents`), all
//! asked at once, a few dozen at a time.

use berth_api as api;
use berth_core::ecs;
use futures_util::stream::{self, StreamExt};

use crate::dispatch::ApiError;
use crate::ControlPlane;

/// How many tasks' agents are asked at the same time.
const CONCURRENT_ASKS: usize = 32;

pub(crate) async fn get_task_stats(
    control_plane: &ControlPlane,
    region: &str,
    request: api::GetTaskStatsRequest,
) -> Result<api::GetTaskStatsResponse, ApiError> {
    let covered = control_plane
        .run(region, request, ecs::task_stats_targets)
        .await?;
    let agents = control_plane.task_agents().ok_or_else(|| ApiError {
        status: 500,
        error_type: "ServerException".to_string(),
        message: "no agent serves task figures on this server".to_string(),
    })?;
    let read: Vec<_> = stream::iter(covered.targets)
        .map(|target| {
            let agents = agents.clone();
            async move {
                let figures = agents.task_stats(&target.task_id).await;
                (target, figures)
            }
        })
        .buffered(CONCURRENT_ASKS)
        .collect()
        .await;
    let mut response = api::GetTaskStatsResponse {
        tasks: Vec::new(),
        failures: covered.failures,
    };
    for (target, figures) in read {
        match figures {
            Ok(containers) => response.tasks.push(api::TaskStats {
                task_arn: target.task_arn,
                group: target.group,
                container_instance_arn: target.container_instance_arn,
                containers,
            }),
            Err(reason) => response.failures.push(api::Failure {
                arn: Some(target.task_arn),
                reason: Some("AGENT".to_string()),
                detail: Some(reason),
            }),
        }
    }
    Ok(response)
}
