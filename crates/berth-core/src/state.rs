//! The whole cluster state and the typed commands that change it.
//!
//! Commands carry complete records decided beforehand (ids, timestamps), so applying
//! one is deterministic: the same commands in the same order give the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::elbv2::model::{
    target_key, ListenerRecord, LoadBalancerRecord, TargetGroupRecord, TargetHealth,
    TargetHealthState, TargetRecord,
};
use crate::model::{
    AccountSettingRecord, CapacityProviderRecord, Cluster, ContainerInstance, Node, Service, Task,
    TaskDefinitionRecord, TaskDefinitionStatus,
};

/// Everything berth knows, keyed for lookup.
///
/// The records of the maps that grow with a cluster (definitions, services, tasks,
/// container instances, nodes, targets) are shared (`Arc`): the store copies the state
/// once per group of writes, and decisions copy it to work on, so a copy shares every
/// record and costs only its maps' keys. A change replaces a record, or copies the one
/// it edits (`Arc::make_mut`); no copy sees another's change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub clusters: BTreeMap<String, Cluster>,
    /// Keyed by `family:revision`. A registered revision never changes.
    pub task_definitions: BTreeMap<String, Arc<TaskDefinitionRecord>>,
    /// The highest revision each family ever had: revisions are never reused.
    pub family_revisions: BTreeMap<String, u32>,
    /// Keyed by `cluster/name`.
    pub services: BTreeMap<String, Arc<Service>>,
    /// Keyed by task id.
    pub tasks: BTreeMap<String, Arc<Task>>,
    /// Keyed by container instance id.
    pub container_instances: BTreeMap<String, Arc<ContainerInstance>>,
    /// Keyed by node id.
    pub nodes: BTreeMap<String, Arc<Node>>,
    /// ELBv2 load balancers, keyed by id (the ARN's last segment).
    pub load_balancers: BTreeMap<String, LoadBalancerRecord>,
    /// ELBv2 target groups, keyed by id (the ARN's last segment).
    pub target_groups: BTreeMap<String, TargetGroupRecord>,
    /// ELBv2 listeners, keyed by id (the ARN's last segment).
    pub listeners: BTreeMap<String, ListenerRecord>,
    /// Registered targets, keyed by `target_group/id/port` (`elbv2::model::target_key`).
    pub targets: BTreeMap<String, Arc<TargetRecord>>,
    /// ECS account settings, keyed by `principal|name` (`model::account_setting_key`).
    pub account_settings: BTreeMap<String, AccountSettingRecord>,
    /// The capacity providers users made (deleted ones stay INACTIVE), keyed by name.
    pub capacity_providers: BTreeMap<String, CapacityProviderRecord>,
}

pub fn service_key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

/// One change to the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    PutCluster(Cluster),
    PutTaskDefinition(Box<TaskDefinitionRecord>),
    PutService(Box<Service>),
    PutTask(Box<Task>),
    RemoveTask(String),
    PutContainerInstance(ContainerInstance),
    PutNode(Node),
    PutLoadBalancer(Box<LoadBalancerRecord>),
    /// Removes a load balancer by id.
    RemoveLoadBalancer(String),
    PutTargetGroup(Box<TargetGroupRecord>),
    /// Removes a target group by id.
    RemoveTargetGroup(String),
    PutListener(Box<ListenerRecord>),
    /// Removes a listener by id.
    RemoveListener(String),
    /// Registers a target, or replaces its registration (draining, health).
    PutTarget(Box<TargetRecord>),
    /// Forgets a target by `target_key`.
    RemoveTarget(String),
    /// The data plane's verdict on one registered target (target group id, target id,
    /// port). Ignored when the target is not registered (any more).
    PutTargetHealth {
        target_group: String,
        target_id: String,
        port: u16,
        health: TargetHealth,
    },
    PutAccountSetting(AccountSettingRecord),
    /// Forgets a principal's setting by `model::account_setting_key`.
    RemoveAccountSetting(String),
    PutCapacityProvider(Box<CapacityProviderRecord>),
}

/// The storage key a command touches: what a durable backend writes or deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    Cluster(String),
    TaskDefinition(String),
    Service(String),
    Task(String),
    ContainerInstance(String),
    Node(String),
    LoadBalancer(String),
    TargetGroup(String),
    Listener(String),
    Target(String),
    AccountSetting(String),
    CapacityProvider(String),
}

impl State {
    /// Applies one command; returns the key it touched.
    pub fn apply(&mut self, command: Command) -> RecordKey {
        match command {
            Command::PutCluster(cluster) => {
                let key = cluster.name.clone();
                self.clusters.insert(key.clone(), cluster);
                RecordKey::Cluster(key)
            }
            Command::PutTaskDefinition(definition) => {
                let definition = *definition;
                let key = definition.key();
                let highest = self
                    .family_revisions
                    .entry(definition.family.clone())
                    .or_insert(0);
                *highest = (*highest).max(definition.revision);
                self.task_definitions
                    .insert(key.clone(), Arc::new(definition));
                RecordKey::TaskDefinition(key)
            }
            Command::PutService(service) => {
                let key = service_key(&service.cluster, &service.name);
                self.services.insert(key.clone(), Arc::new(*service));
                RecordKey::Service(key)
            }
            Command::PutTask(task) => {
                let key = task.id.clone();
                self.tasks.insert(key.clone(), Arc::new(*task));
                RecordKey::Task(key)
            }
            Command::RemoveTask(id) => {
                self.tasks.remove(&id);
                RecordKey::Task(id)
            }
            Command::PutContainerInstance(instance) => {
                let key = instance.id.clone();
                self.container_instances
                    .insert(key.clone(), Arc::new(instance));
                RecordKey::ContainerInstance(key)
            }
            Command::PutNode(node) => {
                let key = node.id.clone();
                self.nodes.insert(key.clone(), Arc::new(node));
                RecordKey::Node(key)
            }
            Command::PutLoadBalancer(load_balancer) => {
                let key = load_balancer.id.clone();
                self.load_balancers.insert(key.clone(), *load_balancer);
                RecordKey::LoadBalancer(key)
            }
            Command::RemoveLoadBalancer(id) => {
                self.load_balancers.remove(&id);
                RecordKey::LoadBalancer(id)
            }
            Command::PutTargetGroup(target_group) => {
                let key = target_group.id.clone();
                self.target_groups.insert(key.clone(), *target_group);
                RecordKey::TargetGroup(key)
            }
            Command::RemoveTargetGroup(id) => {
                self.target_groups.remove(&id);
                RecordKey::TargetGroup(id)
            }
            Command::PutListener(listener) => {
                let key = listener.id.clone();
                self.listeners.insert(key.clone(), *listener);
                RecordKey::Listener(key)
            }
            Command::RemoveListener(id) => {
                self.listeners.remove(&id);
                RecordKey::Listener(id)
            }
            Command::PutTarget(target) => {
                let key = target.key();
                self.targets.insert(key.clone(), Arc::new(*target));
                RecordKey::Target(key)
            }
            Command::RemoveTarget(key) => {
                self.targets.remove(&key);
                RecordKey::Target(key)
            }
            Command::PutTargetHealth {
                target_group,
                target_id,
                port,
                health,
            } => {
                let key = target_key(&target_group, &target_id, port);
                if let Some(target) = self.targets.get_mut(&key) {
                    let target = Arc::make_mut(target);
                    target.passed_check |= health.state == TargetHealthState::Healthy;
                    target.health = health;
                }
                RecordKey::Target(key)
            }
            Command::PutAccountSetting(setting) => {
                let key = setting.key();
                self.account_settings.insert(key.clone(), setting);
                RecordKey::AccountSetting(key)
            }
            Command::RemoveAccountSetting(key) => {
                self.account_settings.remove(&key);
                RecordKey::AccountSetting(key)
            }
            Command::PutCapacityProvider(provider) => {
                let key = provider.name.clone();
                self.capacity_providers.insert(key.clone(), *provider);
                RecordKey::CapacityProvider(key)
            }
        }
    }

    /// The nodes whose agents must hear of `command`, decided on the state before it
    /// is applied: a task's node (where it was and where it goes), a container
    /// instance's node, a node itself. Everything else (definitions, services, the
    /// load balancer's records) changes no node's assignments.
    pub fn nodes_touched_by(&self, command: &Command) -> Vec<String> {
        let node_of_instance = |instance: Option<&String>| {
            instance
                .and_then(|id| self.container_instances.get(id))
                .map(|i| i.node_id.clone())
        };
        let mut nodes = Vec::new();
        match command {
            Command::PutTask(task) => {
                nodes.extend(node_of_instance(task.container_instance_id.as_ref()));
                let before = self.tasks.get(&task.id);
                if let Some(node) =
                    node_of_instance(before.and_then(|t| t.container_instance_id.as_ref()))
                {
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
            }
            Command::RemoveTask(id) => nodes.extend(node_of_instance(
                self.tasks
                    .get(id)
                    .and_then(|t| t.container_instance_id.as_ref()),
            )),
            Command::PutContainerInstance(instance) => nodes.push(instance.node_id.clone()),
            Command::PutNode(node) => nodes.push(node.id.clone()),
            _ => {}
        }
        nodes
    }

    pub fn service(&self, cluster: &str, name: &str) -> Option<&Service> {
        self.services.get(&service_key(cluster, name)).map(|s| &**s)
    }

    pub fn tasks_of_service<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .values()
            .map(|t| &**t)
            .filter(move |t| t.cluster == cluster && t.service.as_deref() == Some(name))
    }

    /// The latest ACTIVE revision of a family.
    pub fn latest_active_definition(&self, family: &str) -> Option<&TaskDefinitionRecord> {
        let prefix = format!("{family}:");
        self.task_definitions
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(_, d)| &**d)
            .filter(|d| d.family == family && d.status == TaskDefinitionStatus::Active)
            .max_by_key(|d| d.revision)
    }

    pub fn definition(&self, family: &str, revision: u32) -> Option<&TaskDefinitionRecord> {
        self.task_definitions
            .get(&crate::model::definition_key(family, revision))
            .map(|d| &**d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContainerInstance, DesiredStatus, Task};

    fn instance(id: &str, node: &str) -> ContainerInstance {
        serde_json::from_value(serde_json::json!({
            "id": id, "cluster": "default", "node_id": node, "hostname": node,
            "status": "ACTIVE", "agent_connected": true, "registered_cpu": 1024,
            "registered_memory": 1024, "agent_version": "1", "docker_version": "1",
            "attributes": {}, "registered_at": 1, "version": 1, "tags": [],
            "auto_joined": false
        }))
        .unwrap()
    }

    #[test]
    fn a_copy_shares_its_records_and_a_change_to_one_side_stays_there() {
        use crate::elbv2::model::{TargetHealthState, TargetRecord};
        let mut state = State::default();
        state.apply(Command::PutContainerInstance(instance("ci-1", "n1")));
        state.apply(Command::PutTarget(Box::new(TargetRecord {
            target_group: "tg".into(),
            id: "ci-1".into(),
            port: 80,
            availability_zone: None,
            registered_at: crate::Timestamp(1),
            health: TargetHealth::default(),
            draining_until: None,
            passed_check: false,
        })));
        let before = state.clone();
        assert!(Arc::ptr_eq(
            &before.container_instances["ci-1"],
            &state.container_instances["ci-1"]
        ));
        let key = target_key("tg", "ci-1", 80);
        assert!(Arc::ptr_eq(&before.targets[&key], &state.targets[&key]));
        state.apply(Command::PutTargetHealth {
            target_group: "tg".into(),
            target_id: "ci-1".into(),
            port: 80,
            health: TargetHealth {
                state: TargetHealthState::Healthy,
                reason: None,
                description: None,
            },
        });
        assert_eq!(state.targets[&key].health.state, TargetHealthState::Healthy);
        assert_eq!(
            before.targets[&key].health.state,
            TargetHealthState::Initial,
            "the copy keeps the record it had"
        );
        let mut moved = ContainerInstance::clone(&state.container_instances["ci-1"]);
        moved.node_id = "n2".into();
        state.apply(Command::PutContainerInstance(moved));
        assert_eq!(before.container_instances["ci-1"].node_id, "n1");
        assert_eq!(state.container_instances["ci-1"].node_id, "n2");
    }

    #[test]
    fn a_task_touches_the_nodes_it_leaves_and_joins() {
        let mut state = State::default();
        state.apply(Command::PutContainerInstance(instance("ci-1", "n1")));
        state.apply(Command::PutContainerInstance(instance("ci-2", "n2")));
        let mut task: Task = serde_json::from_value(serde_json::json!({
            "id": "t1", "cluster": "default", "family": "web", "revision": 1,
            "container_instance_id": "ci-1", "last_status": "Running",
            "desired_status": "Running", "health_status": "Unknown", "cpu": null,
            "memory": null, "reserved_cpu": 0, "reserved_memory": 0,
            "overrides": {}, "started_by": null, "group": null, "service": null,
            "deployment_id": null, "launch_type": null, "network_mode": "bridge",
            "private_ipv4_address": null, "tags": [], "containers": [], "created_at": 1,
            "pull_started_at": null, "pull_stopped_at": null, "started_at": null,
            "stopping_at": null, "execution_stopped_at": null, "stopped_at": null,
            "stop_code": null, "stopped_reason": null, "version": 1,
            "stop_accounted": false
        }))
        .unwrap();
        assert_eq!(
            state.nodes_touched_by(&Command::PutTask(Box::new(task.clone()))),
            ["n1"]
        );
        state.apply(Command::PutTask(Box::new(task.clone())));
        task.desired_status = DesiredStatus::Stopped;
        task.container_instance_id = Some("ci-2".into());
        assert_eq!(
            state.nodes_touched_by(&Command::PutTask(Box::new(task))),
            ["n2", "n1"]
        );
        assert_eq!(
            state.nodes_touched_by(&Command::RemoveTask("t1".into())),
            ["n1"]
        );
        assert!(state
            .nodes_touched_by(&Command::RemoveTask("unknown".into()))
            .is_empty());
        assert_eq!(
            state.nodes_touched_by(&Command::PutContainerInstance(instance("ci-3", "n3"))),
            ["n3"]
        );
    }
}
