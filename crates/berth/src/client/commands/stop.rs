//! `berth stop TASK`: StopTask by id, id prefix or ARN.

use anyhow::bail;
use berth_api::{StopTaskRequest, StopTaskResponse};

use super::{find_task, short_task_id};
use crate::client::ApiClient;

pub async fn run(client: &ApiClient, task: &str, reason: Option<String>) -> anyhow::Result<()> {
    let Some(found) = find_task(client, task).await? else {
        bail!("task '{task}' not found in cluster '{}'", client.cluster);
    };
    if found.last_status == "STOPPED" {
        bail!("task {} already stopped", short_task_id(&found.task_arn));
    }
    let request = StopTaskRequest {
        cluster: Some(client.cluster.clone()),
        task: found.task_arn.clone(),
        reason,
    };
    let response: StopTaskResponse = client.ecs("StopTask", &request).await?;
    println!("{} stopping", short_task_id(&response.task.task_arn));
    Ok(())
}
