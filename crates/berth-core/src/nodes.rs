//! Agents joining the cluster: a node registers once and becomes a container instance.

use serde::{Deserialize, Serialize};

use crate::ecs::{join_every_cluster_nodes, Context};
use crate::model::{Cluster, ClusterStatus, ContainerInstance, ContainerInstanceStatus, Node};
use crate::state::{Command, State};

/// What an agent says about its machine when it (re)connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRegistration {
    pub node_id: String,
    pub hostname: String,
    pub cpu: u64,
    pub memory: u64,
    pub agent_version: String,
    pub docker_version: String,
    /// The cluster it serves; a `berth dev` node serves every cluster.
    pub cluster: String,
    pub joins_every_cluster: bool,
}

pub fn register_node(
    state: &State,
    registration: &NodeRegistration,
    ctx: &mut Context,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut working = state.clone();
    let emit = |working: &mut State, command: Command, commands: &mut Vec<Command>| {
        working.apply(command.clone());
        commands.push(command);
    };
    if working
        .clusters
        .get(&registration.cluster)
        .is_none_or(|c| c.status != ClusterStatus::Active)
    {
        let cluster = Cluster {
            name: registration.cluster.clone(),
            status: ClusterStatus::Active,
            tags: vec![],
            settings: vec![],
            configuration: None,
            created_at: ctx.now,
        };
        emit(&mut working, Command::PutCluster(cluster), &mut commands);
    }
    let node = Node {
        id: registration.node_id.clone(),
        hostname: registration.hostname.clone(),
        cpu: registration.cpu,
        memory: registration.memory,
        agent_version: registration.agent_version.clone(),
        docker_version: registration.docker_version.clone(),
        joins_every_cluster: registration.joins_every_cluster,
        connected: true,
        registered_at: state
            .nodes
            .get(&registration.node_id)
            .map(|n| n.registered_at)
            .unwrap_or(ctx.now),
    };
    emit(&mut working, Command::PutNode(node.clone()), &mut commands);
    // Existing memberships follow the node's resources and connection.
    let memberships: Vec<ContainerInstance> = working
        .container_instances
        .values()
        .filter(|i| i.node_id == node.id && i.status != ContainerInstanceStatus::Inactive)
        .cloned()
        .collect();
    for mut instance in memberships {
        let before = instance.clone();
        instance.agent_connected = true;
        instance.registered_cpu = node.cpu;
        instance.registered_memory = node.memory;
        instance.agent_version = node.agent_version.clone();
        instance.docker_version = node.docker_version.clone();
        instance.hostname = node.hostname.clone();
        if instance != before {
            instance.version += 1;
            emit(
                &mut working,
                Command::PutContainerInstance(instance),
                &mut commands,
            );
        }
    }
    let clusters: Vec<String> = if registration.joins_every_cluster {
        working
            .clusters
            .values()
            .filter(|c| c.status == ClusterStatus::Active)
            .map(|c| c.name.clone())
            .collect()
    } else {
        vec![registration.cluster.clone()]
    };
    for cluster in clusters {
        let member = working.container_instances.values().any(|i| {
            i.node_id == node.id
                && i.cluster == cluster
                && i.status != ContainerInstanceStatus::Inactive
        });
        if member {
            continue;
        }
        let joined = if registration.joins_every_cluster {
            join_every_cluster_nodes(&working, &cluster, ctx)
        } else {
            vec![Command::PutContainerInstance(ContainerInstance {
                id: ctx.ids.task_id(),
                cluster: cluster.clone(),
                node_id: node.id.clone(),
                hostname: node.hostname.clone(),
                status: ContainerInstanceStatus::Active,
                agent_connected: true,
                registered_cpu: node.cpu,
                registered_memory: node.memory,
                agent_version: node.agent_version.clone(),
                docker_version: node.docker_version.clone(),
                attributes: Default::default(),
                registered_at: ctx.now,
                version: 1,
                tags: vec![],
                auto_joined: false,
            })]
        };
        for command in joined {
            emit(&mut working, command, &mut commands);
        }
    }
    commands
}

/// The container instance ids that belong to a node: the agent runs their tasks.
pub fn instances_of_node(state: &State, node_id: &str) -> Vec<String> {
    state
        .container_instances
        .values()
        .filter(|i| i.node_id == node_id)
        .map(|i| i.id.clone())
        .collect()
}
