//! The whole cluster state and the typed commands that change it.
//!
//! Commands carry complete records decided beforehand (ids, timestamps), so applying
//! one is deterministic: the same commands in the same order give the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Cluster, ContainerInstance, Node, Service, Task, TaskDefinitionRecord};

/// Everything berth knows, keyed for lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub clusters: BTreeMap<String, Cluster>,
    /// Keyed by `family:revision`.
    pub task_definitions: BTreeMap<String, TaskDefinitionRecord>,
    /// The highest revision each family ever had: revisions are never reused.
    pub family_revisions: BTreeMap<String, u32>,
    /// Keyed by `cluster/name`.
    pub services: BTreeMap<String, Service>,
    /// Keyed by task id.
    pub tasks: BTreeMap<String, Task>,
    /// Keyed by container instance id.
    pub container_instances: BTreeMap<String, ContainerInstance>,
    /// Keyed by node id.
    pub nodes: BTreeMap<String, Node>,
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
                self.task_definitions.insert(key.clone(), definition);
                RecordKey::TaskDefinition(key)
            }
            Command::PutService(service) => {
                let key = service_key(&service.cluster, &service.name);
                self.services.insert(key.clone(), *service);
                RecordKey::Service(key)
            }
            Command::PutTask(task) => {
                let key = task.id.clone();
                self.tasks.insert(key.clone(), *task);
                RecordKey::Task(key)
            }
            Command::RemoveTask(id) => {
                self.tasks.remove(&id);
                RecordKey::Task(id)
            }
            Command::PutContainerInstance(instance) => {
                let key = instance.id.clone();
                self.container_instances.insert(key.clone(), instance);
                RecordKey::ContainerInstance(key)
            }
            Command::PutNode(node) => {
                let key = node.id.clone();
                self.nodes.insert(key.clone(), node);
                RecordKey::Node(key)
            }
        }
    }

    pub fn service(&self, cluster: &str, name: &str) -> Option<&Service> {
        self.services.get(&service_key(cluster, name))
    }

    pub fn tasks_of_service<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .values()
            .filter(move |t| t.cluster == cluster && t.service.as_deref() == Some(name))
    }

    /// The latest ACTIVE revision of a family.
    pub fn latest_active_definition(&self, family: &str) -> Option<&TaskDefinitionRecord> {
        let prefix = format!("{family}:");
        self.task_definitions
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(_, d)| d)
            .filter(|d| d.family == family && d.status == "ACTIVE")
            .max_by_key(|d| d.revision)
    }

    pub fn definition(&self, family: &str, revision: u32) -> Option<&TaskDefinitionRecord> {
        self.task_definitions
            .get(&crate::model::definition_key(family, revision))
    }
}
