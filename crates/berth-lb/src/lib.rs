//! berth's load balancer data plane: listeners (HTTP/1.1 reverse proxy and TCP),
//! target selection (round robin, least outstanding requests), active health checks
//! and passive failure handling, in ELBv2's terms. It knows nothing of ECS, the store
//! or the API: the control plane hands it a declarative [`LbConfig`] through
//! [`LoadBalancer::apply`] and reads back [`LoadBalancer::target_health`].
#![forbid(unsafe_code)]

mod balancer;
mod config;
mod error;
mod health;
mod http_proxy;
mod listener;
mod listener_status;
mod pool;
mod routing;
mod selection;
mod splice;
mod sticky;
mod target_group;
mod tcp_proxy;
mod upstream;

pub use balancer::{check_namespace_entry, default_data_plane_threads, LoadBalancer};
pub use config::{
    parse_matcher, Algorithm, HealthCheckConfig, HealthProtocol, LbConfig, Limits, ListenerConfig,
    ListenerProtocol, Stickiness, TargetConfig, TargetGroupConfig,
};
pub use error::{ErrorOrigin, LbError, ProxyError, ProxyErrorKind, RetrySafety};
pub use health::{TargetHealth, TargetState};
pub use listener_status::{BindFailure, ListenerStatus};
pub use routing::{
    Action, Cidr, Condition, FixedResponse, Pattern, Redirect, RequestView, Route, Routes, Rule,
    WeightedGroup,
};
