//! `berth restart SERVICE`: a new deployment of the same task definition
//! (UpdateService with forceNewDeployment), followed until its rollout is COMPLETED or
//! FAILED, printing the service's events as they happen.

use std::time::{Duration, Instant};

use anyhow::bail;
use berth_api::{Service, ServiceResponse, UpdateServiceRequest};
use berth_core::model::{DeploymentStatus, RolloutState};

use super::event_feed::EventFeed;
use super::require_service;
use crate::client::ApiClient;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

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
    follow(client, service, &deployment, feed).await?;
    println!("service {service} restarted (deployment {deployment} completed)");
    Ok(())
}

/// Follows the rollout of `deployment` of `service`, printing the service's new events,
/// until it is COMPLETED (Ok) or FAILED, replaced or too slow (an error naming it).
pub(super) async fn follow(
    client: &ApiClient,
    service: &str,
    deployment: &str,
    mut feed: EventFeed,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let latest = require_service(client, service).await?;
        print!("{}", feed.new_lines(&latest));
        match rollout(&latest, deployment) {
            Rollout::Completed => return Ok(()),
            Rollout::Failed(reason) => {
                bail!("service '{service}': deployment {deployment} rollout FAILED: {reason}")
            }
            Rollout::Replaced(by) => bail!(
                "service '{service}': deployment {deployment} was replaced by {by} before it completed"
            ),
            Rollout::InProgress => {}
        }
        if started.elapsed() >= GIVE_UP_AFTER {
            bail!(
                "service '{service}': deployment {deployment} did not complete in {} s; see `berth events {service}`",
                GIVE_UP_AFTER.as_secs()
            );
        }
    }
}

pub(super) fn primary_deployment(service: &Service) -> Option<String> {
    service
        .deployments
        .iter()
        .find(|d| DeploymentStatus::from_ecs(&d.status) == Some(DeploymentStatus::Primary))
        .map(|d| d.id.clone())
}

#[derive(Debug, PartialEq)]
enum Rollout {
    InProgress,
    Completed,
    Failed(String),
    /// Gone from the service, or no longer PRIMARY: another deployment (a rollback, a
    /// newer update) took over; names that one.
    Replaced(String),
}

/// Where the rollout of deployment `id` stands.
fn rollout(service: &Service, id: &str) -> Rollout {
    let primary = primary_deployment(service).unwrap_or_default();
    let Some(deployment) = service.deployments.iter().find(|d| d.id == id) else {
        return Rollout::Replaced(primary);
    };
    match RolloutState::from_ecs(&deployment.rollout_state) {
        Some(RolloutState::Failed) => Rollout::Failed(deployment.rollout_state_reason.clone()),
        _ if primary != id => Rollout::Replaced(primary),
        Some(RolloutState::Completed) => Rollout::Completed,
        _ => Rollout::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use berth_api::Deployment;

    use super::*;

    fn deployment(id: &str, status: &str, rollout_state: &str, reason: &str) -> Deployment {
        Deployment {
            id: id.to_string(),
            status: status.to_string(),
            rollout_state: rollout_state.to_string(),
            rollout_state_reason: reason.to_string(),
            ..Default::default()
        }
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service {
            deployments,
            ..Default::default()
        }
    }

    #[test]
    fn the_rollout_of_the_new_deployment_decides() {
        let new = |state, reason| deployment("ecs-svc/2", "PRIMARY", state, reason);
        let old = deployment("ecs-svc/1", "ACTIVE", "COMPLETED", "");
        assert_eq!(
            rollout(
                &service(vec![new("IN_PROGRESS", ""), old.clone()]),
                "ecs-svc/2"
            ),
            Rollout::InProgress
        );
        assert_eq!(
            rollout(&service(vec![new("COMPLETED", "done")]), "ecs-svc/2"),
            Rollout::Completed
        );
        assert_eq!(
            rollout(
                &service(vec![new("FAILED", "circuit breaker"), old]),
                "ecs-svc/2"
            ),
            Rollout::Failed("circuit breaker".to_string())
        );
    }

    #[test]
    fn a_deployment_taken_over_is_replaced() {
        let newer = deployment("ecs-svc/3", "PRIMARY", "IN_PROGRESS", "");
        let ours = deployment("ecs-svc/2", "ACTIVE", "IN_PROGRESS", "");
        assert_eq!(
            rollout(&service(vec![newer.clone(), ours]), "ecs-svc/2"),
            Rollout::Replaced("ecs-svc/3".to_string())
        );
        assert_eq!(
            rollout(&service(vec![newer]), "ecs-svc/2"),
            Rollout::Replaced("ecs-svc/3".to_string())
        );
    }
}
