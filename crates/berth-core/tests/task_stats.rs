//! GetTaskStats: which tasks `berth top` reads.

mod common;

use berth_core::ecs;
use berth_core::model::HealthStatus;
use berth_core::ErrorCode;
use common::{req, World};
use serde_json::json;

fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

#[test]
fn without_names_every_live_placed_task_of_the_cluster_is_read() {
    let mut world = World::with_node();
    world.register_simple("web");
    let first = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    let second = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    world.agent_start_all(HealthStatus::Unknown);
    world.ok(
        ecs::stop_task,
        req(json!({ "task": second.tasks[0].task_arn })),
    );
    world.agent_stop_all();

    let read = world.ok(ecs::task_stats_targets, req(json!({})));
    let arns: Vec<&str> = read.targets.iter().map(|t| t.task_arn.as_str()).collect();
    assert_eq!(arns, [first.tasks[0].task_arn.as_str()]);
    let target = &read.targets[0];
    assert_eq!(target.task_id, task_id(&first.tasks[0].task_arn));
    assert_eq!(
        target.container_instance_arn,
        first.tasks[0].container_instance_arn
    );
    assert!(read.failures.is_empty());
    // An empty list names nothing, as no list.
    let read = world.ok(ecs::task_stats_targets, req(json!({"tasks": []})));
    assert_eq!(read.targets.len(), 1);
}

#[test]
fn named_tasks_are_read_and_a_stopped_one_is_a_failure() {
    let mut world = World::with_node();
    world.register_simple("web");
    let live = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    let stopped = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    world.agent_start_all(HealthStatus::Unknown);
    world.ok(
        ecs::stop_task,
        req(json!({ "task": stopped.tasks[0].task_arn })),
    );
    world.agent_stop_all();
    let live_id = task_id(&live.tasks[0].task_arn);

    // By id or by ARN; named twice, read once.
    let read = world.ok(
        ecs::task_stats_targets,
        req(json!({"tasks": [live_id, live.tasks[0].task_arn, stopped.tasks[0].task_arn]})),
    );
    assert_eq!(read.targets.len(), 1);
    assert_eq!(read.targets[0].task_id, live_id);
    assert_eq!(read.failures.len(), 1);
    assert_eq!(
        read.failures[0].arn,
        Some(stopped.tasks[0].task_arn.clone())
    );
    assert_eq!(read.failures[0].reason.as_deref(), Some("STOPPED"));
}

#[test]
fn an_unknown_task_or_cluster_is_refused_by_name() {
    let mut world = World::with_node();
    let error = world.fails(
        ecs::task_stats_targets,
        req(json!({"tasks": ["0123456789abcdef0123456789abcdef"]})),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(
        error
            .message
            .contains("task '0123456789abcdef0123456789abcdef' was not found in cluster 'default'"),
        "{error}"
    );
    let error = world.fails(ecs::task_stats_targets, req(json!({"cluster": "nope"})));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let many: Vec<String> = (0..101).map(|n| format!("{n:032x}")).collect();
    let error = world.fails(ecs::task_stats_targets, req(json!({"tasks": many})));
    assert!(error.message.contains("at most 100"), "{error}");
}
