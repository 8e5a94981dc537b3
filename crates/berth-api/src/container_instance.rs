use serde::{Deserialize, Serialize};

use crate::{Attribute, EpochSeconds, Resource, Tag};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    pub version: i64,
    pub version_info: VersionInfo,
    pub remaining_resources: Vec<Resource>,
    pub registered_resources: Vec<Resource>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub agent_connected: bool,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub attributes: Vec<Attribute>,
    pub registered_at: EpochSeconds,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}
