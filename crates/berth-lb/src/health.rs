//! Target health: the ELBv2 state machine (pure, `HealthRecord`) and the active checker
//! task that feeds it.
//!
//! Rules, in ELBv2's words where they exist:
//! - A new target is `Initial` (`Elb.RegistrationInProgress`) and gets no traffic.
//!   ONE passing check makes it `Healthy`, so a new task serves as soon as it answers;
//!   `unhealthy_threshold` consecutive failures make it `Unhealthy` while still initial
//!   (`Elb.InitialHealthChecking` in between).
//! - `Healthy` -> `Unhealthy` after `unhealthy_threshold` consecutive failed checks;
//!   `Unhealthy` -> `Healthy` after `healthy_threshold` consecutive passing checks.
//! - Passive: `unhealthy_threshold` consecutive traffic failures (connect refused or
//!   timed out, reset before a response) make a `Healthy` target `Unhealthy`
//!   (`Target.FailedHealthChecks`); active checks bring it back as above. With active
//!   checks disabled the passive ejection lasts one `interval`, then the target is
//!   `Healthy` again (there is nothing else that could bring it back).
//! - A deregistered target is `Draining` (`Target.DeregistrationInProgress`) until the
//!   group's deregistration delay ends; its checks stop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;

use crate::config::{matcher_accepts, HealthCheckConfig, HealthProtocol};
use crate::target_group::TargetGroup;
use crate::upstream::Target;

/// A target's state, as ELBv2's `DescribeTargetHealth` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    /// The target group is not used by any listener (`Target.NotInUse`).
    Unused,
}

/// One target's health, as `LoadBalancer::target_health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub id: String,
    pub addr: std::net::SocketAddr,
    pub state: TargetState,
    /// An ELBv2 reason code (`Target.Timeout`, ...); `None` when healthy.
    pub reason: Option<&'static str>,
    pub description: Option<String>,
}

pub(crate) const REGISTRATION_IN_PROGRESS: &str = "Elb.RegistrationInProgress";
pub(crate) const INITIAL_HEALTH_CHECKING: &str = "Elb.InitialHealthChecking";
pub(crate) const RESPONSE_CODE_MISMATCH: &str = "Target.ResponseCodeMismatch";
pub(crate) const TIMEOUT: &str = "Target.Timeout";
pub(crate) const FAILED_HEALTH_CHECKS: &str = "Target.FailedHealthChecks";
pub(crate) const DEREGISTRATION_IN_PROGRESS: &str = "Target.DeregistrationInProgress";
pub(crate) const NOT_IN_USE: &str = "Target.NotInUse";

/// The result of one active check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    Passed,
    Failed {
        reason: &'static str,
        description: String,
    },
}

/// The health state machine of one target. Pure: the checker and the proxy feed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthRecord {
    pub state: TargetState,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
    consecutive_passes: u32,
    consecutive_failures: u32,
}

impl HealthRecord {
    pub fn registered(checks_enabled: bool) -> HealthRecord {
        let (state, reason, description) = if checks_enabled {
            (
                TargetState::Initial,
                Some(REGISTRATION_IN_PROGRESS),
                Some("Target registration is in progress".to_string()),
            )
        } else {
            (TargetState::Healthy, None, None)
        };
        HealthRecord {
            state,
            reason,
            description,
            consecutive_passes: 0,
            consecutive_failures: 0,
        }
    }

    /// Applies one active check; returns whether the state changed.
    pub fn on_check(&mut self, outcome: CheckOutcome, config: &HealthCheckConfig) -> bool {
        let before = self.state;
        match outcome {
            CheckOutcome::Passed => {
                self.consecutive_failures = 0;
                self.consecutive_passes = self.consecutive_passes.saturating_add(1);
                let becomes_healthy = match self.state {
                    TargetState::Initial => true,
                    TargetState::Unhealthy => {
                        self.consecutive_passes >= config.healthy_threshold.max(1)
                    }
                    _ => false,
                };
                if becomes_healthy || self.state == TargetState::Healthy {
                    self.set(TargetState::Healthy, None, None);
                }
            }
            CheckOutcome::Failed {
                reason,
                description,
            } => {
                self.consecutive_passes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let threshold_reached =
                    self.consecutive_failures >= config.unhealthy_threshold.max(1);
                match self.state {
                    TargetState::Initial if !threshold_reached => {
                        self.set(
                            TargetState::Initial,
                            Some(INITIAL_HEALTH_CHECKING),
                            Some("Initial health checks in progress".to_string()),
                        );
                    }
                    TargetState::Initial | TargetState::Healthy if threshold_reached => {
                        self.set(TargetState::Unhealthy, Some(reason), Some(description));
                    }
                    TargetState::Unhealthy => {
                        self.set(TargetState::Unhealthy, Some(reason), Some(description));
                    }
                    _ => {}
                }
            }
        }
        self.state != before
    }

    /// `consecutive` traffic failures in a row were seen; returns whether the state changed.
    pub fn on_passive_failures(&mut self, consecutive: u32, config: &HealthCheckConfig) -> bool {
        if self.state == TargetState::Healthy && consecutive >= config.unhealthy_threshold.max(1) {
            self.consecutive_passes = 0;
            self.set(
                TargetState::Unhealthy,
                Some(FAILED_HEALTH_CHECKS),
                Some(format!(
                    "{consecutive} consecutive connection failures on traffic"
                )),
            );
            return true;
        }
        false
    }

    /// With checks disabled, a passive ejection ends after one interval.
    pub fn on_disabled_interval(&mut self) -> bool {
        if matches!(self.state, TargetState::Unhealthy | TargetState::Initial) {
            self.set(TargetState::Healthy, None, None);
            return true;
        }
        false
    }

    pub fn start_draining(&mut self) {
        self.set(
            TargetState::Draining,
            Some(DEREGISTRATION_IN_PROGRESS),
            Some("Target deregistration is in progress".to_string()),
        );
    }

    fn set(
        &mut self,
        state: TargetState,
        reason: Option<&'static str>,
        description: Option<String>,
    ) {
        self.state = state;
        self.reason = reason;
        self.description = description;
    }
}

/// Runs the active checks of one target until its cancel token fires.
pub(crate) async fn run_checker(group: Arc<TargetGroup>, target: Arc<Target>) {
    // The first check runs at once so a new target serves as soon as it answers.
    let mut interval_length = group.settings().health_check.interval;
    let mut ticker = new_ticker(interval_length);
    loop {
        tokio::select! {
            _ = target.cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let settings = group.settings();
        let config = &settings.health_check;
        if config.interval != interval_length {
            interval_length = config.interval;
            ticker = new_ticker(interval_length);
            ticker.tick().await;
        }
        if !config.enabled {
            group.update_health(&target, |record| record.on_disabled_interval());
            continue;
        }
        let outcome = tokio::select! {
            _ = target.cancel.cancelled() => return,
            outcome = check_once(target.addr, config) => outcome,
        };
        tracing::trace!(target_id = %target.id, ?outcome, "health check");
        let passed = outcome == CheckOutcome::Passed;
        group.update_health(&target, |record| record.on_check(outcome, config));
        if passed {
            target.clear_passive_failures();
        }
    }
}

fn new_ticker(period: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// One check of `addr` (its port replaced by the health port when set).
pub(crate) async fn check_once(
    addr: std::net::SocketAddr,
    config: &HealthCheckConfig,
) -> CheckOutcome {
    let mut addr = addr;
    if let Some(port) = config.port {
        addr.set_port(port);
    }
    match tokio::time::timeout(config.timeout, probe(addr, config)).await {
        Ok(outcome) => outcome,
        Err(_) => CheckOutcome::Failed {
            reason: TIMEOUT,
            description: "Request timed out".to_string(),
        },
    }
}

async fn probe(addr: std::net::SocketAddr, config: &HealthCheckConfig) -> CheckOutcome {
    let stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => {
            return CheckOutcome::Failed {
                reason: FAILED_HEALTH_CHECKS,
                description: format!("connection to {addr} failed: {error}"),
            }
        }
    };
    if config.protocol == HealthProtocol::Tcp {
        return CheckOutcome::Passed;
    }
    let failed = |description: String| CheckOutcome::Failed {
        reason: FAILED_HEALTH_CHECKS,
        description,
    };
    let (mut sender, connection) = match hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(
        TokioIo::new(stream),
    )
    .await
    {
        Ok(parts) => parts,
        Err(error) => return failed(format!("health check handshake failed: {error}")),
    };
    let driver = tokio::spawn(connection);
    let path = if config.path.starts_with('/') {
        config.path.clone()
    } else {
        format!("/{}", config.path)
    };
    let request = Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "berth-lb-health-checker/1")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::new());
    let request = match request {
        Ok(request) => request,
        Err(error) => return failed(format!("invalid health check path: {error}")),
    };
    let outcome = match sender.send_request(request).await {
        Ok(response) => {
            let status: StatusCode = response.status();
            if matcher_accepts(&config.matcher, status.as_u16()) {
                CheckOutcome::Passed
            } else {
                CheckOutcome::Failed {
                    reason: RESPONSE_CODE_MISMATCH,
                    description: format!(
                        "Health checks failed with these codes: [{}]",
                        status.as_u16()
                    ),
                }
            }
        }
        Err(error) => failed(format!("health check request failed: {error}")),
    };
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(healthy_threshold: u32, unhealthy_threshold: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            healthy_threshold,
            unhealthy_threshold,
            ..HealthCheckConfig::default()
        }
    }

    fn fail() -> CheckOutcome {
        CheckOutcome::Failed {
            reason: RESPONSE_CODE_MISMATCH,
            description: "Health checks failed with these codes: [500]".to_string(),
        }
    }

    #[test]
    fn one_pass_makes_an_initial_target_healthy() {
        let config = config(5, 2);
        let mut record = HealthRecord::registered(true);
        assert_eq!(record.state, TargetState::Initial);
        assert_eq!(record.reason, Some(REGISTRATION_IN_PROGRESS));
        assert!(record.on_check(CheckOutcome::Passed, &config));
        assert_eq!(record.state, TargetState::Healthy);
        assert_eq!(record.reason, None);
    }

    #[test]
    fn initial_target_turns_unhealthy_after_the_threshold() {
        let config = config(5, 2);
        let mut record = HealthRecord::registered(true);
        assert!(!record.on_check(fail(), &config));
        assert_eq!(record.reason, Some(INITIAL_HEALTH_CHECKING));
        assert!(record.on_check(fail(), &config));
        assert_eq!(record.state, TargetState::Unhealthy);
        assert_eq!(record.reason, Some(RESPONSE_CODE_MISMATCH));
    }

    #[test]
    fn thresholds_count_consecutive_results_only() {
        let config = config(3, 3);
        let mut record = HealthRecord::registered(true);
        record.on_check(CheckOutcome::Passed, &config);
        record.on_check(fail(), &config);
        record.on_check(fail(), &config);
        record.on_check(CheckOutcome::Passed, &config);
        record.on_check(fail(), &config);
        record.on_check(fail(), &config);
        assert_eq!(record.state, TargetState::Healthy);
        assert!(record.on_check(fail(), &config));
        assert_eq!(record.state, TargetState::Unhealthy);
        record.on_check(CheckOutcome::Passed, &config);
        record.on_check(CheckOutcome::Passed, &config);
        assert_eq!(record.state, TargetState::Unhealthy);
        assert!(record.on_check(CheckOutcome::Passed, &config));
        assert_eq!(record.state, TargetState::Healthy);
    }

    #[test]
    fn passive_failures_eject_a_healthy_target() {
        let config = config(2, 3);
        let mut record = HealthRecord::registered(false);
        assert_eq!(record.state, TargetState::Healthy);
        assert!(!record.on_passive_failures(2, &config));
        assert!(record.on_passive_failures(3, &config));
        assert_eq!(record.state, TargetState::Unhealthy);
        assert_eq!(record.reason, Some(FAILED_HEALTH_CHECKS));
        assert!(record.on_disabled_interval());
        assert_eq!(record.state, TargetState::Healthy);
    }

    #[test]
    fn draining_ignores_checks() {
        let config = config(2, 2);
        let mut record = HealthRecord::registered(true);
        record.start_draining();
        assert!(!record.on_check(CheckOutcome::Passed, &config));
        assert!(!record.on_check(fail(), &config));
        assert!(!record.on_passive_failures(10, &config));
        assert_eq!(record.state, TargetState::Draining);
    }

    #[tokio::test]
    async fn check_once_reports_refused_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let outcome = check_once(addr, &HealthCheckConfig::default()).await;
        assert!(matches!(
            outcome,
            CheckOutcome::Failed {
                reason: FAILED_HEALTH_CHECKS,
                ..
            }
        ));
    }
}
