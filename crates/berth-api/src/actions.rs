//! Request and response bodies of each action, named `<Action>Request` / `<Action>Response`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    AutoScalingGroupProvider, CapacityProvider, CapacityProviderStrategyItem, Cluster,
    ClusterSetting, ContainerInstance, DeploymentConfiguration, Failure, LoadBalancer,
    NetworkConfiguration, PlacementConstraint, PlacementStrategy, Service, Tag, Task,
    TaskDefinition, TaskOverride,
};

// ---- clusters ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default)]
    pub configuration: Option<Value>,
    #[serde(default)]
    pub service_connect_defaults: Option<Value>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// PutClusterCapacityProviders: the providers a cluster may use and its default strategy.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterCapacityProvidersRequest {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// CreateCapacityProvider.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateCapacityProviderRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    #[serde(default)]
    pub managed_instances_provider: Option<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// UpdateCapacityProvider.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCapacityProviderRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    #[serde(default)]
    pub managed_instances_provider: Option<Value>,
}

/// DeleteCapacityProvider.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCapacityProviderRequest {
    #[serde(default)]
    pub capacity_provider: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
}

/// The answer of Create/Update/DeleteCapacityProvider.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderResponse {
    pub capacity_provider: CapacityProvider,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersRequest {
    #[serde(default)]
    pub capacity_providers: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersResponse {
    pub capacity_providers: Vec<CapacityProvider>,
    pub failures: Vec<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// UpdateCluster: the settings, configuration and Service Connect default namespace.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub settings: Option<Vec<ClusterSetting>>,
    #[serde(default)]
    pub configuration: Option<Value>,
    #[serde(default)]
    pub service_connect_defaults: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterSettingsRequest {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResponse {
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersResponse {
    pub clusters: Vec<Cluster>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersResponse {
    pub cluster_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteClusterRequest {
    #[serde(default)]
    pub cluster: String,
}

// ---- task definitions ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    pub task_definition: TaskDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    #[serde(default)]
    pub task_definition: String,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionRequest {
    #[serde(default)]
    pub task_definition: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsRequest {
    #[serde(default)]
    pub task_definitions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    pub task_definitions: Vec<TaskDefinition>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub family_prefix: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub sort: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    pub task_definition_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub family_prefix: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    pub families: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---- tasks ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub task_definition: String,
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(default)]
    pub overrides: Option<TaskOverride>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub started_by: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskResponse {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub task: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskResponse {
    pub task: Task,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksResponse {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub container_instance: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub family: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub started_by: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub service_name: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub desired_status: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub launch_type: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    pub task_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---- services ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub service_name: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<Value>,
    #[serde(default)]
    pub desired_count: Option<i64>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub client_token: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub launch_type: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<i64>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub scheduling_strategy: Option<String>,
    #[serde(default)]
    pub deployment_controller: Option<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub availability_zone_rebalancing: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResponse {
    pub service: Service,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub desired_count: Option<i64>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    #[serde(default)]
    pub force_new_deployment: Option<bool>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default)]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub propagate_tags: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub availability_zone_rebalancing: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesResponse {
    pub services: Vec<Service>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub launch_type: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub scheduling_strategy: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub service_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub force: Option<bool>,
}

// ---- tags ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    #[serde(default)]
    pub resource_arn: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    #[serde(default)]
    pub resource_arn: String,
    #[serde(default)]
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    #[serde(default)]
    pub resource_arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<Tag>,
}

/// The empty `{}` response of TagResource and UntagResource.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct EmptyResponse {}

// ---- container instances ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesResponse {
    pub container_instance_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesResponse {
    pub container_instances: Vec<ContainerInstance>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateResponse {
    pub container_instances: Vec<ContainerInstance>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub container_instance: String,
    #[serde(default)]
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceResponse {
    pub container_instance: ContainerInstance,
}

// ---- berth's own actions (prefix BerthV1) ----

/// `BerthV1.GetTaskLogs`: a container's output, for `berth logs`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskLogsRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default)]
    pub task: String,
    /// Only this container; all of the task's containers when absent.
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub container_name: Option<String>,
    /// Only lines after this instant (epoch seconds), for following.
    #[serde(default)]
    pub since: Option<f64>,
    #[serde(default)]
    pub tail: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskLogsResponse {
    pub lines: Vec<LogLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub container_name: String,
    /// Epoch seconds at which the container wrote the line.
    pub timestamp: f64,
    pub stream: String,
    pub message: String,
}

/// `BerthV1.GetTaskStats`: the live figures of tasks' running containers, for
/// `berth top`. Without `tasks`, every RUNNING task of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskStatsRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskStatsResponse {
    pub tasks: Vec<TaskStats>,
    /// The tasks whose figures could not be read (not running, or their agent did not
    /// answer), each with why.
    #[serde(default)]
    pub failures: Vec<crate::Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    pub task_arn: String,
    /// ECS's task group: `service:NAME` for a service's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub containers: Vec<ContainerStats>,
}

/// One running container's figures, as `docker stats` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    /// Percent of one CPU over the engine's last sampling interval (200 is two cores).
    pub cpu_percent: f64,
    /// Memory in use, without the page cache the kernel may reclaim.
    pub memory_usage_bytes: u64,
    /// The container's memory limit (its `memory`; the machine's memory without one).
    pub memory_limit_bytes: u64,
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

// ---- account settings ----

/// One account setting, as ECS's `Setting` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountSetting {
    pub name: String,
    pub value: String,
    pub principal_arn: String,
    /// `user`, or `aws_managed` for the read-only ones (guardDutyActivate).
    #[serde(rename = "type")]
    pub setting_type: String,
}

/// PutAccountSetting: a principal's setting (the caller's when `principalArn` is absent).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub principal_arn: Option<String>,
}

/// PutAccountSettingDefault: the account's default, for principals without their own.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingDefaultRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountSettingRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub principal_arn: Option<String>,
}

/// The answer of PutAccountSetting, PutAccountSettingDefault and DeleteAccountSetting.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettingResponse {
    pub setting: AccountSetting,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsRequest {
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub principal_arn: Option<String>,
    #[serde(default)]
    pub effective_settings: bool,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsResponse {
    pub settings: Vec<AccountSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---- Service Connect namespaces ----

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesByNamespaceRequest {
    #[serde(default)]
    pub namespace: String,
    #[serde(default, deserialize_with = "crate::empty_as_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesByNamespaceResponse {
    pub service_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
