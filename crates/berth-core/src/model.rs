//! The records berth keeps: clusters, task definitions, services, tasks, container
//! instances. They are the store's contents; `present` turns them into ECS's wire shapes.

use std::collections::BTreeMap;

use berth_api::{
    DeploymentConfiguration, LoadBalancer, NetworkBinding, PlacementConstraint, PlacementStrategy,
    RegisterTaskDefinitionRequest, Tag, TaskOverride,
};
use serde::{Deserialize, Serialize};

use crate::spec::{NetworkMode, ParsedSpec, TaskSpec};
use crate::validation::ValidationError;
use crate::Timestamp;

/// An enum whose values are ECS's words: `as_ecs` gives a value's word, `from_ecs`
/// reads one back. Requests are parsed with it once (`ecs::parse_word`).
pub trait EcsWord: Copy + 'static {
    /// Every value, in ECS's order (error messages list them so).
    const ALL: &'static [Self];
    fn as_ecs(self) -> &'static str;
    fn from_ecs(word: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_ecs() == word)
    }
}

/// Declares an enum of ECS words. Each variant is stored as its word (serde), so a
/// record reads and writes the strings berth has always stored.
macro_rules! ecs_words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant,)+
        }

        impl EcsWord for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_ecs(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl $name {
            pub fn as_ecs(self) -> &'static str {
                EcsWord::as_ecs(self)
            }
            pub fn from_ecs(word: &str) -> Option<Self> {
                <Self as EcsWord>::from_ecs(word)
            }
        }
    };
}

ecs_words! {
    /// A cluster's status. A deleted cluster stays describable as INACTIVE.
    pub enum ClusterStatus {
        Active => "ACTIVE",
        Inactive => "INACTIVE",
    }
}

ecs_words! {
    /// A task definition revision's status: INACTIVE once deregistered, DELETE_IN_PROGRESS
    /// once DeleteTaskDefinitions deleted it (the tasks that use it keep running).
    pub enum TaskDefinitionStatus {
        Active => "ACTIVE",
        Inactive => "INACTIVE",
        DeleteInProgress => "DELETE_IN_PROGRESS",
    }
}

ecs_words! {
    /// A service's status: DRAINING from DeleteService until its tasks stopped.
    pub enum ServiceStatus {
        Active => "ACTIVE",
        Draining => "DRAINING",
        Inactive => "INACTIVE",
    }
}

ecs_words! {
    /// A deployment's status: the PRIMARY one is what the service runs; ACTIVE ones
    /// are being replaced; INACTIVE ones belong to a deleted service.
    pub enum DeploymentStatus {
        Primary => "PRIMARY",
        Active => "ACTIVE",
        Inactive => "INACTIVE",
    }
}

ecs_words! {
    /// How far a deployment's rollout is.
    pub enum RolloutState {
        Completed => "COMPLETED",
        Failed => "FAILED",
        InProgress => "IN_PROGRESS",
    }
}

ecs_words! {
    /// A service deployment's status (ListServiceDeployments, DescribeServiceDeployments):
    /// the history of a service's deployments, kept after each is replaced. berth starts a
    /// deployment as soon as it is made, so none stays PENDING, and it stops none on
    /// request, so none is STOP_REQUESTED or ROLLBACK_REQUESTED; the words are ECS's all
    /// the same, for the status filter.
    pub enum ServiceDeploymentStatus {
        Pending => "PENDING",
        Successful => "SUCCESSFUL",
        Stopped => "STOPPED",
        StopRequested => "STOP_REQUESTED",
        InProgress => "IN_PROGRESS",
        RollbackRequested => "ROLLBACK_REQUESTED",
        RollbackInProgress => "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
        RollbackFailed => "ROLLBACK_FAILED",
    }
}

impl ServiceDeploymentStatus {
    /// Finished, successfully or not: ECS's "Completed" stage.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ServiceDeploymentStatus::Successful
                | ServiceDeploymentStatus::Stopped
                | ServiceDeploymentStatus::RollbackSuccessful
                | ServiceDeploymentStatus::RollbackFailed
        )
    }
}

ecs_words! {
    /// REPLICA keeps desiredCount tasks; DAEMON one task on every ACTIVE container instance.
    pub enum SchedulingStrategy {
        Replica => "REPLICA",
        Daemon => "DAEMON",
    }
}

ecs_words! {
    /// The launch type a task or service asked for. berth runs every task on its own
    /// nodes and keeps the word as given; without one, ECS's default EC2 is shown.
    pub enum LaunchType {
        Ec2 => "EC2",
        Fargate => "FARGATE",
        External => "EXTERNAL",
    }
}

ecs_words! {
    /// A capacity provider's status: INACTIVE once deleted (it stays describable).
    pub enum CapacityProviderStatus {
        Active => "ACTIVE",
        Inactive => "INACTIVE",
    }
}

ecs_words! {
    /// How the last change to a capacity provider went. berth makes each change at
    /// once, so none is ever IN_PROGRESS.
    pub enum CapacityProviderUpdateStatus {
        DeleteComplete => "DELETE_COMPLETE",
        DeleteFailed => "DELETE_FAILED",
        UpdateComplete => "UPDATE_COMPLETE",
    }
}

ecs_words! {
    /// ECS's ENABLED/DISABLED settings of a capacity provider (managed scaling,
    /// termination protection, draining).
    pub enum Switch {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
    }
}

/// A capacity provider the user made (FARGATE and FARGATE_SPOT are built in). Its
/// container instances are the agents started with `--capacity-provider NAME`; the Auto
/// Scaling group is kept and echoed, as berth scales no machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityProviderRecord {
    pub name: String,
    pub status: CapacityProviderStatus,
    pub update_status: Option<CapacityProviderUpdateStatus>,
    pub update_status_reason: Option<String>,
    pub auto_scaling_group_arn: String,
    pub managed_scaling: ManagedScalingRecord,
    pub managed_termination_protection: Switch,
    pub managed_draining: Switch,
    pub tags: Vec<Tag>,
}

/// A capacity provider's managed scaling, with ECS's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedScalingRecord {
    pub status: Switch,
    pub target_capacity: i64,
    pub minimum_scaling_step_size: i64,
    pub maximum_scaling_step_size: i64,
    pub instance_warmup_period: i64,
}

/// ECS's default launch type, shown (and filtered on) when none was asked for.
impl Default for LaunchType {
    fn default() -> Self {
        LaunchType::Ec2
    }
}

ecs_words! {
    /// Whether ECS rebalances a service's tasks across Availability Zones. berth has no
    /// zones: the word is kept and echoed.
    pub enum AvailabilityZoneRebalancing {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
    }
}

/// A service stored before berth kept the word never had one set, which ECS reads as
/// DISABLED.
fn never_set_rebalancing() -> AvailabilityZoneRebalancing {
    AvailabilityZoneRebalancing::Disabled
}

ecs_words! {
    /// Whose tags a service's tasks get.
    pub enum PropagateTags {
        TaskDefinition => "TASK_DEFINITION",
        Service => "SERVICE",
        None => "NONE",
    }
}

ecs_words! {
    /// A container instance's status. berth sets ACTIVE, and INACTIVE when the instance
    /// leaves its cluster; the others are ECS's, accepted as ListContainerInstances
    /// filters.
    pub enum ContainerInstanceStatus {
        Active => "ACTIVE",
        Draining => "DRAINING",
        Registering => "REGISTERING",
        Deregistering => "DEREGISTERING",
        RegistrationFailed => "REGISTRATION_FAILED",
        Inactive => "INACTIVE",
    }
}

/// Reads a launch type stored before berth checked the word (it kept any string it
/// was given): an unknown word reads as none, as berth treated it.
fn stored_launch_type<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<LaunchType>, D::Error> {
    let word: Option<String> = Option::deserialize(deserializer)?;
    Ok(word.as_deref().and_then(LaunchType::from_ecs))
}

/// Reads a propagateTags stored before berth checked the word: an unknown word reads
/// as NONE, which is what berth did with it (only SERVICE propagated).
fn stored_propagate_tags<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PropagateTags, D::Error> {
    let word = String::deserialize(deserializer)?;
    Ok(PropagateTags::from_ecs(&word).unwrap_or(PropagateTags::None))
}

ecs_words! {
    /// ECS's account setting names (`SettingName`, and `dualStackIPv6`, which ECS's
    /// account settings documentation lists beside them).
    pub enum SettingName {
        ServiceLongArnFormat => "serviceLongArnFormat",
        TaskLongArnFormat => "taskLongArnFormat",
        ContainerInstanceLongArnFormat => "containerInstanceLongArnFormat",
        AwsvpcTrunking => "awsvpcTrunking",
        ContainerInsights => "containerInsights",
        DualStackIpv6 => "dualStackIPv6",
        FargateFipsMode => "fargateFIPSMode",
        TagResourceAuthorization => "tagResourceAuthorization",
        FargateTaskRetirementWaitPeriod => "fargateTaskRetirementWaitPeriod",
        GuardDutyActivate => "guardDutyActivate",
        DefaultLogDriverMode => "defaultLogDriverMode",
        FargateEventWindows => "fargateEventWindows",
    }
}

/// One account setting a principal set. berth has one account, so the principal is kept
/// as the resource part of its IAM ARN (`root`, `user/NAME`, `role/NAME`): the account id
/// comes from the configuration when the ARN is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSettingRecord {
    pub principal: String,
    pub name: SettingName,
    pub value: String,
}

impl AccountSettingRecord {
    pub fn key(&self) -> String {
        account_setting_key(&self.principal, self.name)
    }
}

/// The state's key of a principal's setting.
pub fn account_setting_key(principal: &str, name: SettingName) -> String {
    format!("{principal}|{}", name.as_ecs())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub status: ClusterStatus,
    pub tags: Vec<Tag>,
    pub settings: Vec<berth_api::ClusterSetting>,
    pub configuration: Option<serde_json::Value>,
    /// PutClusterCapacityProviders: the providers its tasks may name, and the strategy
    /// used when a request names neither a launch type nor a strategy.
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<berth_api::CapacityProviderStrategyItem>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    pub family: String,
    pub revision: u32,
    pub status: TaskDefinitionStatus,
    /// What the user registered, as registered (defaults are added on presentation).
    pub spec: RegisterTaskDefinitionRequest,
    pub registered_at: Timestamp,
    pub deregistered_at: Option<Timestamp>,
    /// `spec` through validation's one parse, kept beside it and never stored.
    #[serde(skip)]
    pub parsed: ParsedSpec,
}

impl TaskDefinitionRecord {
    pub fn key(&self) -> String {
        definition_key(&self.family, self.revision)
    }

    /// The typed spec of what was registered, without any task's overrides: parsed once
    /// per record (at registration, or on first use after a load). An error only for a
    /// record stored before a rule it breaks existed.
    pub fn task_spec(&self) -> Result<&TaskSpec, &ValidationError> {
        self.parsed.get(&self.spec)
    }
}

pub fn definition_key(family: &str, revision: u32) -> String {
    format!("{family}:{revision}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub fn as_ecs(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_ecs(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

impl HealthStatus {
    pub fn as_ecs(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
            HealthStatus::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn as_ecs(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    /// The task's host went away (its agent lost contact, or it was deregistered).
    TerminationNotice,
}

impl StopCode {
    pub fn as_ecs(self) -> &'static str {
        match self {
            StopCode::TaskFailedToStart => "TaskFailedToStart",
            StopCode::EssentialContainerExited => "EssentialContainerExited",
            StopCode::UserInitiated => "UserInitiated",
            StopCode::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
            StopCode::TerminationNotice => "TerminationNotice",
        }
    }
}

/// The stop reason of a task whose container health checks failed (ECS's words).
pub const CONTAINER_CHECKS_FAILED: &str = "Task failed container health checks";
/// How the stop reason of a task whose targets failed begins (ECS's words).
pub const ELB_CHECKS_FAILED: &str = "Task failed ELB health checks";

/// Whether a stop reason is the service scheduler's for failed health checks.
pub fn stopped_for_failed_checks(reason: &str) -> bool {
    reason == CONTAINER_CHECKS_FAILED || reason.starts_with(ELB_CHECKS_FAILED)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The id in the container's ARN.
    pub id: String,
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub image_digest: Option<String>,
    /// The Docker container id.
    pub runtime_id: Option<String>,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    pub health_status: HealthStatus,
    /// True when the container definition has a healthCheck.
    pub has_health_check: bool,
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub cluster: String,
    pub family: String,
    pub revision: u32,
    pub container_instance_id: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health_status: HealthStatus,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// What the task reserves on its container instance, in CPU units and MiB.
    pub reserved_cpu: u64,
    pub reserved_memory: u64,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// The service and deployment that started the task, if any.
    pub service: Option<String>,
    pub deployment_id: Option<String>,
    #[serde(default, deserialize_with = "stored_launch_type")]
    pub launch_type: Option<LaunchType>,
    /// The capacity provider of its strategy it was placed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// The network mode it was placed with (its definition's). `None` only in a record
    /// stored when an empty string meant "the definition's".
    #[serde(with = "network_mode_as_placed")]
    pub network_mode: Option<NetworkMode>,
    pub private_ipv4_address: Option<String>,
    pub tags: Vec<Tag>,
    pub containers: Vec<ContainerRecord>,
    pub created_at: Timestamp,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub stopping_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// Counts up on every change, as ECS's `version`.
    pub version: u64,
    /// Set once the service scheduler has taken this task's stop into account
    /// (crash backoff, failed-task counts, events), so it is counted once.
    pub stop_accounted: bool,
    /// Set by the service scheduler once the task has counted as healthy (its checks,
    /// its targets, or a settled run when nothing checks it): a task stopped before
    /// that is a failed launch, however long it ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ever_healthy: bool,
    /// The targets this task is registered as in its service's target groups.
    #[serde(default)]
    pub load_balancer_targets: Vec<TaskTarget>,
    /// Its agent stops the containers no earlier than this, so that the task's targets
    /// drain first (in-flight requests finish before SIGTERM).
    #[serde(default)]
    pub stop_after: Option<Timestamp>,
}

/// A task's network mode as stored: ECS's word (`"awsvpc"`), or `""` for "the
/// definition's", as records written before the mode was typed may hold.
mod network_mode_as_placed {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::spec::NetworkMode;

    pub fn serialize<S: Serializer>(
        mode: &Option<NetworkMode>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(mode.map_or("", NetworkMode::as_ecs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NetworkMode>, D::Error> {
        let stored = String::deserialize(deserializer)?;
        if stored.is_empty() {
            return Ok(None);
        }
        NetworkMode::parse(&stored).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown network mode {stored:?}: expected bridge, host, awsvpc, none or \"\""
            ))
        })
    }
}

/// One registration of a task in a target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTarget {
    /// The target group id.
    pub target_group: String,
    /// A container instance id (target type instance) or the task's IPv4 address (ip).
    pub id: String,
    pub port: u16,
}

impl Task {
    /// Wanted running and not yet stopped: counts against the service's desiredCount.
    pub fn is_live(&self) -> bool {
        self.desired_status == DesiredStatus::Running && self.last_status != TaskStatus::Stopped
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }

    /// Started at least `millis` before `now` (never, if it has not started).
    pub fn has_run_for(&self, now: Timestamp, millis: u64) -> bool {
        self.started_at
            .is_some_and(|started| now.millis_since(started) >= millis)
    }

    pub fn has_health_checks(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.essential && c.has_health_check)
    }

    /// ECS's task health: UNHEALTHY if any essential container is, else UNKNOWN if any
    /// essential container with a check is unknown, else HEALTHY; UNKNOWN without checks.
    pub fn derived_health(&self) -> HealthStatus {
        let checked: Vec<&ContainerRecord> = self
            .containers
            .iter()
            .filter(|c| c.essential && c.has_health_check)
            .collect();
        if checked.is_empty() {
            return HealthStatus::Unknown;
        }
        if checked
            .iter()
            .any(|c| c.health_status == HealthStatus::Unhealthy)
        {
            HealthStatus::Unhealthy
        } else if checked
            .iter()
            .any(|c| c.health_status == HealthStatus::Unknown)
        {
            HealthStatus::Unknown
        } else {
            HealthStatus::Healthy
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// `ecs-svc/<digits>`.
    pub id: String,
    pub status: DeploymentStatus,
    pub family: String,
    pub revision: u32,
    pub desired_count: i64,
    pub failed_tasks: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    pub network_configuration: Option<serde_json::Value>,
}

/// One entry of a service's deployment history: a service deployment and its target
/// service revision (they share the id, the digits of the deployment's `ecs-svc/` id).
/// A rollback by the circuit breaker belongs to the deployment that failed, as in ECS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDeploymentRecord {
    pub id: String,
    /// The `ecs-svc/<digits>` deployment of the service that rolls it out.
    pub deployment_id: String,
    pub status: ServiceDeploymentStatus,
    pub status_reason: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// The service revision this deployment rolls out.
    pub revision: ServiceRevisionRecord,
    /// The ids of the revisions that ran when it started (the deployments it replaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_revisions: Vec<String>,
    /// The deployment configuration it was started with.
    pub deployment_configuration: DeploymentConfiguration,
    /// Tasks of it that failed (the circuit breaker counts them).
    pub failed_tasks: i64,
    /// Its desiredCount, last seen.
    pub desired_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<DeploymentRollback>,
}

/// The circuit breaker's rollback of a failed service deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRollback {
    /// The `ecs-svc/<digits>` deployment that rolls back.
    pub deployment_id: String,
    /// The service revision rolled back to.
    pub revision_id: String,
    pub reason: String,
    pub started_at: Timestamp,
}

/// A service revision: what a deployment runs (the task definition and the settings
/// around it that berth keeps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRevisionRecord {
    pub family: String,
    pub revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<berth_api::CapacityProviderStrategyItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Timestamp,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub cluster: String,
    pub name: String,
    pub status: ServiceStatus,
    pub desired_count: i64,
    pub family: String,
    pub revision: u32,
    pub deployment_configuration: DeploymentConfiguration,
    /// PRIMARY first.
    pub deployments: Vec<Deployment>,
    pub load_balancers: Vec<LoadBalancer>,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub placement_strategy: Vec<PlacementStrategy>,
    pub network_configuration: Option<serde_json::Value>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: SchedulingStrategy,
    #[serde(default, deserialize_with = "stored_launch_type")]
    pub launch_type: Option<LaunchType>,
    pub role_arn: Option<String>,
    pub enable_ecs_managed_tags: bool,
    #[serde(deserialize_with = "stored_propagate_tags")]
    pub propagate_tags: PropagateTags,
    pub enable_execute_command: bool,
    #[serde(default = "never_set_rebalancing")]
    pub availability_zone_rebalancing: AvailabilityZoneRebalancing,
    /// The Fargate platform version asked for; kept and echoed.
    #[serde(default)]
    pub platform_version: Option<String>,
    /// The capacity provider strategy, in place of a launch type; kept and echoed.
    #[serde(default)]
    pub capacity_provider_strategy: Vec<berth_api::CapacityProviderStrategyItem>,
    pub tags: Vec<Tag>,
    /// Newest first, at most `MAX_SERVICE_EVENTS`.
    pub events: Vec<ServiceEvent>,
    pub created_at: Timestamp,
    /// Tasks of this service that stopped quickly in a row; drives the restart backoff.
    pub consecutive_failures: u32,
    /// No new task is started before this instant (crash-loop backoff).
    pub next_launch_at: Option<Timestamp>,
    /// The last COMPLETED deployment's definition, for circuit-breaker rollback.
    pub last_completed: Option<(String, u32)>,
    /// The service's deployments, newest first, at most `MAX_SERVICE_DEPLOYMENTS`: kept
    /// after they are replaced (ListServiceDeployments). Empty for services stored
    /// before berth kept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_deployments: Vec<ServiceDeploymentRecord>,

    /// Whether the last reconcile saw the service steady (so the event is said once).
    pub steady: bool,
    /// Whether the last placement attempt failed (so the event is said once per episode).
    #[serde(default)]
    pub placement_blocked: bool,
}

pub const MAX_SERVICE_EVENTS: usize = 100;
/// How many service deployments a service remembers (ECS keeps 90 days of them).
pub const MAX_SERVICE_DEPLOYMENTS: usize = 20;

impl Service {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }
    pub fn maximum_percent(&self) -> i64 {
        self.deployment_configuration
            .maximum_percent
            .unwrap_or(DEFAULT_MAXIMUM_PERCENT)
    }
    pub fn minimum_healthy_percent(&self) -> i64 {
        self.deployment_configuration
            .minimum_healthy_percent
            .unwrap_or(DEFAULT_MINIMUM_HEALTHY_PERCENT)
    }
}

/// ECS's deploymentConfiguration defaults for a replica service: up to twice the desired
/// count while it rolls, never below it healthy.
pub const DEFAULT_MAXIMUM_PERCENT: i64 = 200;
pub const DEFAULT_MINIMUM_HEALTHY_PERCENT: i64 = 100;

/// A machine running a berth agent. It is a container instance of one or more clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub cpu: u64,
    /// MiB.
    pub memory: u64,
    pub agent_version: String,
    pub docker_version: String,
    /// A `berth dev` machine serves every cluster: it joins each one as it is created.
    pub joins_every_cluster: bool,
    pub connected: bool,
    pub registered_at: Timestamp,
    /// Where other machines reach it, as its agent said.
    #[serde(default)]
    pub address: Option<String>,
    /// The attributes its agent reports (`ecs.*` and the operator's).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The capacity provider its agent serves (`berth agent --capacity-provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
}

/// A node's membership of one cluster, in ECS's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstance {
    pub id: String,
    pub cluster: String,
    pub node_id: String,
    pub hostname: String,
    pub status: ContainerInstanceStatus,
    pub agent_connected: bool,
    pub registered_cpu: u64,
    pub registered_memory: u64,
    pub agent_version: String,
    pub docker_version: String,
    pub attributes: BTreeMap<String, String>,
    pub registered_at: Timestamp,
    pub version: u64,
    pub tags: Vec<Tag>,
    /// Joined because its node serves every cluster; leaves with the cluster.
    pub auto_joined: bool,
    /// The capacity provider its node serves, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value is stored as its ECS word and read back from it, and only from it.
    fn stored_as_its_word<T>()
    where
        T: EcsWord + PartialEq + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
    {
        for &value in T::ALL {
            let word = value.as_ecs();
            assert_eq!(serde_json::to_value(value).unwrap(), word);
            assert_eq!(serde_json::from_value::<T>(word.into()).unwrap(), value);
            assert_eq!(T::from_ecs(word), Some(value));
            assert_eq!(T::from_ecs(&word.to_lowercase()), None, "{word}");
        }
        assert!(serde_json::from_value::<T>("NOT_A_WORD".into()).is_err());
    }

    #[test]
    fn ecs_words_are_stored_as_ecs_spells_them() {
        stored_as_its_word::<ClusterStatus>();
        stored_as_its_word::<CapacityProviderStatus>();
        stored_as_its_word::<CapacityProviderUpdateStatus>();
        stored_as_its_word::<Switch>();
        stored_as_its_word::<TaskDefinitionStatus>();
        stored_as_its_word::<ServiceStatus>();
        stored_as_its_word::<DeploymentStatus>();
        stored_as_its_word::<RolloutState>();
        stored_as_its_word::<ServiceDeploymentStatus>();
        stored_as_its_word::<SchedulingStrategy>();
        stored_as_its_word::<LaunchType>();
        stored_as_its_word::<PropagateTags>();
        stored_as_its_word::<ContainerInstanceStatus>();
        assert_eq!(RolloutState::InProgress.as_ecs(), "IN_PROGRESS");
        assert_eq!(PropagateTags::TaskDefinition.as_ecs(), "TASK_DEFINITION");
        assert_eq!(
            ContainerInstanceStatus::RegistrationFailed.as_ecs(),
            "REGISTRATION_FAILED"
        );
    }
}
