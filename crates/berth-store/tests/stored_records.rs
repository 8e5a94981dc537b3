//! Records exactly as berth stored them at commit 1e1aa44 (written by that version's
//! ECS actions and scheduler, `serde_json::to_vec` of each record) still load, and
//! are written back the same: an upgrade never quarantines a record it kept before.

use berth_core::elbv2::model::{IpAddressType, Scheme};
use berth_core::model::{
    ClusterStatus, ContainerInstanceStatus, DeploymentStatus, LaunchType, PropagateTags,
    RolloutState, SchedulingStrategy, ServiceStatus, TaskDefinitionStatus,
};
use berth_core::State;
use berth_store::{Backend, Record, RedbBackend, Store};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/records-at-1e1aa44.txt");

/// Each fixture line is `key json`, the key and the bytes as stored in redb.
fn fixture_records() -> Vec<(String, String)> {
    FIXTURE
        .lines()
        .map(|line| {
            let (key, json) = line.split_once(' ').expect("`key json` on every line");
            (key.to_string(), json.to_string())
        })
        .collect()
}

/// Opens a redb store holding exactly the fixture's records.
fn open_fixture(dir: &std::path::Path) -> Store {
    let path = dir.join("berth.redb");
    let backend = RedbBackend::open(&path).unwrap();
    let records: Vec<Record> = fixture_records()
        .into_iter()
        .map(|(key, json)| Record {
            key,
            value: Some(json.into_bytes()),
        })
        .collect();
    backend.write(&records, 7).unwrap();
    drop(backend);
    Store::open(Box::new(RedbBackend::open(&path).unwrap())).unwrap()
}

/// The record under a stored key, as the current version would write it.
fn written(state: &State, key: &str) -> Value {
    let (kind, id) = key.split_once('/').unwrap();
    let value = match kind {
        "cluster" => serde_json::to_value(&state.clusters[id]),
        "task-definition" => serde_json::to_value(&*state.task_definitions[id]),
        "service" => serde_json::to_value(&*state.services[id]),
        "task" => serde_json::to_value(&*state.tasks[id]),
        "container-instance" => serde_json::to_value(&*state.container_instances[id]),
        "node" => serde_json::to_value(&*state.nodes[id]),
        "load-balancer" => serde_json::to_value(&state.load_balancers[id]),
        "target-group" => serde_json::to_value(&state.target_groups[id]),
        other => panic!("the fixture has a record kind this test does not know: {other}"),
    };
    value.unwrap()
}

#[test]
fn records_stored_by_1e1aa44_load_and_are_written_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_fixture(dir.path());
    assert!(
        store.quarantined().is_empty(),
        "stored records were quarantined: {:?}",
        store.quarantined()
    );
    let state = store.snapshot();
    for (key, json) in fixture_records() {
        let stored: Value = serde_json::from_str(&json).unwrap();
        let now = written(&state, &key);
        match key.split_once('/').unwrap().0 {
            // The definition's spec and the task's network mode are other work's to
            // keep; here the statuses and modes must come back as they were stored.
            "task-definition" => assert_eq!(now["status"], stored["status"], "{key}"),
            "task" => assert_eq!(now["launch_type"], stored["launch_type"], "{key}"),
            // Every field stored comes back as it was; fields added since (a node's
            // address and attributes) may appear beside them.
            _ => {
                let (Value::Object(now), Value::Object(stored)) = (&now, &stored) else {
                    panic!("{key} is not an object");
                };
                for (field, value) in stored {
                    assert_eq!(
                        now.get(field),
                        Some(value),
                        "{key}.{field} is written back differently"
                    );
                }
            }
        }
    }
}

#[test]
fn stored_statuses_and_modes_read_as_their_enums() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_fixture(dir.path());
    let state = store.snapshot();

    assert_eq!(state.clusters["default"].status, ClusterStatus::Active);
    assert_eq!(state.clusters["gone"].status, ClusterStatus::Inactive);
    assert_eq!(
        state.task_definitions["web:1"].status,
        TaskDefinitionStatus::Active
    );
    assert_eq!(
        state.task_definitions["old:1"].status,
        TaskDefinitionStatus::Inactive
    );

    let service = |name: &str| &state.services[&format!("default/{name}")];
    let deployments = |name: &str| -> Vec<(DeploymentStatus, RolloutState)> {
        service(name)
            .deployments
            .iter()
            .map(|d| (d.status, d.rollout_state))
            .collect()
    };
    let web = service("web");
    assert_eq!(web.status, ServiceStatus::Active);
    assert_eq!(web.scheduling_strategy, SchedulingStrategy::Replica);
    assert_eq!(web.launch_type, Some(LaunchType::Ec2));
    assert_eq!(web.propagate_tags, PropagateTags::Service);
    assert_eq!(
        deployments("web"),
        [
            (DeploymentStatus::Primary, RolloutState::InProgress),
            (DeploymentStatus::Active, RolloutState::Completed),
        ]
    );
    assert_eq!(web.primary().map(|d| d.revision), Some(2));
    let agent = service("agent");
    assert_eq!(agent.scheduling_strategy, SchedulingStrategy::Daemon);
    assert_eq!(agent.launch_type, None);
    assert_eq!(agent.propagate_tags, PropagateTags::None);
    let crashy = service("crashy");
    assert_eq!(crashy.propagate_tags, PropagateTags::TaskDefinition);
    assert_eq!(
        deployments("crashy"),
        [(DeploymentStatus::Primary, RolloutState::Failed)]
    );
    let doomed = service("doomed");
    assert_eq!(doomed.status, ServiceStatus::Draining);
    assert_eq!(doomed.launch_type, Some(LaunchType::Fargate));
    let retired = service("retired");
    assert_eq!(retired.status, ServiceStatus::Inactive);
    assert_eq!(retired.launch_type, Some(LaunchType::External));
    assert_eq!(
        deployments("retired"),
        [(DeploymentStatus::Inactive, RolloutState::InProgress)]
    );

    let task = |service: &str| {
        state
            .tasks
            .values()
            .find(|t| t.service.as_deref() == Some(service))
            .unwrap()
    };
    assert_eq!(task("web").launch_type, Some(LaunchType::Ec2));
    assert_eq!(task("doomed").launch_type, Some(LaunchType::Fargate));
    assert_eq!(task("agent").launch_type, None);

    let instance = |cluster: &str| {
        state
            .container_instances
            .values()
            .find(|i| i.cluster == cluster)
            .unwrap()
            .status
    };
    assert_eq!(instance("default"), ContainerInstanceStatus::Active);
    assert_eq!(instance("gone"), ContainerInstanceStatus::Inactive);

    let load_balancer = state.load_balancers.values().next().unwrap();
    assert_eq!(load_balancer.scheme, Scheme::Internal);
    assert_eq!(load_balancer.ip_address_type, IpAddressType::Ipv4);
    let target_group = state.target_groups.values().next().unwrap();
    assert_eq!(target_group.ip_address_type, IpAddressType::Ipv4);
}

/// Before berth checked launchType and propagateTags it stored any word it was given.
/// Such a record still loads, read as berth treated the word: no launch type (shown as
/// EC2) and no tag propagation (only SERVICE ever propagated).
#[test]
fn a_launch_type_or_propagate_tags_berth_did_not_check_still_loads() {
    let (_, web) = fixture_records()
        .into_iter()
        .find(|(key, _)| key == "service/default/web")
        .unwrap();
    let mut record: Value = serde_json::from_str(&web).unwrap();
    record["launch_type"] = "ec2".into();
    record["propagate_tags"] = "TASKS".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let backend = RedbBackend::open(&path).unwrap();
    backend
        .write(
            &[Record {
                key: "service/default/web".to_string(),
                value: Some(serde_json::to_vec(&record).unwrap()),
            }],
            1,
        )
        .unwrap();
    let store = Store::open(Box::new(backend)).unwrap();
    assert!(store.quarantined().is_empty(), "{:?}", store.quarantined());
    let state = store.snapshot();
    let service = &state.services["default/web"];
    assert_eq!(service.launch_type, None);
    assert_eq!(service.propagate_tags, PropagateTags::None);
    assert_eq!(service.status, ServiceStatus::Active);
}

/// A status word no berth ever stored is not guessed at: the record is set apart.
#[test]
fn a_status_no_berth_stored_is_quarantined() {
    let (_, cluster) = fixture_records()
        .into_iter()
        .find(|(key, _)| key == "cluster/default")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.redb");
    let backend = RedbBackend::open(&path).unwrap();
    backend
        .write(
            &[Record {
                key: "cluster/default".to_string(),
                value: Some(cluster.replace("\"ACTIVE\"", "\"ACTIVATED\"").into_bytes()),
            }],
            1,
        )
        .unwrap();
    let store = Store::open(Box::new(backend)).unwrap();
    assert_eq!(store.quarantined().len(), 1);
    assert!(
        store.quarantined()[0].reason.contains("ACTIVATED"),
        "{:?}",
        store.quarantined()
    );
    assert!(store.snapshot().clusters.is_empty());
}
