//! The ECS actions as pure functions: (state, request, context) -> commands + response.
//!
//! The server parses the request, calls one of these under the state lock, has the
//! store apply the commands and sends the response. Nothing here touches IO.

mod account_settings;
mod capacity_providers;
mod clusters;
mod container_instances;
mod request;
mod service_deployments;
mod services;
mod tags;
mod task_definitions;
mod task_stats;
mod tasks;

pub use account_settings::{
    default_container_insights, delete_account_setting, list_account_settings,
    new_cluster_settings, put_account_setting, put_account_setting_default,
};
pub use capacity_providers::{
    check_capacity_provider_name, create_capacity_provider, delete_capacity_provider,
    describe_capacity_providers, put_cluster_capacity_providers, update_capacity_provider,
    BUILT_IN_CAPACITY_PROVIDERS,
};
pub(crate) use capacity_providers::{launch_type_of_provider, Placed, StrategyPlacer};
pub use clusters::*;
pub use container_instances::*;
pub use request::{run_action, ClusterParameter, EcsRequest};
pub use service_deployments::{
    describe_service_deployments, describe_service_revisions, list_service_deployments,
};
pub use services::*;
pub use tags::*;
pub use task_definitions::*;
pub use task_stats::*;
pub use tasks::*;

use crate::error::EcsError;
use crate::ids::{ArnScope, IdSource};
use crate::model::{Cluster, ClusterStatus, EcsWord};
use crate::policy::PrivilegePolicy;
use crate::state::{Command, State};
use crate::Timestamp;

/// What every action needs besides the state: the time and where ids and ARNs come from.
pub struct Context<'a> {
    pub now: Timestamp,
    pub scope: &'a ArnScope,
    pub ids: &'a mut dyn IdSource,
    /// What the operator lets tasks and targets do to the host.
    pub policy: &'a PrivilegePolicy,
}

/// An action's result: the commands to apply, then the response to send.
#[derive(Debug)]
pub struct Outcome<R> {
    pub commands: Vec<Command>,
    pub response: R,
}

impl<R> Outcome<R> {
    pub fn read_only(response: R) -> Self {
        Outcome {
            commands: Vec::new(),
            response,
        }
    }
}

pub type EcsResult<R> = Result<Outcome<R>, EcsError>;

/// The named cluster, which must exist and be ACTIVE. `run_action` checks the cluster
/// of every request that names one; actions call this only to read the cluster.
pub(crate) fn active_cluster<'s>(state: &'s State, name: &str) -> Result<&'s Cluster, EcsError> {
    match state.clusters.get(name) {
        Some(cluster) if cluster.status == ClusterStatus::Active => Ok(cluster),
        _ => Err(EcsError::cluster_not_found()),
    }
}

/// A request's word for one of ECS's enums (`schedulingStrategy`, `launchType`, a status
/// filter, ...): the one place such a word is read, refused by name when unknown.
pub(crate) fn parse_word<T: EcsWord>(field: &str, given: &str) -> Result<T, EcsError> {
    T::from_ecs(given).ok_or_else(|| invalid_word(field, given, T::ALL.iter().map(|v| v.as_ecs())))
}

/// `parse_word` for an optional field.
pub(crate) fn parse_optional_word<T: EcsWord>(
    field: &str,
    given: Option<&str>,
) -> Result<Option<T>, EcsError> {
    given.map(|word| parse_word(field, word)).transpose()
}

/// The answer to a word a field does not take: `field 'given' is invalid: use A, B or C`.
pub(crate) fn invalid_word<'w>(
    field: &str,
    given: &str,
    allowed: impl IntoIterator<Item = &'w str>,
) -> EcsError {
    let allowed: Vec<&str> = allowed.into_iter().collect();
    let listed = match allowed.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    EcsError::invalid_parameter(format!("{field} '{given}' is invalid: use {listed}"))
}

/// ECS's name rule for families, clusters, services and containers.
pub fn check_name(field: &str, value: &str) -> Result<(), EcsError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(EcsError::invalid_parameter(format!(
            "{field} '{value}' is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed"
        )))
    }
}

/// One page of `items` for a List* call: `nextToken` is the offset of the next page.
pub(crate) fn paginate<T: Clone>(
    items: &[T],
    next_token: Option<&str>,
    max_results: Option<i64>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), EcsError> {
    let start = match next_token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| EcsError::invalid_parameter("nextToken is invalid"))?,
    };
    let page = match max_results {
        None => limit,
        Some(n) if n >= 1 && n as usize <= limit => n as usize,
        Some(n) => {
            return Err(EcsError::invalid_parameter(format!(
                "maxResults must be between 1 and {limit}, got {n}"
            )))
        }
    };
    let end = start.saturating_add(page).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}
