//! `LoadBalancer`: the handle, and `apply`, which turns a declared `LbConfig` into
//! running listeners and target groups.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{LbConfig, Limits, ListenerConfig, ListenerProtocol, Stickiness};
use crate::error::LbError;
use crate::health::TargetHealth;
use crate::listener::{self, ListenerContext, Routing};
use crate::listener_status::{BindFailure, ListenerStatus};
use crate::routing::Routes;
use crate::target_group::TargetGroup;

/// The load balancer's data plane. Cheap to clone; every task it started ends on
/// [`LoadBalancer::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct LoadBalancer {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Arc<Limits>,
    /// One permit per open client connection, shared by every listener.
    connection_slots: Arc<tokio::sync::Semaphore>,
    root: CancellationToken,
    events: watch::Sender<u64>,
    running: Mutex<Running>,
    /// Serializes `apply` calls; never held by the request path.
    apply_lock: tokio::sync::Mutex<()>,
    /// The runtime client connections are served on, when the balancer has its own
    /// (`with_own_threads`); otherwise they run on the caller's.
    data_plane: Option<tokio::runtime::Runtime>,
}

#[derive(Default)]
struct Running {
    listeners: HashMap<String, RunningListener>,
    groups: HashMap<String, Arc<TargetGroup>>,
    /// Every configured listener's status after the last `apply`, bound or not.
    statuses: HashMap<String, ListenerStatus>,
    shut_down: bool,
}

struct RunningListener {
    config: ListenerConfig,
    local_addr: SocketAddr,
    context: Arc<ListenerContext>,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.root.cancel();
        if let Some(runtime) = self.data_plane.take() {
            // Dropping a runtime may block, which an async context forbids.
            runtime.shutdown_background();
        }
    }
}

/// How many threads [`LoadBalancer::with_own_threads`] should get on this machine: half
/// the cores, at least one. The balancer shares the machine with the tasks it proxies
/// to, and fewer threads hand a request's work between each other less often.
pub fn default_data_plane_threads() -> usize {
    std::thread::available_parallelism()
        .map(|cores| (cores.get() / 2).max(1))
        .unwrap_or(1)
}

impl LoadBalancer {
    /// A balancer whose client connections run on the caller's tokio runtime.
    pub fn new(limits: Limits) -> LoadBalancer {
        LoadBalancer::build(limits, None)
    }

    /// A balancer whose client connections (and their upstream connections) run on a
    /// runtime of its own with `threads` worker threads, apart from the caller's work;
    /// listeners, health checks and `apply` stay with the caller.
    pub fn with_own_threads(limits: Limits, threads: usize) -> std::io::Result<LoadBalancer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("berth-lb")
            .enable_all()
            .build()?;
        Ok(LoadBalancer::build(limits, Some(runtime)))
    }

    fn build(limits: Limits, data_plane: Option<tokio::runtime::Runtime>) -> LoadBalancer {
        let (events, _) = watch::channel(0);
        LoadBalancer {
            inner: Arc::new(Inner {
                connection_slots: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
                limits: Arc::new(limits),
                root: CancellationToken::new(),
                events,
                running: Mutex::default(),
                apply_lock: tokio::sync::Mutex::new(()),
                data_plane,
            }),
        }
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the running listeners, target groups and targets match `config`.
    ///
    /// New listeners bind first: one whose address cannot be bound is left out (a moved
    /// one keeps its old socket), named in the error and recorded as not serving (see
    /// [`LoadBalancer::listener_statuses`]); everything else is applied. A later `apply`
    /// tries it again, even with the same config.
    /// Removed listeners close (with their connections). Unchanged targets keep their
    /// health; new ones start `Initial`; removed ones drain for the group's
    /// deregistration delay.
    pub async fn apply(&self, config: LbConfig) -> Result<(), LbError> {
        let _serialized = self.inner.apply_lock.lock().await;
        validate(&config)?;
        let (mut replaced, to_start) = {
            let running = self.running();
            if running.shut_down {
                return Err(LbError::ShutDown);
            }
            let mut replaced = Vec::new();
            let mut to_start = Vec::new();
            for listener in &config.listeners {
                match running.listeners.get(&listener.id) {
                    Some(current)
                        if current.config.bind == listener.bind
                            && current.config.namespace == listener.namespace
                            && current.config.protocol == listener.protocol => {}
                    Some(_) => {
                        replaced.push(listener.id.clone());
                        to_start.push(listener.clone());
                    }
                    None => to_start.push(listener.clone()),
                }
            }
            (replaced, to_start)
        };

        // Bind everything new before touching anything. A listener moving to an address
        // one of ours holds (and is giving up) binds after that one closes. A listener
        // that cannot bind is left out (a replaced one keeps its old socket) and named in
        // the error; everything else is applied, so one taken port never holds back the
        // targets of every other group.
        // Keyed by namespace too: one port is free in each network namespace.
        let releasing: HashSet<(Option<std::path::PathBuf>, SocketAddr)> = {
            let running = self.running();
            let wanted: HashSet<&str> = config.listeners.iter().map(|l| l.id.as_str()).collect();
            running
                .listeners
                .values()
                .filter(|l| {
                    !wanted.contains(l.config.id.as_str()) || replaced.contains(&l.config.id)
                })
                .map(|l| (l.config.namespace.clone(), l.local_addr))
                .collect()
        };
        let mut bound = Vec::new();
        let mut deferred = Vec::new();
        let mut bind_error = None;
        let mut failures: HashMap<String, BindFailure> = HashMap::new();
        for listener in to_start {
            if releasing.contains(&(listener.namespace.clone(), listener.bind)) {
                deferred.push(listener);
                continue;
            }
            match bind(&listener).await {
                Ok(socket) => bound.push((listener, socket)),
                Err(error) => {
                    replaced.retain(|id| *id != listener.id);
                    if let Some(failure) = BindFailure::of(&error, listener.bind) {
                        failures.insert(listener.id.clone(), failure);
                    }
                    bind_error.get_or_insert(error);
                }
            }
        }

        let mut closing = Vec::new();
        {
            let mut running = self.running();
            let running = &mut *running;
            // Target groups: update in place (health survives), create, or close.
            let wanted_groups: HashSet<&str> =
                config.target_groups.iter().map(|g| g.id.as_str()).collect();
            running.groups.retain(|id, group| {
                let keep = wanted_groups.contains(id.as_str());
                if !keep {
                    group.close();
                }
                keep
            });
            for group_config in &config.target_groups {
                match running.groups.get(&group_config.id) {
                    Some(group) => group.update(group_config),
                    None => {
                        let group = TargetGroup::new(
                            group_config.clone(),
                            self.inner.events.clone(),
                            self.inner.root.child_token(),
                        );
                        running.groups.insert(group_config.id.clone(), group);
                    }
                }
            }
            // Listeners: close the removed and replaced, re-route the kept.
            let wanted_listeners: HashMap<&str, &ListenerConfig> = config
                .listeners
                .iter()
                .map(|l| (l.id.as_str(), l))
                .collect();
            let ids: Vec<String> = running.listeners.keys().cloned().collect();
            for id in ids {
                let keep = wanted_listeners.contains_key(id.as_str()) && !replaced.contains(&id);
                if keep {
                    let wanted = wanted_listeners[id.as_str()];
                    if let Some(listener) = running.listeners.get_mut(&id) {
                        if failures.contains_key(&id) {
                            // Moved, but the new address is not bound: it keeps its old
                            // socket (and the address it remembers, so the next `apply`
                            // tries the move again), and new routes if it speaks the same.
                            if listener.config.protocol != wanted.protocol {
                                continue;
                            }
                            let mut kept = wanted.clone();
                            kept.bind = listener.config.bind;
                            kept.namespace = listener.config.namespace.clone();
                            listener.config = kept;
                        } else {
                            listener.config = wanted.clone();
                        }
                        let routing = routing_of(&listener.config, &running.groups);
                        listener.context.route.store(routing);
                        listener.context.set_idle_timeout(wanted.idle_timeout);
                    }
                } else if let Some(listener) = running.listeners.remove(&id) {
                    listener.context.cancel.cancel();
                    closing.push(listener.task);
                }
            }
            for (listener, socket) in bound {
                let started = self.start_listener(running, listener, socket);
                running.listeners.insert(started.config.id.clone(), started);
            }
        }
        for task in closing {
            let _ = task.await;
        }
        for listener in deferred {
            match bind(&listener).await {
                Ok(socket) => {
                    let mut running = self.running();
                    let started = self.start_listener(&running, listener, socket);
                    running.listeners.insert(started.config.id.clone(), started);
                }
                Err(error) => {
                    if let Some(failure) = BindFailure::of(&error, listener.bind) {
                        failures.insert(listener.id.clone(), failure);
                    }
                    bind_error.get_or_insert(error);
                }
            }
        }
        {
            let mut running = self.running();
            let running = &mut *running;
            running.statuses = config
                .listeners
                .iter()
                .filter_map(|wanted| {
                    let serving_at = running.listeners.get(&wanted.id).map(|l| l.local_addr);
                    let status = match failures.remove(&wanted.id) {
                        Some(failure) => ListenerStatus::NotServing {
                            failure,
                            still_serving_at: serving_at,
                        },
                        None => ListenerStatus::Serving {
                            local_addr: serving_at?,
                        },
                    };
                    Some((wanted.id.clone(), status))
                })
                .collect();
            let used: HashSet<&str> = running
                .listeners
                .values()
                .flat_map(|l| l.config.target_groups())
                .collect();
            for (id, group) in &running.groups {
                group
                    .in_use
                    .store(used.contains(id.as_str()), Ordering::Relaxed);
            }
        }
        self.inner
            .events
            .send_modify(|count| *count = count.wrapping_add(1));
        match bind_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn start_listener(
        &self,
        running: &Running,
        config: ListenerConfig,
        socket: std::net::TcpListener,
    ) -> RunningListener {
        let local_addr = socket.local_addr().unwrap_or(config.bind);
        let context = Arc::new(ListenerContext::new(
            config.protocol,
            routing_of(&config, &running.groups),
            local_addr,
            config.idle_timeout,
            self.inner.limits.clone(),
            self.inner.connection_slots.clone(),
            self.inner.root.child_token(),
        ));
        let serve = {
            let context = context.clone();
            async move {
                // Registered with the runtime that serves it, so its connections' IO is
                // driven there too.
                match TcpListener::from_std(socket) {
                    Ok(socket) => listener::accept_loop(socket, context).await,
                    Err(error) => tracing::error!(%error, "listener socket unusable"),
                }
            }
        };
        let task = match &self.inner.data_plane {
            Some(runtime) => runtime.spawn(serve),
            None => tokio::spawn(serve),
        };
        tracing::info!(listener = %config.id, %local_addr, "listener started");
        RunningListener {
            config,
            local_addr,
            context,
            task,
        }
    }

    /// The health of every target of a group (draining ones included), or `None` if
    /// there is no such group.
    pub fn target_health(&self, target_group_id: &str) -> Option<Vec<TargetHealth>> {
        let group = self.running().groups.get(target_group_id).cloned()?;
        Some(group.health_report())
    }

    /// Ticks whenever any target changes state (and after every `apply`).
    pub fn health_changes(&self) -> watch::Receiver<u64> {
        self.inner.events.subscribe()
    }

    /// Whether each configured listener serves at its address, and why not when it does
    /// not, as of the last `apply`.
    pub fn listener_statuses(&self) -> HashMap<String, ListenerStatus> {
        self.running().statuses.clone()
    }

    /// One listener's status as of the last `apply`; `None` if it is not configured.
    pub fn listener_status(&self, listener_id: &str) -> Option<ListenerStatus> {
        self.running().statuses.get(listener_id).cloned()
    }

    /// The bound address of a listener (useful when it was configured with port 0).
    pub fn local_addr(&self, listener_id: &str) -> Option<SocketAddr> {
        self.running()
            .listeners
            .get(listener_id)
            .map(|l| l.local_addr)
    }

    /// Closes every listener and connection and stops every health check; later
    /// `apply` calls fail with `LbError::ShutDown`.
    pub async fn shutdown(&self) {
        let _serialized = self.inner.apply_lock.lock().await;
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running();
            running.shut_down = true;
            for group in running.groups.values() {
                group.close();
            }
            running.groups.clear();
            running.statuses.clear();
            running.listeners.drain().map(|(_, l)| l.task).collect()
        };
        self.inner.root.cancel();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Pending connections a listener's accept queue holds (the kernel caps it at
/// `net.core.somaxconn`). `TcpListener::bind` asks for 128, which a burst of new
/// clients overflows: the kernel then drops their SYNs and they retry after 1 s, 3 s...
const LISTEN_BACKLOG: u32 = 4096;

/// Binds and listens; the socket is handed over unregistered, to be registered with
/// the runtime that serves it. A listener with a namespace is bound by a thread of its
/// own that first enters that namespace: a socket belongs to the namespace it was made
/// in for the rest of its life, and the thread ends there, so no thread of the runtime
/// ever leaves the balancer's own namespace.
async fn bind(listener: &ListenerConfig) -> Result<std::net::TcpListener, LbError> {
    let Some(namespace) = listener.namespace.clone() else {
        return bind_here(listener);
    };
    let config = listener.clone();
    // tokio's socket registers with a reactor while it listens (and leaves it again in
    // `into_std`), so the thread works in the caller's runtime context.
    let runtime = tokio::runtime::Handle::current();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("berth-lb-netns".to_string())
        .spawn(move || {
            let _runtime = runtime.enter();
            let bound = enter_namespace(&namespace)
                .map_err(|source| LbError::Namespace {
                    listener_id: config.id.clone(),
                    namespace,
                    source,
                })
                .and_then(|()| bind_here(&config));
            let _ = sender.send(bound);
        });
    if let Err(source) = spawned {
        return Err(LbError::Bind {
            listener_id: listener.id.clone(),
            addr: listener.bind,
            source,
        });
    }
    receiver.await.unwrap_or_else(|_| {
        Err(LbError::Bind {
            listener_id: listener.id.clone(),
            addr: listener.bind,
            source: std::io::Error::other("the binding thread ended without an answer"),
        })
    })
}

/// Whether this process may bind listeners in other network namespaces: a thread
/// enters its own (which `setns` allows only with `CAP_SYS_ADMIN`, as it does any
/// other), so a caller can tell before it depends on it.
pub fn check_namespace_entry() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("berth-lb-netns".to_string())
        .spawn(|| enter_namespace(std::path::Path::new("/proc/thread-self/ns/net")))?
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the probing thread panicked")))
}

/// Moves the calling thread into the network namespace `path` names.
fn enter_namespace(path: &std::path::Path) -> std::io::Result<()> {
    let link = std::fs::File::open(path)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&link),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// Binds in the calling thread's network namespace.
fn bind_here(listener: &ListenerConfig) -> Result<std::net::TcpListener, LbError> {
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let socket = if listener.bind.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: rebinding a port with connections in TIME_WAIT works.
        socket.set_reuseaddr(true)?;
        socket.bind(listener.bind)?;
        socket.listen(LISTEN_BACKLOG)?.into_std()
    };
    bind().map_err(|source| LbError::Bind {
        listener_id: listener.id.clone(),
        addr: listener.bind,
        source,
    })
}

/// A listener's routing over the running target groups (`validate` checked that each
/// one it names exists).
fn routing_of(config: &ListenerConfig, groups: &HashMap<String, Arc<TargetGroup>>) -> Arc<Routing> {
    Arc::new(Routing {
        routes: Routes::new(config.rules.clone(), config.default_action.clone()),
        groups: config
            .target_groups()
            .filter_map(|id| Some((id.to_string(), groups.get(id)?.clone())))
            .collect(),
        only_group: config
            .only_target_group()
            .and_then(|id| groups.get(id))
            .cloned(),
    })
}

fn validate(config: &LbConfig) -> Result<(), LbError> {
    let invalid = |message: String| Err(LbError::InvalidConfig(message));
    let mut group_ids = HashMap::new();
    for group in &config.target_groups {
        if group_ids.insert(group.id.as_str(), group).is_some() {
            return invalid(format!("duplicate target group id {}", group.id));
        }
        let mut target_ids = HashSet::new();
        for target in &group.targets {
            if !target_ids.insert(target.id.as_str()) {
                return invalid(format!(
                    "duplicate target id {} in target group {}",
                    target.id, group.id
                ));
            }
        }
        // The control plane checks cookie names; an empty one would follow nothing.
        if let Stickiness::AppCookie { cookie_name, .. } = &group.stickiness {
            if cookie_name.is_empty() {
                return invalid(format!(
                    "app cookie stickiness of target group {} needs a cookie name",
                    group.id
                ));
            }
        }
        let check = &group.health_check;
        if check.healthy_threshold == 0 || check.unhealthy_threshold == 0 {
            return invalid(format!(
                "health check thresholds of target group {} must be at least 1",
                group.id
            ));
        }
        if check.interval.is_zero() || check.timeout.is_zero() {
            return invalid(format!(
                "health check interval and timeout of target group {} must be positive",
                group.id
            ));
        }
    }
    let mut listener_ids = HashSet::new();
    for listener in &config.listeners {
        if !listener_ids.insert(listener.id.as_str()) {
            return invalid(format!("duplicate listener id {}", listener.id));
        }
        for id in listener.target_groups() {
            let Some(group) = group_ids.get(id) else {
                return invalid(format!(
                    "listener {} forwards to unknown target group {id}",
                    listener.id
                ));
            };
            if group.protocol != listener.protocol {
                return invalid(format!(
                    "listener {} is {:?} but target group {} is {:?}",
                    listener.id, listener.protocol, group.id, group.protocol
                ));
            }
        }
        if listener.protocol == ListenerProtocol::Tcp && listener.only_target_group().is_none() {
            return invalid(format!(
                "tcp listener {} must forward to exactly one target group, with no rules",
                listener.id
            ));
        }
    }
    Ok(())
}
