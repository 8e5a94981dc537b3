//! Agents joining the cluster: a node registers once and becomes a container instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attributes::{self, AttributeError};
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
    /// The address other machines reach this one at (`berth agent --address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The container instance's attributes: the agent's `ecs.*` ones and the operator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// The capacity provider whose container instances this machine's are
    /// (`berth agent --capacity-provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
}

/// Why a remote agent's registration is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("node id '{0}': must be 1 to 63 lower-case letters, digits or '-', not starting or ending with '-'")]
    BadNodeId(String),
    #[error("address '{0}': must be an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    #[error("capacity provider '{0}': up to 255 letters, numbers, hyphens and underscores, not starting with aws, ecs or fargate")]
    BadCapacityProvider(String),
}

/// The rule for a node id: it names the node's Docker networks and labels, and its
/// certificate, so it is a DNS label.
pub fn check_node_id(node_id: &str) -> Result<(), RegistrationError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if node_id.is_empty()
        || node_id.len() > 63
        || !node_id.chars().all(allowed)
        || node_id.starts_with('-')
        || node_id.ends_with('-')
    {
        return Err(RegistrationError::BadNodeId(node_id.to_string()));
    }
    Ok(())
}

/// What a registration that comes over the network must hold to be stored.
pub fn check_registration(registration: &NodeRegistration) -> Result<(), RegistrationError> {
    check_node_id(&registration.node_id)?;
    if let Some(address) = &registration.address {
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(RegistrationError::BadAddress(address.clone()));
        }
    }
    attributes::check_all(&registration.attributes)?;
    if let Some(provider) = &registration.capacity_provider {
        if crate::ecs::check_capacity_provider_name(provider).is_err() {
            return Err(RegistrationError::BadCapacityProvider(provider.clone()));
        }
    }
    Ok(())
}

/// Whether a task runs on one of the node's container instances.
pub fn task_runs_on(state: &State, task_id: &str, node_id: &str) -> bool {
    state
        .tasks
        .get(task_id)
        .and_then(|task| task.container_instance_id.as_ref())
        .and_then(|instance| state.container_instances.get(instance))
        .is_some_and(|instance| instance.node_id == node_id)
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
            settings: crate::ecs::new_cluster_settings(&working, vec![]),
            configuration: None,
            capacity_providers: vec![],
            default_capacity_provider_strategy: vec![],
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
        address: registration.address.clone(),
        attributes: registration.attributes.clone(),
        capacity_provider: registration.capacity_provider.clone(),
        registered_at: state
            .nodes
            .get(&registration.node_id)
            .map(|n| n.registered_at)
            .unwrap_or(ctx.now),
    };
    // Attributes the node reported before and no longer does leave its instances; ones
    // set by PutAttributes stay.
    let dropped: Vec<String> = state
        .nodes
        .get(&registration.node_id)
        .map(|old| {
            old.attributes
                .keys()
                .filter(|name| !node.attributes.contains_key(*name))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    emit(&mut working, Command::PutNode(node.clone()), &mut commands);
    // Existing memberships follow the node's resources and connection.
    let memberships: Vec<ContainerInstance> = working
        .container_instances
        .values()
        .filter(|i| i.node_id == node.id && i.status != ContainerInstanceStatus::Inactive)
        .map(|i| ContainerInstance::clone(i))
        .collect();
    for mut instance in memberships {
        let before = instance.clone();
        instance.agent_connected = true;
        instance.registered_cpu = node.cpu;
        instance.registered_memory = node.memory;
        instance.agent_version = node.agent_version.clone();
        instance.docker_version = node.docker_version.clone();
        instance.hostname = node.hostname.clone();
        for name in &dropped {
            instance.attributes.remove(name);
        }
        instance.attributes.extend(node.attributes.clone());
        instance.capacity_provider_name = node.capacity_provider.clone();
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
                attributes: node.attributes.clone(),
                registered_at: ctx.now,
                version: 1,
                tags: vec![],
                auto_joined: false,
                capacity_provider_name: node.capacity_provider.clone(),
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
