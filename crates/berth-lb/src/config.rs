//! The declarative configuration `LoadBalancer::apply` takes, and the limits fixed at
//! construction. Plain data: no IO, no validation beyond `parse_matcher`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::routing::{Action, Rule, WeightedGroup};

/// Everything the balancer should run: `apply` makes the running state match it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbConfig {
    pub listeners: Vec<ListenerConfig>,
    pub target_groups: Vec<TargetGroupConfig>,
}

/// One bound address: its rules, tried by priority, then its default action (ELBv2's
/// listener model). A TCP listener has no rules and forwards to one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub id: String,
    pub bind: SocketAddr,
    pub protocol: ListenerProtocol,
    pub default_action: Action,
    pub rules: Vec<Rule>,
    /// The network namespace to bind in (a `/proc/PID/ns/net` link or a bind mount of
    /// one); `None` is the balancer's own. The socket stays in that namespace, so
    /// clients there connect to it, while the balancer reaches targets from its own.
    pub namespace: Option<PathBuf>,
    /// How long a client connection may sit idle before it is closed (ELBv2's
    /// `idle_timeout.timeout_seconds`, `tcp.idle_timeout.seconds`); `None` is
    /// `Limits::idle_timeout`. Changing it keeps the socket and its connections.
    pub idle_timeout: Option<Duration>,
}

impl ListenerConfig {
    /// A listener whose every request or connection goes to `target_group_id`.
    pub fn forwarding(
        id: impl Into<String>,
        bind: SocketAddr,
        protocol: ListenerProtocol,
        target_group_id: impl Into<String>,
    ) -> ListenerConfig {
        ListenerConfig {
            id: id.into(),
            bind,
            protocol,
            default_action: Action::forward_to(target_group_id),
            rules: Vec::new(),
            namespace: None,
            idle_timeout: None,
        }
    }

    /// The one target group of a default action that forwards to exactly one, with no
    /// rule before it: the only routing a TCP listener may have.
    pub fn only_target_group(&self) -> Option<&str> {
        match &self.default_action {
            Action::Forward(groups) if groups.len() == 1 && self.rules.is_empty() => {
                Some(&groups[0].target_group_id)
            }
            _ => None,
        }
    }

    /// Every target group its actions may forward to.
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|rule| &rule.action)
            .chain(std::iter::once(&self.default_action))
            .flat_map(Action::target_groups)
    }
}

impl Action {
    pub fn forward_to(target_group_id: impl Into<String>) -> Action {
        Action::Forward(vec![WeightedGroup {
            target_group_id: target_group_id.into(),
            weight: 1,
        }])
    }

    /// The target groups a forward names (none for other actions).
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        let groups: &[WeightedGroup] = match self {
            Action::Forward(groups) => groups,
            _ => &[],
        };
        groups.iter().map(|group| group.target_group_id.as_str())
    }
}

/// What a listener speaks and what its target group expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerProtocol {
    /// HTTP/1.1 reverse proxy (layer 7).
    #[default]
    Http,
    /// Byte-for-byte TCP proxy (layer 4).
    Tcp,
}

/// How a request (or a TCP connection) picks among the healthy targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    /// The target with the fewest requests in flight; ties broken round robin.
    LeastOutstandingRequests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupConfig {
    pub id: String,
    pub protocol: ListenerProtocol,
    pub algorithm: Algorithm,
    pub health_check: HealthCheckConfig,
    /// How long a removed target keeps serving its in-flight requests before it goes.
    pub deregistration_delay: Duration,
    /// Whether a client keeps going to the target it went to (ELBv2's `stickiness.*`).
    pub stickiness: Stickiness,
    pub targets: Vec<TargetConfig>,
}

/// Sticky sessions of a target group. A client stays with its target while that
/// target is healthy and registered; otherwise it is given another by the group's
/// algorithm and, with a cookie, a new cookie. A cookie names a target of the group by
/// an opaque token the balancer looks up among the group's healthy targets: it can
/// never send a request anywhere else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stickiness {
    #[default]
    Off,
    /// The balancer's own cookie `AWSALB` (and `AWSALBCORS`, with `SameSite=None;
    /// Secure`, for cross-origin requests) names the target, renewed on every response
    /// for `duration`. HTTP listeners only; TCP connections are placed as without.
    LbCookie { duration: Duration },
    /// When the target sets the application's cookie `cookie_name`, the balancer sets
    /// `AWSALBAPP-0` naming the target, for `duration`; requests bearing it stick.
    AppCookie {
        cookie_name: String,
        duration: Duration,
    },
    /// Requests and connections from one client address go to one target, chosen by
    /// hashing the address over the healthy targets: stable while they stay the same,
    /// and only the clients of a target that leaves move.
    SourceIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthProtocol {
    /// `GET path`; success when the status is in `matcher`.
    #[default]
    Http,
    /// Success when a TCP connection opens.
    Tcp,
}

/// Active health checking of a target group, with ELBv2's fields and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Disabled: targets are `Healthy` as soon as they are registered (ELBv2 reports
    /// "unavailable"; berth routes to them, which is what that means in practice).
    pub enabled: bool,
    pub protocol: HealthProtocol,
    pub path: String,
    /// `None` checks the traffic port of each target.
    pub port: Option<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Inclusive ranges of passing status codes, see [`parse_matcher`].
    pub matcher: Vec<(u16, u16)>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            enabled: true,
            protocol: HealthProtocol::Http,
            path: "/".to_string(),
            port: None,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: vec![(200, 200)],
        }
    }
}

/// A registered target; `id` is the caller's key (`"i-abc:32768"`, `"10.0.0.5:80"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub id: String,
    pub addr: SocketAddr,
}

/// Per-connection protections, fixed for the life of the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most client connections open at once, over all listeners; one beyond it is
    /// closed at once. Each proxied connection also holds an upstream one, so this keeps
    /// the balancer well inside the process's descriptor limit (which `berth dev` raises
    /// to its hard maximum at start).
    pub max_connections: usize,
    /// Largest request head (request line plus headers) a client may send; larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more gets 431.
    pub max_headers: usize,
    /// A client must finish sending a request head this long after it starts it (or,
    /// for a connection's first request, after it connects); otherwise it is dropped.
    pub request_header_timeout: Duration,
    /// A keep-alive client connection with no request in flight is closed after this,
    /// unless its listener sets its own (`ListenerConfig::idle_timeout`); also how long
    /// an idle upstream connection is kept for reuse.
    pub idle_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    /// Longest wait for the upstream's response head after sending the request; then 504.
    pub upstream_response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            request_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_response_timeout: Duration::from_secs(60),
        }
    }
}

/// Parses an ELBv2 `Matcher.HttpCode`: `"200"`, `"200-299"`, `"200,302"`, `"200-299,302"`.
pub fn parse_matcher(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let code = |s: &str| -> Result<u16, String> {
            let value: u16 = s
                .trim()
                .parse()
                .map_err(|_| format!("invalid status code {s:?} in matcher {text:?}"))?;
            if !(100..=599).contains(&value) {
                return Err(format!(
                    "status code {value} out of range 100-599 in matcher {text:?}"
                ));
            }
            Ok(value)
        };
        let range = match part.split_once('-') {
            Some((low, high)) => (code(low)?, code(high)?),
            None => {
                let value = code(part)?;
                (value, value)
            }
        };
        if range.0 > range.1 {
            return Err(format!("empty range {part:?} in matcher {text:?}"));
        }
        ranges.push(range);
    }
    Ok(ranges)
}

pub(crate) fn matcher_accepts(matcher: &[(u16, u16)], status: u16) -> bool {
    matcher
        .iter()
        .any(|&(low, high)| (low..=high).contains(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_codes_ranges_and_lists() {
        assert_eq!(parse_matcher("200"), Ok(vec![(200, 200)]));
        assert_eq!(parse_matcher("200-299"), Ok(vec![(200, 299)]));
        assert_eq!(parse_matcher("200, 302"), Ok(vec![(200, 200), (302, 302)]));
        assert_eq!(
            parse_matcher("200-299,302"),
            Ok(vec![(200, 299), (302, 302)])
        );
    }

    #[test]
    fn rejects_garbage_and_reversed_ranges() {
        assert!(parse_matcher("").is_err());
        assert!(parse_matcher("ok").is_err());
        assert!(parse_matcher("299-200").is_err());
        assert!(parse_matcher("700").is_err());
        assert!(parse_matcher("200,").is_err());
    }

    #[test]
    fn matcher_accepts_inclusive_bounds() {
        let matcher = parse_matcher("200-299,302").unwrap();
        assert!(matcher_accepts(&matcher, 200));
        assert!(matcher_accepts(&matcher, 299));
        assert!(matcher_accepts(&matcher, 302));
        assert!(!matcher_accepts(&matcher, 301));
        assert!(!matcher_accepts(&matcher, 500));
    }
}
