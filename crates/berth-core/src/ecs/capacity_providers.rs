//! Capacity providers: ECS's built-in FARGATE and FARGATE_SPOT (berth runs every task on
//! its own nodes; the names are kept and echoed), a cluster's providers and default
//! strategy, and ECS's rules for a `capacityProviderStrategy` against `launchType`.

use berth_api as api;

use super::{paginate, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::cluster_name;
use crate::model::{Cluster, LaunchType};
use crate::present;
use crate::state::{Command, State};

/// The capacity providers every account has. berth has no Auto Scaling groups, so no
/// others can exist.
pub const BUILT_IN_CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

const MAX_STRATEGY_ITEMS: usize = 20;
const MAX_WEIGHT: i64 = 1000;
const MAX_BASE: i64 = 100_000;

fn capacity_provider_arn(ctx: &Context, name: &str) -> String {
    let cluster_arn = ctx.scope.cluster("x");
    let prefix = cluster_arn.trim_end_matches("cluster/x");
    format!("{prefix}capacity-provider/{name}")
}

/// The name a request gives a provider by, name or ARN.
fn provider_name(given: &str) -> &str {
    given
        .rsplit_once(":capacity-provider/")
        .map_or(given, |(_, name)| name)
}

pub fn describe_capacity_providers(
    _state: &State,
    request: api::DescribeCapacityProvidersRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeCapacityProvidersResponse> {
    let wanted: Vec<String> = match request.capacity_providers {
        Some(names) if !names.is_empty() => names,
        _ => BUILT_IN_CAPACITY_PROVIDERS.map(String::from).to_vec(),
    };
    let mut response = api::DescribeCapacityProvidersResponse::default();
    let mut found = Vec::new();
    for given in &wanted {
        let name = provider_name(given);
        if BUILT_IN_CAPACITY_PROVIDERS.contains(&name) {
            found.push(api::CapacityProvider {
                capacity_provider_arn: capacity_provider_arn(ctx, name),
                name: name.to_string(),
                status: "ACTIVE".to_string(),
                tags: vec![],
            });
        } else {
            response.failures.push(api::Failure {
                arn: Some(capacity_provider_arn(ctx, name)),
                reason: Some("MISSING".to_string()),
                detail: None,
            });
        }
    }
    let (page, next_token) = paginate(
        &found,
        request.next_token.as_deref(),
        request.max_results,
        10,
    )?;
    response.capacity_providers = page;
    response.next_token = next_token;
    Ok(Outcome::read_only(response))
}

/// PutClusterCapacityProviders: replaces the cluster's providers and default strategy.
pub fn put_cluster_capacity_providers(
    state: &State,
    request: api::PutClusterCapacityProvidersRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = cluster_name(Some(&request.cluster));
    let mut cluster = super::active_cluster(state, &name)?.clone();
    let (providers, strategy) = checked_cluster_providers(
        &request.capacity_providers,
        &request.default_capacity_provider_strategy,
    )?;
    cluster.capacity_providers = providers;
    cluster.default_capacity_provider_strategy = strategy;
    let mut preview = state.clone();
    preview.apply(Command::PutCluster(cluster.clone()));
    Ok(Outcome {
        response: api::ClusterResponse {
            cluster: present::cluster(&preview, ctx.scope, &cluster),
        },
        commands: vec![Command::PutCluster(cluster)],
    })
}

/// A cluster's providers (which must exist) and its default strategy (over them).
pub(crate) fn checked_cluster_providers(
    providers: &[String],
    default_strategy: &[api::CapacityProviderStrategyItem],
) -> Result<(Vec<String>, Vec<api::CapacityProviderStrategyItem>), EcsError> {
    let mut names: Vec<String> = Vec::new();
    for given in providers {
        let name = provider_name(given);
        if !BUILT_IN_CAPACITY_PROVIDERS.contains(&name) {
            return Err(EcsError::invalid_parameter(format!(
                "capacityProviders: the capacity provider '{name}' does not exist (berth has FARGATE and FARGATE_SPOT)"
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    let strategy = check_strategy_items("defaultCapacityProviderStrategy", default_strategy)?;
    if let Some(item) = strategy
        .iter()
        .find(|i| !names.contains(&i.capacity_provider))
    {
        return Err(EcsError::invalid_parameter(format!(
            "defaultCapacityProviderStrategy names '{}', which is not one of the cluster's capacityProviders",
            item.capacity_provider
        )));
    }
    Ok((names, strategy))
}

/// ECS's rules for one strategy: at most 20 providers, each once, weight 0-1000, base
/// 0-100000 on one provider at most, and a weight above 0 somewhere when there are
/// several.
fn check_strategy_items(
    field: &str,
    items: &[api::CapacityProviderStrategyItem],
) -> Result<Vec<api::CapacityProviderStrategyItem>, EcsError> {
    if items.len() > MAX_STRATEGY_ITEMS {
        return Err(EcsError::invalid_parameter(format!(
            "{field} can contain at most {MAX_STRATEGY_ITEMS} capacity providers"
        )));
    }
    let mut checked: Vec<api::CapacityProviderStrategyItem> = Vec::new();
    for item in items {
        let name = provider_name(&item.capacity_provider).to_string();
        if name.is_empty() {
            return Err(EcsError::invalid_parameter(format!(
                "{field}: capacityProvider must not be empty"
            )));
        }
        if checked.iter().any(|c| c.capacity_provider == name) {
            return Err(EcsError::invalid_parameter(format!(
                "{field} names the capacity provider '{name}' twice"
            )));
        }
        if !(0..=MAX_WEIGHT).contains(&item.weight) {
            return Err(EcsError::invalid_parameter(format!(
                "{field}: weight {} is out of range 0-{MAX_WEIGHT}",
                item.weight
            )));
        }
        if !(0..=MAX_BASE).contains(&item.base) {
            return Err(EcsError::invalid_parameter(format!(
                "{field}: base {} is out of range 0-{MAX_BASE}",
                item.base
            )));
        }
        checked.push(api::CapacityProviderStrategyItem {
            capacity_provider: name,
            ..item.clone()
        });
    }
    if checked.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(EcsError::invalid_parameter(format!(
            "{field}: only one capacity provider in a strategy can have a base"
        )));
    }
    if checked.len() > 1 && checked.iter().all(|i| i.weight == 0) {
        return Err(EcsError::invalid_parameter(format!(
            "{field}: at least one capacity provider must have a weight greater than 0"
        )));
    }
    Ok(checked)
}

/// The strategy a RunTask or CreateService uses in `cluster`: the one given (never with
/// a launch type, and over the cluster's providers only), else the cluster's default
/// when no launch type is given either.
pub(crate) fn strategy_for(
    cluster: &Cluster,
    launch_type: Option<LaunchType>,
    given: &[api::CapacityProviderStrategyItem],
) -> Result<Vec<api::CapacityProviderStrategyItem>, EcsError> {
    if given.is_empty() {
        return Ok(match launch_type {
            None => cluster.default_capacity_provider_strategy.clone(),
            Some(_) => Vec::new(),
        });
    }
    if launch_type.is_some() {
        return Err(EcsError::invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    let strategy = check_strategy_items("capacityProviderStrategy", given)?;
    if let Some(item) = strategy
        .iter()
        .find(|i| !cluster.capacity_providers.contains(&i.capacity_provider))
    {
        return Err(EcsError::invalid_parameter(format!(
            "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. ('{}')",
            item.capacity_provider
        )));
    }
    Ok(strategy)
}
