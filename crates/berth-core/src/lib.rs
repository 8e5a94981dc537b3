//! berth's domain: ids and ARNs, validation, placement and the reconcilers.
//!
//! Invariant: this crate is pure. No IO, no clock, no randomness, no async runtime.
//! Time comes in as a `now` argument, ids from an `IdSource`, state as a snapshot;
//! decisions go out as typed commands (`state::Command`) that the store applies.

pub mod attributes;
pub mod ecs;
pub mod elbv2;
mod error;
pub mod ids;
pub mod model;
pub mod node_health;
pub mod node_loss;
pub mod nodes;
pub mod placement;
mod policy;
pub mod present;
mod reconcile;
mod report;
pub mod resources;
pub mod service_deployments;
pub mod service_discovery;
pub mod service_targets;
pub mod spec;
mod state;
mod time;
mod validation;

pub use berth_api as api;
pub use error::{EcsError, ErrorCode};
pub use ids::{ArnScope, IdSource, SequentialIds};
pub use policy::{
    is_local_address, task_definition_privileges, PrivilegeKind, PrivilegePolicy, PrivilegeUse,
};
pub use reconcile::{
    backoff_after, failure_threshold, reconcile, ServiceHealth, CRASH_WINDOW_MS, ROLLOUT_STABLE_MS,
    UNCHECKED_TASK_SETTLE_MS,
};
pub use report::{apply_task_reports, ContainerReport, TaskReport};
pub use state::{service_key, Command, RecordKey, State};
pub use time::Timestamp;
pub use validation::{
    apply_overrides, capability_name, engine_security_option, is_essential, task_spec,
    validate_task_definition, SecurityOption, ValidationError,
};
