//! A service's deployment history, as ECS's service deployments show it: one record per
//! deployment started (CreateService, UpdateService), kept after the deployment is
//! replaced, with its status following the rollout. Pure: the callers hand in `now`.
//!
//! - IN_PROGRESS from the start (berth starts a deployment as it makes it: no PENDING);
//! - SUCCESSFUL once its rollout is COMPLETED;
//! - STOPPED when its rollout FAILED with no rollback, when a newer deployment replaced
//!   it before it finished, or when its service was deleted;
//! - ROLLBACK_IN_PROGRESS when the circuit breaker rolls it back, then
//!   ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED as that rollback's own rollout ends.

use crate::model::{
    DeploymentRollback, RolloutState, Service, ServiceDeploymentRecord, ServiceDeploymentStatus,
    ServiceRevisionRecord, MAX_SERVICE_DEPLOYMENTS,
};
use crate::Timestamp;

/// The id a service deployment (and its revision) takes from its `ecs-svc/<digits>` one.
pub fn record_id(deployment_id: &str) -> String {
    deployment_id
        .strip_prefix("ecs-svc/")
        .unwrap_or(deployment_id)
        .to_string()
}

/// The ids of the revisions the service's live deployments run: the next deployment's
/// `sourceServiceRevisions`.
pub(crate) fn sources(service: &Service) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for deployment in &service.deployments {
        let found = service.service_deployments.iter().find_map(|r| {
            if r.deployment_id == deployment.id {
                Some(r.id.clone())
            } else {
                r.rollback
                    .as_ref()
                    .filter(|b| b.deployment_id == deployment.id && !b.revision_id.is_empty())
                    .map(|b| b.revision_id.clone())
            }
        });
        if let Some(id) = found.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids
}

fn finish(
    record: &mut ServiceDeploymentRecord,
    status: ServiceDeploymentStatus,
    reason: String,
    now: Timestamp,
) {
    record.status = status;
    record.status_reason = reason;
    record.finished_at = Some(now);
    if status == ServiceDeploymentStatus::Stopped {
        record.stopped_at = Some(now);
    }
    record.updated_at = now;
}

/// Records the deployment `deployment_id` the service has just started as its PRIMARY
/// one, of the service's current settings. `sources` are the revisions that ran before
/// (from [`sources`], taken before the deployment was added). A deployment not yet
/// finished is stopped: the new one replaces it.
pub(crate) fn started(
    service: &mut Service,
    deployment_id: &str,
    sources: Vec<String>,
    now: Timestamp,
) {
    for record in service
        .service_deployments
        .iter_mut()
        .filter(|r| !r.status.is_finished())
    {
        let reason = format!("ECS deployment {deployment_id} replaced it before it finished.");
        finish(record, ServiceDeploymentStatus::Stopped, reason, now);
    }
    let record = ServiceDeploymentRecord {
        id: record_id(deployment_id),
        deployment_id: deployment_id.to_string(),
        status: ServiceDeploymentStatus::InProgress,
        status_reason: format!("ECS deployment {deployment_id} in progress."),
        created_at: now,
        updated_at: now,
        finished_at: None,
        stopped_at: None,
        revision: ServiceRevisionRecord {
            family: service.family.clone(),
            revision: service.revision,
            launch_type: service.launch_type,
            capacity_provider_strategy: service.capacity_provider_strategy.clone(),
            platform_version: service.platform_version.clone(),
            load_balancers: service.load_balancers.clone(),
            network_configuration: service.network_configuration.clone(),
            created_at: now,
        },
        source_revisions: sources,
        deployment_configuration: service.deployment_configuration.clone(),
        failed_tasks: 0,
        desired_count: service.desired_count,
        rollback: None,
    };
    service.service_deployments.insert(0, record);
    service
        .service_deployments
        .truncate(MAX_SERVICE_DEPLOYMENTS);
}

/// The circuit breaker rolls the failed deployment `failed_id` back with the new
/// deployment `rollback_id`, of `family:revision`: the failed one's record follows
/// the rollback (ECS makes no service deployment of its own for it).
pub(crate) fn rolling_back(
    service: &mut Service,
    failed_id: &str,
    rollback_id: &str,
    (family, revision): (&str, u32),
    now: Timestamp,
) {
    // The newest revision of that task definition the history still has.
    let revision_id = service
        .service_deployments
        .iter()
        .find(|r| r.revision.family == family && r.revision.revision == revision)
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let failed_tasks = service
        .deployments
        .iter()
        .find(|d| d.id == failed_id)
        .map(|d| d.failed_tasks);
    let Some(record) = service
        .service_deployments
        .iter_mut()
        .find(|r| r.deployment_id == failed_id)
    else {
        return;
    };
    record.failed_tasks = failed_tasks.unwrap_or(record.failed_tasks);
    let reason = format!(
        "ECS deployment circuit breaker: rolling back to {family}:{revision} ({rollback_id})."
    );
    record.status = ServiceDeploymentStatus::RollbackInProgress;
    record.status_reason = reason.clone();
    record.updated_at = now;
    record.rollback = Some(DeploymentRollback {
        deployment_id: rollback_id.to_string(),
        revision_id,
        reason,
        started_at: now,
    });
}

/// The service was deleted: what had not finished is stopped.
pub(crate) fn service_deleted(service: &mut Service, now: Timestamp) {
    for record in service
        .service_deployments
        .iter_mut()
        .filter(|r| !r.status.is_finished())
    {
        finish(
            record,
            ServiceDeploymentStatus::Stopped,
            "The service was deleted.".to_string(),
            now,
        );
    }
}

/// After a scheduler pass: each unfinished record follows its deployment's rollout
/// (and its counts while it rolls out).
pub(crate) fn follow_rollouts(service: &mut Service, now: Timestamp) {
    let deployments = service.deployments.clone();
    for deployment in &deployments {
        for record in service.service_deployments.iter_mut() {
            if record.status == ServiceDeploymentStatus::InProgress
                && record.deployment_id == deployment.id
            {
                if (record.failed_tasks, record.desired_count)
                    != (deployment.failed_tasks, deployment.desired_count)
                {
                    record.failed_tasks = deployment.failed_tasks;
                    record.desired_count = deployment.desired_count;
                    record.updated_at = now;
                }
                match deployment.rollout_state {
                    RolloutState::Completed => finish(
                        record,
                        ServiceDeploymentStatus::Successful,
                        deployment.rollout_state_reason.clone(),
                        now,
                    ),
                    RolloutState::Failed => finish(
                        record,
                        ServiceDeploymentStatus::Stopped,
                        deployment.rollout_state_reason.clone(),
                        now,
                    ),
                    RolloutState::InProgress => {}
                }
            }
            let rolls_back = record
                .rollback
                .as_ref()
                .is_some_and(|b| b.deployment_id == deployment.id);
            if record.status == ServiceDeploymentStatus::RollbackInProgress && rolls_back {
                match deployment.rollout_state {
                    RolloutState::Completed => finish(
                        record,
                        ServiceDeploymentStatus::RollbackSuccessful,
                        format!(
                            "The circuit breaker's rollback ({}) completed.",
                            deployment.id
                        ),
                        now,
                    ),
                    RolloutState::Failed => finish(
                        record,
                        ServiceDeploymentStatus::RollbackFailed,
                        deployment.rollout_state_reason.clone(),
                        now,
                    ),
                    RolloutState::InProgress => {}
                }
            }
        }
    }
}
