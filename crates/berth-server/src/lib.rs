//! berth's control plane: the ECS API over HTTP, the service scheduler loop, the store.
//!
//! Invariant: only this crate knows HTTP on the server side. Requests are verified
//! (SigV4), parsed into `berth-api` types, decided by `berth-core`'s pure actions in a
//! store transaction, made durable, then answered.

mod agent_api;
#[cfg(test)]
mod agent_api_tests;
mod agent_requests;
mod clock;
pub mod cluster_ca;
mod control_plane;
mod dispatch;
#[cfg(test)]
mod dispatch_tests;
mod http;
pub mod join_token;
mod listener;
mod listener_serving;
#[cfg(test)]
mod listener_tests;
mod load_balancing;
mod local_link;
mod node_liveness;
pub mod private_files;
mod random_ids;
mod scheduler_loop;
mod task_stats;

pub use agent_api::{
    agent_limits, serve_agents, AgentApi, MAX_AGENT_BODY_BYTES, MAX_AGENT_CONNECTIONS,
    MAX_LONG_POLL,
};
pub use agent_requests::{api_container_stats, api_log_line, AgentRequests};
pub use clock::now;
pub use control_plane::{ControlPlane, TaskAgents};
pub use dispatch::{dispatch, dispatch_query, ApiError, QueryAnswer};
pub use http::{serve, serve_with, MAX_BODY_BYTES};
pub use listener::{raise_descriptor_limit, ApiLimits, ApiTransport};
pub use listener_serving::{ListenerServing, ServingReport};
pub use load_balancing::{balancer_config, edge_lb_config, lb_config, run_load_balancer};
pub use local_link::{assignments_of, service_endpoints, LocalLink};
pub use node_liveness::{run_node_liveness, NodeLiveness, DEFAULT_HEARTBEAT_TIMEOUT};
pub use random_ids::RandomIds;
pub use scheduler_loop::{run_scheduler, LoopName};
