//! Runs berth's load balancer from the store: the ELBv2 records become the data
//! plane's configuration, and the data plane's verdict on each target flows back into
//! the store (DescribeTargetHealth, and the service scheduler's view of task health).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use berth_core::elbv2::model::{
    target_key, ActionKind, ConditionMatch, HealthCheck, LoadBalancingAlgorithm, Protocol,
    RuleAction, RuleCondition, StickinessPolicy, TargetHealth, TargetHealthState, TargetType,
};
use berth_core::elbv2::{client_idle_timeout_seconds, refused_target, PublishedPorts};
use berth_core::service_discovery::instance_address;
use berth_core::{Command, PrivilegePolicy, State};
use berth_lb::{
    parse_matcher, Algorithm, HealthCheckConfig, HealthProtocol, LbConfig, ListenerConfig,
    ListenerProtocol, LoadBalancer, Stickiness, TargetConfig, TargetGroupConfig, TargetState,
};
use berth_proto::{
    BalancerConfig, BalancerListener, BalancerRule, BalancerTarget, BalancerTargetGroup,
};

use futures_util::FutureExt;

use crate::listener_serving::ServingReport;
use crate::scheduler_loop::{panic_text, LoopName, PANIC_PAUSE};
use crate::ControlPlane;

fn protocol(protocol: Protocol) -> ListenerProtocol {
    match protocol {
        Protocol::Http => ListenerProtocol::Http,
        Protocol::Tcp => ListenerProtocol::Tcp,
    }
}

fn algorithm(algorithm: LoadBalancingAlgorithm) -> Algorithm {
    match algorithm {
        LoadBalancingAlgorithm::RoundRobin => Algorithm::RoundRobin,
        LoadBalancingAlgorithm::LeastOutstandingRequests => Algorithm::LeastOutstandingRequests,
    }
}

/// The data plane's stickiness for a group's policy in effect: the one conversion, for
/// `berth dev`'s balancer and for load-balancer nodes alike.
fn stickiness(policy: Option<&StickinessPolicy>) -> Stickiness {
    let seconds = |seconds: &u32| Duration::from_secs(u64::from(*seconds));
    match policy {
        None => Stickiness::Off,
        Some(StickinessPolicy::LbCookie { duration_seconds }) => Stickiness::LbCookie {
            duration: seconds(duration_seconds),
        },
        Some(StickinessPolicy::AppCookie {
            cookie_name,
            duration_seconds,
        }) => Stickiness::AppCookie {
            cookie_name: cookie_name.clone(),
            duration: seconds(duration_seconds),
        },
        Some(StickinessPolicy::SourceIp) => Stickiness::SourceIp,
    }
}

fn health_check(check: &HealthCheck) -> HealthCheckConfig {
    HealthCheckConfig {
        enabled: check.enabled,
        protocol: match check.protocol {
            Protocol::Http => HealthProtocol::Http,
            Protocol::Tcp => HealthProtocol::Tcp,
        },
        path: check.path.clone().unwrap_or_else(|| "/".to_string()),
        port: check.port.parse().ok(),
        interval: Duration::from_secs(u64::from(check.interval_seconds.max(1))),
        timeout: Duration::from_secs(u64::from(check.timeout_seconds.max(1))),
        healthy_threshold: check.healthy_threshold_count.max(1),
        unhealthy_threshold: check.unhealthy_threshold_count.max(1),
        // Validated when stored; fall back to ELBv2's default if it ever is not.
        matcher: check
            .matcher
            .as_deref()
            .and_then(|m| parse_matcher(m).ok())
            .unwrap_or_else(|| vec![(200, 200)]),
    }
}

/// An ELBv2 action as the data plane runs it: the one conversion of stored actions
/// into `berth_lb::routing`, for `berth dev`'s balancer and for nodes serving listeners.
fn routing_action(action: &RuleAction) -> berth_lb::Action {
    match &action.kind {
        ActionKind::Forward(forward) => berth_lb::Action::Forward(
            forward
                .target_groups
                .iter()
                .map(|group| berth_lb::WeightedGroup {
                    target_group_id: group.target_group.clone(),
                    weight: group.weight,
                })
                .collect(),
        ),
        ActionKind::FixedResponse(fixed) => {
            berth_lb::Action::FixedResponse(berth_lb::FixedResponse {
                status: fixed.status_code,
                content_type: fixed.content_type.clone(),
                body: fixed.message_body.clone().unwrap_or_default(),
            })
        }
        ActionKind::Redirect(redirect) => berth_lb::Action::Redirect(berth_lb::Redirect {
            protocol: redirect.protocol.clone(),
            host: redirect.host.clone(),
            port: redirect.port.clone(),
            path: redirect.path.clone(),
            query: redirect.query.clone(),
            status: redirect.status.http_status(),
        }),
    }
}

/// A listener rule as the data plane runs it (see [`routing_action`]).
fn routing_rule(
    priority: u32,
    conditions: &[RuleCondition],
    action: &RuleAction,
) -> berth_lb::Rule {
    let patterns = |values: &[String]| {
        values
            .iter()
            .map(|v| berth_lb::Pattern(v.clone()))
            .collect()
    };
    berth_lb::Rule {
        priority,
        conditions: conditions
            .iter()
            .map(|condition| match &condition.matches {
                ConditionMatch::PathPattern(values) => {
                    berth_lb::Condition::PathPattern(patterns(values))
                }
                ConditionMatch::HostHeader(values) => {
                    berth_lb::Condition::HostHeader(patterns(values))
                }
                ConditionMatch::HttpHeader { name, values } => berth_lb::Condition::HttpHeader {
                    name: name.clone(),
                    values: patterns(values),
                },
                ConditionMatch::QueryString(pairs) => berth_lb::Condition::QueryString(
                    pairs
                        .iter()
                        .map(|pair| {
                            (
                                pair.key.clone().map(berth_lb::Pattern),
                                berth_lb::Pattern(pair.value.clone()),
                            )
                        })
                        .collect(),
                ),
                ConditionMatch::HttpRequestMethod(methods) => {
                    berth_lb::Condition::HttpRequestMethod(methods.clone())
                }
                ConditionMatch::SourceIp(blocks) => berth_lb::Condition::SourceIp(
                    blocks
                        .iter()
                        .map(|block| berth_lb::Cidr {
                            network: block.network,
                            prefix: block.prefix,
                        })
                        .collect(),
                ),
            })
            .collect(),
        action: routing_action(action),
    }
}

/// Where the data plane reaches a target. An instance target is its host port at the
/// address its container instance's agent gave (`berth agent --address`); an instance
/// whose agent gave none is this machine (`berth dev`), reached on loopback. ip targets
/// are addressed directly.
fn target_addr(state: &State, target_type: TargetType, id: &str, port: u16) -> Option<SocketAddr> {
    match target_type {
        TargetType::Instance => Some(SocketAddr::new(instance_address(state, id), port)),
        TargetType::Ip => id
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port)),
    }
}

/// The targets the data plane reaches on this machine's own addresses that only the
/// policy lets it serve (refused under a policy allowing nothing, served under this
/// one), as (target key, what to log): each such use of privilege is said once.
fn served_local_targets(state: &State, policy: &PrivilegePolicy) -> Vec<(String, String)> {
    let published = PublishedPorts::of(state);
    let strict = PrivilegePolicy::deny_all();
    state
        .targets
        .values()
        .filter(|target| target.draining_until.is_none())
        .filter_map(|target| {
            let group = state.target_groups.get(&target.target_group)?;
            let refused = |policy| {
                refused_target(
                    policy,
                    &published,
                    group.target_type,
                    &target.id,
                    target.port,
                )
            };
            let served = refused(&strict).is_some() && refused(policy).is_none();
            served.then(|| {
                (
                    target.key(),
                    format!(
                        "target group '{}': {} target {}:{}",
                        group.name,
                        group.target_type.as_elbv2(),
                        target.id,
                        target.port
                    ),
                )
            })
        })
        .collect()
}

/// The data plane's configuration for the store's load balancers. Draining targets are
/// left out: the data plane drains a target it no longer has for the group's
/// deregistration delay, which is what the store waits for too. So are targets the
/// privilege policy refuses.
pub fn lb_config(state: &State, bind_ip: IpAddr, policy: &PrivilegePolicy) -> LbConfig {
    let published = PublishedPorts::of(state);
    let listeners = state
        .listeners
        .values()
        .map(|l| ListenerConfig {
            id: l.id.clone(),
            bind: SocketAddr::new(bind_ip, l.port),
            protocol: protocol(l.protocol),
            default_action: routing_action(&l.default_action),
            rules: l
                .rules
                .iter()
                .map(|rule| routing_rule(rule.priority, &rule.conditions, &rule.action))
                .collect(),
            namespace: None,
            idle_timeout: client_idle_timeout_seconds(state, l)
                .map(|seconds| Duration::from_secs(u64::from(seconds))),
        })
        .collect();
    let target_groups = state
        .target_groups
        .values()
        .map(|group| TargetGroupConfig {
            id: group.id.clone(),
            protocol: protocol(group.protocol),
            algorithm: algorithm(group.attributes.load_balancing_algorithm),
            health_check: health_check(&group.health_check),
            deregistration_delay: Duration::from_secs(u64::from(
                group.attributes.deregistration_delay_seconds,
            )),
            stickiness: stickiness(group.attributes.stickiness.policy(group.protocol).as_ref()),
            targets: state
                .targets
                .range(format!("{}/", group.id)..)
                .take_while(|(key, _)| key.starts_with(&format!("{}/", group.id)))
                .map(|(_, t)| t)
                .filter(|t| t.draining_until.is_none())
                .filter(|t| {
                    refused_target(policy, &published, group.target_type, &t.id, t.port).is_none()
                })
                .filter_map(|t| {
                    Some(TargetConfig {
                        id: t.key(),
                        addr: target_addr(state, group.target_type, &t.id, t.port)?,
                    })
                })
                .collect(),
        })
        .collect();
    LbConfig {
        listeners,
        target_groups,
    }
}

/// The load balancer as a node serving its listeners runs it (`berth agent
/// --load-balancer`): the listeners and groups of [`lb_config`], and of each group's
/// targets only those the store holds healthy, the verdicts of this control plane's own
/// checks. Such a node checks nothing itself, so every machine that serves a listener
/// routes by the same verdicts.
pub fn balancer_config(state: &State, policy: &PrivilegePolicy) -> BalancerConfig {
    let config = lb_config(state, IpAddr::V4(Ipv4Addr::UNSPECIFIED), policy);
    let healthy = |key: &str| {
        state
            .targets
            .get(key)
            .is_some_and(|target| target.health.state == TargetHealthState::Healthy)
    };
    let listeners = config
        .listeners
        .iter()
        .filter_map(|listener| {
            let record = state.listeners.get(&listener.id)?;
            let mut rules: Vec<BalancerRule> = record
                .rules
                .iter()
                .map(|rule| BalancerRule {
                    priority: rule.priority,
                    conditions: rule.conditions.clone(),
                    action: rule.action.clone(),
                })
                .collect();
            rules.sort_by_key(|rule| rule.priority);
            Some(BalancerListener {
                id: listener.id.clone(),
                port: listener.bind.port(),
                protocol: record.protocol,
                target_group_id: record
                    .default_action
                    .target_groups()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                idle_timeout_ms: listener
                    .idle_timeout
                    .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
                default_action: Some(record.default_action.clone()),
                rules,
            })
        })
        .collect();
    let target_groups = config
        .target_groups
        .iter()
        .filter_map(|group| {
            let record = state.target_groups.get(&group.id)?;
            Some(BalancerTargetGroup {
                id: group.id.clone(),
                protocol: record.protocol,
                algorithm: record.attributes.load_balancing_algorithm,
                deregistration_delay_ms: u64::try_from(group.deregistration_delay.as_millis())
                    .unwrap_or(u64::MAX),
                stickiness: record.attributes.stickiness.policy(record.protocol),
                targets: group
                    .targets
                    .iter()
                    .filter(|target| healthy(&target.id))
                    .map(|target| BalancerTarget {
                        id: target.id.clone(),
                        addr: target.addr,
                    })
                    .collect(),
            })
        })
        .collect();
    let mut config = BalancerConfig {
        version: String::new(),
        listeners,
        target_groups,
    };
    config.version = content_version(&(&config.listeners, &config.target_groups));
    config
}

/// A name for what a node is told (without its version): the SHA-256 of its JSON, so
/// a long-poll answers only when the content changes.
pub(crate) fn content_version(content: &impl serde::Serialize) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(content).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&json)[..16])
}

/// The data plane's config for a node serving the listeners of `config` on `bind_ip`.
/// Its health checks are off: the targets it is given are the healthy ones, so it routes
/// to each at once (and passive failures still take a failing one out for an interval).
pub fn edge_lb_config(config: &BalancerConfig, bind_ip: IpAddr) -> LbConfig {
    LbConfig {
        listeners: config
            .listeners
            .iter()
            .map(|listener| ListenerConfig {
                id: listener.id.clone(),
                bind: SocketAddr::new(bind_ip, listener.port),
                protocol: protocol(listener.protocol),
                default_action: match &listener.default_action {
                    Some(action) => routing_action(action),
                    // From a control plane older than rules.
                    None => berth_lb::Action::forward_to(listener.target_group_id.clone()),
                },
                rules: listener
                    .rules
                    .iter()
                    .map(|rule| routing_rule(rule.priority, &rule.conditions, &rule.action))
                    .collect(),
                namespace: None,
                idle_timeout: listener.idle_timeout_ms.map(Duration::from_millis),
            })
            .collect(),
        target_groups: config
            .target_groups
            .iter()
            .map(|group| TargetGroupConfig {
                id: group.id.clone(),
                protocol: protocol(group.protocol),
                algorithm: algorithm(group.algorithm),
                health_check: HealthCheckConfig {
                    enabled: false,
                    ..HealthCheckConfig::default()
                },
                deregistration_delay: Duration::from_millis(group.deregistration_delay_ms),
                stickiness: stickiness(group.stickiness.as_ref()),
                targets: group
                    .targets
                    .iter()
                    .map(|target| TargetConfig {
                        id: target.id.clone(),
                        addr: target.addr,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Commands recording the data plane's verdicts that differ from the store's.
fn health_commands(
    state: &State,
    balancer: &LoadBalancer,
    policy: &PrivilegePolicy,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let published = PublishedPorts::of(state);
    for group in state.target_groups.values() {
        let Some(reports) = balancer.target_health(&group.id) else {
            continue;
        };
        let by_key: BTreeMap<&str, _> = reports.iter().map(|r| (r.id.as_str(), r)).collect();
        let prefix = format!("{}/", group.id);
        for (key, target) in state.targets.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            if target.draining_until.is_some() {
                continue;
            }
            let refusal = refused_target(
                policy,
                &published,
                group.target_type,
                &target.id,
                target.port,
            );
            let health = if let Some(refusal) = refusal {
                TargetHealth {
                    state: TargetHealthState::Unhealthy,
                    reason: Some(
                        match group.target_type {
                            TargetType::Ip => "Target.IpUnusable",
                            TargetType::Instance => "Target.InvalidState",
                        }
                        .to_string(),
                    ),
                    description: Some(refusal),
                }
            } else {
                let Some(report) = by_key.get(key.as_str()) else {
                    continue;
                };
                let state_now = match report.state {
                    TargetState::Initial => TargetHealthState::Initial,
                    TargetState::Healthy => TargetHealthState::Healthy,
                    TargetState::Unhealthy => TargetHealthState::Unhealthy,
                    // Draining and unused are derived from the records, not stored.
                    TargetState::Draining | TargetState::Unused => continue,
                };
                TargetHealth {
                    state: state_now,
                    reason: report.reason.map(str::to_string),
                    description: report.description.clone(),
                }
            };
            if health != target.health {
                debug_assert_eq!(
                    key,
                    &target_key(&target.target_group, &target.id, target.port)
                );
                commands.push(Command::PutTargetHealth {
                    target_group: target.target_group.clone(),
                    target_id: target.id.clone(),
                    port: target.port,
                    health,
                });
            }
        }
    }
    commands
}

/// Keeps `balancer` in step with the store until `shutdown`.
pub async fn run_load_balancer(
    control_plane: Arc<ControlPlane>,
    balancer: LoadBalancer,
    bind_ip: IpAddr,
    shutdown: impl Future<Output = ()>,
) {
    run_load_balancer_with(control_plane, balancer, bind_ip, lb_config, shutdown).await
}

/// The config of the data plane: the store's records seen through the policy.
type ConfigOf = fn(&State, IpAddr, &PrivilegePolicy) -> LbConfig;

/// What the config loop keeps between rounds.
#[derive(Default)]
struct Applied {
    config: Option<LbConfig>,
    last_error: Option<String>,
    said_local_targets: std::collections::BTreeSet<String>,
}

/// The config loop around any config function: a panic in a round is logged, counted
/// (`ControlPlane::loop_panics`) and the loop goes on with what it applied before.
pub(crate) async fn run_load_balancer_with(
    control_plane: Arc<ControlPlane>,
    balancer: LoadBalancer,
    bind_ip: IpAddr,
    config_of: ConfigOf,
    shutdown: impl Future<Output = ()>,
) {
    let mut changes = control_plane.store.watch();
    let mut health = balancer.health_changes();
    let mut applied = Applied::default();
    tokio::pin!(shutdown);
    loop {
        changes.borrow_and_update();
        health.borrow_and_update();
        let round = apply_round(&control_plane, &balancer, bind_ip, config_of, &mut applied);
        let mut panicked = false;
        if let Err(panic) = AssertUnwindSafe(round).catch_unwind().await {
            let count = control_plane.loop_panicked(LoopName::LoadBalancerConfig);
            tracing::error!(
                panic = panic_text(&panic),
                count,
                "the load balancer's config loop hit a bug in berth; it keeps serving what it had and goes on"
            );
            panicked = true;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            changed = changes.changed(), if !panicked => if changed.is_err() { break },
            changed = health.changed(), if !panicked => if changed.is_err() { break },
            _ = tokio::time::sleep(if panicked { PANIC_PAUSE } else { Duration::from_secs(5) }) => {}
        }
    }
    balancer.shutdown().await;
}

/// One round: apply the store's config if it changed, record target health.
async fn apply_round(
    control_plane: &Arc<ControlPlane>,
    balancer: &LoadBalancer,
    bind_ip: IpAddr,
    config_of: ConfigOf,
    applied: &mut Applied,
) {
    let policy = &control_plane.privilege_policy;
    // Read before the state, so the state is at least this revision.
    let revision = *control_plane.store.watch().borrow();
    let (config, local_targets) = control_plane.store.read(|state| {
        (
            config_of(state, bind_ip, policy),
            served_local_targets(state, policy),
        )
    });
    for (key, target) in local_targets {
        if applied.said_local_targets.insert(key) {
            tracing::warn!(
                privilege = %berth_core::PrivilegeKind::LocalTargets,
                %target,
                "the load balancer serves a target on this machine's own addresses that no task published, as the privilege policy allows"
            );
        }
    }
    let answered = if applied.config.as_ref() != Some(&config) {
        match balancer.apply(config.clone()).await {
            Ok(()) => {
                applied.config = Some(config);
                applied.last_error = None;
                true
            }
            // A listener that cannot bind (port in use) is left out, reported as not
            // serving and retried on the next change or tick; everything else was
            // applied and serves.
            Err(error) => {
                // What runs is neither the old config nor this one: the next round
                // applies again, even if the store goes back to the old one.
                applied.config = None;
                let text = error.to_string();
                if applied.last_error.as_ref() != Some(&text) {
                    tracing::error!(%error, "the load balancer could not apply all of its configuration");
                    applied.last_error = Some(text);
                }
                matches!(
                    error,
                    berth_lb::LbError::Bind { .. } | berth_lb::LbError::Namespace { .. }
                )
            }
        }
    } else {
        true
    };
    if answered {
        control_plane.listener_serving.publish(ServingReport {
            revision,
            listeners: balancer.listener_statuses(),
        });
    }
    let reporter = balancer.clone();
    let policy = policy.clone();
    let result = control_plane
        .store
        .transact_async(move |state| {
            Ok::<_, std::convert::Infallible>((health_commands(state, &reporter, &policy), ()))
        })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "recording target health failed");
    }
}

#[cfg(test)]
mod tests {
    use berth_core::elbv2::model::TargetRecord;
    use berth_core::Timestamp;

    use super::*;
    use crate::dispatch::dispatch_query;

    /// Runs an ELBv2 action that must succeed; returns the text between `<tag>` and `</tag>`.
    async fn elbv2(control_plane: &ControlPlane, body: &str, tag: &str) -> String {
        let answer = dispatch_query(control_plane, "us-east-1", body.as_bytes(), "test").await;
        assert_eq!(answer.status, 200, "{body}: {}", answer.document);
        let open = format!("<{tag}>");
        let start = answer.document.find(&open).map(|i| i + open.len());
        let end = answer.document.find(&format!("</{tag}>"));
        match (start, end) {
            (Some(start), Some(end)) => answer.document[start..end].to_string(),
            _ => String::new(),
        }
    }

    fn target(group: &str, id: &str, port: u16, draining: bool) -> Command {
        Command::PutTarget(Box::new(TargetRecord {
            target_group: group.to_string(),
            id: id.to_string(),
            port,
            availability_zone: None,
            registered_at: Timestamp::from_secs_f64(1.0),
            health: Default::default(),
            draining_until: draining.then(|| Timestamp::from_secs_f64(100.0)),
            passed_check: false,
        }))
    }

    #[test]
    fn an_instance_target_is_reached_at_its_agents_address() {
        let mut state = State::default();
        for (node, address) in [("far", Some("10.0.0.7")), ("here", None)] {
            state.apply(berth_core::Command::PutNode(
                serde_json::from_value(serde_json::json!({
                    "id": node, "hostname": node, "cpu": 1024, "memory": 1024,
                    "agent_version": "1", "docker_version": "1",
                    "joins_every_cluster": false, "connected": true, "registered_at": 1,
                    "address": address
                }))
                .unwrap(),
            ));
            state.apply(berth_core::Command::PutContainerInstance(
                serde_json::from_value(serde_json::json!({
                    "id": format!("ci-{node}"), "cluster": "default", "node_id": node,
                    "hostname": node, "status": "ACTIVE", "agent_connected": true,
                    "registered_cpu": 1024, "registered_memory": 1024,
                    "agent_version": "1", "docker_version": "1", "attributes": {},
                    "registered_at": 1, "version": 1, "tags": [], "auto_joined": false
                }))
                .unwrap(),
            ));
        }
        let addr =
            |id: &str| target_addr(&state, TargetType::Instance, id, 32768).map(|a| a.to_string());
        assert_eq!(addr("ci-far").as_deref(), Some("10.0.0.7:32768"));
        assert_eq!(
            addr("ci-here").as_deref(),
            Some("127.0.0.1:32768"),
            "berth dev's own engine"
        );
        assert_eq!(
            target_addr(&state, TargetType::Ip, "10.1.2.3", 80)
                .map(|a| a.to_string())
                .as_deref(),
            Some("10.1.2.3:80")
        );
    }

    #[tokio::test]
    async fn the_store_becomes_the_data_planes_config() {
        let cp = ControlPlane::in_memory();
        let lb = elbv2(&cp, "Action=CreateLoadBalancer&Name=lb", "LoadBalancerArn").await;
        let web = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&VpcId=v\
             &HealthCheckPath=%2Fhealth&HealthCheckIntervalSeconds=7&HealthCheckTimeoutSeconds=3\
             &HealthyThresholdCount=4&UnhealthyThresholdCount=5&Matcher.HttpCode=200-299%2C302",
            "TargetGroupArn",
        )
        .await;
        let api = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=api&Protocol=HTTP&Port=8080&VpcId=v&TargetType=ip\
             &HealthCheckPort=9000",
            "TargetGroupArn",
        )
        .await;
        elbv2(
            &cp,
            &format!(
                "Action=ModifyTargetGroupAttributes&TargetGroupArn={api}\
                 &Attributes.member.1.Key=load_balancing.algorithm.type\
                 &Attributes.member.1.Value=least_outstanding_requests\
                 &Attributes.member.2.Key=deregistration_delay.timeout_seconds\
                 &Attributes.member.2.Value=12\
                 &Attributes.member.3.Key=stickiness.enabled&Attributes.member.3.Value=true\
                 &Attributes.member.4.Key=stickiness.lb_cookie.duration_seconds\
                 &Attributes.member.4.Value=60"
            ),
            "TargetGroupArn",
        )
        .await;
        for (port, group) in [(8000, &web), (8001, &api)] {
            elbv2(
                &cp,
                &format!(
                    "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port={port}\
                     &DefaultActions.member.1.Type=forward\
                     &DefaultActions.member.1.TargetGroupArn={group}"
                ),
                "ListenerArn",
            )
            .await;
        }
        let web_id = web.rsplit('/').next().unwrap().to_string();
        let api_id = api.rsplit('/').next().unwrap().to_string();
        cp.store
            .apply(vec![
                target(&web_id, "instance-1", 32768, false),
                target(&web_id, "instance-1", 32769, true),
                target(&api_id, "10.1.2.3", 8080, false),
            ])
            .unwrap();

        let bind: IpAddr = "127.0.0.1".parse().unwrap();
        let config = cp
            .store
            .read(|state| lb_config(state, bind, &cp.privilege_policy));

        let mut binds: Vec<(u16, &str)> = config
            .listeners
            .iter()
            .map(|l| (l.bind.port(), l.target_groups().next().unwrap_or_default()))
            .collect();
        binds.sort();
        assert_eq!(
            binds,
            vec![(8000, web_id.as_str()), (8001, api_id.as_str())]
        );
        assert!(config.listeners.iter().all(|l| l.bind.ip() == bind));

        let group = |id: &str| {
            config
                .target_groups
                .iter()
                .find(|g| g.id == id)
                .unwrap()
                .clone()
        };
        let web_group = group(&web_id);
        // Instance targets are this machine's published host ports; draining ones are
        // left to the data plane's own draining.
        let addrs: Vec<String> = web_group
            .targets
            .iter()
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(addrs, vec!["127.0.0.1:32768"]);
        assert_eq!(web_group.algorithm, Algorithm::RoundRobin);
        let check = &web_group.health_check;
        assert_eq!(check.path, "/health");
        assert_eq!(check.interval, Duration::from_secs(7));
        assert_eq!(check.timeout, Duration::from_secs(3));
        assert_eq!((check.healthy_threshold, check.unhealthy_threshold), (4, 5));
        assert_eq!(check.matcher, vec![(200, 299), (302, 302)]);
        assert_eq!(check.port, None, "traffic-port: the target's own port");

        let api_group = group(&api_id);
        let addrs: Vec<String> = api_group
            .targets
            .iter()
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(
            addrs,
            vec!["10.1.2.3:8080"],
            "ip targets are addressed directly"
        );
        assert_eq!(api_group.algorithm, Algorithm::LeastOutstandingRequests);
        assert_eq!(api_group.deregistration_delay, Duration::from_secs(12));
        assert_eq!(api_group.health_check.port, Some(9000));
        let sticky = Stickiness::LbCookie {
            duration: Duration::from_secs(60),
        };
        assert_eq!(api_group.stickiness, sticky);
        assert_eq!(web_group.stickiness, Stickiness::Off);

        // A load-balancer node is told the same stickiness, and an older node's view of
        // a group (no stickiness field) still parses, as off.
        let balancer = cp
            .store
            .read(|state| balancer_config(state, &cp.privilege_policy));
        let edge = edge_lb_config(&balancer, bind);
        let edge_group = |id: &str| edge.target_groups.iter().find(|g| g.id == id).unwrap();
        assert_eq!(edge_group(&api_id).stickiness, sticky);
        assert_eq!(edge_group(&web_id).stickiness, Stickiness::Off);
        let web_told = balancer
            .target_groups
            .iter()
            .find(|g| g.id == web_id)
            .unwrap();
        let json = serde_json::to_value(web_told).unwrap();
        assert!(json.get("stickiness").is_none(), "{json}");
        let parsed: BalancerTargetGroup = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.stickiness, None);
    }

    #[tokio::test]
    async fn rules_and_default_actions_reach_both_data_planes_alike() {
        let cp = ControlPlane::in_memory();
        let lb = elbv2(&cp, "Action=CreateLoadBalancer&Name=lb", "LoadBalancerArn").await;
        let mut groups = Vec::new();
        for name in ["web", "api"] {
            groups.push(
                elbv2(
                    &cp,
                    &format!(
                        "Action=CreateTargetGroup&Name={name}&Protocol=HTTP&Port=80&TargetType=ip"
                    ),
                    "TargetGroupArn",
                )
                .await,
            );
        }
        let (web, api) = (&groups[0], &groups[1]);
        let listener = elbv2(
            &cp,
            &format!(
                "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=8000\
                 &DefaultActions.member.1.Type=fixed-response\
                 &DefaultActions.member.1.FixedResponseConfig.StatusCode=404\
                 &DefaultActions.member.1.FixedResponseConfig.MessageBody=none"
            ),
            "ListenerArn",
        )
        .await;
        elbv2(
            &cp,
            &format!(
                "Action=CreateRule&ListenerArn={listener}&Priority=20\
                 &Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Fapi%2F*\
                 &Conditions.member.2.Field=source-ip\
                 &Conditions.member.2.SourceIpConfig.Values.member.1=10.0.0.0%2F8\
                 &Actions.member.1.Type=forward\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={api}\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn={web}\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight=1"
            ),
            "RuleArn",
        )
        .await;
        elbv2(
            &cp,
            &format!(
                "Action=CreateRule&ListenerArn={listener}&Priority=10\
                 &Conditions.member.1.Field=host-header\
                 &Conditions.member.1.HostHeaderConfig.Values.member.1=old.example\
                 &Actions.member.1.Type=redirect&Actions.member.1.RedirectConfig.Host=new.example\
                 &Actions.member.1.RedirectConfig.StatusCode=HTTP_301"
            ),
            "RuleArn",
        )
        .await;
        let web_id = web.rsplit('/').next().unwrap().to_string();
        let api_id = api.rsplit('/').next().unwrap().to_string();
        cp.store
            .apply(vec![target(&api_id, "10.1.2.3", 8080, false)])
            .unwrap();

        let bind: IpAddr = "127.0.0.1".parse().unwrap();
        let (dev, node) = cp.store.read(|state| {
            (
                lb_config(state, bind, &cp.privilege_policy),
                balancer_config(state, &cp.privilege_policy),
            )
        });
        let listener = &dev.listeners[0];
        assert_eq!(
            listener.default_action,
            berth_lb::Action::FixedResponse(berth_lb::FixedResponse {
                status: 404,
                content_type: None,
                body: "none".to_string(),
            })
        );
        let mut rules = listener.rules.clone();
        rules.sort_by_key(|rule| rule.priority);
        assert_eq!(
            rules[0].action,
            berth_lb::Action::Redirect(berth_lb::Redirect {
                protocol: "#{protocol}".to_string(),
                host: "new.example".to_string(),
                port: "#{port}".to_string(),
                path: "/#{path}".to_string(),
                query: "#{query}".to_string(),
                status: 301,
            })
        );
        assert_eq!(
            rules[1].conditions,
            vec![
                berth_lb::Condition::PathPattern(vec![berth_lb::Pattern("/api/*".to_string())]),
                berth_lb::Condition::SourceIp(vec![berth_lb::Cidr {
                    network: "10.0.0.0".parse().unwrap(),
                    prefix: 8,
                }]),
            ]
        );
        assert_eq!(
            rules[1].action,
            berth_lb::Action::Forward(vec![
                berth_lb::WeightedGroup {
                    target_group_id: api_id.clone(),
                    weight: 3,
                },
                berth_lb::WeightedGroup {
                    target_group_id: web_id.clone(),
                    weight: 1,
                },
            ])
        );
        // The groups only a rule forwards to are checked and hold their targets.
        let api_group = dev.target_groups.iter().find(|g| g.id == api_id).unwrap();
        assert!(api_group.health_check.enabled);
        assert_eq!(api_group.targets.len(), 1);
        let mut used: Vec<&str> = listener.target_groups().collect();
        used.sort_unstable();
        used.dedup();
        let mut expected = vec![api_id.as_str(), web_id.as_str()];
        expected.sort_unstable();
        assert_eq!(used, expected);

        // A node serving the listener routes the same way.
        let edge = edge_lb_config(&node, bind);
        assert_eq!(edge.listeners[0].default_action, listener.default_action);
        assert_eq!(edge.listeners[0].rules, rules);
        assert_eq!(node.listeners[0].target_group_id, "");
    }

    #[test]
    fn a_listener_from_a_control_plane_older_than_rules_forwards_to_its_group() {
        let config: BalancerConfig = serde_json::from_value(serde_json::json!({
            "version": "v",
            "listeners": [{"id": "l1", "port": 8000, "protocol": "Http", "targetGroupId": "tg"}],
            "targetGroups": []
        }))
        .unwrap();
        let lb = edge_lb_config(&config, "127.0.0.1".parse().unwrap());
        assert_eq!(
            lb.listeners[0].default_action,
            berth_lb::Action::forward_to("tg")
        );
        assert!(lb.listeners[0].rules.is_empty());
    }

    #[tokio::test]
    async fn idle_timeouts_and_moved_ports_reach_the_data_planes_config() {
        let cp = ControlPlane::in_memory();
        let alb = elbv2(&cp, "Action=CreateLoadBalancer&Name=web", "LoadBalancerArn").await;
        let nlb = elbv2(
            &cp,
            "Action=CreateLoadBalancer&Name=tcp&Type=network",
            "LoadBalancerArn",
        )
        .await;
        // ProtocolVersion sent empty, as Terraform sends it: unset.
        let web = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&ProtocolVersion=&TargetType=ip",
            "TargetGroupArn",
        )
        .await;
        let tcp = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=tcp&Protocol=TCP&Port=80&TargetType=ip",
            "TargetGroupArn",
        )
        .await;
        let http_listener = elbv2(
            &cp,
            &format!(
                "Action=CreateListener&LoadBalancerArn={alb}&Protocol=HTTP&Port=8000\
                 &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={web}"
            ),
            "ListenerArn",
        )
        .await;
        let tcp_listener = elbv2(
            &cp,
            &format!(
                "Action=CreateListener&LoadBalancerArn={nlb}&Protocol=TCP&Port=9000\
                 &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tcp}"
            ),
            "ListenerArn",
        )
        .await;
        let bind: IpAddr = "127.0.0.1".parse().unwrap();
        let timeouts = |cp: &ControlPlane| {
            let config = cp
                .store
                .read(|state| lb_config(state, bind, &cp.privilege_policy));
            let mut timeouts: Vec<(u16, Option<Duration>)> = config
                .listeners
                .iter()
                .map(|l| (l.bind.port(), l.idle_timeout))
                .collect();
            timeouts.sort();
            timeouts
        };
        // ELBv2's defaults: 60 s for an application load balancer, 350 s for TCP.
        assert_eq!(
            timeouts(&cp),
            vec![
                (8000, Some(Duration::from_secs(60))),
                (9000, Some(Duration::from_secs(350)))
            ]
        );
        elbv2(
            &cp,
            &format!(
                "Action=ModifyLoadBalancerAttributes&LoadBalancerArn={alb}\
                 &Attributes.member.1.Key=idle_timeout.timeout_seconds&Attributes.member.1.Value=3"
            ),
            "Attributes",
        )
        .await;
        elbv2(
            &cp,
            &format!(
                "Action=ModifyListenerAttributes&ListenerArn={tcp_listener}\
                 &Attributes.member.1.Key=tcp.idle_timeout.seconds&Attributes.member.1.Value=90"
            ),
            "Attributes",
        )
        .await;
        elbv2(
            &cp,
            &format!("Action=ModifyListener&ListenerArn={http_listener}&Port=8001"),
            "ListenerArn",
        )
        .await;
        assert_eq!(
            timeouts(&cp),
            vec![
                (8001, Some(Duration::from_secs(3))),
                (9000, Some(Duration::from_secs(90)))
            ]
        );
        // And a node serving the listeners is told the same.
        let balancer = cp
            .store
            .read(|state| balancer_config(state, &cp.privilege_policy));
        let mut told: Vec<(u16, Option<u64>)> = balancer
            .listeners
            .iter()
            .map(|l| (l.port, l.idle_timeout_ms))
            .collect();
        told.sort();
        assert_eq!(told, vec![(8001, Some(3000)), (9000, Some(90_000))]);
    }

    static CONFIG_ROUNDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn config_panics_once(state: &State, bind: IpAddr, policy: &PrivilegePolicy) -> LbConfig {
        if CONFIG_ROUNDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("a bug in the first config round");
        }
        lb_config(state, bind, policy)
    }

    #[tokio::test]
    async fn a_panicking_config_round_is_counted_and_the_listeners_still_come_up() {
        let cp = Arc::new(ControlPlane::in_memory());
        let lb = elbv2(&cp, "Action=CreateLoadBalancer&Name=lb", "LoadBalancerArn").await;
        let web = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&VpcId=v",
            "TargetGroupArn",
        )
        .await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listener = elbv2(
            &cp,
            &format!(
                "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port={port}\
                 &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={web}"
            ),
            "ListenerArn",
        )
        .await;
        let listener_id = listener.rsplit('/').next().unwrap().to_string();
        let balancer = LoadBalancer::new(berth_lb::Limits::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_load_balancer_with(
            cp.clone(),
            balancer.clone(),
            "127.0.0.1".parse().unwrap(),
            config_panics_once,
            async {
                let _ = stopped.await;
            },
        ));
        let bound = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(addr) = balancer.local_addr(&listener_id) {
                    return addr;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the listener is bound after the panicking round");
        assert_eq!(bound.port(), port);
        tokio::net::TcpStream::connect(bound).await.unwrap();
        assert_eq!(cp.loop_panics(LoopName::LoadBalancerConfig), 1);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_listener_whose_port_cannot_be_bound_is_refused_and_nothing_is_stored() {
        let cp = Arc::new(ControlPlane::in_memory());
        let lb = elbv2(&cp, "Action=CreateLoadBalancer&Name=lb", "LoadBalancerArn").await;
        let fixed = "&DefaultActions.member.1.Type=fixed-response\
                     &DefaultActions.member.1.FixedResponseConfig.StatusCode=200";
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listener = elbv2(
            &cp,
            &format!("Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port={free}{fixed}"),
            "ListenerArn",
        )
        .await;
        let listener_id = listener.rsplit('/').next().unwrap().to_string();
        let balancer = LoadBalancer::new(berth_lb::Limits::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_load_balancer(
            cp.clone(),
            balancer.clone(),
            "127.0.0.1".parse().unwrap(),
            async {
                let _ = stopped.await;
            },
        ));
        tokio::time::timeout(Duration::from_secs(20), async {
            while !cp
                .listener_serving
                .status(&listener_id)
                .is_some_and(|status| status.is_serving())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the balancer reports the listener serving");

        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held_port = held.local_addr().unwrap().port();
        let refused = |body: String| {
            let cp = cp.clone();
            async move { dispatch_query(&cp, "us-east-1", body.as_bytes(), "test").await }
        };
        let created = refused(format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port={held_port}{fixed}"
        ))
        .await;
        assert_eq!(created.status, 400, "{}", created.document);
        for words in [
            "InvalidConfigurationRequest".to_string(),
            format!("127.0.0.1:{held_port}: Address already in use"),
            "the listener was not created".to_string(),
        ] {
            assert!(created.document.contains(&words), "{}", created.document);
        }
        let ports = |cp: &ControlPlane| {
            cp.store
                .read(|state| state.listeners.values().map(|l| l.port).collect::<Vec<_>>())
        };
        assert_eq!(ports(&cp), vec![free]);

        let moved = refused(format!(
            "Action=ModifyListener&ListenerArn={listener}&Port={held_port}"
        ))
        .await;
        assert_eq!(moved.status, 400, "{}", moved.document);
        assert!(
            moved
                .document
                .contains(&format!("the listener keeps port {free}")),
            "{}",
            moved.document
        );
        assert_eq!(ports(&cp), vec![free]);
        assert_eq!(
            balancer.local_addr(&listener_id).map(|addr| addr.port()),
            Some(free)
        );

        // Put back, it serves where it was, and DescribeListeners says so in berth's own
        // element.
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let described =
                    refused(format!("Action=DescribeListeners&LoadBalancerArn={lb}")).await;
                assert_eq!(described.status, 200, "{}", described.document);
                if described
                    .document
                    .contains("<BerthServingState><Code>serving</Code></BerthServingState>")
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("DescribeListeners shows the listener serving again");
        drop(held);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    /// Runs a pure ECS action against the store under a policy allowing everything.
    fn ecs<Q, R>(
        cp: &ControlPlane,
        action: impl FnOnce(
            &State,
            Q,
            &mut berth_core::ecs::Context<'_>,
        ) -> Result<berth_core::ecs::Outcome<R>, berth_core::EcsError>,
        request: Q,
    ) -> R {
        let scope = cp.scope("us-east-1");
        let mut ids = crate::RandomIds;
        let policy = PrivilegePolicy::allow_all();
        let mut ctx = berth_core::ecs::Context {
            now: crate::now(),
            scope: &scope,
            ids: &mut ids,
            policy: &policy,
        };
        let outcome = cp
            .store
            .read(|state| action(state, request, &mut ctx))
            .unwrap_or_else(|error| panic!("{error}"));
        cp.store.apply(outcome.commands).unwrap();
        outcome.response
    }

    /// A container instance running one task that has published host port 32768 (and
    /// 32770 for udp only); returns the instance id and the task id.
    fn instance_with_published_port(cp: &ControlPlane) -> (String, String) {
        let registration = berth_core::nodes::NodeRegistration {
            node_id: "node-1".to_string(),
            hostname: "host-1".to_string(),
            cpu: 2048,
            memory: 4096,
            agent_version: "1.0.0".to_string(),
            docker_version: "27.0.0".to_string(),
            cluster: "default".to_string(),
            joins_every_cluster: true,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        };
        ecs(
            cp,
            |state, registration, ctx| {
                Ok(berth_core::ecs::Outcome {
                    commands: berth_core::nodes::register_node(state, &registration, ctx),
                    response: (),
                })
            },
            registration,
        );
        let instance = cp
            .store
            .read(|state| state.container_instances.keys().next().cloned())
            .unwrap();
        ecs(
            cp,
            berth_core::ecs::register_task_definition,
            serde_json::from_value(serde_json::json!({
                "family": "web",
                "containerDefinitions": [{
                    "name": "app", "image": "nginx:1.27", "memory": 128, "essential": true,
                    "portMappings": [{ "containerPort": 80, "hostPort": 0 }]
                }]
            }))
            .unwrap(),
        );
        let run = ecs(
            cp,
            berth_core::ecs::run_task,
            serde_json::from_value(serde_json::json!({ "taskDefinition": "web" })).unwrap(),
        );
        let task_id = run.tasks[0]
            .task_arn
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let binding = |protocol: &str, host_port| berth_core::api::NetworkBinding {
            bind_ip: Some("0.0.0.0".into()),
            container_port: Some(80),
            host_port: Some(host_port),
            protocol: Some(protocol.into()),
        };
        let mut report =
            berth_core::TaskReport::status(&task_id, berth_core::model::TaskStatus::Running);
        report.containers = vec![berth_core::ContainerReport {
            name: "app".to_string(),
            runtime_id: Some("docker-app".to_string()),
            image_digest: None,
            last_status: berth_core::model::ContainerStatus::Running,
            exit_code: None,
            reason: None,
            network_bindings: vec![binding("tcp", 32768), binding("udp", 32770)],
            health_status: berth_core::model::HealthStatus::Unknown,
        }];
        let commands = cp
            .store
            .read(|state| berth_core::apply_task_reports(state, &[report], crate::now()));
        cp.store.apply(commands).unwrap();
        (instance, task_id)
    }

    /// Targets registered under a looser policy are not served once the policy refuses
    /// them: a loopback ip target, and an instance target at a host port no running task
    /// published (or whose task has gone). Other targets are, and the refusal is the
    /// target's health.
    #[tokio::test]
    async fn targets_the_policy_refuses_stay_out_of_the_data_plane() {
        let cp = ControlPlane::in_memory();
        let api = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=api&Protocol=HTTP&Port=8080&VpcId=v&TargetType=ip",
            "TargetGroupArn",
        )
        .await;
        let web = elbv2(
            &cp,
            "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&VpcId=v",
            "TargetGroupArn",
        )
        .await;
        let api_id = api.rsplit('/').next().unwrap().to_string();
        let web_id = web.rsplit('/').next().unwrap().to_string();
        let (instance, task_id) = instance_with_published_port(&cp);
        cp.store
            .apply(vec![
                target(&api_id, "10.1.2.3", 8080, false),
                target(&api_id, "127.0.0.1", 9650, false),
                target(&web_id, &instance, 32768, false),
                target(&web_id, &instance, 32770, false),
                target(&web_id, &instance, 5432, false),
            ])
            .unwrap();
        let bind: IpAddr = "0.0.0.0".parse().unwrap();
        let served = |policy: &PrivilegePolicy, group: &str| -> Vec<String> {
            let config = cp.store.read(|state| lb_config(state, bind, policy));
            let group = config.target_groups.iter().find(|g| g.id == group).unwrap();
            group.targets.iter().map(|t| t.addr.to_string()).collect()
        };
        let allow_all = PrivilegePolicy::allow_all();
        let deny_all = PrivilegePolicy::deny_all();
        assert_eq!(
            served(&allow_all, &api_id),
            vec!["10.1.2.3:8080", "127.0.0.1:9650"]
        );
        assert_eq!(served(&deny_all, &api_id), vec!["10.1.2.3:8080"]);
        assert_eq!(
            served(&allow_all, &web_id),
            vec!["127.0.0.1:32768", "127.0.0.1:32770", "127.0.0.1:5432"]
        );
        assert_eq!(served(&deny_all, &web_id), vec!["127.0.0.1:32768"]);

        let balancer = LoadBalancer::new(berth_lb::Limits::default());
        let health_of = |policy: &PrivilegePolicy| -> Vec<(u16, String)> {
            cp.store.read(|state| {
                health_commands(state, &balancer, policy)
                    .into_iter()
                    .filter_map(|command| match command {
                        Command::PutTargetHealth { port, health, .. } => {
                            Some((port, health.reason.unwrap_or_default()))
                        }
                        _ => None,
                    })
                    .collect()
            })
        };
        balancer
            .apply(lb_config(&cp.store.read(Clone::clone), bind, &deny_all))
            .await
            .unwrap();
        let mut refused = health_of(&deny_all);
        refused.sort();
        assert_eq!(
            refused,
            vec![
                (5432, "Target.InvalidState".to_string()),
                (9650, "Target.IpUnusable".to_string()),
                (32770, "Target.InvalidState".to_string()),
            ]
        );
        let mut said: Vec<String> = cp
            .store
            .read(|state| served_local_targets(state, &allow_all))
            .into_iter()
            .map(|(_, target)| target)
            .collect();
        said.sort();
        assert_eq!(
            said,
            vec![
                "target group 'api': ip target 127.0.0.1:9650".to_string(),
                format!("target group 'web': instance target {instance}:32770"),
                format!("target group 'web': instance target {instance}:5432"),
            ]
        );

        // The task goes: its port is nothing a task published any more.
        let commands = cp.store.read(|state| {
            berth_core::apply_task_reports(
                state,
                &[berth_core::TaskReport::status(
                    &task_id,
                    berth_core::model::TaskStatus::Stopped,
                )],
                crate::now(),
            )
        });
        cp.store.apply(commands).unwrap();
        assert_eq!(served(&deny_all, &web_id), Vec::<String>::new());
        assert_eq!(served(&allow_all, &web_id).len(), 3);
    }

    #[test]
    fn a_node_serving_listeners_binds_them_and_routes_to_what_it_is_given() {
        let config = BalancerConfig {
            version: "v".to_string(),
            listeners: vec![BalancerListener {
                id: "l1".to_string(),
                port: 8000,
                protocol: Protocol::Tcp,
                target_group_id: "tg".to_string(),
                idle_timeout_ms: Some(120_000),
                default_action: None,
                rules: Vec::new(),
            }],
            target_groups: vec![BalancerTargetGroup {
                id: "tg".to_string(),
                protocol: Protocol::Tcp,
                algorithm: LoadBalancingAlgorithm::LeastOutstandingRequests,
                deregistration_delay_ms: 2500,
                stickiness: Some(StickinessPolicy::SourceIp),
                targets: vec![BalancerTarget {
                    id: "ci-1:32768".to_string(),
                    addr: "10.0.0.7:32768".parse().unwrap(),
                }],
            }],
        };
        let bind: IpAddr = "127.0.0.12".parse().unwrap();
        let lb = edge_lb_config(&config, bind);
        assert_eq!(lb.listeners.len(), 1);
        assert_eq!(lb.listeners[0].bind, "127.0.0.12:8000".parse().unwrap());
        assert_eq!(lb.listeners[0].protocol, ListenerProtocol::Tcp);
        assert_eq!(lb.listeners[0].idle_timeout, Some(Duration::from_secs(120)));
        let group = &lb.target_groups[0];
        assert_eq!(group.algorithm, Algorithm::LeastOutstandingRequests);
        assert_eq!(group.deregistration_delay, Duration::from_millis(2500));
        assert_eq!(group.stickiness, Stickiness::SourceIp);
        // The control plane's checks decided: this node checks nothing itself.
        assert!(!group.health_check.enabled);
        assert_eq!(group.targets[0].addr, "10.0.0.7:32768".parse().unwrap());
    }
}
