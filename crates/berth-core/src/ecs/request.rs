//! What ECS checks about a request before the action itself looks at it.
//!
//! Every action that takes a `cluster` answers `ClusterNotFoundException` for an unknown
//! or deleted one before it reads any other parameter, as ECS does. That one check lives
//! here, in [`run_action`]; the actions themselves assume their cluster exists.

use berth_api as api;

use super::{active_cluster, Context, EcsResult};
use crate::ids::cluster_name;
use crate::state::State;

/// Whether, and how, a request names the cluster it acts in.
pub enum ClusterParameter<'r> {
    /// The action takes no cluster (task definitions, tags, ListClusters, ...).
    NotTaken,
    /// The action acts in this cluster; `None` (or an empty string) means `default`.
    Given(Option<&'r str>),
}

/// An ECS request body: every action's request type says whether it names a cluster.
pub trait EcsRequest {
    fn cluster_parameter(&self) -> ClusterParameter<'_>;
}

/// Runs one ECS action: the request's cluster is checked first, then the action runs.
pub fn run_action<Req: EcsRequest, Resp>(
    state: &State,
    request: Req,
    ctx: &mut Context,
    action: impl FnOnce(&State, Req, &mut Context) -> EcsResult<Resp>,
) -> EcsResult<Resp> {
    if let ClusterParameter::Given(given) = request.cluster_parameter() {
        active_cluster(state, &cluster_name(given))?;
    }
    action(state, request, ctx)
}

/// Requests whose `cluster` is an optional string.
macro_rules! optional_cluster {
    ($($request:ty),* $(,)?) => {$(
        impl EcsRequest for $request {
            fn cluster_parameter(&self) -> ClusterParameter<'_> {
                ClusterParameter::Given(self.cluster.as_deref())
            }
        }
    )*};
}

/// Requests whose `cluster` is required by the model.
macro_rules! required_cluster {
    ($($request:ty),* $(,)?) => {$(
        impl EcsRequest for $request {
            fn cluster_parameter(&self) -> ClusterParameter<'_> {
                ClusterParameter::Given(Some(self.cluster.as_str()))
            }
        }
    )*};
}

/// Requests that name no cluster.
macro_rules! no_cluster {
    ($($request:ty),* $(,)?) => {$(
        impl EcsRequest for $request {
            fn cluster_parameter(&self) -> ClusterParameter<'_> {
                ClusterParameter::NotTaken
            }
        }
    )*};
}

optional_cluster!(
    api::RunTaskRequest,
    api::StopTaskRequest,
    api::DescribeTasksRequest,
    api::ListTasksRequest,
    api::CreateServiceRequest,
    api::UpdateServiceRequest,
    api::DescribeServicesRequest,
    api::ListServicesRequest,
    api::DeleteServiceRequest,
    api::ListServiceDeploymentsRequest,
    api::ListContainerInstancesRequest,
    api::DescribeContainerInstancesRequest,
    api::UpdateContainerInstancesStateRequest,
    api::DeregisterContainerInstanceRequest,
    api::GetTaskStatsRequest,
);

required_cluster!(
    api::DeleteClusterRequest,
    api::UpdateClusterRequest,
    api::UpdateClusterSettingsRequest,
    api::PutClusterCapacityProvidersRequest,
);

no_cluster!(
    api::CreateClusterRequest,
    api::DescribeClustersRequest,
    // ListClusters: its `cluster` field is ignored, as ECS ignores it.
    api::ListRequest,
    api::RegisterTaskDefinitionRequest,
    api::DescribeTaskDefinitionRequest,
    api::DeregisterTaskDefinitionRequest,
    api::DeleteTaskDefinitionsRequest,
    api::ListTaskDefinitionsRequest,
    api::ListTaskDefinitionFamiliesRequest,
    api::TagResourceRequest,
    api::UntagResourceRequest,
    api::ListTagsForResourceRequest,
    api::DescribeCapacityProvidersRequest,
    // Their `cluster` is for ECS Managed Instances, which berth refuses by name.
    api::CreateCapacityProviderRequest,
    api::UpdateCapacityProviderRequest,
    api::DeleteCapacityProviderRequest,
    api::PutAccountSettingRequest,
    api::PutAccountSettingDefaultRequest,
    api::ListAccountSettingsRequest,
    api::DeleteAccountSettingRequest,
    // A Cloud Map namespace spans clusters.
    api::ListServicesByNamespaceRequest,
    // Their ARNs name the cluster; an unknown one is a MISSING failure.
    api::DescribeServiceDeploymentsRequest,
    api::DescribeServiceRevisionsRequest,
);
