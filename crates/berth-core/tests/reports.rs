//! What agents report, merged into the tasks: never backwards, STOPPED is final, and the
//! task's health follows ECS's rule over its essential containers.

mod common;

use berth_core::ecs;
use berth_core::model::{ContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus};
use berth_core::{ContainerReport, TaskReport};
use common::{req, World};
use serde_json::json;

/// A world with one RunTask task of `web` (PROVISIONING); returns its id.
fn one_task(world: &mut World) -> String {
    world.register_simple("web");
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    run.tasks[0]
        .task_arn
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_report_never_moves_a_task_backwards() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    world.agent_start_all(HealthStatus::Unknown);
    assert_eq!(world.task(&id).last_status, TaskStatus::Running);
    let started_at = world.task(&id).started_at;
    assert_eq!(started_at, Some(world.now));

    world.advance_secs(5);
    let commands = world.send_reports(&[TaskReport::status(&id, TaskStatus::Pending)]);
    assert!(
        commands.is_empty(),
        "a stale PENDING report changes nothing: {commands:?}"
    );
    assert_eq!(world.task(&id).last_status, TaskStatus::Running);

    // A later RUNNING report keeps the first start time.
    let mut report = world.running_report(&id, |_| HealthStatus::Unknown);
    report.started_at = Some(world.now);
    world.send_reports(&[report]);
    assert_eq!(world.task(&id).started_at, started_at);
}

#[test]
fn a_stopped_task_stays_stopped() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    world.agent_start_all(HealthStatus::Unknown);
    world.agent_exit(&id, 3);
    let stopped = world.task(&id).clone();
    assert_eq!(stopped.last_status, TaskStatus::Stopped);
    assert_eq!(
        stopped.desired_status,
        DesiredStatus::Stopped,
        "the agent's stop is the task's stop"
    );
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(stopped.containers[0].exit_code, Some(3));
    assert_eq!(stopped.containers[0].last_status, ContainerStatus::Stopped);

    world.advance_secs(1);
    let running = world.running_report(&id, |_| HealthStatus::Healthy);
    let commands = world.send_reports(&[running, TaskReport::status(&id, TaskStatus::Pending)]);
    assert!(commands.is_empty(), "{commands:?}");
    assert!(world.task(&id) == &stopped);
}

#[test]
fn reports_in_one_batch_apply_in_order() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    let running = world.running_report(&id, |_| HealthStatus::Unknown);
    let mut stopped = TaskReport::status(&id, TaskStatus::Stopped);
    stopped.stop_code = Some(StopCode::TaskFailedToStart);
    stopped.stopped_reason = Some("CannotPullContainerError: pull access denied".to_string());
    world.send_reports(&[running, stopped]);
    let task = world.task(&id);
    assert_eq!(task.last_status, TaskStatus::Stopped);
    assert_eq!(task.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(task
        .containers
        .iter()
        .all(|c| c.last_status == ContainerStatus::Stopped));
    assert!(task.stopped_at.is_some());
}

#[test]
fn reports_about_unknown_tasks_are_ignored() {
    let mut world = World::with_node();
    one_task(&mut world);
    let before = world.state.clone();
    let commands = world.send_reports(&[TaskReport::status(
        "ffffffffffffffffffffffffffffffff",
        TaskStatus::Running,
    )]);
    assert!(commands.is_empty());
    assert!(world.state == before);
}

#[test]
fn user_stop_reason_survives_the_agents_report() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    world.agent_start_all(HealthStatus::Unknown);
    world.ok(
        ecs::stop_task,
        req(json!({ "task": id, "reason": "scaling down" })),
    );
    let mut report = TaskReport::status(&id, TaskStatus::Stopped);
    report.stop_code = Some(StopCode::EssentialContainerExited);
    report.stopped_reason = Some("Essential container in task exited".to_string());
    world.send_reports(&[report]);
    let task = world.task(&id);
    assert_eq!(task.last_status, TaskStatus::Stopped);
    assert_eq!(task.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(task.stopped_reason.as_deref(), Some("scaling down"));
}

#[test]
fn a_stopped_container_does_not_come_back() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "pair",
        "containerDefinitions": [
            { "name": "app", "image": "app:1", "memory": 64 },
            { "name": "init", "image": "init:1", "memory": 64, "essential": false }
        ]
    }));
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "pair" })));
    let id = run.tasks[0]
        .task_arn
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    world.agent_start_all(HealthStatus::Unknown);
    let mut report = world.running_report(&id, |_| HealthStatus::Unknown);
    report.containers[1] = ContainerReport {
        last_status: ContainerStatus::Stopped,
        exit_code: Some(0),
        ..report.containers[1].clone()
    };
    world.send_reports(&[report]);
    let init = world
        .task(&id)
        .containers
        .iter()
        .find(|c| c.name == "init")
        .unwrap()
        .clone();
    assert_eq!(
        (init.last_status, init.exit_code),
        (ContainerStatus::Stopped, Some(0))
    );
    assert_eq!(
        world.task(&id).last_status,
        TaskStatus::Running,
        "a non-essential exit keeps the task"
    );

    world.send_reports(&[world.running_report(&id, |_| HealthStatus::Unknown)]);
    let init = world
        .task(&id)
        .containers
        .iter()
        .find(|c| c.name == "init")
        .unwrap()
        .clone();
    assert_eq!(
        (init.last_status, init.exit_code),
        (ContainerStatus::Stopped, Some(0))
    );
}

#[test]
fn task_health_follows_the_essential_containers() {
    let mut world = World::with_node();
    let check = json!({ "command": ["CMD", "true"] });
    world.register(json!({
        "family": "checked",
        "containerDefinitions": [
            { "name": "a", "image": "a:1", "memory": 64, "healthCheck": check },
            { "name": "b", "image": "b:1", "memory": 64, "healthCheck": check },
            { "name": "side", "image": "s:1", "memory": 64, "essential": false, "healthCheck": check },
            { "name": "plain", "image": "p:1", "memory": 64 }
        ]
    }));
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "checked" })));
    let id = run.tasks[0]
        .task_arn
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(run.tasks[0].health_status, "UNKNOWN");

    use HealthStatus::{Healthy, Unhealthy, Unknown};
    let cases = [
        // (a, b, side) -> task
        ((Healthy, Healthy, Healthy), Healthy),
        ((Healthy, Unhealthy, Healthy), Unhealthy),
        ((Unhealthy, Unknown, Healthy), Unhealthy),
        ((Healthy, Unknown, Healthy), Unknown),
        ((Healthy, Healthy, Unhealthy), Healthy),
        ((Healthy, Healthy, Unknown), Healthy),
        ((Unknown, Unknown, Unknown), Unknown),
    ];
    for ((a, b, side), expected) in cases {
        let report = world.running_report(&id, |name| match name {
            "a" => a,
            "b" => b,
            "side" => side,
            _ => Unknown,
        });
        world.send_reports(&[report]);
        assert_eq!(
            world.task(&id).health_status,
            expected,
            "a={a:?} b={b:?} side={side:?}"
        );
        let shown = world.describe_task(&id);
        assert_eq!(shown.health_status, expected.as_ecs());
        let shown_b = shown.containers.iter().find(|c| c.name == "b").unwrap();
        assert_eq!(shown_b.health_status, b.as_ecs());
    }
}

#[test]
fn a_task_without_health_checks_is_unknown() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    world.agent_start_all(HealthStatus::Healthy);
    assert_eq!(world.task(&id).health_status, HealthStatus::Unknown);
    assert_eq!(world.describe_task(&id).health_status, "UNKNOWN");
}

#[test]
fn every_change_bumps_the_version() {
    let mut world = World::with_node();
    let id = one_task(&mut world);
    let v1 = world.task(&id).version;
    world.agent_start_all(HealthStatus::Unknown);
    let v2 = world.task(&id).version;
    assert!(v2 > v1);
    world.send_reports(&[TaskReport::status(&id, TaskStatus::Pending)]);
    assert_eq!(world.task(&id).version, v2, "no change, no new version");
    world.agent_exit(&id, 1);
    assert!(world.task(&id).version > v2);
}
