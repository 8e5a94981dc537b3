use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use berth_core::{Command, State};
use tokio::sync::watch;

use crate::backend::{record_of, state_from_records, Backend, Quarantined, Record, StoreError};

/// The state in memory, written through to a durable backend, with group commit.
///
/// Readers take the latest durable state as an `Arc` snapshot and never wait for a
/// write. Writers are serialized by the writer lock, under which each decides on the
/// *pending* state (the durable state plus every change queued for the disk, so no two
/// writes decide on the same state), applies its commands to it in place and queues
/// its records. The store's committer thread takes every queued change at once,
/// snapshots the pending state, syncs all of their records in one backend transaction
/// and, once that is durable, makes the snapshot visible and answers every writer of
/// the batch. Concurrent writes thus share one disk sync and one copy of the state, and
/// none is answered before it is durable. A failed sync fails its batch and every
/// change queued after it (they were decided on top of it), and the pending state goes
/// back to the durable one. The copies are made on that one thread, so freed copies
/// are reused by the next rather than left in one allocator arena per writer thread.
pub struct Store {
    shared: Arc<Shared>,
    committer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    backend: Box<dyn Backend>,
    writer: Mutex<Pending>,
    commits: Mutex<Commits>,
    /// Wakes the committer: changes were queued, or the store is closing.
    queued: Condvar,
    /// Wakes writers: changes became durable or failed.
    resolved: Condvar,
    visible: RwLock<Visible>,
    revision: watch::Sender<u64>,
    quarantined: Vec<Quarantined>,
}

#[derive(Clone)]
struct Visible {
    state: Arc<State>,
    revision: u64,
    feed: Arc<NodeFeed>,
}

/// The state every decision sees: durable plus queued changes.
struct Pending {
    state: State,
    revision: u64,
    feed: NodeFeed,
}

/// Each node's change feed: the revision at which something its agent must hear of
/// last changed (`State::nodes_touched_by`). Not stored: a node not changed since the
/// store opened reads as the revision the store opened at, which is at or after any
/// revision its agent saw before, since revisions are durable.
#[derive(Clone, Default)]
struct NodeFeed {
    opened_at: u64,
    changed: BTreeMap<String, u64>,
}

impl NodeFeed {
    fn revision(&self, node_id: &str) -> u64 {
        self.changed.get(node_id).copied().unwrap_or(self.opened_at)
    }
}

/// One node's view: its feed revision and the durable state it was read from.
pub struct NodeView {
    pub revision: u64,
    pub state: Arc<State>,
}

/// The changes on their way to the disk, and what became of earlier ones.
#[derive(Default)]
struct Commits {
    queue: Vec<Queued>,
    next_ticket: u64,
    /// Every ticket up to this one is durable or failed.
    resolved_through: u64,
    /// The tickets that failed, with why.
    failed: BTreeMap<u64, StoreError>,
    /// The tickets the committer is writing now.
    in_flight: Vec<u64>,
    closing: bool,
}

struct Queued {
    ticket: u64,
    records: Vec<Record>,
}

/// What a decision returned: commands to make durable, and the caller's result.
type Decision<R, E> = Result<(Vec<Command>, R), E>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

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
        let opened_at = backend.revision()?;
        let feed = NodeFeed {
            opened_at,
            changed: BTreeMap::new(),
        };
        let (revision, _) = watch::channel(opened_at);
        let shared = Arc::new(Shared {
            backend,
            writer: Mutex::new(Pending {
                state: state.clone(),
                revision: opened_at,
                feed: feed.clone(),
            }),
            commits: Mutex::new(Commits::default()),
            queued: Condvar::new(),
            resolved: Condvar::new(),
            visible: RwLock::new(Visible {
                state: Arc::new(state),
                revision: opened_at,
                feed: Arc::new(feed),
            }),
            revision,
            quarantined,
        });
        let committer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("berth-store-commit".to_string())
                .spawn(move || shared.run_committer())
                .map_err(|e| StoreError::Backend {
                    path: "(the store)".to_string(),
                    message: format!("cannot start the committer thread: {e}"),
                })?
        };
        Ok(Store {
            shared,
            committer: Some(committer),
        })
    }

    /// The records that could not be read when the store opened.
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.shared.quarantined
    }

    /// The current durable state: a snapshot that later writes do not change.
    pub fn snapshot(&self) -> Arc<State> {
        self.shared.visible().state
    }

    /// Reads the current durable state. Never waits for a write in progress.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.snapshot())
    }

    /// Decides and applies a change atomically: `decide` sees the current state and
    /// returns commands plus a result; the commands are made durable, then visible.
    /// No other write decides on the same state.
    ///
    /// `decide` first runs on the durable snapshot without any lock, so a decision that
    /// changes nothing (every read) never waits for a write. When it does change
    /// something and other writes are pending, it runs again on the pending state under
    /// the writer lock. This call blocks until the change is durable: from async code
    /// use [`Store::transact_async`].
    pub fn transact<R, E>(
        &self,
        mut decide: impl FnMut(&State) -> Decision<R, E>,
    ) -> Result<Result<R, E>, StoreError> {
        let Visible {
            state, revision, ..
        } = self.shared.visible();
        let decided = match decide(&state) {
            Err(error) => return Ok(Err(error)),
            Ok((commands, result)) if commands.is_empty() => return Ok(Ok(result)),
            Ok(decided) => decided,
        };
        // Not held while the write waits its turn and its sync: every writer in flight
        // would keep the state it decided on alive.
        drop(state);
        self.shared.commit(revision, decided, decide)
    }

    /// [`Store::transact`] for async callers: a decision that changes nothing runs on
    /// the caller's thread; one that writes waits for its disk sync on a blocking
    /// thread, so syncs never hold up the async workers.
    pub async fn transact_async<R, E, F>(&self, mut decide: F) -> Result<Result<R, E>, StoreError>
    where
        F: FnMut(&State) -> Decision<R, E> + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let Visible {
            state, revision, ..
        } = self.shared.visible();
        let decided = match decide(&state) {
            Err(error) => return Ok(Err(error)),
            Ok((commands, result)) if commands.is_empty() => return Ok(Ok(result)),
            Ok(decided) => decided,
        };
        // Not held across the wait (see `transact`).
        drop(state);
        let shared = Arc::clone(&self.shared);
        match tokio::task::spawn_blocking(move || shared.commit(revision, decided, decide)).await {
            Ok(outcome) => outcome,
            // A panic while deciding again: nothing was queued.
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// Applies commands decided elsewhere, once they are durable.
    pub fn apply(&self, commands: Vec<Command>) -> Result<(), StoreError> {
        if commands.is_empty() {
            return Ok(());
        }
        let mut pending = lock(&self.shared.writer);
        let ticket = self.shared.enqueue(&mut pending, commands)?;
        drop(pending);
        self.shared.wait(ticket)
    }

    /// A receiver of the store's revision, which changes after every applied change.
    /// Revisions are durable: they go on from where the last run left off.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.shared.revision.subscribe()
    }

    /// The durable state with `node_id`'s feed revision: the revision at which a
    /// change its agent must hear of last became durable. It moves only when such a
    /// change does, so an agent waits through every other write.
    pub fn node_view(&self, node_id: &str) -> NodeView {
        let visible = self.shared.visible();
        NodeView {
            revision: visible.feed.revision(node_id),
            state: visible.state,
        }
    }
}

impl Drop for Store {
    /// Lets the committer write what is queued, then stops it.
    fn drop(&mut self) {
        lock(&self.shared.commits).closing = true;
        self.shared.queued.notify_all();
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}

impl Shared {
    fn visible(&self) -> Visible {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues `decided` if the pending state is still the one it was decided on
    /// (`seen`), otherwise decides again on the pending state; then waits until the
    /// change is durable.
    fn commit<R, E>(
        &self,
        seen: u64,
        decided: (Vec<Command>, R),
        mut decide: impl FnMut(&State) -> Decision<R, E>,
    ) -> Result<Result<R, E>, StoreError> {
        let mut pending = lock(&self.writer);
        let (commands, result) = if pending.revision == seen {
            decided
        } else {
            match decide(&pending.state) {
                Err(error) => return Ok(Err(error)),
                Ok((commands, result)) if commands.is_empty() => {
                    // Decided on changes not yet durable: answer once they are.
                    let last = lock(&self.commits).queue.last().map(|q| q.ticket);
                    drop(pending);
                    if let Some(ticket) = last {
                        self.wait(ticket)?;
                    }
                    return Ok(Ok(result));
                }
                Ok(decided) => decided,
            }
        };
        let ticket = self.enqueue(&mut pending, commands)?;
        drop(pending);
        self.wait(ticket)?;
        Ok(Ok(result))
    }

    /// Applies `commands` to the pending state and queues their records for the
    /// committer; the caller holds the writer lock. Returns the change's ticket.
    fn enqueue(&self, pending: &mut Pending, commands: Vec<Command>) -> Result<u64, StoreError> {
        let mut touched = Vec::new();
        let keys: Vec<_> = commands
            .into_iter()
            .map(|c| {
                touched.extend(pending.state.nodes_touched_by(&c));
                pending.state.apply(c)
            })
            .collect();
        let records = keys
            .iter()
            .map(|k| record_of(&pending.state, k))
            .collect::<Result<Vec<_>, _>>();
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                // The pending state holds a change that cannot be written: go back to
                // the durable state, failing what was queued on top of it.
                self.fail_pending(pending, &error);
                return Err(error);
            }
        };
        pending.revision += 1;
        for node in touched {
            pending.feed.changed.insert(node, pending.revision);
        }
        let mut commits = lock(&self.commits);
        commits.next_ticket += 1;
        let ticket = commits.next_ticket;
        commits.queue.push(Queued { ticket, records });
        drop(commits);
        self.queued.notify_one();
        Ok(ticket)
    }

    /// Puts the pending state back to the durable one and fails every queued change;
    /// the caller holds the writer lock.
    fn fail_pending(&self, pending: &mut Pending, error: &StoreError) {
        let visible = self.visible();
        pending.state = State::clone(&visible.state);
        pending.revision = visible.revision;
        pending.feed = NodeFeed::clone(&visible.feed);
        let mut commits = lock(&self.commits);
        for queued in std::mem::take(&mut commits.queue) {
            commits.failed.insert(queued.ticket, error.clone());
            commits.resolved_through = commits.resolved_through.max(queued.ticket);
        }
        drop(commits);
        self.resolved.notify_all();
    }

    /// Waits until `ticket` is durable or failed.
    fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut commits = lock(&self.commits);
        while commits.resolved_through < ticket {
            commits = self
                .resolved
                .wait(commits)
                .unwrap_or_else(|e| e.into_inner());
        }
        match commits.failed.get(&ticket) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The committer thread: writes queued changes in batches until the store closes.
    /// A panic while writing a batch fails that batch and what was queued on top of
    /// it, as a failed sync does, and the committer goes on.
    fn run_committer(&self) {
        loop {
            {
                let mut commits = lock(&self.commits);
                while commits.queue.is_empty() && !commits.closing {
                    commits = self.queued.wait(commits).unwrap_or_else(|e| e.into_inner());
                }
                if commits.queue.is_empty() && commits.closing {
                    return;
                }
            }
            let written =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_batch()));
            if written.is_err() {
                tracing::error!("the store's committer hit a bug while writing; that batch failed");
                let error = StoreError::Backend {
                    path: "(the store)".to_string(),
                    message: "the write hit a bug in berth and was not saved".to_string(),
                };
                self.fail_batch(&error);
            }
        }
    }

    /// Writes every queued change in one backend transaction, then makes the state
    /// they lead to visible and answers their writers.
    fn write_batch(&self) {
        let (batch, next) = {
            let pending = lock(&self.writer);
            let mut commits = lock(&self.commits);
            let batch = std::mem::take(&mut commits.queue);
            if batch.is_empty() {
                return;
            }
            commits.in_flight = batch.iter().map(|q| q.ticket).collect();
            let next = Visible {
                state: Arc::new(pending.state.clone()),
                revision: pending.revision,
                feed: Arc::new(pending.feed.clone()),
            };
            (batch, next)
        };
        let records: Vec<Record> = batch.into_iter().flat_map(|q| q.records).collect();
        match self.backend.write(&records, next.revision) {
            Ok(()) => {
                let revision = next.revision;
                // The previous snapshot is dropped here, on this thread, unless a
                // reader still holds it.
                let previous = std::mem::replace(
                    &mut *self.visible.write().unwrap_or_else(|e| e.into_inner()),
                    next,
                );
                drop(previous);
                self.revision.send_replace(revision);
                let mut commits = lock(&self.commits);
                let in_flight = std::mem::take(&mut commits.in_flight);
                if let Some(last) = in_flight.last() {
                    commits.resolved_through = commits.resolved_through.max(*last);
                }
                drop(commits);
                self.resolved.notify_all();
            }
            Err(error) => self.fail_batch(&error),
        }
    }

    /// Fails the batch being written and everything queued after it; the pending state
    /// goes back to the durable one.
    fn fail_batch(&self, error: &StoreError) {
        let mut pending = lock(&self.writer);
        {
            let mut commits = lock(&self.commits);
            for ticket in std::mem::take(&mut commits.in_flight) {
                commits.failed.insert(ticket, error.clone());
                commits.resolved_through = commits.resolved_through.max(ticket);
            }
        }
        self.fail_pending(&mut pending, error);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::{MemoryBackend, Record, RedbBackend};
    use berth_core::model::{Cluster, ClusterStatus, ContainerInstanceStatus};
    use berth_core::Timestamp;

    fn cluster(name: &str) -> Command {
        Command::PutCluster(Cluster {
            name: name.to_string(),
            status: ClusterStatus::Active,
            tags: vec![],
            settings: vec![],
            configuration: None,
            capacity_providers: vec![],
            default_capacity_provider_strategy: vec![],
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

    #[test]
    fn the_revision_goes_on_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
            assert_eq!(*store.watch().borrow(), 0);
            store.apply(vec![cluster("a")]).unwrap();
            store.apply(vec![cluster("b")]).unwrap();
            assert_eq!(*store.watch().borrow(), 2);
        }
        let store = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
        assert_eq!(*store.watch().borrow(), 2, "the revision is durable");
        store.apply(vec![cluster("c")]).unwrap();
        assert_eq!(*store.watch().borrow(), 3, "and is never reused");
        drop(store);
        let store = Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap();
        assert_eq!(*store.watch().borrow(), 3);
        assert_eq!(store.node_view("n1").revision, 3);
    }

    fn instance(id: &str, node: &str) -> Command {
        Command::PutContainerInstance(berth_core::model::ContainerInstance {
            id: id.into(),
            cluster: "default".into(),
            node_id: node.into(),
            hostname: node.into(),
            status: ContainerInstanceStatus::Active,
            agent_connected: true,
            registered_cpu: 1024,
            registered_memory: 1024,
            agent_version: "test".into(),
            docker_version: "test".into(),
            attributes: Default::default(),
            registered_at: Timestamp(1),
            version: 1,
            tags: vec![],
            auto_joined: false,
            capacity_provider_name: None,
        })
    }

    #[test]
    fn a_node_feed_moves_only_for_changes_its_agent_must_hear_of() {
        let store = Store::open(Box::new(MemoryBackend::default())).unwrap();
        store.apply(vec![instance("ci-1", "n1")]).unwrap();
        store.apply(vec![instance("ci-2", "n2")]).unwrap();
        assert_eq!(store.node_view("n1").revision, 1);
        assert_eq!(store.node_view("n2").revision, 2);
        // Writes that concern no node's assignments leave every feed where it was.
        store.apply(vec![cluster("x")]).unwrap();
        store.apply(vec![cluster("y")]).unwrap();
        assert_eq!(*store.watch().borrow(), 4);
        assert_eq!(store.node_view("n1").revision, 1);
        assert_eq!(store.node_view("n2").revision, 2);
        store.apply(vec![instance("ci-1", "n1")]).unwrap();
        let view = store.node_view("n1");
        assert_eq!(view.revision, 5);
        assert!(view.state.container_instances.contains_key("ci-1"));
        assert_eq!(store.node_view("n2").revision, 2);
        // A node the store has never heard of reads as the revision it opened at.
        assert_eq!(store.node_view("unknown").revision, 0);
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
                .write(
                    &[Record {
                        key: "service/broken".to_string(),
                        value: Some(b"{not json".to_vec()),
                    }],
                    2,
                )
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

    /// A backend whose writes wait until the test says how they end, like a slow disk:
    /// each write reports how many records it carries, then waits for `Ok` (durable)
    /// or `Err` (the disk failed). A write the test never releases fails after 10 s, so
    /// a store that waits where it must not fails its test instead of hanging it.
    struct ScriptedBackend {
        started: Mutex<mpsc::Sender<usize>>,
        release: Mutex<mpsc::Receiver<Result<(), ()>>>,
    }

    type Script = (mpsc::Receiver<usize>, mpsc::Sender<Result<(), ()>>);

    fn scripted_store() -> (Arc<Store>, Script) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let backend = ScriptedBackend {
            started: Mutex::new(started_tx),
            release: Mutex::new(release_rx),
        };
        (
            Arc::new(Store::open(Box::new(backend)).unwrap()),
            (started, release),
        )
    }

    impl Backend for ScriptedBackend {
        fn write(&self, records: &[Record], _revision: u64) -> Result<(), StoreError> {
            let failed = |message: &str| StoreError::Backend {
                path: "scripted".to_string(),
                message: message.to_string(),
            };
            self.started.lock().unwrap().send(records.len()).unwrap();
            match self
                .release
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(10))
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(())) => Err(failed("the disk failed")),
                Err(_) => Err(failed("the test never released this write")),
            }
        }
        fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            Ok(Vec::new())
        }
        fn revision(&self) -> Result<u64, StoreError> {
            Ok(0)
        }
        fn quarantine(&self, _: &Quarantined) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn apply_on_a_thread(
        store: &Arc<Store>,
        name: &str,
    ) -> std::thread::JoinHandle<Result<(), StoreError>> {
        let store = store.clone();
        let command = cluster(name);
        std::thread::spawn(move || store.apply(vec![command]))
    }

    /// Waits until `count` changes are queued behind the write being synced.
    fn wait_until_queued(store: &Store, count: usize) {
        for _ in 0..10_000 {
            if lock(&store.shared.commits).queue.len() == count {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("{count} changes were never queued");
    }

    #[test]
    fn reads_do_not_wait_for_a_write_that_is_syncing() {
        let (store, (started, release)) = scripted_store();
        let writer = apply_on_a_thread(&store, "new");
        assert_eq!(started.recv().unwrap(), 1);
        // The write is in its sync: a read and a read-only decision answer now, from
        // the state before it (the write is not acknowledged yet).
        assert!(cluster_names(&store).is_empty());
        let read_only = store
            .transact(|s| Ok::<_, ()>((vec![], s.clusters.len())))
            .unwrap();
        assert_eq!(read_only, Ok(0));
        release.send(Ok(())).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(cluster_names(&store), ["new"]);
    }

    #[test]
    fn concurrent_writes_share_one_sync_and_are_answered_once_durable() {
        let (store, (started, release)) = scripted_store();
        let first = apply_on_a_thread(&store, "c0");
        assert_eq!(started.recv().unwrap(), 1, "the first write syncs alone");
        // Seven more arrive while it syncs: they queue, decided on the pending state.
        let rest: Vec<_> = (1..8)
            .map(|i| apply_on_a_thread(&store, &format!("c{i}")))
            .collect();
        wait_until_queued(&store, 7);
        assert!(
            cluster_names(&store).is_empty(),
            "nothing is visible before it is durable"
        );
        release.send(Ok(())).unwrap();
        first.join().unwrap().unwrap();
        assert_eq!(started.recv().unwrap(), 7, "the seven share one sync");
        assert_eq!(
            cluster_names(&store),
            ["c0"],
            "the batch is not visible yet"
        );
        release.send(Ok(())).unwrap();
        for writer in rest {
            writer.join().unwrap().unwrap();
        }
        assert_eq!(cluster_names(&store).len(), 8);
        assert_eq!(*store.watch().borrow(), 8);
        assert!(started.try_recv().is_err(), "two syncs for eight writes");
    }

    #[test]
    fn a_failed_sync_fails_its_batch_and_what_was_decided_on_top_of_it() {
        let (store, (started, release)) = scripted_store();
        let first = apply_on_a_thread(&store, "lost");
        assert_eq!(started.recv().unwrap(), 1);
        let on_top = apply_on_a_thread(&store, "on-top");
        wait_until_queued(&store, 1);
        release.send(Err(())).unwrap();
        let error = first.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("the disk failed"), "{error}");
        let error = on_top.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("the disk failed"), "{error}");
        assert!(cluster_names(&store).is_empty());
        assert_eq!(*store.watch().borrow(), 0);
        // The store goes on from the durable state: a later write sees neither.
        let later = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.transact(|state| Ok::<_, ()>((vec![cluster("later")], state.clusters.len())))
            })
        };
        assert_eq!(started.recv().unwrap(), 1);
        release.send(Ok(())).unwrap();
        assert_eq!(later.join().unwrap().unwrap(), Ok(0));
        assert_eq!(cluster_names(&store), ["later"]);
    }

    #[tokio::test]
    async fn a_writer_waiting_for_its_sync_holds_no_snapshot() {
        // A fleet has hundreds of writes in flight: were each to hold the state it
        // decided on, as many states would stay alive.
        let (store, (started, release)) = scripted_store();
        let first = apply_on_a_thread(&store, "first");
        assert_eq!(started.recv().unwrap(), 1);
        // Decided on the durable state, then queued behind the write being synced.
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transact_async(|_| Ok::<_, ()>((vec![cluster("second")], ())))
                    .await
            })
        };
        for _ in 0..10_000 {
            if lock(&store.shared.commits).queue.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(lock(&store.shared.commits).queue.len(), 1);
        let blocking = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.transact(|_| Ok::<_, ()>((vec![cluster("third")], ())))
            })
        };
        wait_until_queued(&store, 2);
        assert_eq!(
            Arc::strong_count(&store.snapshot()),
            2,
            "the store's and this one: the waiting writers hold none"
        );
        for _ in 0..2 {
            release.send(Ok(())).unwrap();
        }
        first.join().unwrap().unwrap();
        assert_eq!(started.recv().unwrap(), 2, "the two queued share one sync");
        waiting.await.unwrap().unwrap().unwrap();
        blocking.join().unwrap().unwrap().unwrap();
        assert_eq!(cluster_names(&store), ["first", "second", "third"]);
    }

    #[tokio::test]
    async fn a_write_syncs_off_the_async_worker() {
        // One async worker thread: were the sync to run on it, nothing else could run
        // until the scripted disk gave up, and the write would fail.
        let (store, (started, release)) = scripted_store();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transact_async(|_| Ok::<_, ()>((vec![cluster("async")], ())))
                    .await
            })
        };
        let records = tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(records, 1);
        let read = store
            .transact_async(|s| Ok::<_, ()>((vec![], s.clusters.len())))
            .await
            .unwrap();
        assert_eq!(read, Ok(0), "a read answers while the write syncs");
        release.send(Ok(())).unwrap();
        writer.await.unwrap().unwrap().unwrap();
        assert_eq!(cluster_names(&store), ["async"]);
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
