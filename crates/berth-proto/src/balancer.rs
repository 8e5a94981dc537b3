//! What a node that serves the load balancer's listeners (`berth agent
//! --load-balancer`) is told: every listener, and for each target group the targets
//! the control plane's own health checks pass. Such a node runs no health checks of its
//! own, so every machine serving a listener routes by the same verdicts, the ones
//! DescribeTargetHealth shows.

use std::net::SocketAddr;

use berth_core::elbv2::model::{
    LoadBalancingAlgorithm, Protocol, RuleAction, RuleCondition, StickinessPolicy,
};
use serde::{Deserialize, Serialize};

/// The load balancer as one node serves it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerConfig {
    /// Names this content: equal versions, equal configs. The node sends back the one
    /// it has, and the control plane answers when its config differs.
    pub version: String,
    pub listeners: Vec<BalancerListener>,
    pub target_groups: Vec<BalancerTargetGroup>,
}

/// A listener: a port on the node's load-balancer address, its rules and its default
/// action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerListener {
    pub id: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The first target group the default action forwards to (empty when it forwards to
    /// none): all that nodes older than rules route by.
    pub target_group_id: String,
    /// How long a client connection may sit idle (the listener's ELBv2 idle timeout).
    /// Absent from control planes older than it: the node's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// What a request no rule matches gets. Absent from control planes older than
    /// rules: a forward to `target_group_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<RuleAction>,
    /// The listener's rules (besides the default), by priority. Absent from control
    /// planes older than rules: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<BalancerRule>,
}

/// One listener rule: all its conditions must match a request for its action to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerRule {
    pub priority: u32,
    pub conditions: Vec<RuleCondition>,
    pub action: RuleAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerTargetGroup {
    pub id: String,
    pub protocol: Protocol,
    pub algorithm: LoadBalancingAlgorithm,
    /// How long a target that leaves the group keeps its requests in flight.
    pub deregistration_delay_ms: u64,
    /// Sticky sessions in effect (the group's `stickiness.*`). Absent when off, and from
    /// control planes older than stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<StickinessPolicy>,
    /// The healthy targets, each where the control plane reaches it.
    pub targets: Vec<BalancerTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerTarget {
    /// The target's key in its group (`INSTANCE:PORT` or `IP:PORT`).
    pub id: String,
    pub addr: SocketAddr,
}
