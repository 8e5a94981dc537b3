//! Records exactly as berth stored them at commit 1e1aa44 (written by that version's
//! ECS actions and scheduler, `serde_json::to_vec` of each record) still load, and
//! are written back the same: an upgrade never quarantines a record it kept before.

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
        "service" => serde_json::to_value(&state.services[id]),
        "task" => serde_json::to_value(&state.tasks[id]),
        "container-instance" => serde_json::to_value(&state.container_instances[id]),
        "node" => serde_json::to_value(&state.nodes[id]),
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
            _ => assert_eq!(now, stored, "{key} is written back differently"),
        }
    }
}
