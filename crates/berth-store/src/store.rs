use std::sync::{Arc, Mutex, RwLock};

use berth_core::{Command, State};
use tokio::sync::watch;

use crate::backend::{record_of, state_from_records, Backend, Quarantined, StoreError};

/// The state in memory, written through to a durable backend.
///
/// Readers take the latest durable state as an `Arc` snapshot and never wait for a
/// write: a write decides on a snapshot, makes its records durable while readers keep
/// seeing the state before it, and only then swaps in the new state. Writers are
/// serialized by their own lock, so two writes never decide on the same state.
pub struct Store {
    backend: Box<dyn Backend>,
    writer: Mutex<()>,
    visible: RwLock<Visible>,
    revision: watch::Sender<u64>,
    quarantined: Vec<Quarantined>,
}

#[derive(Clone)]
struct Visible {
    state: Arc<State>,
    revision: u64,
}

/// What a decision returned: commands to make durable, and the caller's result.
type Decision<R, E> = Result<(Vec<Command>, R), E>;

impl Store {
    /// Loads every record from the backend. A record that cannot be read is moved aside
    /// (the backend's quarantine), logged loudly, and the rest is served: one bad record
    /// must never keep berth from starting.
    pub fn open(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        let (state, quarantined) = state_from_records(backend.read_all()?);
        for record in &quarantined {
            tracing::error!(
                key = %record.key,
                reason = %record.reason,
                "a stored record cannot be read; it was moved to the store's quarantine and is not served"
            );
            backend.quarantine(record)?;
        }
        let (revision, _) = watch::channel(0);
        Ok(Store {
            backend,
            writer: Mutex::new(()),
            visible: RwLock::new(Visible {
                state: Arc::new(state),
                revision: 0,
            }),
            revision,
            quarantined,
        })
    }

    /// The records that could not be read when the store opened.
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantined
    }

    fn visible(&self) -> Visible {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current state: a snapshot that later writes do not change.
    pub fn snapshot(&self) -> Arc<State> {
        self.visible().state
    }

    /// Reads the current state. Never waits for a write in progress.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.snapshot())
    }

    /// Decides and applies a change atomically: `decide` sees the current state and
    /// returns commands plus a result; the commands are made durable, then visible.
    /// No other write happens in between.
    ///
    /// `decide` first runs on a snapshot without any lock, so a decision that changes
    /// nothing (every read) never waits for a write. When it does change something and
    /// another write landed meanwhile, it runs again on the newer state under the writer
    /// lock. This call blocks on the backend's sync: from async code use
    /// [`Store::transact_async`].
    pub fn transact<R, E>(
        &self,
        mut decide: impl FnMut(&State) -> Decision<R, E>,
    ) -> Result<Result<R, E>, StoreError> {
        let seen = self.visible();
        match decide(&seen.state) {
            Err(error) => Ok(Err(error)),
            Ok((commands, result)) if commands.is_empty() => Ok(Ok(result)),
            Ok(decided) => self.commit(seen.revision, decided, decide),
        }
    }

    /// [`Store::transact`] for async callers: a decision that changes nothing runs on
    /// the caller's thread; one that writes is made durable on a blocking thread, so
    /// disk syncs never hold up the async workers.
    pub async fn transact_async<R, E, F>(
        self: &Arc<Self>,
        mut decide: F,
    ) -> Result<Result<R, E>, StoreError>
    where
        F: FnMut(&State) -> Decision<R, E> + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let seen = self.visible();
        let decided = match decide(&seen.state) {
            Err(error) => return Ok(Err(error)),
            Ok((commands, result)) if commands.is_empty() => return Ok(Ok(result)),
            Ok(decided) => decided,
        };
        let store = Arc::clone(self);
        match tokio::task::spawn_blocking(move || store.commit(seen.revision, decided, decide))
            .await
        {
            Ok(outcome) => outcome,
            // A panic while deciding again: nothing was written.
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// Writes `decided` if the state is still the one it was decided on (`seen`),
    /// otherwise decides again on the current state; all under the writer lock.
    fn commit<R, E>(
        &self,
        seen: u64,
        decided: (Vec<Command>, R),
        mut decide: impl FnMut(&State) -> Decision<R, E>,
    ) -> Result<Result<R, E>, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.visible();
        let (commands, result) = if current.revision == seen {
            decided
        } else {
            match decide(&current.state) {
                Err(error) => return Ok(Err(error)),
                Ok((commands, result)) if commands.is_empty() => return Ok(Ok(result)),
                Ok(decided) => decided,
            }
        };
        self.write_locked(&current, commands)?;
        Ok(Ok(result))
    }

    /// Makes `commands` durable on top of `current`, then visible. The caller holds
    /// the writer lock.
    fn write_locked(&self, current: &Visible, commands: Vec<Command>) -> Result<(), StoreError> {
        // Apply to a copy: readers keep the current state until the copy is durable,
        // and a failed write leaves memory as it was.
        let mut next = State::clone(&current.state);
        let keys: Vec<_> = commands.into_iter().map(|c| next.apply(c)).collect();
        let records = keys
            .iter()
            .map(|k| record_of(&next, k))
            .collect::<Result<Vec<_>, _>>()?;
        self.backend.write(&records)?;
        let revision = current.revision + 1;
        *self.visible.write().unwrap_or_else(|e| e.into_inner()) = Visible {
            state: Arc::new(next),
            revision,
        };
        self.revision.send_replace(revision);
        Ok(())
    }

    /// Applies commands decided elsewhere. Blocks on the backend's sync.
    pub fn apply(&self, commands: Vec<Command>) -> Result<(), StoreError> {
        if commands.is_empty() {
            return Ok(());
        }
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.visible();
        self.write_locked(&current, commands)
    }

    /// A receiver whose value changes after every applied change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::{MemoryBackend, Record, RedbBackend};
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

    fn cluster_names(store: &Store) -> Vec<String> {
        store.read(|s| s.clusters.keys().cloned().collect())
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
        assert_eq!(cluster_names(&store), ["a", "b"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        RedbBackend::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new store file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        RedbBackend::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an existing store file made by an older berth");
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

    #[test]
    fn a_record_that_cannot_be_read_is_quarantined_and_the_rest_is_served() {
        let good = {
            let backend = MemoryBackend::default();
            let store = Store::open(Box::new(backend)).unwrap();
            store.apply(vec![cluster("kept")]).unwrap();
            store.read(|s| serde_json::to_vec(&s.clusters["kept"]).unwrap())
        };
        let deep = format!("{}{}", "[".repeat(130), "]".repeat(130)).into_bytes();
        let backend = Arc::new(MemoryBackend::with_records([
            ("cluster/kept".to_string(), good),
            ("task-definition/deep:1".to_string(), deep.clone()),
        ]));
        let store = Store::open(Box::new(backend.clone())).unwrap();
        assert_eq!(cluster_names(&store), ["kept"]);
        let keys: Vec<_> = store.quarantined().iter().map(|q| &q.key).collect();
        assert_eq!(keys, ["task-definition/deep:1"]);
        // Moved aside with its bytes, out of the records: the next start is clean.
        let kept = backend.quarantined();
        assert_eq!(kept["task-definition/deep:1"].value, deep);
        let reopened = Store::open(Box::new(backend)).unwrap();
        assert!(reopened.quarantined().is_empty());
        assert_eq!(cluster_names(&reopened), ["kept"]);
    }

    #[test]
    fn a_redb_store_with_an_unreadable_record_opens_and_keeps_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let backend = RedbBackend::open(&path).unwrap();
            let store = Store::open(Box::new(backend)).unwrap();
            store.apply(vec![cluster("kept")]).unwrap();
        }
        {
            let backend = RedbBackend::open(&path).unwrap();
            backend
                .write(&[Record {
                    key: "service/broken".to_string(),
                    value: Some(b"{not json".to_vec()),
                }])
                .unwrap();
        }
        let backend = RedbBackend::open(&path).unwrap();
        let store = Store::open(Box::new(backend)).unwrap();
        assert_eq!(cluster_names(&store), ["kept"]);
        assert_eq!(store.quarantined().len(), 1);
        drop(store);
        let backend = RedbBackend::open(&path).unwrap();
        let kept = backend.quarantined().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0, "service/broken");
        assert!(!kept[0].1.is_empty(), "the reason is kept");
    }

    /// A backend whose writes wait until the test lets them finish, like a slow disk.
    struct GatedBackend {
        started: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Backend for GatedBackend {
        fn write(&self, _: &[Record]) -> Result<(), StoreError> {
            self.started.lock().unwrap().send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
            Ok(())
        }
        fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            Ok(Vec::new())
        }
        fn quarantine(&self, _: &Quarantined) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn reads_do_not_wait_for_a_write_that_is_syncing() {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let store = Arc::new(
            Store::open(Box::new(GatedBackend {
                started: Mutex::new(started_tx),
                release: Mutex::new(release_rx),
            }))
            .unwrap(),
        );
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || store.apply(vec![cluster("new")]))
        };
        started.recv().unwrap();
        // The write is in its sync: a read and a read-only decision answer now, from
        // the state before it (the write is not acknowledged yet).
        assert!(cluster_names(&store).is_empty());
        let read_only = store
            .transact(|s| Ok::<_, ()>((vec![], s.clusters.len())))
            .unwrap();
        assert_eq!(read_only, Ok(0));
        release.send(()).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(cluster_names(&store), ["new"]);
    }

    #[test]
    fn a_write_decided_on_an_old_state_is_decided_again() {
        let store = Store::open(Box::new(MemoryBackend::default())).unwrap();
        let mut decisions = 0;
        let outcome = store
            .transact(|state| {
                decisions += 1;
                if decisions == 1 {
                    // Another writer lands between the snapshot and the commit.
                    store.apply(vec![cluster("other")]).unwrap();
                }
                let name = format!("after-{}", state.clusters.len());
                Ok::<_, ()>((vec![cluster(&name)], name))
            })
            .unwrap();
        assert_eq!(decisions, 2);
        assert_eq!(outcome, Ok("after-1".to_string()));
        assert_eq!(cluster_names(&store), ["after-1", "other"]);
    }

    #[tokio::test]
    async fn async_writes_are_durable_and_visible_when_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let store = Arc::new(Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap());
        let mut writers = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let name = format!("c{i:02}");
                store
                    .transact_async(move |_| Ok::<_, ()>((vec![cluster(&name)], ())))
                    .await
            }));
        }
        for writer in writers {
            writer.await.unwrap().unwrap().unwrap();
        }
        assert_eq!(cluster_names(&store).len(), 16);
        assert_eq!(*store.watch().borrow(), 16);
        drop(store);
        let reopened = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
        assert_eq!(cluster_names(&reopened).len(), 16);
    }
}
