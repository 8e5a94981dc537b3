use serde::{Deserialize, Serialize};

use crate::{KeyValuePair, Tag};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: String,
    pub registered_container_instances_count: i64,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub active_services_count: i64,
    pub statistics: Vec<KeyValuePair>,
    pub tags: Vec<Tag>,
    pub settings: Vec<ClusterSetting>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSetting {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// One capacity provider of a strategy, with its base and weight (0 when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    #[serde(default)]
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: i64,
    #[serde(default)]
    pub base: i64,
}

/// A capacity provider: ECS's built-in FARGATE and FARGATE_SPOT, or one the user made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    pub capacity_provider_arn: String,
    pub name: String,
    pub status: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status_reason: Option<String>,
    pub tags: Vec<Tag>,
}

/// A capacity provider's Auto Scaling group and ECS's management of it (create and
/// describe; on update every field is optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_scaling: Option<ManagedScaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_termination_protection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_draining: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScaling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_scaling_step_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_scaling_step_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_warmup_period: Option<i64>,
}
