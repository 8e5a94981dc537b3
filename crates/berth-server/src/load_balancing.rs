//! Runs berth's load balancer from the store: the ELBv2 records become the data
//! plane's configuration, and the data plane's verdict on each target flows back into
//! the store (DescribeTargetHealth, and the service scheduler's view of task health).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_core::elbv2::model::{
    target_key, HealthCheck, LoadBalancingAlgorithm, Protocol, TargetHealth, TargetHealthState,
    TargetType,
};
use berth_core::{Command, State};
use berth_lb::{
    parse_matcher, Algorithm, HealthCheckConfig, HealthProtocol, LbConfig, ListenerConfig,
    ListenerProtocol, LoadBalancer, TargetConfig, TargetGroupConfig, TargetState,
};

use crate::ControlPlane;

fn protocol(protocol: Protocol) -> ListenerProtocol {
    match protocol {
        Protocol::Http => ListenerProtocol::Http,
        Protocol::Tcp => ListenerProtocol::Tcp,
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

/// Where the data plane reaches a target. Instance targets run on this machine's engine
/// (their host ports are published on it); ip targets are addressed directly.
fn target_addr(target_type: TargetType, id: &str, port: u16) -> Option<SocketAddr> {
    match target_type {
        TargetType::Instance => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        TargetType::Ip => id
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port)),
    }
}

/// The data plane's configuration for the store's load balancers. Draining targets are
/// left out: the data plane drains a target it no longer has for the group's
/// deregistration delay, which is what the store waits for too.
pub fn lb_config(state: &State, bind_ip: IpAddr) -> LbConfig {
    let listeners = state
        .listeners
        .values()
        .map(|l| ListenerConfig {
            id: l.id.clone(),
            bind: SocketAddr::new(bind_ip, l.port),
            protocol: protocol(l.protocol),
            target_group_id: l.target_group.clone(),
        })
        .collect();
    let target_groups = state
        .target_groups
        .values()
        .map(|group| TargetGroupConfig {
            id: group.id.clone(),
            protocol: protocol(group.protocol),
            algorithm: match group.attributes.load_balancing_algorithm {
                LoadBalancingAlgorithm::RoundRobin => Algorithm::RoundRobin,
                LoadBalancingAlgorithm::LeastOutstandingRequests => {
                    Algorithm::LeastOutstandingRequests
                }
            },
            health_check: health_check(&group.health_check),
            deregistration_delay: Duration::from_secs(u64::from(
                group.attributes.deregistration_delay_seconds,
            )),
            targets: state
                .targets
                .range(format!("{}/", group.id)..)
                .take_while(|(key, _)| key.starts_with(&format!("{}/", group.id)))
                .map(|(_, t)| t)
                .filter(|t| t.draining_until.is_none())
                .filter_map(|t| {
                    Some(TargetConfig {
                        id: t.key(),
                        addr: target_addr(group.target_type, &t.id, t.port)?,
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

/// Commands recording the data plane's verdicts that differ from the store's.
fn health_commands(state: &State, balancer: &LoadBalancer) -> Vec<Command> {
    let mut commands = Vec::new();
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
            let health = TargetHealth {
                state: state_now,
                reason: report.reason.map(str::to_string),
                description: report.description.clone(),
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
    let mut changes = control_plane.store.watch();
    let mut health = balancer.health_changes();
    let mut applied: Option<LbConfig> = None;
    let mut last_error: Option<String> = None;
    tokio::pin!(shutdown);
    loop {
        changes.borrow_and_update();
        health.borrow_and_update();
        let config = control_plane.store.read(|state| lb_config(state, bind_ip));
        if applied.as_ref() != Some(&config) {
            match balancer.apply(config.clone()).await {
                Ok(()) => {
                    applied = Some(config);
                    last_error = None;
                }
                // A listener that cannot bind (port in use) is left out and retried on
                // the next change or tick; everything else was applied and serves.
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_ref() != Some(&text) {
                        tracing::error!(%error, "the load balancer could not apply all of its configuration");
                        last_error = Some(text);
                    }
                }
            }
        }
        let result = control_plane.store.transact(|state| {
            Ok::<_, std::convert::Infallible>((health_commands(state, &balancer), ()))
        });
        if let Err(error) = result {
            tracing::error!(%error, "recording target health failed");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            changed = changes.changed() => if changed.is_err() { break },
            changed = health.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    balancer.shutdown().await;
}
