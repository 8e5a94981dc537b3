//! Service discovery's endpoints, pure: which services a node serves by name, on which
//! container ports, and which tasks answer there and where that node reaches them.

mod common;

use berth_core::api::NetworkBinding;
use berth_core::model::HealthStatus;
use berth_core::service_discovery::{discovered_services, DiscoveredService};
use berth_core::Command;
use common::{World, CLUSTER};
use serde_json::json;

/// Two nodes: `node-1` (`berth dev`'s own engine: no address) and `node-2` at 10.0.0.2.
fn two_nodes() -> World {
    let mut world = World::with_node();
    world.add_node("node-2");
    let mut node = berth_core::model::Node::clone(&world.state.nodes["node-2"]);
    node.address = Some("10.0.0.2".to_string());
    world.apply(&[Command::PutNode(node)]);
    world
}

/// `api` serves 8080 (and UDP 53, which callers cannot reach through a TCP proxy).
fn register_api(world: &mut World, health_check: bool) {
    let mut container = json!({
        "name": "app", "image": "berth/busybox", "cpu": 128, "memory": 64, "essential": true,
        "portMappings": [{"containerPort": 8080, "hostPort": 0}, {"containerPort": 53, "protocol": "udp"}]
    });
    if health_check {
        container["healthCheck"] = json!({"command": ["CMD", "true"]});
    }
    world.register(json!({"family": "api", "containerDefinitions": [container]}));
}

fn create(world: &mut World, name: &str, family: &str, count: i64) {
    world.create_service(json!({
        "cluster": CLUSTER, "serviceName": name, "taskDefinition": family, "desiredCount": count
    }));
    world.settle();
}

/// The task runs, its container published 8080 on `host_port`, its checks say `health`.
fn run(world: &mut World, task_id: &str, host_port: i64, health: HealthStatus) {
    let mut report = world.running_report(task_id, |_| health);
    report.containers[0].network_bindings = vec![NetworkBinding {
        bind_ip: Some("0.0.0.0".into()),
        container_port: Some(8080),
        host_port: Some(host_port),
        protocol: Some("tcp".into()),
    }];
    world.send_reports(&[report]);
    world.settle();
}

fn endpoints_of(services: &[DiscoveredService], name: &str) -> Vec<(String, String)> {
    let service = services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} is not discovered: {services:?}"));
    assert_eq!(
        service
            .ports
            .iter()
            .map(|p| p.container_port)
            .collect::<Vec<_>>(),
        [8080],
        "callers reach the TCP container ports only"
    );
    let mut endpoints: Vec<(String, String)> = service.ports[0]
        .endpoints
        .iter()
        .map(|e| (e.task_id.clone(), e.addr.to_string()))
        .collect();
    endpoints.sort();
    endpoints
}

fn instance_of_node(world: &World, node: &str) -> String {
    world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == node)
        .map(|i| i.id.clone())
        .unwrap()
}

#[test]
fn healthy_tasks_are_endpoints_at_their_nodes_address_and_published_port() {
    let mut world = two_nodes();
    register_api(&mut world, false);
    create(&mut world, "api", "api", 2);
    let tasks = world.live_tasks("api");
    assert_eq!(tasks.len(), 2);
    // Not yet running: nothing answers.
    assert_eq!(
        endpoints_of(&discovered_services(&world.state, "node-1"), "api"),
        []
    );
    for (port, task) in [32768, 32769].into_iter().zip(&tasks) {
        run(&mut world, &task.id, port, HealthStatus::Unknown);
    }
    let expected: Vec<(String, String)> = {
        let mut expected: Vec<(String, String)> = [32768, 32769]
            .into_iter()
            .zip(&tasks)
            .map(|(port, task)| {
                let on_node_2 = task.container_instance_id.as_deref()
                    == Some(&instance_of_node(&world, "node-2"));
                let ip = if on_node_2 { "10.0.0.2" } else { "127.0.0.1" };
                (task.id.clone(), format!("{ip}:{port}"))
            })
            .collect();
        expected.sort();
        expected
    };
    // Every node is told the same endpoints: each is reachable from anywhere.
    for node in ["node-1", "node-2"] {
        let services = discovered_services(&world.state, node);
        assert_eq!(endpoints_of(&services, "api"), expected, "{node}");
        // As long as a task may still answer after SIGTERM: the default stopTimeout.
        assert_eq!(services[0].drain_ms, 30_000);
    }
}

#[test]
fn a_task_being_stopped_leaves_the_endpoints_at_once() {
    let mut world = two_nodes();
    register_api(&mut world, false);
    create(&mut world, "api", "api", 2);
    let tasks = world.live_tasks("api");
    for (port, task) in [32768, 32769].into_iter().zip(&tasks) {
        run(&mut world, &task.id, port, HealthStatus::Unknown);
    }
    world.update_service(json!({"cluster": CLUSTER, "service": "api", "desiredCount": 1}));
    world.settle();
    let kept: Vec<String> = world
        .live_tasks("api")
        .iter()
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(kept.len(), 1);
    let endpoints = endpoints_of(&discovered_services(&world.state, "node-1"), "api");
    assert_eq!(
        endpoints
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        kept,
        "the task being stopped still runs, but is no endpoint any more"
    );
    // It gets SIGTERM only once every node's endpoint heard, so no new connection
    // reaches a task that is exiting.
    let stopping: Vec<_> = world
        .tasks_of("api")
        .into_iter()
        .filter(|t| !kept.contains(&t.id))
        .collect();
    assert_eq!(stopping.len(), 1);
    assert_eq!(
        stopping[0].stop_after,
        Some(
            world
                .now
                .plus_secs(berth_core::service_discovery::ENDPOINT_DRAIN_SECS)
        )
    );
}

#[test]
fn a_task_no_name_reaches_is_stopped_without_waiting() {
    let mut world = two_nodes();
    world.register_simple("worker");
    create(&mut world, "worker", "worker", 1);
    world.agent_start_all(HealthStatus::Unknown);
    world.update_service(json!({"cluster": CLUSTER, "service": "worker", "desiredCount": 0}));
    world.settle();
    let task = &world.tasks_of("worker")[0];
    assert_eq!(
        task.desired_status,
        berth_core::model::DesiredStatus::Stopped
    );
    assert_eq!(task.stop_after, None);
}

#[test]
fn with_health_checks_only_healthy_tasks_are_endpoints() {
    let mut world = two_nodes();
    register_api(&mut world, true);
    create(&mut world, "api", "api", 2);
    let tasks = world.live_tasks("api");
    run(&mut world, &tasks[0].id, 32768, HealthStatus::Healthy);
    run(&mut world, &tasks[1].id, 32769, HealthStatus::Unknown);
    let endpoints = endpoints_of(&discovered_services(&world.state, "node-1"), "api");
    assert_eq!(
        endpoints
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        [tasks[0].id.as_str()]
    );
    world.send_reports(&[world.running_report(&tasks[0].id, |_| HealthStatus::Unhealthy)]);
    let endpoints = endpoints_of(&discovered_services(&world.state, "node-1"), "api");
    assert_eq!(endpoints, [], "an unhealthy task leaves at once");
    let stopped = world.task(&tasks[0].id).desired_status;
    assert_eq!(
        stopped,
        berth_core::model::DesiredStatus::Running,
        "before the scheduler even replaces it"
    );
}

#[test]
fn services_without_port_mappings_or_of_other_clusters_are_not_discovered() {
    let mut world = two_nodes();
    world.register_simple("worker");
    create(&mut world, "worker", "worker", 1);
    register_api(&mut world, false);
    world.create_cluster("other");
    world.create_service(json!({
        "cluster": "other", "serviceName": "api", "taskDefinition": "api", "desiredCount": 0
    }));
    let services = discovered_services(&world.state, "node-1");
    let named: Vec<(&str, &str)> = services
        .iter()
        .map(|s| (s.cluster.as_str(), s.name.as_str()))
        .collect();
    // Both nodes join every cluster as it is created; once node-1 left "other", it
    // serves none of its names.
    assert_eq!(named, [("other", "api")]);
    let mut instance = world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == "node-1" && i.cluster == "other")
        .map(|i| berth_core::model::ContainerInstance::clone(i))
        .unwrap();
    instance.status = berth_core::model::ContainerInstanceStatus::Inactive;
    world.apply(&[Command::PutContainerInstance(instance)]);
    assert_eq!(discovered_services(&world.state, "node-1"), []);
    assert_eq!(discovered_services(&world.state, "node-2").len(), 1);
}
