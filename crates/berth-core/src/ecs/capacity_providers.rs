//! Capacity providers: ECS's built-in FARGATE and FARGATE_SPOT (berth runs their tasks
//! on any of its nodes), the ones users make (Create/Update/DeleteCapacityProvider),
//! whose container instances are the agents started with `--capacity-provider NAME`, a
//! cluster's providers and default strategy, ECS's rules for a
//! `capacityProviderStrategy`, and which provider of a strategy each task goes to.

use std::collections::BTreeMap;

use berth_api as api;

use super::{paginate, parse_optional_word, Context, EcsResult, Outcome};
use crate::error::{EcsError, ErrorCode};
use crate::ids::{cluster_name, ArnScope};
use crate::model::{
    CapacityProviderRecord, CapacityProviderStatus, CapacityProviderUpdateStatus, Cluster,
    ClusterStatus, LaunchType, ManagedScalingRecord, Service, ServiceStatus, Switch,
};
use crate::placement::{Demand, PlacementFailure, PlacementSpec, Placer};
use crate::present;
use crate::state::{Command, State};

/// The capacity providers every account has.
pub const BUILT_IN_CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

const MAX_STRATEGY_ITEMS: usize = 20;
const MAX_PROVIDERS_PER_CLUSTER: usize = 20;
const MAX_WEIGHT: i64 = 1000;
const MAX_BASE: i64 = 100_000;
const MAX_NAME_LENGTH: usize = 255;
const RESERVED_PREFIXES: [&str; 3] = ["aws", "ecs", "fargate"];

/// ECS's defaults for a provider's managed scaling (berth's is always DISABLED).
const DEFAULT_MANAGED_SCALING: ManagedScalingRecord = ManagedScalingRecord {
    status: Switch::Disabled,
    target_capacity: 100,
    minimum_scaling_step_size: 1,
    maximum_scaling_step_size: 10_000,
    instance_warmup_period: 300,
};

/// The name a request gives a provider by, name or ARN.
fn provider_name(given: &str) -> &str {
    given
        .rsplit_once(":capacity-provider/")
        .map_or(given, |(_, name)| name)
}

fn is_built_in(name: &str) -> bool {
    BUILT_IN_CAPACITY_PROVIDERS.contains(&name)
}

fn provider_not_found() -> EcsError {
    EcsError::client(
        "The specified capacity provider does not exist. Specify a valid name or ARN and try again.",
    )
}

/// ECS's rule for the name of a capacity provider a user makes: 1 to 255 letters,
/// numbers, hyphens and underscores, not starting with `aws`, `ecs` or `fargate` (in
/// any case).
pub fn check_capacity_provider_name(name: &str) -> Result<(), EcsError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let lower = name.to_ascii_lowercase();
    if name.is_empty()
        || name.len() > MAX_NAME_LENGTH
        || !name.chars().all(allowed)
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(EcsError::client(format!(
            "The specified capacity provider name '{name}' is invalid. Up to 255 characters are allowed, including letters (upper and lowercase), numbers, underscores, and hyphens. The name cannot be prefixed with \"aws\", \"ecs\", or \"fargate\"."
        )));
    }
    Ok(())
}

fn built_in_shown(scope: &ArnScope, name: &str) -> api::CapacityProvider {
    api::CapacityProvider {
        capacity_provider_arn: scope.capacity_provider(name),
        name: name.to_string(),
        status: CapacityProviderStatus::Active.as_ecs().to_string(),
        provider_type: Some(name.to_string()),
        auto_scaling_group_provider: None,
        update_status: None,
        update_status_reason: None,
        tags: vec![],
    }
}

/// A provider the user made, in ECS's shape.
fn shown(scope: &ArnScope, record: &CapacityProviderRecord) -> api::CapacityProvider {
    let scaling = record.managed_scaling;
    api::CapacityProvider {
        capacity_provider_arn: scope.capacity_provider(&record.name),
        name: record.name.clone(),
        status: record.status.as_ecs().to_string(),
        provider_type: Some("EC2_AUTOSCALING".to_string()),
        auto_scaling_group_provider: Some(api::AutoScalingGroupProvider {
            auto_scaling_group_arn: Some(record.auto_scaling_group_arn.clone()),
            managed_scaling: Some(api::ManagedScaling {
                status: Some(scaling.status.as_ecs().to_string()),
                target_capacity: Some(scaling.target_capacity),
                minimum_scaling_step_size: Some(scaling.minimum_scaling_step_size),
                maximum_scaling_step_size: Some(scaling.maximum_scaling_step_size),
                instance_warmup_period: Some(scaling.instance_warmup_period),
            }),
            managed_termination_protection: Some(
                record.managed_termination_protection.as_ecs().to_string(),
            ),
            managed_draining: Some(record.managed_draining.as_ecs().to_string()),
        }),
        update_status: record.update_status.map(|s| s.as_ecs().to_string()),
        update_status_reason: record.update_status_reason.clone(),
        tags: record.tags.clone(),
    }
}

pub fn describe_capacity_providers(
    state: &State,
    request: api::DescribeCapacityProvidersRequest,
    ctx: &mut Context,
) -> EcsResult<api::DescribeCapacityProvidersResponse> {
    let include_tags = check_include(&request.include)?;
    let wanted: Vec<String> = match request.capacity_providers {
        Some(names) if !names.is_empty() => {
            if names.len() > 100 {
                return Err(EcsError::invalid_parameter(
                    "capacityProviders can name at most 100 capacity providers",
                ));
            }
            names
        }
        _ => BUILT_IN_CAPACITY_PROVIDERS
            .iter()
            .map(|n| n.to_string())
            .chain(state.capacity_providers.keys().cloned())
            .collect(),
    };
    let mut response = api::DescribeCapacityProvidersResponse::default();
    let mut found = Vec::new();
    for given in &wanted {
        let name = provider_name(given);
        if is_built_in(name) {
            found.push(built_in_shown(ctx.scope, name));
        } else if let Some(record) = state.capacity_providers.get(name) {
            let mut provider = shown(ctx.scope, record);
            if !include_tags {
                provider.tags.clear();
            }
            found.push(provider);
        } else {
            response.failures.push(api::Failure {
                arn: Some(ctx.scope.capacity_provider(name)),
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

/// `include`: TAGS is the only field DescribeCapacityProviders adds.
fn check_include(include: &[String]) -> Result<bool, EcsError> {
    for word in include {
        if word != "TAGS" {
            return Err(super::invalid_word("include", word, ["TAGS"]));
        }
    }
    Ok(!include.is_empty())
}

/// What berth cannot do for a provider, refused by name.
fn refuse_unsupported(
    cluster: Option<&str>,
    managed_instances_provider: Option<&serde_json::Value>,
) -> Result<(), EcsError> {
    if managed_instances_provider.is_some() {
        return Err(EcsError::new(
            ErrorCode::UnsupportedFeatureException,
            "managedInstancesProvider: berth has no Amazon ECS Managed Instances; use autoScalingGroupProvider and start agents with --capacity-provider NAME",
        ));
    }
    if cluster.is_some() {
        return Err(EcsError::invalid_parameter(
            "cluster: only Amazon ECS Managed Instances capacity providers belong to a cluster, and berth has none; leave it out",
        ));
    }
    Ok(())
}

/// A provider's managed settings: `given` over `current` (ECS's defaults for a new
/// provider), each in range. berth scales no machines, so managed scaling stays
/// DISABLED, and managed termination protection (which needs it) with it, as in ECS.
fn managed_settings(
    given: &api::AutoScalingGroupProvider,
    current: (ManagedScalingRecord, Switch, Switch),
) -> Result<(ManagedScalingRecord, Switch, Switch), EcsError> {
    let (mut scaling, protection, draining) = current;
    if let Some(asked) = &given.managed_scaling {
        let field = "autoScalingGroupProvider.managedScaling";
        if let Some(status) =
            parse_optional_word::<Switch>(&format!("{field}.status"), asked.status.as_deref())?
        {
            scaling.status = status;
        }
        let ranged =
            |name: &str, value: Option<i64>, min: i64, max: i64, into: &mut i64| match value {
                None => Ok(()),
                Some(v) if (min..=max).contains(&v) => {
                    *into = v;
                    Ok(())
                }
                Some(v) => Err(EcsError::invalid_parameter(format!(
                    "{field}.{name} {v} is out of range {min}-{max}"
                ))),
            };
        ranged(
            "targetCapacity",
            asked.target_capacity,
            1,
            100,
            &mut scaling.target_capacity,
        )?;
        ranged(
            "minimumScalingStepSize",
            asked.minimum_scaling_step_size,
            1,
            10_000,
            &mut scaling.minimum_scaling_step_size,
        )?;
        ranged(
            "maximumScalingStepSize",
            asked.maximum_scaling_step_size,
            1,
            10_000,
            &mut scaling.maximum_scaling_step_size,
        )?;
        ranged(
            "instanceWarmupPeriod",
            asked.instance_warmup_period,
            0,
            10_000,
            &mut scaling.instance_warmup_period,
        )?;
        if scaling.minimum_scaling_step_size > scaling.maximum_scaling_step_size {
            return Err(EcsError::invalid_parameter(format!(
                "{field}: minimumScalingStepSize must not be greater than maximumScalingStepSize"
            )));
        }
    }
    if scaling.status == Switch::Enabled {
        return Err(EcsError::invalid_parameter(
            "autoScalingGroupProvider.managedScaling.status ENABLED is not supported: berth has no Auto Scaling group to scale (start more agents with --capacity-provider NAME); use DISABLED",
        ));
    }
    let protection = parse_optional_word::<Switch>(
        "autoScalingGroupProvider.managedTerminationProtection",
        given.managed_termination_protection.as_deref(),
    )?
    .unwrap_or(protection);
    if protection == Switch::Enabled {
        return Err(EcsError::client(
            "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must be enabled for the capacity provider.",
        ));
    }
    let draining = parse_optional_word::<Switch>(
        "autoScalingGroupProvider.managedDraining",
        given.managed_draining.as_deref(),
    )?
    .unwrap_or(draining);
    Ok((scaling, protection, draining))
}

/// CreateCapacityProvider: a provider whose container instances are the agents that
/// name it. The Auto Scaling group is kept and echoed (one provider per group, as in
/// ECS).
pub fn create_capacity_provider(
    state: &State,
    request: api::CreateCapacityProviderRequest,
    ctx: &mut Context,
) -> EcsResult<api::CapacityProviderResponse> {
    refuse_unsupported(
        request.cluster.as_deref(),
        request.managed_instances_provider.as_ref(),
    )?;
    check_capacity_provider_name(&request.name)?;
    let Some(given) = request.auto_scaling_group_provider else {
        return Err(EcsError::invalid_parameter(
            "autoScalingGroupProvider is required",
        ));
    };
    let group = given
        .auto_scaling_group_arn
        .clone()
        .filter(|arn| !arn.trim().is_empty())
        .ok_or_else(|| {
            EcsError::invalid_parameter("autoScalingGroupProvider.autoScalingGroupArn is required")
        })?;
    super::tags::check_tags(&request.tags)?;
    let (managed_scaling, managed_termination_protection, managed_draining) = managed_settings(
        &given,
        (DEFAULT_MANAGED_SCALING, Switch::Disabled, Switch::Enabled),
    )?;
    if state
        .capacity_providers
        .get(&request.name)
        .is_some_and(|p| p.status == CapacityProviderStatus::Active)
    {
        return Err(EcsError::client(
            "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.",
        ));
    }
    if state
        .capacity_providers
        .values()
        .any(|p| p.status == CapacityProviderStatus::Active && p.auto_scaling_group_arn == group)
    {
        return Err(EcsError::client(
            "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.",
        ));
    }
    let record = CapacityProviderRecord {
        name: request.name.clone(),
        status: CapacityProviderStatus::Active,
        update_status: None,
        update_status_reason: None,
        auto_scaling_group_arn: group,
        managed_scaling,
        managed_termination_protection,
        managed_draining,
        tags: request.tags.clone(),
    };
    Ok(Outcome {
        response: api::CapacityProviderResponse {
            capacity_provider: shown(ctx.scope, &record),
        },
        commands: vec![Command::PutCapacityProvider(Box::new(record))],
    })
}

/// The ACTIVE provider a user made, by name or ARN, for Update/Delete.
fn active_provider<'s>(
    state: &'s State,
    given: &str,
    action: &str,
) -> Result<&'s CapacityProviderRecord, EcsError> {
    let name = provider_name(given);
    if is_built_in(name) {
        return Err(EcsError::client(format!(
            "The {name} capacity provider is reserved and cannot be {action}."
        )));
    }
    state
        .capacity_providers
        .get(name)
        .filter(|p| p.status == CapacityProviderStatus::Active)
        .ok_or_else(provider_not_found)
}

/// UpdateCapacityProvider: the managed settings (the Auto Scaling group stays).
pub fn update_capacity_provider(
    state: &State,
    request: api::UpdateCapacityProviderRequest,
    ctx: &mut Context,
) -> EcsResult<api::CapacityProviderResponse> {
    refuse_unsupported(
        request.cluster.as_deref(),
        request.managed_instances_provider.as_ref(),
    )?;
    if request.name.trim().is_empty() {
        return Err(EcsError::invalid_parameter("name is required"));
    }
    let current = active_provider(state, &request.name, "updated")?;
    let Some(given) = request.auto_scaling_group_provider else {
        return Err(EcsError::invalid_parameter(
            "autoScalingGroupProvider is required",
        ));
    };
    if given.auto_scaling_group_arn.is_some() {
        return Err(EcsError::invalid_parameter(
            "autoScalingGroupProvider.autoScalingGroupArn cannot be updated: a capacity provider keeps its Auto Scaling group",
        ));
    }
    let (managed_scaling, managed_termination_protection, managed_draining) = managed_settings(
        &given,
        (
            current.managed_scaling,
            current.managed_termination_protection,
            current.managed_draining,
        ),
    )?;
    let record = CapacityProviderRecord {
        managed_scaling,
        managed_termination_protection,
        managed_draining,
        update_status: Some(CapacityProviderUpdateStatus::UpdateComplete),
        update_status_reason: None,
        ..current.clone()
    };
    Ok(Outcome {
        response: api::CapacityProviderResponse {
            capacity_provider: shown(ctx.scope, &record),
        },
        commands: vec![Command::PutCapacityProvider(Box::new(record))],
    })
}

/// DeleteCapacityProvider: INACTIVE (DELETE_COMPLETE) at once, unless a cluster still
/// has it or a service's strategy uses it: then DELETE_FAILED with the reason, as ECS
/// answers.
pub fn delete_capacity_provider(
    state: &State,
    request: api::DeleteCapacityProviderRequest,
    ctx: &mut Context,
) -> EcsResult<api::CapacityProviderResponse> {
    refuse_unsupported(request.cluster.as_deref(), None)?;
    if request.capacity_provider.trim().is_empty() {
        return Err(EcsError::invalid_parameter("capacityProvider is required"));
    }
    let current = active_provider(state, &request.capacity_provider, "deleted")?;
    let name = current.name.as_str();
    let cluster = state.clusters.values().find(|c| {
        c.status == ClusterStatus::Active && c.capacity_providers.iter().any(|p| p == name)
    });
    let service = services_using(state, name).next();
    let failure = match (cluster, service) {
        (Some(cluster), _) => Some(format!(
            "The capacity provider cannot be deleted because it is associated with cluster: {}. Remove the capacity provider from the cluster and try again.",
            cluster.name
        )),
        (None, Some(service)) => Some(format!(
            "The capacity provider cannot be deleted because it is used by the capacity provider strategy of service: {}. Update the service and try again.",
            service.name
        )),
        (None, None) => None,
    };
    let record = match failure {
        Some(reason) => CapacityProviderRecord {
            update_status: Some(CapacityProviderUpdateStatus::DeleteFailed),
            update_status_reason: Some(reason),
            ..current.clone()
        },
        None => CapacityProviderRecord {
            status: CapacityProviderStatus::Inactive,
            update_status: Some(CapacityProviderUpdateStatus::DeleteComplete),
            update_status_reason: None,
            ..current.clone()
        },
    };
    Ok(Outcome {
        response: api::CapacityProviderResponse {
            capacity_provider: shown(ctx.scope, &record),
        },
        commands: vec![Command::PutCapacityProvider(Box::new(record))],
    })
}

/// PutClusterCapacityProviders: replaces the cluster's providers and default strategy.
/// A provider a service's strategy or a running task still uses cannot leave.
pub fn put_cluster_capacity_providers(
    state: &State,
    request: api::PutClusterCapacityProvidersRequest,
    ctx: &mut Context,
) -> EcsResult<api::ClusterResponse> {
    let name = cluster_name(Some(&request.cluster));
    let mut cluster = super::active_cluster(state, &name)?.clone();
    let (providers, strategy) = checked_cluster_providers(
        state,
        &request.capacity_providers,
        &request.default_capacity_provider_strategy,
    )?;
    for removed in cluster
        .capacity_providers
        .iter()
        .filter(|p| !providers.contains(p))
    {
        if provider_in_use(state, &name, removed) {
            return Err(EcsError::new(
                ErrorCode::ResourceInUseException,
                "The specified capacity provider is in use and cannot be removed.",
            ));
        }
    }
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

/// The services, of any cluster and not deleted, whose strategy names `provider`.
fn services_using<'a>(
    state: &'a State,
    provider: &'a str,
) -> impl Iterator<Item = &'a std::sync::Arc<Service>> + 'a {
    state.services.values().filter(move |s| {
        s.status != ServiceStatus::Inactive
            && s.capacity_provider_strategy
                .iter()
                .any(|i| i.capacity_provider == provider)
    })
}

/// Whether a service of `cluster` has `provider` in its strategy, or a task of it that
/// has not stopped was placed with it.
fn provider_in_use(state: &State, cluster: &str, provider: &str) -> bool {
    services_using(state, provider).any(|s| s.cluster == cluster)
        || state.tasks.values().any(|t| {
            t.cluster == cluster
                && !t.is_stopped()
                && t.capacity_provider_name.as_deref() == Some(provider)
        })
}

/// A cluster's providers (built in, or ACTIVE ones the user made; at most 20) and its
/// default strategy (over them).
pub(crate) fn checked_cluster_providers(
    state: &State,
    providers: &[String],
    default_strategy: &[api::CapacityProviderStrategyItem],
) -> Result<(Vec<String>, Vec<api::CapacityProviderStrategyItem>), EcsError> {
    let mut names: Vec<String> = Vec::new();
    for given in providers {
        let name = provider_name(given);
        if !is_built_in(name) {
            match state.capacity_providers.get(name) {
                None => {
                    return Err(EcsError::invalid_parameter(format!(
                        "The specified capacity provider '{name}' does not exist. Specify a valid capacity provider and try again."
                    )))
                }
                Some(p) if p.status != CapacityProviderStatus::Active => {
                    return Err(EcsError::invalid_parameter(format!(
                        "The specified capacity provider '{name}' is not in an ACTIVE state. Specify a valid capacity provider and try again."
                    )))
                }
                Some(_) => {}
            }
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.len() > MAX_PROVIDERS_PER_CLUSTER {
        return Err(EcsError::invalid_parameter(
            "The maximum number of capacity providers per cluster has been exceeded.",
        ));
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
/// 0-100000 on one provider at most, a weight above 0 somewhere when there are
/// several, and not Fargate's providers together with Auto Scaling group ones.
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
    let fargate = checked
        .iter()
        .filter(|i| is_built_in(&i.capacity_provider))
        .count();
    if fargate > 0 && fargate < checked.len() {
        return Err(EcsError::invalid_parameter(
            "The capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
        ));
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

/// The launch type a task placed with `provider` has, as ECS shows it: FARGATE for
/// Fargate's providers, EC2 for an Auto Scaling group's.
pub(crate) fn launch_type_of_provider(provider: &str) -> LaunchType {
    if is_built_in(provider) {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    }
}

/// The launch type a service with `strategy` counts as for ListServices' filter.
pub(crate) fn launch_type_of_strategy(
    strategy: &[api::CapacityProviderStrategyItem],
) -> Option<LaunchType> {
    strategy
        .first()
        .map(|item| launch_type_of_provider(&item.capacity_provider))
}

/// The container instances a task placed with `provider` may go on: a provider the
/// user made has its own (its agents'); Fargate's run on any of berth's nodes.
pub(crate) fn instances_of_provider(provider: &str) -> Option<String> {
    (!is_built_in(provider)).then(|| provider.to_string())
}

/// Which provider of `strategy` the next task of a group goes to, given how many of the
/// group's tasks each provider has: the one with a `base` until it has that many, then
/// the one furthest below its share by weight (the first on a tie). `None` for an empty
/// strategy.
pub(crate) fn next_provider<'a>(
    strategy: &'a [api::CapacityProviderStrategyItem],
    placed: &BTreeMap<String, u64>,
) -> Option<&'a str> {
    let count = |item: &api::CapacityProviderStrategyItem| {
        placed.get(&item.capacity_provider).copied().unwrap_or(0)
    };
    if let Some(based) = strategy
        .iter()
        .find(|i| i.base > 0 && count(i) < i.base as u64)
    {
        return Some(&based.capacity_provider);
    }
    let weighted = strategy.iter().filter(|i| i.weight > 0);
    // (n + 1) / w, compared without division: a/b < c/d  <=>  a*d < c*b.
    let mut best: Option<&api::CapacityProviderStrategyItem> = None;
    for item in weighted {
        let beyond = |i: &api::CapacityProviderStrategyItem| {
            count(i).saturating_sub(i.base as u64) as u128 + 1
        };
        best = match best {
            Some(b) if beyond(b) * item.weight as u128 <= beyond(item) * b.weight as u128 => {
                Some(b)
            }
            _ => Some(item),
        };
    }
    best.or(strategy.first())
        .map(|i| i.capacity_provider.as_str())
}

/// Places a group's tasks by its strategy: each task on the provider [`next_provider`]
/// picks, among that provider's container instances (any instance without a strategy).
pub(crate) struct StrategyPlacer<'s, 'a> {
    state: &'s State,
    cluster: &'a str,
    spec: &'a PlacementSpec,
    demand: &'a Demand,
    strategy: &'a [api::CapacityProviderStrategyItem],
    placed: BTreeMap<String, u64>,
    placers: BTreeMap<Option<String>, Placer<'s>>,
}

/// Where one task goes: its provider (if its group has a strategy) and instance.
pub(crate) struct Placed<'s> {
    pub capacity_provider: Option<String>,
    pub instance_id: &'s str,
}

impl<'s, 'a> StrategyPlacer<'s, 'a> {
    /// `placed`: how many of the group's tasks each provider already has.
    pub(crate) fn new(
        state: &'s State,
        cluster: &'a str,
        spec: &'a PlacementSpec,
        demand: &'a Demand,
        strategy: &'a [api::CapacityProviderStrategyItem],
        placed: BTreeMap<String, u64>,
    ) -> Self {
        StrategyPlacer {
            state,
            cluster,
            spec,
            demand,
            strategy,
            placed,
            placers: BTreeMap::new(),
        }
    }

    /// The next task's provider and instance; the failure names the provider whose
    /// instances could not take it.
    pub(crate) fn place(
        &mut self,
        random: u64,
    ) -> Result<Placed<'s>, (Option<String>, PlacementFailure)> {
        let provider = next_provider(self.strategy, &self.placed).map(str::to_string);
        let only = provider.as_deref().and_then(instances_of_provider);
        let (state, cluster, spec, demand) = (self.state, self.cluster, self.spec, self.demand);
        let placer = self.placers.entry(only.clone()).or_insert_with(|| {
            let demand = Demand {
                capacity_provider: only.clone(),
                ..demand.clone()
            };
            Placer::new(state, cluster, spec, &demand)
        });
        let instance_id = placer.place(random).map_err(|failure| (only, failure))?;
        if let Some(name) = &provider {
            *self.placed.entry(name.clone()).or_default() += 1;
        }
        Ok(Placed {
            capacity_provider: provider,
            instance_id,
        })
    }
}
