//! What a node is told for service discovery: for each service of its clusters that
//! callers reach by name, the container ports they call and the tasks that answer now.
//! The node serves each service's name with a proxy of its own (an endpoint container
//! holding the name, listening on those ports), which balances over these endpoints.
//! The services themselves are decided in berth-core (`service_discovery`).

use berth_core::service_discovery::DiscoveredService;
use serde::{Deserialize, Serialize};

/// Every discoverable service of the node's clusters, as that node reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoints {
    /// Names this content: equal versions, equal endpoints. The node sends back the one
    /// it has, and the control plane answers when the endpoints differ.
    pub version: String,
    pub services: Vec<DiscoveredService>,
}
