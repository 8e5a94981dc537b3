use std::sync::RwLock;

use berth_core::{Command, State};
use tokio::sync::watch;

use crate::backend::{record_of, state_from_records, Backend, StoreError};

/// The state in memory, written through to a durable backend.
pub struct Store {
    backend: Box<dyn Backend>,
    state: RwLock<State>,
    revision: watch::Sender<u64>,
}

impl Store {
    /// Loads every record from the backend.
    pub fn open(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        let state = state_from_records(backend.read_all()?)?;
        let (revision, _) = watch::channel(0);
        Ok(Store {
            backend,
            state: RwLock::new(state),
            revision,
        })
    }

    /// Reads the current state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&state)
    }

    /// Decides and applies a change atomically: `decide` sees the current state and
    /// returns commands plus a result; the commands are made durable, then visible.
    /// No other write happens in between.
    pub fn transact<R, E>(
        &self,
        decide: impl FnOnce(&State) -> Result<(Vec<Command>, R), E>,
    ) -> Result<Result<R, E>, StoreError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let (commands, result) = match decide(&state) {
            Ok(decided) => decided,
            Err(error) => return Ok(Err(error)),
        };
        if commands.is_empty() {
            return Ok(Ok(result));
        }
        // Apply to a copy first so a failed write leaves memory as it was.
        let mut next = state.clone();
        let keys: Vec<_> = commands.into_iter().map(|c| next.apply(c)).collect();
        let records: Vec<_> = keys.iter().map(|k| record_of(&next, k)).collect();
        self.backend.write(&records)?;
        *state = next;
        drop(state);
        self.revision.send_modify(|r| *r += 1);
        Ok(Ok(result))
    }

    /// Applies commands decided elsewhere.
    pub fn apply(&self, commands: Vec<Command>) -> Result<(), StoreError> {
        self.transact(|_| Ok::<_, std::convert::Infallible>((commands, ())))?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }

    /// A receiver whose value changes after every applied change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryBackend, RedbBackend};
    use berth_core::model::Cluster;
    use berth_core::Timestamp;

    fn cluster(name: &str) -> Command {
        Command::PutCluster(Cluster {
            name: name.to_string(),
            status: "ACTIVE".to_string(),
            tags: vec![],
            settings: vec![],
            configuration: None,
            created_at: Timestamp(1),
        })
    }

    #[test]
    fn changes_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
            store.apply(vec![cluster("a"), cluster("b")]).unwrap();
            store
                .apply(vec![Command::RemoveTask("none".into())])
                .unwrap();
        }
        let store = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
        let names: Vec<String> = store.read(|s| s.clusters.keys().cloned().collect());
        assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn a_refused_decision_changes_nothing_and_does_not_bump_the_revision() {
        let store = Store::open(Box::new(MemoryBackend::default())).unwrap();
        let watch = store.watch();
        let outcome = store
            .transact(|_| Err::<(Vec<Command>, ()), _>("no"))
            .unwrap();
        assert_eq!(outcome, Err("no"));
        assert_eq!(*watch.borrow(), 0);
        assert!(store.read(|s| s.clusters.is_empty()));
        store.apply(vec![cluster("a")]).unwrap();
        assert_eq!(*watch.borrow(), 1);
    }
}
