//! `berth rollback SERVICE`: back to the task definition of the service's last
//! SUCCESSFUL deployment of another task definition than the one it runs now, read
//! from ECS's own deployment history (ListServiceDeployments, DescribeServiceRevisions),
//! with UpdateService, followed like `berth restart` until COMPLETED or FAILED.
//!
//! So a current deployment still in progress or failed goes back to the last one that
//! succeeded, and a current one that succeeded goes back to the successful one before
//! it (restarts of the same task definition are passed over: they would change nothing).

use anyhow::bail;
use berth_api::{
    DescribeServiceRevisionsRequest, DescribeServiceRevisionsResponse,
    ListServiceDeploymentsRequest, ListServiceDeploymentsResponse, ServiceDeploymentBrief,
    ServiceResponse, ServiceRevision, UpdateServiceRequest,
};
use berth_core::model::ServiceDeploymentStatus;

use super::event_feed::EventFeed;
use super::rollout::{follow, primary_deployment};
use super::{require_service, task_definition_name};
use crate::client::ApiClient;

/// DescribeServiceRevisions takes this many ARNs at a time, as in ECS.
const DESCRIBE_AT_ONCE: usize = 20;

pub async fn run(client: &ApiClient, service: &str, wait: bool) -> anyhow::Result<()> {
    let current = require_service(client, service).await?;
    let feed = EventFeed::after(&current);
    let deployments = all_deployments(client, service).await?;
    let candidates = successful_revisions(&deployments);
    let mut revisions = Vec::new();
    for chunk in candidates.chunks(DESCRIBE_AT_ONCE) {
        let request = DescribeServiceRevisionsRequest {
            service_revision_arns: chunk.to_vec(),
        };
        let response: DescribeServiceRevisionsResponse =
            client.ecs("DescribeServiceRevisions", &request).await?;
        revisions.extend(response.service_revisions);
    }
    let Some(target) = rollback_target(&candidates, &revisions, &current.task_definition) else {
        bail!(
            "service '{service}' has no earlier SUCCESSFUL deployment of another task definition to roll back to (it runs {}); nothing changed",
            task_definition_name(&current.task_definition)
        );
    };
    let request = UpdateServiceRequest {
        cluster: Some(client.cluster.clone()),
        service: service.to_string(),
        task_definition: Some(target.clone()),
        ..Default::default()
    };
    let updated: ServiceResponse = client.ecs("UpdateService", &request).await?;
    let Some(deployment) = primary_deployment(&updated.service) else {
        bail!("service '{service}' has no PRIMARY deployment after UpdateService");
    };
    let name = task_definition_name(&target);
    println!(
        "service {service} rolling back from {} to {name} (deployment {deployment})",
        task_definition_name(&current.task_definition)
    );
    if !wait {
        return Ok(());
    }
    follow(client, service, &deployment, feed).await?;
    println!("service {service} rolled back to {name} (deployment {deployment} completed)");
    Ok(())
}

/// Every deployment ECS lists for the service, newest first.
async fn all_deployments(
    client: &ApiClient,
    service: &str,
) -> anyhow::Result<Vec<ServiceDeploymentBrief>> {
    let mut all = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListServiceDeploymentsRequest {
            service: service.to_string(),
            cluster: Some(client.cluster.clone()),
            max_results: Some(100),
            next_token: next_token.take(),
            ..Default::default()
        };
        let page: ListServiceDeploymentsResponse =
            client.ecs("ListServiceDeployments", &request).await?;
        all.extend(page.service_deployments);
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(all),
        }
    }
}

/// The target revisions of the SUCCESSFUL deployments, newest first.
fn successful_revisions(deployments: &[ServiceDeploymentBrief]) -> Vec<String> {
    deployments
        .iter()
        .filter(|d| {
            ServiceDeploymentStatus::from_ecs(&d.status)
                == Some(ServiceDeploymentStatus::Successful)
        })
        .map(|d| d.target_service_revision_arn.clone())
        .collect()
}

/// The task definition of the newest of `candidates` (revision ARNs, newest first)
/// that differs from `running`.
fn rollback_target(
    candidates: &[String],
    revisions: &[ServiceRevision],
    running: &str,
) -> Option<String> {
    candidates
        .iter()
        .filter_map(|arn| revisions.iter().find(|r| &r.service_revision_arn == arn))
        .map(|r| r.task_definition.clone())
        .find(|definition| definition != running)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(id: &str, status: &str) -> ServiceDeploymentBrief {
        ServiceDeploymentBrief {
            target_service_revision_arn: format!("rev/{id}"),
            status: status.to_string(),
            ..Default::default()
        }
    }

    fn revision(id: &str, definition: &str) -> ServiceRevision {
        ServiceRevision {
            service_revision_arn: format!("rev/{id}"),
            task_definition: definition.to_string(),
            ..Default::default()
        }
    }

    fn target(deployments: &[ServiceDeploymentBrief], running: &str) -> Option<String> {
        let revisions = [
            revision("4", "web:3"),
            revision("3", "web:2"),
            revision("2", "web:2"),
            revision("1", "web:1"),
        ];
        rollback_target(&successful_revisions(deployments), &revisions, running)
    }

    #[test]
    fn a_current_success_goes_back_to_the_one_before() {
        let history = [brief("3", "SUCCESSFUL"), brief("1", "SUCCESSFUL")];
        assert_eq!(target(&history, "web:2"), Some("web:1".to_string()));
    }

    #[test]
    fn a_current_deployment_in_progress_or_failed_goes_back_to_the_last_success() {
        for current in ["IN_PROGRESS", "STOPPED", "ROLLBACK_FAILED"] {
            let history = [
                brief("4", current),
                brief("3", "SUCCESSFUL"),
                brief("1", "SUCCESSFUL"),
            ];
            assert_eq!(target(&history, "web:3"), Some("web:2".to_string()));
        }
    }

    #[test]
    fn restarts_of_what_runs_are_passed_over() {
        let history = [
            brief("3", "SUCCESSFUL"),
            brief("2", "SUCCESSFUL"),
            brief("1", "SUCCESSFUL"),
        ];
        assert_eq!(target(&history, "web:2"), Some("web:1".to_string()));
    }

    #[test]
    fn nothing_to_roll_back_to() {
        assert_eq!(target(&[brief("1", "SUCCESSFUL")], "web:1"), None);
        assert_eq!(target(&[brief("4", "IN_PROGRESS")], "web:3"), None);
        assert_eq!(target(&[], "web:1"), None);
    }
}
