//! A service's deployment history: ListServiceDeployments, DescribeServiceDeployments
//! and DescribeServiceRevisions.

use serde::{Deserialize, Serialize};

use crate::{
    CapacityProviderStrategyItem, DeploymentConfiguration, EpochSeconds, Failure, LoadBalancer,
    NetworkConfiguration,
};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsRequest {
    #[serde(default)]
    pub service: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<CreatedAt>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

/// ListServiceDeployments' `createdAt` filter.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EpochSeconds>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeploymentBrief>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentBrief {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<EpochSeconds>,
    pub target_service_revision_arn: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsRequest {
    #[serde(default)]
    pub service_deployment_arns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeployment>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeployment {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochSeconds>,
    pub source_service_revisions: Vec<ServiceRevisionSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_service_revision: Option<ServiceRevisionSummary>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<ServiceDeploymentCircuitBreaker>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    pub arn: String,
    pub requested_task_count: i64,
    pub running_task_count: i64,
    pub pending_task_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_revision_arn: Option<String>,
}

/// `status`: TRIGGERED | MONITORING | MONITORING_COMPLETE | DISABLED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentCircuitBreaker {
    pub status: String,
    pub failure_count: i64,
    pub threshold: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsRequest {
    #[serde(default)]
    pub service_revision_arns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsResponse {
    pub service_revisions: Vec<ServiceRevision>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevision {
    pub service_revision_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub task_definition: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub container_images: Vec<ContainerImage>,
    #[serde(default)]
    pub guard_duty_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochSeconds>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    pub container_name: String,
    pub image: String,
}
