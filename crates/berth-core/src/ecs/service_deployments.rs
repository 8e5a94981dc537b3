//! ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions: a
//! service's deployment history (`Service::service_deployments`), read only.

use berth_api as api;

use super::services::find_service;
use super::{paginate, parse_word, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::{cluster_name, service_history_arn, ServiceHistoryRef};
use crate::model::{Service, ServiceDeploymentRecord, ServiceDeploymentStatus};
use crate::present;
use crate::state::State;
use crate::Timestamp;

/// ECS's page size when the request names none, and its largest.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: usize = 100;
/// How many ARNs one Describe call takes.
const MAX_ARNS: usize = 20;

pub fn list_service_deployments(
    state: &State,
    request: api::ListServiceDeploymentsRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListServiceDeploymentsResponse> {
    let cluster = cluster_name(request.cluster.as_deref());
    if request.service.trim().is_empty() {
        return Err(EcsError::invalid_parameter("service is required"));
    }
    let statuses = request
        .status
        .iter()
        .map(|word| parse_word::<ServiceDeploymentStatus>("status", word))
        .collect::<Result<Vec<_>, _>>()?;
    let (after, before) = match &request.created_at {
        Some(created_at) => (
            created_at
                .after
                .map(|t| instant("createdAt.after", t))
                .transpose()?,
            created_at
                .before
                .map(|t| instant("createdAt.before", t))
                .transpose()?,
        ),
        None => (None, None),
    };
    let service = find_service(state, &cluster, &request.service)?;
    let briefs: Vec<api::ServiceDeploymentBrief> = service
        .service_deployments
        .iter()
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
        .filter(|r| after.is_none_or(|after| r.created_at >= after))
        .filter(|r| before.is_none_or(|before| r.created_at <= before))
        .map(|r| present::service_deployment_brief(ctx.scope, service, r))
        .collect();
    let (service_deployments, next_token) = paginate(
        &briefs,
        request.next_token.as_deref(),
        Some(request.max_results.unwrap_or(DEFAULT_PAGE)),
        MAX_PAGE,
    )?;
    Ok(Outcome::read_only(api::ListServiceDeploymentsResponse {
        service_deployments,
        next_token,
    }))
}

/// A `createdAt` bound: epoch seconds, not before 1970.
fn instant(field: &str, seconds: f64) -> Result<Timestamp, EcsError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(EcsError::invalid_parameter(format!(
            "{field} must be a time after 1970, got {seconds}"
        )));
    }
    Ok(Timestamp::from_secs_f64(seconds))
}

/// The ARNs of a Describe call, each parsed as a `kind` ARN; a malformed one is refused
/// by its place in the list.
fn parse_arns(
    field: &str,
    kind: &str,
    arns: &[String],
) -> Result<Vec<(String, ServiceHistoryRef)>, EcsError> {
    if arns.is_empty() {
        return Err(EcsError::invalid_parameter(format!(
            "{field} cannot be empty"
        )));
    }
    if arns.len() > MAX_ARNS {
        return Err(EcsError::invalid_parameter(format!(
            "{field} can name at most {MAX_ARNS} ARNs, got {}",
            arns.len()
        )));
    }
    arns.iter()
        .enumerate()
        .map(|(i, arn)| match service_history_arn(arn, kind) {
            Some(found) => Ok((arn.clone(), found)),
            None => Err(EcsError::invalid_parameter(format!(
                "{field}[{i}] '{arn}' is not a {kind} ARN (arn:aws:ecs:REGION:ACCOUNT:{kind}/CLUSTER/SERVICE/ID)"
            ))),
        })
        .collect()
}

/// The service and the history record an ARN names, if berth has them.
fn find_record<'s>(
    state: &'s State,
    named: &ServiceHistoryRef,
) -> Option<(&'s Service, &'s ServiceDeploymentRecord)> {
    let service = state.service(&named.cluster, &named.service)?;
    let record = service
        .service_deployments
        .iter()
        .find(|r| r.id == named.id)?;
    Some((service, record))
}

fn missing(arn: String) -> api::Failure {
    api::Failure {
        arn: Some(arn),
        reason: Some("MISSING".to_string()),
        detail: None,
    }
}

pub fn describe_service_deployments(
    state: &State,
    request: api::DescribeServiceDeploymentsRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeServiceDeploymentsResponse> {
    let named = parse_arns(
        "serviceDeploymentArns",
        "service-deployment",
        &request.service_deployment_arns,
    )?;
    let mut response = api::DescribeServiceDeploymentsResponse::default();
    for (arn, named) in named {
        match find_record(state, &named) {
            Some((service, record)) => {
                response
                    .service_deployments
                    .push(present::service_deployment(
                        state, ctx.scope, service, record,
                    ))
            }
            None => response.failures.push(missing(arn)),
        }
    }
    Ok(Outcome::read_only(response))
}

pub fn describe_service_revisions(
    state: &State,
    request: api::DescribeServiceRevisionsRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeServiceRevisionsResponse> {
    let named = parse_arns(
        "serviceRevisionArns",
        "service-revision",
        &request.service_revision_arns,
    )?;
    let mut response = api::DescribeServiceRevisionsResponse::default();
    for (arn, named) in named {
        match find_record(state, &named) {
            Some((service, record)) => response
                .service_revisions
                .push(present::service_revision(state, ctx.scope, service, record)),
            None => response.failures.push(missing(arn)),
        }
    }
    Ok(Outcome::read_only(response))
}
