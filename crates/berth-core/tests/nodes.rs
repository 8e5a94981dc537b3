//! Nodes joining over the network: what a registration stores, and how missed
//! heartbeats disconnect a node and the next word from it connects it again.

mod common;

use std::collections::BTreeMap;

use berth_core::ecs::Context;
use berth_core::node_health::{disconnect_silent_nodes, reconnect_node};
use berth_core::nodes::{check_registration, register_node, task_runs_on, NodeRegistration};
use berth_core::Command;
use common::{World, CLUSTER};

fn registration(node_id: &str, attributes: &[(&str, &str)]) -> NodeRegistration {
    NodeRegistration {
        node_id: node_id.to_string(),
        hostname: format!("host-{node_id}"),
        cpu: 2048,
        memory: 4096,
        agent_version: "1.0.0".to_string(),
        docker_version: "27.0.0".to_string(),
        cluster: CLUSTER.to_string(),
        joins_every_cluster: false,
        address: Some("192.0.2.10".to_string()),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        capacity_provider: None,
    }
}

fn register(world: &mut World, registration: &NodeRegistration) -> Vec<Command> {
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    let commands = register_node(&world.state, registration, &mut ctx);
    world.apply(&commands);
    commands
}

fn instance_of<'a>(world: &'a World, node_id: &str) -> &'a berth_core::model::ContainerInstance {
    world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == node_id)
        .expect("the node is a container instance")
}

#[test]
fn a_registration_stores_address_and_attributes_on_node_and_instance() {
    let mut world = World::new();
    register(
        &mut world,
        &registration("n1", &[("ecs.os-type", "linux"), ("rack", "r1")]),
    );
    let node = &world.state.nodes["n1"];
    assert_eq!(node.address.as_deref(), Some("192.0.2.10"));
    assert_eq!(node.attributes["rack"], "r1");
    let instance = instance_of(&world, "n1");
    assert_eq!(instance.attributes["ecs.os-type"], "linux");
    assert_eq!(instance.attributes["rack"], "r1");

    // An attribute set on the instance by PutAttributes stays; one the node no longer
    // reports leaves, a changed one follows.
    let id = instance.id.clone();
    let mut put = instance.clone();
    put.attributes.insert("team".into(), "core".into());
    world.apply(&[Command::PutContainerInstance(put)]);
    register(
        &mut world,
        &registration("n1", &[("ecs.os-type", "linux"), ("zone", "z2")]),
    );
    let instance = &world.state.container_instances[&id];
    let names: Vec<&str> = instance.attributes.keys().map(String::as_str).collect();
    assert_eq!(names, ["ecs.os-type", "team", "zone"]);
}

#[test]
fn a_registration_from_the_network_is_checked_by_name() {
    assert!(check_registration(&registration("n1", &[("rack", "r1")])).is_ok());
    let error = check_registration(&registration("N1/../x", &[])).unwrap_err();
    assert!(error.to_string().contains("node id 'N1/../x'"), "{error}");
    let error = check_registration(&registration("n1", &[("bad name", "x")])).unwrap_err();
    assert!(error.to_string().contains("bad name"), "{error}");
    let mut bad_address = registration("n1", &[]);
    bad_address.address = Some("not an address".into());
    let error = check_registration(&bad_address).unwrap_err();
    assert!(error.to_string().contains("address"), "{error}");
}

#[test]
fn a_silent_node_is_disconnected_once_and_reconnects_when_heard_from() {
    let mut world = World::new();
    register(&mut world, &registration("n1", &[]));
    register(&mut world, &registration("n2", &[]));
    let start = world.now;
    let mut last_seen = BTreeMap::new();
    last_seen.insert("n1".to_string(), start);
    last_seen.insert("n2".to_string(), start.plus_millis(2500));

    // Within the window: nothing.
    let at = start.plus_millis(3000);
    assert!(disconnect_silent_nodes(&world.state, &last_seen, at, 3000).is_empty());

    // n1 missed its window, n2 did not.
    let at = start.plus_millis(3001);
    let version = instance_of(&world, "n1").version;
    let commands = disconnect_silent_nodes(&world.state, &last_seen, at, 3000);
    world.apply(&commands);
    assert!(!world.state.nodes["n1"].connected);
    assert!(!instance_of(&world, "n1").agent_connected);
    assert_eq!(instance_of(&world, "n1").version, version + 1);
    assert!(world.state.nodes["n2"].connected);
    assert!(instance_of(&world, "n2").agent_connected);

    // Already disconnected: no second write.
    let later = start.plus_millis(60_000);
    last_seen.insert("n2".to_string(), later);
    assert!(disconnect_silent_nodes(&world.state, &last_seen, later, 3000).is_empty());

    // A node not watched (the `berth dev` node, which no heartbeat reaches) is left be.
    register(&mut world, &registration("local", &[]));
    assert!(disconnect_silent_nodes(&world.state, &last_seen, later, 3000).is_empty());

    // Heard from again: connected, once.
    let commands = reconnect_node(&world.state, "n1");
    assert!(!commands.is_empty());
    world.apply(&commands);
    assert!(world.state.nodes["n1"].connected);
    assert!(instance_of(&world, "n1").agent_connected);
    assert!(reconnect_node(&world.state, "n1").is_empty());
    assert!(reconnect_node(&world.state, "unknown").is_empty());
}

#[test]
fn a_task_runs_on_the_node_of_its_container_instance() {
    let mut world = World::new();
    world.create_cluster(CLUSTER);
    register(&mut world, &registration("n1", &[]));
    register(&mut world, &registration("n2", &[]));
    world.register(serde_json::json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16}]
    }));
    let run: berth_core::api::RunTaskResponse = world.ok(
        berth_core::ecs::run_task,
        common::req(serde_json::json!({"taskDefinition": "web", "count": 1})),
    );
    let task_arn = run.tasks[0].task_arn.clone();
    let task_id = task_arn.rsplit('/').next().unwrap();
    let on = &world.state.tasks[task_id];
    let instance = &world.state.container_instances[on.container_instance_id.as_ref().unwrap()];
    let (mine, other) = if instance.node_id == "n1" {
        ("n1", "n2")
    } else {
        ("n2", "n1")
    };
    assert!(task_runs_on(&world.state, task_id, mine));
    assert!(!task_runs_on(&world.state, task_id, other));
    assert!(!task_runs_on(&world.state, "no-such-task", mine));
}
