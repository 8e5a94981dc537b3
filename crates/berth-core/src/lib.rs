//! berth's domain: ids and ARNs, validation, placement and the reconcilers.
//!
//! Invariant: this crate is pure. No IO, no clock, no randomness, no async runtime.
//! Time comes in as a `now` argument, ids from an `IdSource`, state as a snapshot;
//! decisions go out as typed commands that the store applies.

mod validation;

pub use validation::{validate_task_definition, ValidationError};
