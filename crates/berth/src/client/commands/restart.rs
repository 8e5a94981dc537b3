//! `berth restart SERVICE`: a new deployment of the same task definition
//! (UpdateService with forceNewDeployment), followed live until its rollout is
//! COMPLETED or FAILED (see [`rollout`](super::rollout)).

use anyhow::bail;
use berth_api::{ServiceResponse, UpdateServiceRequest};

use super::event_feed::EventFeed;
use super::require_service;
use super::rollout::{self, primary_deployment};
use crate::client::ApiClient;

pub async fn run(client: &ApiClient, service: &str, wait: bool) -> anyhow::Result<()> {
    let current = require_service(client, service).await?;
    let feed = EventFeed::after(&current);
    let request = UpdateServiceRequest {
        cluster: Some(client.cluster.clone()),
        service: service.to_string(),
        force_new_deployment: Some(true),
        ..Default::default()
    };
    let updated: ServiceResponse = client.ecs("UpdateService", &request).await?;
    let Some(deployment) = primary_deployment(&updated.service) else {
        bail!("service '{service}' has no PRIMARY deployment after UpdateService");
    };
    println!("service {service} restarting (deployment {deployment})");
    if !wait {
        return Ok(());
    }
    rollout::follow(client, service, &deployment, feed).await?;
    println!("service {service} restarted (deployment {deployment} completed)");
    Ok(())
}
