//! When each remote agent was last heard from, in memory: a heartbeat (or any other
//! call of a node) costs a map update, never a store write. A small loop asks
//! `berth_core::node_health` whether a node went silent for the heartbeat timeout and
//! writes only the transition; the next word from the node writes it connected again.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::node_health::{disconnect_silent_nodes, reconnect_node};
use berth_core::Timestamp;
use tokio::time::Instant;

use crate::{now, ControlPlane};

/// How long an agent may stay silent before its node is disconnected, unless told.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct NodeLiveness {
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl NodeLiveness {
    pub fn new() -> NodeLiveness {
        NodeLiveness::default()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `node_id`'s agent spoke now; if its node was disconnected, connects
    /// it again (one store write).
    pub async fn heard_from(&self, control_plane: &ControlPlane, node_id: &str) {
        self.seen().insert(node_id.to_string(), Instant::now());
        let disconnected = control_plane
            .store
            .read(|state| state.nodes.get(node_id).is_some_and(|n| !n.connected));
        if !disconnected {
            return;
        }
        let node = node_id.to_string();
        let written = control_plane
            .store
            .transact_async(move |state| {
                let commands = reconnect_node(state, &node);
                let changed = !commands.is_empty();
                Ok::<_, std::convert::Infallible>((commands, changed))
            })
            .await;
        match written {
            // Two calls at once both saw it disconnected: one of them writes and says so.
            Ok(Ok(true)) => tracing::info!(node = node_id, "agent connected again"),
            Ok(_) => {}
            Err(error) => tracing::warn!(node = node_id, %error, "cannot mark the node connected"),
        }
    }

    /// When each watched node was last heard from, as of `now` on the core's clock.
    pub fn last_seen(&self, now: Timestamp) -> BTreeMap<String, Timestamp> {
        let at = Instant::now();
        self.seen()
            .iter()
            .map(|(node, seen)| {
                let ago = u64::try_from(at.duration_since(*seen).as_millis()).unwrap_or(u64::MAX);
                (node.clone(), Timestamp(now.0.saturating_sub(ago)))
            })
            .collect()
    }

    /// Watches every node the store knows as if heard from now: after a restart of the
    /// server, each agent has one heartbeat timeout to speak.
    fn watch_known_nodes(&self, control_plane: &ControlPlane) {
        let nodes: Vec<String> = control_plane
            .store
            .read(|state| state.nodes.keys().cloned().collect());
        let mut seen = self.seen();
        let at = Instant::now();
        for node in nodes {
            seen.entry(node).or_insert(at);
        }
    }
}

/// Disconnects the nodes whose agents stay silent for `timeout`, until `shutdown`.
pub async fn run_node_liveness(
    control_plane: Arc<ControlPlane>,
    liveness: Arc<NodeLiveness>,
    timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    liveness.watch_known_nodes(&control_plane);
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let tick = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = interval.tick() => {}
        }
        let at = now();
        let last_seen = liveness.last_seen(at);
        // Decided on the snapshot first: a quiet cluster costs no write at all.
        let silent = control_plane
            .store
            .read(|state| !disconnect_silent_nodes(state, &last_seen, at, timeout_ms).is_empty());
        if !silent {
            continue;
        }
        let written = control_plane
            .store
            .transact_async(move |state| {
                let commands = disconnect_silent_nodes(state, &last_seen, at, timeout_ms);
                let nodes: Vec<String> = commands
                    .iter()
                    .filter_map(|command| match command {
                        berth_core::Command::PutNode(node) => Some(node.id.clone()),
                        _ => None,
                    })
                    .collect();
                Ok::<_, std::convert::Infallible>((commands, nodes))
            })
            .await;
        match written {
            Ok(Ok(nodes)) => {
                for node in nodes {
                    tracing::warn!(
                        %node,
                        timeout_ms,
                        "the agent missed its heartbeats; its node is disconnected"
                    );
                }
            }
            Ok(Err(never)) => match never {},
            Err(error) => tracing::warn!(%error, "cannot mark a silent node disconnected"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalLink;
    use berth_proto::{ControlPlaneLink, NodeRegistration};

    fn registration(node: &str) -> NodeRegistration {
        NodeRegistration {
            node_id: node.to_string(),
            hostname: node.to_string(),
            cpu: 1024,
            memory: 1024,
            agent_version: "1".to_string(),
            docker_version: "27".to_string(),
            cluster: "default".to_string(),
            joins_every_cluster: false,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        }
    }

    fn connected(control_plane: &ControlPlane, node: &str) -> bool {
        control_plane.store.read(|state| {
            state.nodes[node].connected
                && state
                    .container_instances
                    .values()
                    .filter(|i| i.node_id == node)
                    .all(|i| i.agent_connected)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_agent_is_disconnected_and_its_next_heartbeat_reconnects_it() {
        let control_plane = Arc::new(ControlPlane::in_memory());
        let link = LocalLink::new(control_plane.clone());
        link.register(registration("n1")).await.unwrap();
        link.register(registration("n2")).await.unwrap();
        let liveness = Arc::new(NodeLiveness::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let monitor = tokio::spawn(run_node_liveness(
            control_plane.clone(),
            liveness.clone(),
            Duration::from_secs(3),
            async {
                let _ = stopped.await;
            },
        ));
        // n2 heartbeats every second; n1 says nothing after the start.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            liveness.heard_from(&control_plane, "n2").await;
        }
        assert!(!connected(&control_plane, "n1"), "n1 is silent for 5 s");
        assert!(connected(&control_plane, "n2"));
        let revision = *control_plane.store.watch().borrow();
        // Staying silent writes nothing more.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            liveness.heard_from(&control_plane, "n2").await;
        }
        assert_eq!(*control_plane.store.watch().borrow(), revision);
        // Nor do n2's heartbeats: the store's revision stayed put above.
        liveness.heard_from(&control_plane, "n1").await;
        assert!(connected(&control_plane, "n1"));
        let _ = stop.send(());
        monitor.await.unwrap();
    }
}
