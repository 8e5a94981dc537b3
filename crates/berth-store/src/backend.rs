use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_core::{Command, RecordKey, State};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {message}")]
    Backend { path: String, message: String },
    #[error("store record {key} cannot be read: {message}")]
    Corrupt { key: String, message: String },
}

/// One durable write: a record's key and its new JSON, or `None` to delete it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Where records live. `write` must be atomic and durable when it returns.
pub trait Backend: Send + Sync {
    fn write(&self, records: &[Record]) -> Result<(), StoreError>;
    /// Every stored record, in key order.
    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

fn key_text(key: &RecordKey) -> String {
    match key {
        RecordKey::Cluster(k) => format!("cluster/{k}"),
        RecordKey::TaskDefinition(k) => format!("task-definition/{k}"),
        RecordKey::Service(k) => format!("service/{k}"),
        RecordKey::Task(k) => format!("task/{k}"),
        RecordKey::ContainerInstance(k) => format!("container-instance/{k}"),
        RecordKey::Node(k) => format!("node/{k}"),
    }
}

/// The record a command writes (serialized) after it was applied to `state`.
pub(crate) fn record_of(state: &State, key: &RecordKey) -> Record {
    let value = match key {
        RecordKey::Cluster(k) => state.clusters.get(k).map(serde_json::to_vec),
        RecordKey::TaskDefinition(k) => state.task_definitions.get(k).map(serde_json::to_vec),
        RecordKey::Service(k) => state.services.get(k).map(serde_json::to_vec),
        RecordKey::Task(k) => state.tasks.get(k).map(serde_json::to_vec),
        RecordKey::ContainerInstance(k) => state.container_instances.get(k).map(serde_json::to_vec),
        RecordKey::Node(k) => state.nodes.get(k).map(serde_json::to_vec),
    };
    // Serializing plain records to JSON cannot fail (no maps with non-string keys).
    Record {
        key: key_text(key),
        value: value.and_then(Result::ok),
    }
}

/// Rebuilds the state from stored records.
pub(crate) fn state_from_records(records: Vec<(String, Vec<u8>)>) -> Result<State, StoreError> {
    let mut state = State::default();
    for (key, value) in records {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            key: key.clone(),
            message: e.to_string(),
        };
        let (kind, _) = key.split_once('/').unwrap_or((key.as_str(), ""));
        let command = match kind {
            "cluster" => Command::PutCluster(serde_json::from_slice(&value).map_err(corrupt)?),
            "task-definition" => Command::PutTaskDefinition(Box::new(
                serde_json::from_slice(&value).map_err(corrupt)?,
            )),
            "service" => {
                Command::PutService(Box::new(serde_json::from_slice(&value).map_err(corrupt)?))
            }
            "task" => Command::PutTask(Box::new(serde_json::from_slice(&value).map_err(corrupt)?)),
            "container-instance" => {
                Command::PutContainerInstance(serde_json::from_slice(&value).map_err(corrupt)?)
            }
            "node" => Command::PutNode(serde_json::from_slice(&value).map_err(corrupt)?),
            _ => {
                return Err(StoreError::Corrupt {
                    key: key.clone(),
                    message: "unknown record kind".to_string(),
                })
            }
        };
        state.apply(command);
    }
    Ok(state)
}

/// Keeps records in memory: for tests, and for anything that needs no durability.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    records: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Backend for MemoryBackend {
    fn write(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut stored = self.records.lock().unwrap_or_else(|e| e.into_inner());
        for record in records {
            match &record.value {
                Some(value) => stored.insert(record.key.clone(), value.clone()),
                None => stored.remove(&record.key),
            };
        }
        Ok(())
    }

    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let stored = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(stored.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
