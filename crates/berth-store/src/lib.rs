//! The store: berth's state, kept durable.
//!
//! `Store` holds the state in memory and writes every change to its `Backend` before
//! the change becomes visible or is answered, so an accepted write survives kill -9.
//! Readers see durable snapshots and never wait; concurrent writes share one sync
//! (group commit on the store's committer thread). Watchers see a revision number that
//! counts up with every change.
//! Backends: `RedbBackend` (the embedded default) and `MemoryBackend` (tests).

mod backend;
mod redb_backend;
mod store;

pub use backend::{Backend, MemoryBackend, Quarantined, Record, StoreError};
pub use redb_backend::RedbBackend;
pub use store::{NodeView, Store};
