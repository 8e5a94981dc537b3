//! berth-proto: what the control plane and its agents say to each other.
//!
//! This crate is the contract both sides depend on, and nothing else: the messages
//! (serde, JSON on the wire), the protocol version, and the [`ControlPlaneLink`] trait
//! through which an agent reaches a control plane, in process (`berth dev`) or over the
//! network. It holds no storage schema: the control plane maps its records into these
//! messages, and the agent maps them into containers.
//!
//! Invariant: a change to a message's JSON shape is a change of [`PROTOCOL_VERSION`];
//! `tests/wire.rs` pins every shape, so an unnoticed change fails the build.

mod balancer;
mod discovery;
mod link;
mod messages;
pub mod remote;

pub use balancer::{
    BalancerConfig, BalancerListener, BalancerRule, BalancerTarget, BalancerTargetGroup,
};
pub use berth_core::service_discovery::{DiscoveredPort, DiscoveredService, Endpoint};
pub use discovery::ServiceEndpoints;
pub use link::{ControlPlaneLink, LinkError};
pub use messages::{AssignedTask, Assignment, Assignments};

/// Re-exported so both sides name the same types: what an agent says about its node and
/// its tasks is decided in berth-core, which merges it into the state.
pub use berth_core::model::{ContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus};
pub use berth_core::nodes::NodeRegistration;
pub use berth_core::{ContainerReport, TaskReport};

/// The version of this protocol. An agent sends it when it registers; a control plane
/// refuses an agent whose version it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;
