//! Records exactly as the store holds them today still load, and write back the same.

use berth_core::model::{Task, TaskDefinitionRecord};
use berth_core::spec::NetworkMode;
use serde_json::{json, Value};

/// A task record as `RedbBackend` stores it (every field, in its order).
fn stored_task(network_mode: &str) -> Value {
    json!({
        "id": "0123456789abcdef0123456789abcdef", "cluster": "default", "family": "web",
        "revision": 1, "container_instance_id": "ci-1", "last_status": "Running",
        "desired_status": "Running", "health_status": "Unknown", "cpu": null,
        "memory": "512", "reserved_cpu": 0, "reserved_memory": 512,
        "overrides": {"containerOverrides": [{"name": "app", "command": ["migrate"]}]},
        "started_by": null, "group": "family:web", "service": null,
        "deployment_id": null, "launch_type": null, "network_mode": network_mode,
        "private_ipv4_address": null, "tags": [], "containers": [], "created_at": 1,
        "pull_started_at": null, "pull_stopped_at": null, "started_at": null,
        "stopping_at": null, "execution_stopped_at": null, "stopped_at": null,
        "stop_code": null, "stopped_reason": null, "version": 3,
        "stop_accounted": false, "load_balancer_targets": [], "stop_after": null
    })
}

#[test]
fn a_task_record_stored_today_loads_with_its_network_mode_typed() {
    for (stored, mode) in [
        ("bridge", Some(NetworkMode::Bridge)),
        ("host", Some(NetworkMode::Host)),
        ("awsvpc", Some(NetworkMode::Awsvpc)),
        ("none", Some(NetworkMode::None)),
        // Written when an empty string meant "the definition's".
        ("", None),
    ] {
        let record = stored_task(stored);
        let task: Task = serde_json::from_value(record.clone()).unwrap();
        assert_eq!(task.network_mode, mode, "{stored:?}");
        assert_eq!(
            serde_json::to_value(&task).unwrap(),
            record,
            "{stored:?} is written back as it was"
        );
    }
    let unknown = serde_json::from_value::<Task>(stored_task("overlay")).unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("unknown network mode \"overlay\""),
        "{unknown}"
    );
}

#[test]
fn a_stored_definition_record_parses_its_spec_on_first_use() {
    let stored = json!({
        "family": "web", "revision": 2, "status": "ACTIVE",
        "spec": {"family": "web", "networkMode": "host",
                 "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 128}]},
        "registered_at": 1, "deregistered_at": null
    });
    let record: TaskDefinitionRecord = serde_json::from_value(stored.clone()).unwrap();
    let spec = record.task_spec().unwrap();
    assert_eq!(spec.network_mode, NetworkMode::Host);
    assert_eq!(spec.container_definitions[0].name, "app");
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        stored,
        "the parsed spec is never stored"
    );

    // A record a newer rule refuses still loads; it only cannot run.
    let mut older = stored;
    older["spec"]["containerDefinitions"][0]["portMappings"] =
        json!([{"containerPort": 80, "protocol": "sctp"}]);
    let record: TaskDefinitionRecord = serde_json::from_value(older).unwrap();
    assert_eq!(
        record.task_spec().unwrap_err().message,
        "Container 'app': portMappings protocol must be tcp or udp, got 'sctp'"
    );
}

#[test]
fn a_definition_stored_before_the_memory_rule_still_runs() {
    // Registered when berth did not yet ask for memory, as ECS does for EC2.
    let stored = json!({
        "family": "web", "revision": 1, "status": "ACTIVE",
        "spec": {"family": "web",
                 "containerDefinitions": [{"name": "app", "image": "app:1"}]},
        "registered_at": 1, "deregistered_at": null
    });
    let record: TaskDefinitionRecord = serde_json::from_value(stored.clone()).unwrap();
    let spec = record
        .task_spec()
        .expect("a stored definition keeps launching tasks");
    assert_eq!(spec.container_definitions[0].memory, None);

    // The same body registered today is refused with ECS's message.
    let request: berth_core::api::RegisterTaskDefinitionRequest =
        serde_json::from_value(stored["spec"].clone()).unwrap();
    assert_eq!(
        berth_core::validate_task_definition(&request)
            .unwrap_err()
            .message,
        "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."
    );
}
