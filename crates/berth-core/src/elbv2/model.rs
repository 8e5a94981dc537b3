//! The ELBv2 records berth keeps: load balancers, target groups, listeners and
//! registered targets. `present` turns them into ELBv2's wire shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTag {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadBalancerType {
    Application,
    Network,
}

impl LoadBalancerType {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            LoadBalancerType::Application => "application",
            LoadBalancerType::Network => "network",
        }
    }
    /// The ARN segment: `app` or `net`.
    pub fn arn_segment(self) -> &'static str {
        match self {
            LoadBalancerType::Application => "app",
            LoadBalancerType::Network => "net",
        }
    }
}

/// Kept and echoed: berth binds what the data plane binds either way. Stored as
/// ELBv2's word; internet-facing unless asked otherwise, as in ELBv2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    #[default]
    InternetFacing,
    Internal,
}

impl Scheme {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
    pub fn from_elbv2(word: &str) -> Option<Self> {
        [Scheme::InternetFacing, Scheme::Internal]
            .into_iter()
            .find(|scheme| scheme.as_elbv2() == word)
    }
}

/// berth's load balancers and target groups are IPv4 only. Stored as ELBv2's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpAddressType {
    Ipv4,
}

impl IpAddressType {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerRecord {
    /// 16 hex digits, the last segment of the ARN.
    pub id: String,
    pub name: String,
    pub load_balancer_type: LoadBalancerType,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The attributes a user set (ModifyLoadBalancerAttributes), by ELBv2 key; the
    /// others have their defaults (see `attributes`). Absent in records older than
    /// attributes: none set.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<ResourceTag>,
    pub created_at: Timestamp,
}

/// The protocols berth's data plane speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Http,
    Tcp,
}

impl Protocol {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tcp => "TCP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetType {
    /// Targets are container instances berth knows, by id; the data plane reaches
    /// them at their node's address.
    Instance,
    /// Targets are IPv4 addresses.
    Ip,
}

impl TargetType {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    /// `traffic-port` or a port number.
    pub port: String,
    /// HTTP only.
    pub path: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold_count: u32,
    pub unhealthy_threshold_count: u32,
    /// HTTP only: `200`, `200,204`, `200-299`.
    pub matcher: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadBalancingAlgorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

impl LoadBalancingAlgorithm {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            LoadBalancingAlgorithm::RoundRobin => "round_robin",
            LoadBalancingAlgorithm::LeastOutstandingRequests => "least_outstanding_requests",
        }
    }
}

/// The target group attributes berth honours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupAttributes {
    /// `deregistration_delay.timeout_seconds`, 0-3600, default 300.
    pub deregistration_delay_seconds: u32,
    /// `load_balancing.algorithm.type`.
    pub load_balancing_algorithm: LoadBalancingAlgorithm,
    /// `stickiness.*`. Absent in records older than stickiness: off, as ELBv2's default;
    /// left out while it is all default, so those records are written back as stored.
    #[serde(default, skip_serializing_if = "Stickiness::is_default")]
    pub stickiness: Stickiness,
}

impl Default for TargetGroupAttributes {
    fn default() -> Self {
        TargetGroupAttributes {
            deregistration_delay_seconds: 300,
            load_balancing_algorithm: LoadBalancingAlgorithm::RoundRobin,
            stickiness: Stickiness::default(),
        }
    }
}

/// `stickiness.type`: how a client is bound to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StickinessType {
    /// The balancer's own cookie (`AWSALB`) names the target (HTTP).
    LbCookie,
    /// The balancer's cookie (`AWSALBAPP-0`) follows the application's own (HTTP).
    AppCookie,
    /// Connections from one client address go to one target (TCP).
    SourceIp,
}

impl StickinessType {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            StickinessType::LbCookie => "lb_cookie",
            StickinessType::AppCookie => "app_cookie",
            StickinessType::SourceIp => "source_ip",
        }
    }

    /// The types a target group of `protocol` takes; the first is its default.
    pub fn for_protocol(protocol: Protocol) -> &'static [StickinessType] {
        match protocol {
            Protocol::Http => &[StickinessType::LbCookie, StickinessType::AppCookie],
            Protocol::Tcp => &[StickinessType::SourceIp],
        }
    }
}

/// ELBv2's default cookie duration: one day.
pub const DEFAULT_STICKINESS_COOKIE_SECONDS: u32 = 86_400;

/// The `stickiness.*` attributes as set: ELBv2 keeps every value, also while
/// stickiness is off, and echoes them. `None` is the attribute's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stickiness {
    /// `stickiness.enabled`.
    pub enabled: bool,
    /// `stickiness.type`; `None` is the protocol's default (lb_cookie, source_ip).
    pub stickiness_type: Option<StickinessType>,
    /// `stickiness.lb_cookie.duration_seconds`, 1-604800.
    pub lb_cookie_duration_seconds: Option<u32>,
    /// `stickiness.app_cookie.cookie_name`.
    pub app_cookie_name: Option<String>,
    /// `stickiness.app_cookie.duration_seconds`, 1-604800.
    pub app_cookie_duration_seconds: Option<u32>,
}

impl Stickiness {
    pub fn is_default(&self) -> bool {
        *self == Stickiness::default()
    }

    pub fn stickiness_type(&self, protocol: Protocol) -> StickinessType {
        self.stickiness_type
            .unwrap_or(StickinessType::for_protocol(protocol)[0])
    }

    /// What the data plane does, or `None` when stickiness is off.
    pub fn policy(&self, protocol: Protocol) -> Option<StickinessPolicy> {
        if !self.enabled {
            return None;
        }
        Some(match self.stickiness_type(protocol) {
            StickinessType::LbCookie => StickinessPolicy::LbCookie {
                duration_seconds: self
                    .lb_cookie_duration_seconds
                    .unwrap_or(DEFAULT_STICKINESS_COOKIE_SECONDS),
            },
            StickinessType::AppCookie => StickinessPolicy::AppCookie {
                cookie_name: self.app_cookie_name.clone().unwrap_or_default(),
                duration_seconds: self
                    .app_cookie_duration_seconds
                    .unwrap_or(DEFAULT_STICKINESS_COOKIE_SECONDS),
            },
            StickinessType::SourceIp => StickinessPolicy::SourceIp,
        })
    }
}

/// Stickiness in effect, as the data plane acts on it (also sent to load-balancer nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum StickinessPolicy {
    LbCookie {
        #[serde(rename = "durationSeconds")]
        duration_seconds: u32,
    },
    AppCookie {
        #[serde(rename = "cookieName")]
        cookie_name: String,
        #[serde(rename = "durationSeconds")]
        duration_seconds: u32,
    },
    SourceIp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupRecord {
    /// 16 hex digits, the last segment of the ARN.
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    pub protocol_version: Option<String>,
    pub port: u16,
    pub vpc_id: Option<String>,
    pub target_type: TargetType,
    pub ip_address_type: IpAddressType,
    pub health_check: HealthCheck,
    pub attributes: TargetGroupAttributes,
    pub tags: Vec<ResourceTag>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredListener")]
pub struct ListenerRecord {
    /// 16 hex digits, the last segment of the ARN.
    pub id: String,
    /// The load balancer's id.
    pub load_balancer: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The action of the listener's default rule: what a request no rule matches gets.
    pub default_action: RuleAction,
    /// The listener's rules other than the default, in no particular order (priorities
    /// are unique). Its default rule's id is the listener's own id.
    pub rules: Vec<RuleRecord>,
    /// The tags of the default rule (AddTags on its ARN).
    pub default_rule_tags: Vec<ResourceTag>,
    /// The attributes a user set (ModifyListenerAttributes), by ELBv2 key, as for
    /// load balancers.
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<ResourceTag>,
    pub created_at: Timestamp,
}

impl ListenerRecord {
    /// Every target group its default action and rules forward to (maybe repeated).
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.default_action)
            .chain(self.rules.iter().map(|rule| &rule.action))
            .flat_map(|action| action.target_groups())
    }

    pub fn forwards_to(&self, target_group: &str) -> bool {
        self.target_groups().any(|id| id == target_group)
    }
}

/// A listener as stored, in any of its versions: records from before rules keep one
/// `target_group` (a forward to it) and its `action_order`.
#[derive(Deserialize)]
struct StoredListener {
    id: String,
    load_balancer: String,
    port: u16,
    protocol: Protocol,
    #[serde(default)]
    default_action: Option<RuleAction>,
    #[serde(default)]
    target_group: Option<String>,
    #[serde(default)]
    action_order: Option<i64>,
    #[serde(default)]
    rules: Vec<RuleRecord>,
    #[serde(default)]
    default_rule_tags: Vec<ResourceTag>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    tags: Vec<ResourceTag>,
    created_at: Timestamp,
}

impl From<StoredListener> for ListenerRecord {
    fn from(stored: StoredListener) -> Self {
        let default_action = stored.default_action.unwrap_or_else(|| RuleAction {
            order: stored.action_order,
            kind: ActionKind::Forward(ForwardAction {
                target_groups: vec![WeightedTargetGroup {
                    target_group: stored.target_group.unwrap_or_default(),
                    weight: 1,
                }],
                stickiness_duration_seconds: None,
            }),
        });
        ListenerRecord {
            id: stored.id,
            load_balancer: stored.load_balancer,
            port: stored.port,
            protocol: stored.protocol,
            default_action,
            rules: stored.rules,
            default_rule_tags: stored.default_rule_tags,
            attributes: stored.attributes,
            tags: stored.tags,
            created_at: stored.created_at,
        }
    }
}

/// One rule of a listener besides its default rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// 16 hex digits, the last segment of the rule's ARN.
    pub id: String,
    /// 1-50000, unique on its listener; lower is tried first.
    pub priority: u32,
    /// All must match (each holds alternatives).
    pub conditions: Vec<RuleCondition>,
    pub action: RuleAction,
    pub tags: Vec<ResourceTag>,
}

/// The one action of a rule (or of a listener's default rule): berth's rules take
/// exactly one, the terminating one ELBv2 requires, with the `Order` given, echoed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleAction {
    pub order: Option<i64>,
    pub kind: ActionKind,
}

impl RuleAction {
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        let groups: &[WeightedTargetGroup] = match &self.kind {
            ActionKind::Forward(forward) => &forward.target_groups,
            _ => &[],
        };
        groups.iter().map(|group| group.target_group.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Forward(ForwardAction),
    FixedResponse(FixedResponseAction),
    Redirect(RedirectAction),
}

impl ActionKind {
    /// ELBv2's `Type`.
    pub fn as_elbv2(&self) -> &'static str {
        match self {
            ActionKind::Forward(_) => "forward",
            ActionKind::FixedResponse(_) => "fixed-response",
            ActionKind::Redirect(_) => "redirect",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardAction {
    /// 1-5 groups by id; a request picks one by weight.
    pub target_groups: Vec<WeightedTargetGroup>,
    /// `TargetGroupStickinessConfig.DurationSeconds` as given, echoed; stickiness
    /// itself (`Enabled`) is refused, so it never applies.
    pub stickiness_duration_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    /// The target group's id.
    pub target_group: String,
    /// 0-999.
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponseAction {
    /// 2XX, 4XX or 5XX.
    pub status_code: u16,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

/// Each part a template with ELBv2's `#{protocol}`, `#{host}`, `#{port}`, `#{path}`,
/// `#{query}`; parts not given hold ELBv2's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectAction {
    pub protocol: String,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub status: RedirectStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectStatus {
    Permanent,
    Found,
}

impl RedirectStatus {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            RedirectStatus::Permanent => "HTTP_301",
            RedirectStatus::Found => "HTTP_302",
        }
    }
    pub fn from_elbv2(word: &str) -> Option<Self> {
        [RedirectStatus::Permanent, RedirectStatus::Found]
            .into_iter()
            .find(|status| status.as_elbv2() == word)
    }
    pub fn http_status(self) -> u16 {
        match self {
            RedirectStatus::Permanent => 301,
            RedirectStatus::Found => 302,
        }
    }
}

/// One condition of a rule, and whether it was written with the old `Values` (which
/// DescribeRules then echoes too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCondition {
    pub matches: ConditionMatch,
    pub given_as_values: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionMatch {
    PathPattern(Vec<String>),
    HostHeader(Vec<String>),
    HttpHeader { name: String, values: Vec<String> },
    QueryString(Vec<QueryStringPair>),
    HttpRequestMethod(Vec<String>),
    SourceIp(Vec<CidrBlock>),
}

impl ConditionMatch {
    /// ELBv2's `Field`.
    pub fn field(&self) -> &'static str {
        match self {
            ConditionMatch::PathPattern(_) => "path-pattern",
            ConditionMatch::HostHeader(_) => "host-header",
            ConditionMatch::HttpHeader { .. } => "http-header",
            ConditionMatch::QueryString(_) => "query-string",
            ConditionMatch::HttpRequestMethod(_) => "http-request-method",
            ConditionMatch::SourceIp(_) => "source-ip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryStringPair {
    /// None: any key.
    pub key: Option<String>,
    pub value: String,
}

/// A network in CIDR notation, parsed once when the rule is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidrBlock {
    pub network: std::net::IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for CidrBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A target's health as the data plane last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TargetHealthState {
    /// Registered, not checked enough times yet.
    #[default]
    Initial,
    Healthy,
    Unhealthy,
}

impl TargetHealthState {
    pub fn as_elbv2(self) -> &'static str {
        match self {
            TargetHealthState::Initial => "initial",
            TargetHealthState::Healthy => "healthy",
            TargetHealthState::Unhealthy => "unhealthy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TargetHealth {
    pub state: TargetHealthState,
    /// ELBv2's reason code (`Target.Timeout`, `Target.ResponseCodeMismatch`, ...).
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// The target group id.
    pub target_group: String,
    /// A container instance id (target type instance) or an IPv4 address (ip).
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    pub registered_at: Timestamp,
    /// What the data plane reported; `Initial` until it reports.
    pub health: TargetHealth,
    /// Set by DeregisterTargets: the target is draining until then, then removed.
    pub draining_until: Option<Timestamp>,
    /// Whether a health check ever passed since it was registered: the balancer has
    /// only sent it requests if so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passed_check: bool,
}

impl TargetRecord {
    /// Whether the target has ever been healthy (records written before
    /// `passed_check` existed know it only from their current state).
    pub fn ever_healthy(&self) -> bool {
        self.passed_check || self.health.state == TargetHealthState::Healthy
    }

    pub fn key(&self) -> String {
        target_key(&self.target_group, &self.id, self.port)
    }
}

/// `target_group/id/port`: a target group's targets sort together.
pub fn target_key(target_group: &str, id: &str, port: u16) -> String {
    format!("{target_group}/{id}/{port}")
}
