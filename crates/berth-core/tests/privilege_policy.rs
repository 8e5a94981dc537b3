//! The operator's privilege policy where tasks are admitted: RegisterTaskDefinition,
//! RunTask, CreateService, UpdateService and the scheduler's own placements.

mod common;

use berth_core::{ecs, ErrorCode, PrivilegeKind, PrivilegePolicy};
use common::{req, World, CLUSTER};
use serde_json::json;

const REFUSED: &str = "container 'app': privileged is refused by this server's privilege \
                       policy; the operator allows it by starting berth with \
                       --allow-privileged privileged";

fn privileged_definition() -> serde_json::Value {
    json!({
        "family": "root",
        "containerDefinitions": [
            {"name": "app", "image": "nginx:1.27", "memory": 128, "privileged": true}
        ]
    })
}

#[test]
fn registration_is_refused_with_the_field_and_how_to_allow_it() {
    let mut world = World::with_node();
    world.policy = PrivilegePolicy::deny_all();
    let error = world.fails(ecs::register_task_definition, req(privileged_definition()));
    assert_eq!(error.code, ErrorCode::ClientException);
    assert_eq!(error.message, REFUSED);

    world.policy = PrivilegePolicy::allowing([PrivilegeKind::Privileged]);
    world.register(privileged_definition());
}

#[test]
fn run_task_and_services_check_again_after_the_policy_changed() {
    let mut world = World::with_node();
    world.register(privileged_definition());
    world.register_simple("plain");
    world
        .create_service(json!({"serviceName": "old", "taskDefinition": "root", "desiredCount": 0}));
    // A restart with a stricter policy.
    world.policy = PrivilegePolicy::deny_all();

    let error = world.fails(
        ecs::run_task,
        req(json!({"cluster": CLUSTER, "taskDefinition": "root"})),
    );
    assert_eq!(error.message, REFUSED);
    let error = world.fails(
        ecs::create_service,
        req(json!({"serviceName": "svc", "taskDefinition": "root", "desiredCount": 1})),
    );
    assert_eq!(error.message, REFUSED);
    let error = world.fails(
        ecs::update_service,
        req(json!({"service": "old", "taskDefinition": "root:1", "desiredCount": 1})),
    );
    assert_eq!(error.message, REFUSED);

    // Scaling the old service is still possible, but the scheduler starts none of its
    // tasks and says why, once.
    world.update_service(json!({"service": "old", "desiredCount": 2}));
    world.settle();
    world.settle();
    assert_eq!(world.state.tasks.len(), 0, "no task was started");
    let expected = format!("(service old) was unable to place a task: {REFUSED}");
    assert_eq!(
        world.count_events("old", &expected),
        1,
        "{:?}",
        world.events("old")
    );

    // Allowed again: the service's tasks start.
    world.policy = PrivilegePolicy::allowing([PrivilegeKind::Privileged]);
    world.settle();
    assert_eq!(world.state.tasks.len(), 2);
    world.ok(
        ecs::run_task,
        req(json!({"cluster": CLUSTER, "taskDefinition": "root"})),
    );
    world.ok(
        ecs::run_task,
        req(json!({"cluster": CLUSTER, "taskDefinition": "plain"})),
    );
}
