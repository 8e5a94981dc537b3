//! Whether a node's agent is connected: a node whose agent has not been heard from for
//! the heartbeat timeout is disconnected (its container instances say
//! `agentConnected: false`, and placement passes them over); the next word from it
//! connects it again. The control plane keeps when each agent was last heard from in
//! memory and asks here only when something may change, so a heartbeat costs no write.

use std::collections::BTreeMap;

use crate::model::{ContainerInstanceStatus, Node};
use crate::state::{Command, State};
use crate::time::Timestamp;

/// The commands that disconnect every watched node not heard from within `timeout_ms`
/// of `now`. `last_seen` holds the nodes whose agents reach this control plane over the
/// network (a node not in it, such as `berth dev`'s own, is left alone); a node already
/// disconnected is not written again.
pub fn disconnect_silent_nodes(
    state: &State,
    last_seen: &BTreeMap<String, Timestamp>,
    now: Timestamp,
    timeout_ms: u64,
) -> Vec<Command> {
    last_seen
        .iter()
        .filter(|(_, seen)| now.millis_since(**seen) > timeout_ms)
        .filter_map(|(node_id, _)| state.nodes.get(node_id))
        .filter(|node| node.connected)
        .flat_map(|node| set_connected(state, node, false))
        .collect()
}

/// The commands that mark a node heard from as connected again; none when it is.
pub fn reconnect_node(state: &State, node_id: &str) -> Vec<Command> {
    match state.nodes.get(node_id) {
        Some(node) if !node.connected => set_connected(state, node, true),
        _ => Vec::new(),
    }
}

/// The node and each of its container instances with `connected`.
fn set_connected(state: &State, node: &Node, connected: bool) -> Vec<Command> {
    let mut commands = vec![Command::PutNode(Node {
        connected,
        ..node.clone()
    })];
    for instance in state
        .container_instances
        .values()
        .filter(|i| i.node_id == node.id && i.status != ContainerInstanceStatus::Inactive)
        .filter(|i| i.agent_connected != connected)
    {
        let mut instance = crate::model::ContainerInstance::clone(instance);
        instance.agent_connected = connected;
        instance.version += 1;
        commands.push(Command::PutContainerInstance(instance));
    }
    commands
}
