use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_core::{Command, RecordKey, State};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {message}")]
    Backend { path: String, message: String },
    #[error("store record {key} cannot be read: {message}")]
    Corrupt { key: String, message: String },
    #[error("store record {key} cannot be written: {message}")]
    Unwritable { key: String, message: String },
    #[error("the store stopped before the change was saved")]
    Stopped,
}

/// A stored record that could not be read back, moved aside when the store opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub key: String,
    pub value: Vec<u8>,
    pub reason: String,
}

/// One durable write: a record's key and its new JSON, or `None` to delete it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Where records live. `write` must be atomic and durable when it returns.
pub trait Backend: Send + Sync {
    /// Writes the records and the store's revision after them, in one transaction.
    fn write(&self, records: &[Record], revision: u64) -> Result<(), StoreError>;
    /// Every stored record, in key order.
    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The revision of the last write (0 for a new store).
    fn revision(&self) -> Result<u64, StoreError>;
    /// Moves a record that cannot be read out of the records, keeping its bytes and
    /// the reason where an operator can find them; atomic and durable like `write`.
    fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError>;
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
        RecordKey::AccountSetting(k) => format!("account-setting/{k}"),
        RecordKey::CapacityProvider(k) => format!("capacity-provider/{k}"),
    }
}

/// The record a command writes (serialized) after it was applied to `state`. A
/// record that cannot be serialized is an error that aborts the write, never a delete.
pub(crate) fn record_of(state: &State, key: &RecordKey) -> Result<Record, StoreError> {
    let text = key_text(key);
    match key {
        RecordKey::Cluster(k) => encode(text, state.clusters.get(k)),
        RecordKey::TaskDefinition(k) => encode(text, state.task_definitions.get(k).map(|d| &**d)),
        RecordKey::Service(k) => encode(text, state.services.get(k).map(|s| &**s)),
        RecordKey::Task(k) => encode(text, state.tasks.get(k).map(|t| &**t)),
        RecordKey::ContainerInstance(k) => {
            encode(text, state.container_instances.get(k).map(|i| &**i))
        }
        RecordKey::Node(k) => encode(text, state.nodes.get(k).map(|n| &**n)),
        RecordKey::LoadBalancer(k) => encode(text, state.load_balancers.get(k)),
        RecordKey::TargetGroup(k) => encode(text, state.target_groups.get(k)),
        RecordKey::Listener(k) => encode(text, state.listeners.get(k)),
        RecordKey::Target(k) => encode(text, state.targets.get(k).map(|t| &**t)),
        RecordKey::AccountSetting(k) => encode(text, state.account_settings.get(k)),
        RecordKey::CapacityProvider(k) => encode(text, state.capacity_providers.get(k)),
    }
}

/// A record's new JSON, or a delete when the record is gone.
fn encode<T: serde::Serialize>(key: String, record: Option<&T>) -> Result<Record, StoreError> {
    match record.map(serde_json::to_vec).transpose() {
        Ok(value) => Ok(Record { key, value }),
        Err(error) => Err(StoreError::Unwritable {
            key,
            message: error.to_string(),
        }),
    }
}

/// The command that loads one stored record, or why it cannot be read.
fn command_of(key: &str, value: &[u8]) -> Result<Command, String> {
    fn decode<T: serde::de::DeserializeOwned>(value: &[u8]) -> Result<T, String> {
        serde_json::from_slice(value).map_err(|e| e.to_string())
    }
    let (kind, _) = key.split_once('/').unwrap_or((key, ""));
    Ok(match kind {
        "cluster" => Command::PutCluster(decode(value)?),
        "task-definition" => Command::PutTaskDefinition(Box::new(decode(value)?)),
        "service" => Command::PutService(Box::new(decode(value)?)),
        "task" => Command::PutTask(Box::new(decode(value)?)),
        "container-instance" => Command::PutContainerInstance(decode(value)?),
        "node" => Command::PutNode(decode(value)?),
        "load-balancer" => Command::PutLoadBalancer(Box::new(decode(value)?)),
        "target-group" => Command::PutTargetGroup(Box::new(decode(value)?)),
        "listener" => Command::PutListener(Box::new(decode(value)?)),
        "target" => Command::PutTarget(Box::new(decode(value)?)),
        "account-setting" => Command::PutAccountSetting(decode(value)?),
        "capacity-provider" => Command::PutCapacityProvider(Box::new(decode(value)?)),
        _ => return Err("unknown record kind".to_string()),
    })
}

/// Rebuilds the state from stored records; the records that cannot be read are
/// returned apart, so the rest can be served.
pub(crate) fn state_from_records(records: Vec<(String, Vec<u8>)>) -> (State, Vec<Quarantined>) {
    let mut state = State::default();
    let mut quarantined = Vec::new();
    for (key, value) in records {
        match command_of(&key, &value) {
            Ok(command) => {
                state.apply(command);
            }
            Err(reason) => quarantined.push(Quarantined { key, value, reason }),
        }
    }
    (state, quarantined)
}

/// A backend shared with whoever else holds it (a test looking inside, a fuzz target
/// reopening the same records).
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn write(&self, records: &[Record], revision: u64) -> Result<(), StoreError> {
        (**self).write(records, revision)
    }
    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        (**self).read_all()
    }
    fn revision(&self) -> Result<u64, StoreError> {
        (**self).revision()
    }
    fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        (**self).quarantine(record)
    }
}

/// Keeps records in memory: for tests, and for anything that needs no durability.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    records: Mutex<BTreeMap<String, Vec<u8>>>,
    revision: Mutex<u64>,
    quarantine: Mutex<BTreeMap<String, Quarantined>>,
}

impl MemoryBackend {
    /// A backend holding these records already, as if written by an earlier run.
    pub fn with_records(records: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        MemoryBackend {
            records: Mutex::new(records.into_iter().collect()),
            revision: Mutex::default(),
            quarantine: Mutex::default(),
        }
    }

    /// The records moved aside so far, by key.
    pub fn quarantined(&self) -> BTreeMap<String, Quarantined> {
        self.quarantine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Backend for MemoryBackend {
    fn write(&self, records: &[Record], revision: u64) -> Result<(), StoreError> {
        let mut stored = self.records.lock().unwrap_or_else(|e| e.into_inner());
        for record in records {
            match &record.value {
                Some(value) => stored.insert(record.key.clone(), value.clone()),
                None => stored.remove(&record.key),
            };
        }
        *self.revision.lock().unwrap_or_else(|e| e.into_inner()) = revision;
        Ok(())
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(*self.revision.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let stored = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(stored.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        let mut stored = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let mut quarantine = self.quarantine.lock().unwrap_or_else(|e| e.into_inner());
        stored.remove(&record.key);
        quarantine.insert(record.key.clone(), record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    struct Unserializable;

    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no JSON for this"))
        }
    }

    #[test]
    fn a_record_that_cannot_be_serialized_is_an_error_not_a_delete() {
        let outcome = encode("task/t1".to_string(), Some(&Unserializable));
        match outcome {
            Err(StoreError::Unwritable { key, message }) => {
                assert_eq!(key, "task/t1");
                assert!(message.contains("no JSON for this"), "{message}");
            }
            other => panic!("expected an Unwritable error, got {other:?}"),
        }
        let gone = encode::<Unserializable>("task/t1".to_string(), None).unwrap();
        assert_eq!(gone.value, None, "a record that is gone is a delete");
    }

    #[test]
    fn unreadable_records_are_set_apart_and_the_rest_loads() {
        let cluster = serde_json::json!({
            "name": "ok", "status": "ACTIVE", "tags": [], "settings": [],
            "created_at": 1
        });
        let deep = format!(
            r#"{{"name":"bad","status":"ACTIVE","tags":[],"settings":[],"created_at":1,"configuration":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let records = vec![
            ("cluster/bad".to_string(), deep.into_bytes()),
            (
                "cluster/ok".to_string(),
                serde_json::to_vec(&cluster).unwrap(),
            ),
            ("widget/x".to_string(), b"{}".to_vec()),
        ];
        let (state, quarantined) = state_from_records(records);
        let keys: Vec<_> = quarantined.iter().map(|q| q.key.as_str()).collect();
        assert_eq!(keys, ["cluster/bad", "widget/x"]);
        assert!(
            quarantined[0].reason.contains("recursion limit"),
            "{:?}",
            quarantined[0]
        );
        assert!(quarantined[1].reason.contains("unknown record kind"));
        assert_eq!(state.clusters.keys().collect::<Vec<_>>(), ["ok"]);
    }
}

#[cfg(test)]
mod account_setting_tests {
    use super::*;
    use berth_core::model::{AccountSettingRecord, SettingName};

    #[test]
    fn account_settings_survive_a_round_trip_and_deletes_remove_them() {
        let setting = AccountSettingRecord {
            principal: "user/alice".into(),
            name: SettingName::ContainerInsights,
            value: "enhanced".into(),
        };
        let backend = MemoryBackend::default();
        let mut state = State::default();
        let key = state.apply(Command::PutAccountSetting(setting.clone()));
        backend
            .write(&[record_of(&state, &key).unwrap()], 1)
            .unwrap();
        let stored = backend.read_all().unwrap();
        assert_eq!(stored[0].0, "account-setting/user/alice|containerInsights");
        let (loaded, quarantined) = state_from_records(stored);
        assert!(quarantined.is_empty());
        assert_eq!(loaded, state);

        let key = state.apply(Command::RemoveAccountSetting(setting.key()));
        backend
            .write(&[record_of(&state, &key).unwrap()], 2)
            .unwrap();
        assert!(backend.read_all().unwrap().is_empty());
    }
}

#[cfg(test)]
mod capacity_provider_tests {
    use super::*;
    use berth_core::model::{
        CapacityProviderRecord, CapacityProviderStatus, ManagedScalingRecord, Switch,
    };

    #[test]
    fn a_capacity_provider_survives_a_round_trip() {
        let provider = CapacityProviderRecord {
            name: "blue".into(),
            status: CapacityProviderStatus::Active,
            update_status: None,
            update_status_reason: None,
            auto_scaling_group_arn: "group-blue".into(),
            managed_scaling: ManagedScalingRecord {
                status: Switch::Disabled,
                target_capacity: 80,
                minimum_scaling_step_size: 1,
                maximum_scaling_step_size: 10_000,
                instance_warmup_period: 300,
            },
            managed_termination_protection: Switch::Disabled,
            managed_draining: Switch::Enabled,
            tags: vec![],
        };
        let backend = MemoryBackend::default();
        let mut state = State::default();
        let key = state.apply(Command::PutCapacityProvider(Box::new(provider)));
        backend
            .write(&[record_of(&state, &key).unwrap()], 1)
            .unwrap();
        let stored = backend.read_all().unwrap();
        assert_eq!(stored[0].0, "capacity-provider/blue");
        let (loaded, quarantined) = state_from_records(stored);
        assert!(quarantined.is_empty());
        assert_eq!(loaded, state);
    }
}

#[cfg(test)]
mod elbv2_tests {
    use super::*;
    use berth_core::elbv2::model::*;
    use berth_core::Timestamp;

    #[test]
    fn load_balancers_and_listeners_stored_before_attributes_load_with_none_set() {
        let load_balancer = serde_json::json!({
            "id": "00000000000000bb", "name": "web", "load_balancer_type": "Application",
            "scheme": "internet-facing", "ip_address_type": "ipv4", "subnets": [],
            "security_groups": [], "tags": [], "created_at": 1
        });
        let listener = serde_json::json!({
            "id": "00000000000000cc", "load_balancer": "00000000000000bb", "port": 80,
            "protocol": "Http", "target_group": "00000000000000aa", "action_order": null,
            "tags": [], "created_at": 1
        });
        let (state, quarantined) = state_from_records(vec![
            (
                "load-balancer/00000000000000bb".to_string(),
                serde_json::to_vec(&load_balancer).unwrap(),
            ),
            (
                "listener/00000000000000cc".to_string(),
                serde_json::to_vec(&listener).unwrap(),
            ),
        ]);
        assert!(quarantined.is_empty(), "{quarantined:?}");
        assert!(state.load_balancers["00000000000000bb"]
            .attributes
            .is_empty());
        let listener = &state.listeners["00000000000000cc"];
        assert!(listener.attributes.is_empty());
        // A listener stored before rules forwards to its one target group, ruleless.
        assert!(listener.rules.is_empty());
        assert_eq!(
            listener.target_groups().collect::<Vec<_>>(),
            ["00000000000000aa"]
        );
        assert!(matches!(
            listener.default_action.kind,
            ActionKind::Forward(_)
        ));
    }

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
            ip_address_type: IpAddressType::Ipv4,
            health_check: berth_core::elbv2::default_health_check(Protocol::Http),
            attributes: TargetGroupAttributes::default(),
            tags: vec![],
            created_at: Timestamp(1),
        };
        let load_balancer = LoadBalancerRecord {
            id: "00000000000000bb".into(),
            name: "web".into(),
            load_balancer_type: LoadBalancerType::Application,
            scheme: Scheme::Internal,
            ip_address_type: IpAddressType::Ipv4,
            subnets: vec![],
            security_groups: vec![],
            attributes: [("idle_timeout.timeout_seconds".to_string(), "30".to_string())].into(),
            tags: vec![],
            created_at: Timestamp(1),
        };
        let listener = ListenerRecord {
            id: "00000000000000cc".into(),
            load_balancer: load_balancer.id.clone(),
            port: 80,
            protocol: Protocol::Http,
            default_action: RuleAction {
                order: Some(1),
                kind: ActionKind::Forward(ForwardAction {
                    target_groups: vec![WeightedTargetGroup {
                        target_group: target_group.id.clone(),
                        weight: 1,
                    }],
                    stickiness_duration_seconds: None,
                }),
            },
            rules: vec![RuleRecord {
                id: "00000000000000dd".into(),
                priority: 5,
                conditions: vec![RuleCondition {
                    matches: ConditionMatch::PathPattern(vec!["/api/*".into()]),
                    given_as_values: true,
                }],
                action: RuleAction {
                    order: None,
                    kind: ActionKind::FixedResponse(FixedResponseAction {
                        status_code: 404,
                        content_type: None,
                        message_body: Some("no".into()),
                    }),
                },
                tags: vec![],
            }],
            default_rule_tags: vec![],
            attributes: Default::default(),
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
            passed_check: false,
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
        let records: Vec<_> = keys.iter().map(|k| record_of(&state, k).unwrap()).collect();
        backend.write(&records, 1).unwrap();
        let (loaded, quarantined) = state_from_records(backend.read_all().unwrap());
        assert!(quarantined.is_empty());
        assert_eq!(loaded, state);
        assert_eq!(
            loaded.targets[&target.key()].health.state,
            TargetHealthState::Healthy
        );

        let key = state.apply(Command::RemoveTarget(target.key()));
        backend
            .write(&[record_of(&state, &key).unwrap()], 2)
            .unwrap();
        let (loaded, _) = state_from_records(backend.read_all().unwrap());
        assert!(loaded.targets.is_empty());
        assert_eq!(loaded.listeners.len(), 1);
    }
}
