//! The store: berth's state, kept durable.
//!
//! `Store` holds the state in memory behind one lock and writes every change to its
//! `Backend` before the change becomes visible, so an accepted write survives kill -9.
//! Watchers see a revision number that counts up on every change.
//! Backends: `RedbBackend` (the embedded default) and `MemoryBackend` (tests).

mod backend;
mod redb_backend;
mod store;

pub use backend::{Backend, MemoryBackend, Quarantined, Record, StoreError};
pub use redb_backend::RedbBackend;
pub use store::Store;
