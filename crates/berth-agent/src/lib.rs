//! berth-agent: runs one machine's tasks. It receives the tasks the control plane
//! assigns to its node (through [`ControlPlaneLink`]), drives the local container
//! runtime ([`berth_runtime::ContainerRuntime`]) to start, watch and stop them, and
//! reports every state change back.
//!
//! Invariants: the agent reaches the control plane only through [`ControlPlaneLink`]
//! and the engine only through `ContainerRuntime`; everything it creates carries the
//! `berth.*` labels (see [`labels`]) so a restarted agent finds, adopts or removes it;
//! engine errors stop a task, never the agent.

mod agent;
mod container_spec;
mod error;
pub mod labels;
mod reconcile;
mod reporter;
mod service_endpoints;
mod task_runner;

pub use agent::{machine_attributes, Agent, AgentConfig, AgentHandle};
pub use berth_proto::{Assignment, ControlPlaneLink, LinkError};
pub use error::AgentError;
