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
        RecordKey::LoadBalancer(k) => format!("load-balancer/{k}"),
        RecordKey::TargetGroup(k) => format!("target-group/{k}"),
        RecordKey::Listener(k) => format!("listener/{k}"),
        RecordKey::Target(k) => format!("target/{k}"),
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
        RecordKey::LoadBalancer(k) => state.load_balancers.get(k).map(serde_json::to_vec),
        RecordKey::TargetGroup(k) => state.target_groups.get(k).map(serde_json::to_vec),
        RecordKey::Listener(k) => state.listeners.get(k).map(serde_json::to_vec),
        RecordKey::Target(k) => state.targets.get(k).map(serde_json::to_vec),
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
            "load-balancer" => {
                Command::PutLoadBalancer(Box::new(serde_json::from_slice(&value).map_err(corrupt)?))
            }
            "target-group" => {
                Command::PutTargetGroup(Box::new(serde_json::from_slice(&value).map_err(corrupt)?))
            }
            "listener" => {
                Command::PutListener(Box::new(serde_json::from_slice(&value).map_err(corrupt)?))
            }
            "target" => {
                Command::PutTarget(Box::new(serde_json::from_slice(&value).map_err(corrupt)?))
            }
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

#[cfg(test)]
mod elbv2_tests {
    use super::*;
    use berth_core::elbv2::model::*;
    use berth_core::Timestamp;

    #[test]
    fn elbv2_records_survive_a_round_trip_and_removals_delete_them() {
        let target_group = TargetGroupRecord {
            id: "00000000000000aa".into(),
            name: "web".into(),
            protocol: Protocol::Http,
            protocol_version: None,
            port: 80,
            vpc_id: None,
            target_type: TargetType::Ip,
            ip_address_type: "ipv4".into(),
            health_check: berth_core::elbv2::default_health_check(Protocol::Http),
            attributes: TargetGroupAttributes::default(),
            tags: vec![],
            created_at: Timestamp(1),
        };
        let load_balancer = LoadBalancerRecord {
            id: "00000000000000bb".into(),
            name: "web".into(),
            load_balancer_type: LoadBalancerType::Application,
            scheme: "internal".into(),
            ip_address_type: "ipv4".into(),
            subnets: vec![],
            security_groups: vec![],
            tags: vec![],
            created_at: Timestamp(1),
        };
        let listener = ListenerRecord {
            id: "00000000000000cc".into(),
            load_balancer: load_balancer.id.clone(),
            port: 80,
            protocol: Protocol::Http,
            target_group: target_group.id.clone(),
            action_order: None,
            tags: vec![],
            created_at: Timestamp(1),
        };
        let target = TargetRecord {
            target_group: target_group.id.clone(),
            id: "10.0.0.1".into(),
            port: 8080,
            availability_zone: None,
            registered_at: Timestamp(1),
            health: TargetHealth::default(),
            draining_until: Some(Timestamp(5)),
        };
        let backend = MemoryBackend::default();
        let mut state = State::default();
        let commands = vec![
            Command::PutTargetGroup(Box::new(target_group)),
            Command::PutLoadBalancer(Box::new(load_balancer)),
            Command::PutListener(Box::new(listener)),
            Command::PutTarget(Box::new(target.clone())),
            Command::PutTargetHealth {
                target_group: target.target_group.clone(),
                target_id: target.id.clone(),
                port: target.port,
                health: TargetHealth {
                    state: TargetHealthState::Healthy,
                    reason: None,
                    description: None,
                },
            },
        ];
        let keys: Vec<_> = commands.into_iter().map(|c| state.apply(c)).collect();
        let records: Vec<_> = keys.iter().map(|k| record_of(&state, k)).collect();
        backend.write(&records).unwrap();
        let loaded = state_from_records(backend.read_all().unwrap()).unwrap();
        assert_eq!(loaded, state);
        assert_eq!(
            loaded.targets[&target.key()].health.state,
            TargetHealthState::Healthy
        );

        let key = state.apply(Command::RemoveTarget(target.key()));
        backend.write(&[record_of(&state, &key)]).unwrap();
        let loaded = state_from_records(backend.read_all().unwrap()).unwrap();
        assert!(loaded.targets.is_empty());
        assert_eq!(loaded.listeners.len(), 1);
    }
}
