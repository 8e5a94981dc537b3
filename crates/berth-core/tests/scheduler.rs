//! The service scheduler end to end: ECS actions, `reconcile` and a fake agent.

mod common;

use berth_core::ecs;
use berth_core::model::{DesiredStatus, HealthStatus, StopCode, Task, TaskStatus};
use berth_core::{
    backoff_after, failure_threshold, ErrorCode, ROLLOUT_STABLE_MS, UNCHECKED_TASK_SETTLE_MS,
};
use common::{req, services_stable, World, CLUSTER};
use serde_json::json;

fn steady_message(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

fn unable_to_place(service: &str) -> String {
    format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements."
    )
}

/// A service of `desired` tasks of `web`, all RUNNING and the deployment COMPLETED.
fn steady_service(world: &mut World, desired: i64, extra: serde_json::Value) {
    world.register_simple("web");
    let mut body =
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": desired });
    for (key, value) in extra.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    world.create_service(body);
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    world.advance_millis(ROLLOUT_STABLE_MS);
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.running_count, desired);
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].rollout_state, "COMPLETED");
}

#[test]
fn service_starts_desired_count_and_reaches_steady_state_once() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 3 }),
    );

    world.settle();
    assert_eq!(
        world.tasks_of("svc").len(),
        3,
        "exactly 3 tasks are started"
    );
    assert!(world
        .tasks_of("svc")
        .iter()
        .all(|t| t.last_status == TaskStatus::Provisioning));
    let service = world.service("svc");
    assert_eq!((service.running_count, service.pending_count), (0, 3));
    assert_eq!(service.deployments[0].rollout_state, "IN_PROGRESS");
    assert!(!services_stable(&service));
    assert_eq!(world.count_events("svc", &steady_message("svc")), 0);

    let started = world.agent_start_all(HealthStatus::Unknown);
    assert_eq!(started.len(), 3);
    world.settle();
    assert_eq!(
        world.count_events("svc", &steady_message("svc")),
        0,
        "tasks that nothing checks are not healthy the moment they start"
    );
    world.advance_millis(UNCHECKED_TASK_SETTLE_MS);
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.running_count, 3);
    assert_eq!(service.pending_count, 0);
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].status, "PRIMARY");
    assert_eq!(service.deployments[0].running_count, 3);
    assert!(services_stable(&service));
    assert_eq!(world.count_events("svc", &steady_message("svc")), 1);
    // Stable, but not yet long enough for a crash to no longer count against it.
    assert_eq!(service.deployments[0].rollout_state, "IN_PROGRESS");
    world.advance_millis(ROLLOUT_STABLE_MS - UNCHECKED_TASK_SETTLE_MS - 1);
    world.settle();
    assert_eq!(
        world.service("svc").deployments[0].rollout_state,
        "IN_PROGRESS"
    );
    world.advance_millis(1);
    world.settle();
    assert_eq!(
        world.service("svc").deployments[0].rollout_state,
        "COMPLETED"
    );
    assert!(
        world
            .events("svc")
            .iter()
            .any(|m| m.starts_with("(service svc) has started 3 tasks:")),
        "events: {:?}",
        world.events("svc")
    );

    // More passes, later: nothing new is said or done.
    world.advance_secs(60);
    assert!(world.reconcile_once().is_empty());
    world.settle();
    assert_eq!(world.count_events("svc", &steady_message("svc")), 1);
    assert_eq!(world.tasks_of("svc").len(), 3);
}

#[test]
fn exited_essential_container_is_replaced_at_once() {
    let mut world = World::with_node();
    steady_service(&mut world, 2, json!({}));
    let victim = world.tasks_of("svc")[0].id.clone();

    world.advance_secs(300);
    world.agent_exit(&victim, 2);
    assert_eq!(world.task(&victim).last_status, TaskStatus::Stopped);
    let before: Vec<String> = world.tasks_of("svc").iter().map(|t| t.id.clone()).collect();

    world.reconcile_once();
    let replacements: Vec<String> = world
        .tasks_of("svc")
        .iter()
        .map(|t| t.id.clone())
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(
        replacements.len(),
        1,
        "one replacement in the same pass, no backoff"
    );
    assert_eq!(world.model_service("svc").next_launch_at, None);
    assert_eq!(world.live_tasks("svc").len(), 2);

    let events = world.events("svc");
    assert!(
        events.iter().any(|m| m.contains(&victim)),
        "an event names the stopped task: {events:?}"
    );
    assert!(
        events.iter().any(|m| m
            == &format!(
                "(service svc) has started 1 tasks: (task {}).",
                replacements[0]
            )),
        "an event names the replacement: {events:?}"
    );

    let stopped = world.describe_task(&victim);
    assert_eq!(stopped.last_status, "STOPPED");
    assert_eq!(stopped.desired_status, "STOPPED");
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(stopped.containers[0].exit_code, Some(2));
    assert_eq!(stopped.containers[0].last_status, "STOPPED");
    assert!(stopped.stopped_at.is_some());

    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    assert_eq!(world.service("svc").running_count, 2);
    // The stopped task keeps its exit code after the scheduler has looked at it.
    assert_eq!(
        world.describe_task(&victim).containers[0].exit_code,
        Some(2)
    );
}

#[test]
fn backoff_schedule() {
    assert_eq!(backoff_after(0), 0);
    assert_eq!(backoff_after(1), 0);
    assert_eq!(backoff_after(2), 1_000);
    assert_eq!(backoff_after(3), 2_000);
    assert_eq!(backoff_after(4), 4_000);
    assert_eq!(backoff_after(5), 8_000);
    assert_eq!(backoff_after(10), 60_000, "capped");
    assert_eq!(backoff_after(u32::MAX), 60_000, "no overflow");
}

#[test]
fn crash_loop_backs_off_exponentially() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();

    // Expected wait after the 1st, 2nd, 3rd, 4th crash in a row.
    let waits = [0u64, 1_000, 2_000, 4_000];
    for (crash, wait) in waits.iter().copied().enumerate() {
        let live = world.live_tasks("svc");
        assert_eq!(live.len(), 1, "crash {crash}: one task to crash");
        let id = live[0].id.clone();
        world.agent_start_all(HealthStatus::Unknown);
        world.settle();
        world.advance_millis(200);
        world.agent_exit(&id, 1);
        let crashed_at = world.now;

        world.reconcile_once();
        let service = world.model_service("svc");
        assert_eq!(service.consecutive_failures, crash as u32 + 1);
        if wait == 0 {
            assert_eq!(service.next_launch_at, None);
            assert_eq!(
                world.live_tasks("svc").len(),
                1,
                "the first replacement is immediate"
            );
            continue;
        }
        assert_eq!(
            service.next_launch_at,
            Some(crashed_at.plus_millis(wait)),
            "crash {crash}"
        );
        assert_eq!(
            world.live_tasks("svc").len(),
            0,
            "crash {crash}: no start before the backoff"
        );
        world.settle();
        world.advance_millis(wait - 1);
        world.settle();
        assert_eq!(
            world.live_tasks("svc").len(),
            0,
            "crash {crash}: still waiting 1 ms before"
        );
        world.advance_millis(1);
        world.reconcile_once();
        assert_eq!(
            world.live_tasks("svc").len(),
            1,
            "crash {crash}: started once the wait is over"
        );
        let started = &world.live_tasks("svc")[0];
        assert!(started.created_at >= crashed_at.plus_millis(wait));
    }
}

#[test]
fn long_running_task_resets_the_crash_count() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    // Two quick crashes: the next launch waits.
    for _ in 0..2 {
        world.advance_secs(5);
        world.settle();
        let id = world.live_tasks("svc")[0].id.clone();
        world.agent_start_all(HealthStatus::Unknown);
        world.settle();
        world.agent_exit(&id, 1);
        world.reconcile_once();
    }
    assert_eq!(world.model_service("svc").consecutive_failures, 2);
    world.advance_secs(2);
    world.settle();
    // Then it runs for 10 minutes and exits: the replacement is immediate again.
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    world.advance_secs(600);
    world.settle();
    let id = world.live_tasks("svc")[0].id.clone();
    world.agent_exit(&id, 1);
    world.reconcile_once();
    assert_eq!(world.model_service("svc").next_launch_at, None);
    assert_eq!(world.live_tasks("svc").len(), 1);
}

#[test]
fn scale_up_then_in_stops_pending_tasks_first() {
    let mut world = World::with_node();
    steady_service(&mut world, 3, json!({}));
    let original: Vec<String> = world.tasks_of("svc").iter().map(|t| t.id.clone()).collect();

    world.update_service(json!({ "service": "svc", "desiredCount": 6 }));
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 6);
    let service = world.service("svc");
    assert_eq!(
        (
            service.desired_count,
            service.running_count,
            service.pending_count
        ),
        (6, 3, 3)
    );
    assert!(!services_stable(&service));

    world.advance_secs(1);
    world.update_service(json!({ "service": "svc", "desiredCount": 2 }));
    world.settle();
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), 2);
    assert!(
        live.iter().all(|t| t.last_status == TaskStatus::Running),
        "running tasks are kept"
    );
    assert!(live.iter().all(|t| original.contains(&t.id)));
    for task in world
        .tasks_of("svc")
        .iter()
        .filter(|t| !original.contains(&t.id))
    {
        assert_eq!(
            task.desired_status,
            DesiredStatus::Stopped,
            "pending task {} is stopped",
            task.id
        );
        assert_eq!(task.stop_code, Some(StopCode::ServiceSchedulerInitiated));
    }
    assert!(
        world
            .events("svc")
            .iter()
            .any(|m| m.contains("stopped 4 running tasks")),
        "events: {:?}",
        world.events("svc")
    );

    world.agent_stop_all();
    world.settle();
    let service = world.service("svc");
    assert_eq!(
        (
            service.desired_count,
            service.running_count,
            service.pending_count
        ),
        (2, 2, 0)
    );
    assert!(services_stable(&service));
    assert_eq!(
        world
            .tasks_of("svc")
            .iter()
            .filter(|t| t.is_stopped())
            .count(),
        4
    );
}

/// Rolls `web` to a new revision with the given percentages and checks the bounds at
/// every step of the scheduler and of the agent.
fn rolling_deployment(minimum_healthy: i64, maximum: i64) {
    let desired = 4;
    let mut world = World::with_node();
    steady_service(
        &mut world,
        desired,
        json!({ "deploymentConfiguration": {
            "minimumHealthyPercent": minimum_healthy, "maximumPercent": maximum } }),
    );
    let max_live = (desired * maximum / 100) as usize;
    let min_healthy = ((desired * minimum_healthy + 99) / 100) as usize;
    let new_revision = world.register_simple("web");
    assert!(new_revision.ends_with("task-definition/web:2"));
    world.update_service(json!({ "service": "svc", "taskDefinition": "web:2" }));
    assert_eq!(world.service("svc").deployments.len(), 2);

    let check = |world: &World, step: &str| {
        let live = world.live_tasks("svc").len();
        let healthy = world.healthy_tasks("svc").len();
        assert!(live <= max_live, "{step}: {live} live tasks > {max_live}");
        assert!(
            healthy >= min_healthy,
            "{step}: {healthy} healthy tasks < {min_healthy}"
        );
    };
    let mut done = false;
    for round in 0..20 {
        world.advance_secs(1);
        world.reconcile_once();
        check(&world, &format!("round {round} after reconcile"));
        world.agent_start_all(HealthStatus::Unknown);
        check(
            &world,
            &format!("round {round} after the agent started tasks"),
        );
        world.agent_stop_all();
        check(
            &world,
            &format!("round {round} after the agent stopped tasks"),
        );
        let service = world.service("svc");
        if service.deployments.len() == 1 && service.running_count == desired {
            done = true;
            break;
        }
    }
    assert!(done, "the deployment did not finish");
    world.advance_millis(ROLLOUT_STABLE_MS);
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].task_definition, new_revision);
    assert_eq!(service.deployments[0].rollout_state, "COMPLETED");
    assert_eq!(service.task_definition, new_revision);
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), desired as usize);
    assert!(
        live.iter().all(|t| t.revision == 2),
        "all tasks on the new revision"
    );
    assert!(services_stable(&service));
}

#[test]
fn rolling_deployment_min_100_max_200() {
    rolling_deployment(100, 200);
}

#[test]
fn rolling_deployment_min_50_max_100() {
    rolling_deployment(50, 100);
}

#[test]
fn force_new_deployment_is_not_stable_until_old_tasks_stop() {
    let mut world = World::with_node();
    steady_service(&mut world, 2, json!({}));
    assert!(services_stable(&world.service("svc")));
    let old: Vec<String> = world.tasks_of("svc").iter().map(|t| t.id.clone()).collect();

    let updated = world.update_service(json!({ "service": "svc", "forceNewDeployment": true }));
    assert_eq!(
        updated.deployments.len(),
        2,
        "UpdateService's response shows both deployments"
    );
    let service = world.service("svc");
    assert_eq!(service.deployments.len(), 2);
    assert_eq!(service.deployments[0].status, "PRIMARY");
    assert_eq!(service.deployments[0].rollout_state, "IN_PROGRESS");
    assert_eq!(service.deployments[1].status, "ACTIVE");
    assert_eq!(service.running_count, service.desired_count);
    assert!(
        !services_stable(&service),
        "services-stable must not pass right after the update"
    );

    for round in 0..20 {
        world.advance_secs(1);
        world.reconcile_once();
        world.agent_start_all(HealthStatus::Unknown);
        let old_unstopped = old.iter().filter(|id| !world.task(id).is_stopped()).count();
        let service = world.service("svc");
        if old_unstopped > 0 {
            assert_eq!(
                service.deployments.len(),
                2,
                "round {round}: old tasks still up"
            );
            assert!(!services_stable(&service), "round {round}");
        }
        world.agent_stop_all();
        if old.iter().all(|id| world.task(id).is_stopped()) {
            break;
        }
    }
    world.advance_millis(ROLLOUT_STABLE_MS);
    world.settle();
    let service = world.service("svc");
    assert!(old.iter().all(|id| world.task(id).is_stopped()));
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].rollout_state, "COMPLETED");
    assert!(services_stable(&service));
    assert!(world.live_tasks("svc").iter().all(|t| !old.contains(&t.id)));
}

#[test]
fn unknown_health_is_not_healthy_during_a_rollout() {
    let mut world = World::with_node();
    world.register_with_health_check("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 2 }),
    );
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.running_count, 2);
    assert_eq!(
        service.deployments[0].rollout_state, "IN_PROGRESS",
        "RUNNING with unknown health is not a completed rollout"
    );
    assert_eq!(world.count_events("svc", &steady_message("svc")), 0);

    for task in world.tasks_of("svc") {
        world.agent_set_health(&task.id, HealthStatus::Healthy);
    }
    assert!(world
        .tasks_of("svc")
        .iter()
        .all(|t| t.health_status == HealthStatus::Healthy));
    world.settle();
    world.advance_millis(ROLLOUT_STABLE_MS);
    world.settle();
    assert_eq!(
        world.service("svc").deployments[0].rollout_state,
        "COMPLETED"
    );
    let old: Vec<String> = world.tasks_of("svc").iter().map(|t| t.id.clone()).collect();

    world.register_with_health_check("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": "web:2" }));
    world.settle();
    let new_tasks = world.agent_start_all(HealthStatus::Unknown);
    assert_eq!(new_tasks.len(), 2);
    world.advance_secs(30);
    world.settle();
    for id in &old {
        assert!(
            world.task(id).is_live(),
            "old task {id} is kept while new ones are UNKNOWN"
        );
    }
    assert_eq!(world.service("svc").deployments.len(), 2);

    for id in &new_tasks {
        world.agent_set_health(id, HealthStatus::Healthy);
    }
    world.settle();
    for id in &old {
        assert_eq!(world.task(id).desired_status, DesiredStatus::Stopped);
    }
    world.agent_stop_all();
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].rollout_state, "COMPLETED");
}

#[test]
fn unhealthy_task_is_replaced_after_the_grace_period_only() {
    let mut world = World::with_node();
    world.register_with_health_check("web");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1,
        "healthCheckGracePeriodSeconds": 60
    }));
    world.settle();
    let id = world.agent_start_all(HealthStatus::Healthy)[0].clone();
    world.settle();

    world.advance_secs(10);
    world.agent_set_health(&id, HealthStatus::Unhealthy);
    assert_eq!(world.task(&id).health_status, HealthStatus::Unhealthy);
    world.settle();
    assert!(
        world.task(&id).is_live(),
        "within the grace period the task is kept"
    );
    assert_eq!(world.tasks_of("svc").len(), 1);

    world.advance_secs(51);
    world.settle();
    let task = world.task(&id);
    assert_eq!(task.desired_status, DesiredStatus::Stopped);
    assert_eq!(
        task.stopped_reason.as_deref(),
        Some("Task failed container health checks")
    );
    assert_eq!(world.live_tasks("svc").len(), 1, "a replacement is started");
    assert_ne!(world.live_tasks("svc")[0].id, id);

    world.agent_stop_all();
    let replacement = world.agent_start_all(HealthStatus::Healthy);
    assert_eq!(replacement.len(), 1);
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.running_count, 1);
    assert_eq!(
        world.describe_task(&id).stopped_reason.as_deref(),
        Some("Task failed container health checks")
    );
}

#[test]
fn unhealthy_task_without_grace_period_is_replaced_at_once() {
    let mut world = World::with_node();
    world.register_with_health_check("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    let id = world.agent_start_all(HealthStatus::Healthy)[0].clone();
    world.settle();
    world.advance_secs(5);
    world.agent_set_health(&id, HealthStatus::Unhealthy);
    world.reconcile_once();
    assert_eq!(world.task(&id).desired_status, DesiredStatus::Stopped);
    assert_eq!(
        world.task(&id).stop_code,
        Some(StopCode::ServiceSchedulerInitiated)
    );
}

#[test]
fn circuit_breaker_fails_the_rollout_and_rolls_back() {
    let mut world = World::with_node();
    steady_service(
        &mut world,
        2,
        json!({ "deploymentConfiguration": {
            "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }),
    );
    let good = world.service("svc").task_definition.clone();
    let bad = world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": bad }));
    let failed_deployment = world.service("svc").deployments[0].id.clone();
    let threshold = failure_threshold(2);
    assert_eq!(threshold, 3);

    // New tasks crash right after they start, again and again.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 50, "the circuit breaker never tripped");
        world.advance_secs(5);
        world.settle();
        let crashing: Vec<String> = world
            .live_tasks("svc")
            .iter()
            .filter(|t| t.revision == 2)
            .map(|t| t.id.clone())
            .collect();
        world.agent_start_all(HealthStatus::Unknown);
        world.advance_millis(500);
        for id in &crashing {
            world.agent_exit(id, 1);
        }
        // One pass at a time: the failed deployment drops out of the list once it has
        // no tasks left, so look at it in the very pass that fails it.
        world.reconcile_once();
        let service = world.service("svc");
        if service.deployments[0].id != failed_deployment {
            break;
        }
    }
    let service = world.service("svc");
    let failed = service
        .deployments
        .iter()
        .find(|d| d.id == failed_deployment)
        .unwrap();
    assert!(
        failed.failed_tasks >= threshold,
        "failedTasks {}",
        failed.failed_tasks
    );
    assert_eq!(failed.task_definition, bad);
    assert_ne!(failed.status, "PRIMARY");
    let primary = &service.deployments[0];
    assert_eq!(primary.status, "PRIMARY");
    assert_ne!(primary.id, failed_deployment);
    assert_eq!(
        primary.task_definition, good,
        "rolled back to the last COMPLETED revision"
    );
    assert_eq!(service.task_definition, good);
    assert!(
        world
            .events("svc")
            .iter()
            .any(|m| m.contains("rolling back")),
        "events: {:?}",
        world.events("svc")
    );

    // The rollback finishes like any deployment.
    for _ in 0..20 {
        world.advance_secs(5);
        world.settle();
        world.agent_start_all(HealthStatus::Unknown);
        world.agent_stop_all();
    }
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].task_definition, good);
    assert_eq!(service.deployments[0].rollout_state, "COMPLETED");
    assert_eq!(service.running_count, 2);
    assert!(world.live_tasks("svc").iter().all(|t| t.revision == 1));
}

/// A release whose containers exit right after they start, with nothing checking
/// them: the old tasks keep running through every attempt.
#[test]
fn a_release_that_exits_at_once_never_replaces_working_tasks() {
    let mut world = World::with_node();
    steady_service(&mut world, 2, json!({}));
    let old: Vec<String> = world.tasks_of("svc").iter().map(|t| t.id.clone()).collect();
    let bad = world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": bad }));
    let mut attempts = 0;
    for _ in 0..20 {
        world.advance_secs(2);
        world.settle();
        let started = world.agent_start_all(HealthStatus::Unknown);
        attempts += started.len();
        world.settle();
        world.advance_millis(300);
        world.settle();
        for id in &started {
            world.agent_exit(id, 1);
        }
        world.settle();
        for id in &old {
            let task = world.task(id);
            assert!(
                task.is_live() && task.desired_status == DesiredStatus::Running,
                "old task {id} is kept while the new ones exit at once"
            );
        }
    }
    assert!(
        attempts >= 4,
        "the new revision was tried: {attempts} starts"
    );
    assert_eq!(world.service("svc").deployments.len(), 2);
}

/// A release whose tasks start, pass as healthy and crash 10 s later: before its tasks
/// have stayed up for `ROLLOUT_STABLE_MS` the rollout is not complete, so the crashes
/// still fail it, the breaker fires and the service goes back to the good revision.
#[test]
fn a_crash_soon_after_start_still_fails_the_rollout() {
    let mut world = World::with_node();
    steady_service(
        &mut world,
        2,
        json!({ "deploymentConfiguration": {
            "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }),
    );
    let good = world.service("svc").task_definition.clone();
    let bad = world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": bad }));
    let failed_deployment = world.service("svc").deployments[0].id.clone();

    let mut completed_bad = false;
    for round in 0..50 {
        world.advance_secs(5);
        world.settle();
        let started = world.agent_start_all(HealthStatus::Unknown);
        world.settle();
        world.agent_stop_all();
        world.settle();
        // Up and healthy for a while: long enough to look done, not long enough to be.
        world.advance_secs(5);
        world.settle();
        let service = world.service("svc");
        completed_bad |= service
            .deployments
            .iter()
            .any(|d| d.id == failed_deployment && d.rollout_state == "COMPLETED");
        if service.deployments[0].id != failed_deployment {
            break;
        }
        assert!(round < 49, "the circuit breaker never tripped");
        world.advance_secs(5);
        let crashing: Vec<String> = started
            .into_iter()
            .filter(|id| world.task(id).revision == 2)
            .collect();
        for id in &crashing {
            world.agent_exit(id, 1);
        }
        world.reconcile_once();
        if world.service("svc").deployments[0].id != failed_deployment {
            break;
        }
    }
    assert!(
        !completed_bad,
        "a rollout whose tasks crash 10 s after start never reads COMPLETED"
    );
    let service = world.service("svc");
    assert_eq!(service.task_definition, good, "rolled back");
    assert!(
        world
            .events("svc")
            .iter()
            .any(|m| m.contains("rolling back")),
        "events: {:?}",
        world.events("svc")
    );
}

#[test]
fn circuit_breaker_without_rollback_stops_launching() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1,
        "deploymentConfiguration": { "deploymentCircuitBreaker": { "enable": true, "rollback": false } }
    }));
    for _ in 0..10 {
        world.advance_secs(70);
        world.settle();
        let crashing: Vec<String> = world
            .live_tasks("svc")
            .iter()
            .map(|t| t.id.clone())
            .collect();
        world.agent_start_all(HealthStatus::Unknown);
        world.advance_millis(500);
        for id in &crashing {
            world.agent_exit(id, 1);
        }
        world.settle();
    }
    let service = world.service("svc");
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.deployments[0].rollout_state, "FAILED");
    assert_eq!(
        service.deployments[0].failed_tasks, 3,
        "launches stop at the threshold"
    );
    assert_eq!(world.live_tasks("svc").len(), 0);
}

#[test]
fn delete_service_drains_then_goes_inactive() {
    let mut world = World::with_node();
    steady_service(&mut world, 2, json!({}));

    let error = world.fails(ecs::delete_service, req(json!({ "service": "svc" })));
    assert_eq!(error.code, ErrorCode::InvalidParameterException);

    let deleted = world
        .ok(
            ecs::delete_service,
            req(json!({ "service": "svc", "force": true })),
        )
        .service;
    assert_eq!(deleted.status, "DRAINING");
    assert_eq!(deleted.desired_count, 0);

    world.settle();
    assert_eq!(
        world.service("svc").status,
        "DRAINING",
        "still DRAINING while tasks stop"
    );
    for task in world.tasks_of("svc") {
        assert_eq!(task.desired_status, DesiredStatus::Stopped);
        assert_eq!(task.stop_code, Some(StopCode::ServiceSchedulerInitiated));
    }
    let listed = world.ok(ecs::list_services, req(json!({})));
    assert!(
        listed.service_arns.is_empty(),
        "a DRAINING service is not listed"
    );

    world.agent_stop_all();
    world.settle();
    let service = world.service("svc");
    assert_eq!(service.status, "INACTIVE");
    assert_eq!(service.running_count, 0);
    assert!(world.tasks_of("svc").iter().all(|t| t.is_stopped()));

    let listed = world.ok(ecs::list_services, req(json!({})));
    assert!(listed.service_arns.is_empty());
    let described = world.ok(ecs::describe_services, req(json!({ "services": ["svc"] })));
    assert_eq!(described.services.len(), 1);
    assert!(described.failures.is_empty());
    assert_eq!(described.services[0].status, "INACTIVE");

    // Gone for good: the scheduler leaves it alone, and its name can be used again.
    assert!(world.settle().is_empty());
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 1);
    assert_eq!(world.service("svc").status, "ACTIVE");
}

#[test]
fn delete_service_scaled_to_zero_needs_no_force() {
    let mut world = World::with_node();
    steady_service(&mut world, 1, json!({}));
    world.update_service(json!({ "service": "svc", "desiredCount": 0 }));
    world.settle();
    world.agent_stop_all();
    world.settle();
    let deleted = world
        .ok(ecs::delete_service, req(json!({ "service": "svc" })))
        .service;
    assert_eq!(deleted.status, "DRAINING");
    world.settle();
    assert_eq!(world.service("svc").status, "INACTIVE");
}

#[test]
fn fixed_host_port_places_one_task_per_node_and_says_so_once() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "web",
        "containerDefinitions": [{
            "name": "app", "image": "nginx:1.27", "memory": 128,
            "portMappings": [{ "containerPort": 80, "hostPort": 8080 }]
        }]
    }));
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 2 }),
    );
    world.settle();
    assert_eq!(
        world.live_tasks("svc").len(),
        1,
        "8080 is taken after the first task"
    );
    assert_eq!(
        world.count_events("svc", &unable_to_place("svc")),
        1,
        "events: {:?}",
        world.events("svc")
    );

    world.agent_start_all(HealthStatus::Unknown);
    for _ in 0..5 {
        world.advance_secs(10);
        world.settle();
    }
    assert_eq!(world.live_tasks("svc").len(), 1);
    assert_eq!(
        world.count_events("svc", &unable_to_place("svc")),
        1,
        "not repeated on every pass: {:?}",
        world.events("svc")
    );

    // A second node gives the second task a place.
    world.add_node("node-2");
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 2);
    let instances: std::collections::BTreeSet<_> = world
        .live_tasks("svc")
        .iter()
        .map(|t| t.container_instance_id.clone())
        .collect();
    assert_eq!(instances.len(), 2, "one task per node");
}

#[test]
fn memory_exhaustion_places_what_fits_and_says_so_once() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "big",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 3000 }]
    }));
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "big", "desiredCount": 2 }),
    );
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 1);
    assert_eq!(
        world.count_events("svc", &unable_to_place("svc")),
        1,
        "events: {:?}",
        world.events("svc")
    );
    world.agent_start_all(HealthStatus::Unknown);
    for _ in 0..5 {
        world.advance_secs(10);
        world.settle();
    }
    assert_eq!(
        world.count_events("svc", &unable_to_place("svc")),
        1,
        "events: {:?}",
        world.events("svc")
    );
}

#[test]
fn run_task_reports_what_does_not_fit() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "huge",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 5000 }]
    }));
    let response = world.ok(ecs::run_task, req(json!({ "taskDefinition": "huge" })));
    assert!(response.tasks.is_empty());
    assert_eq!(response.failures.len(), 1);
    assert_eq!(
        response.failures[0].reason.as_deref(),
        Some("RESOURCE:MEMORY")
    );
    assert!(world.state.tasks.is_empty());

    world.register(json!({
        "family": "big",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 3000 }]
    }));
    let response = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "big", "count": 2 })),
    );
    assert_eq!(response.tasks.len(), 1);
    assert_eq!(response.failures.len(), 1);
    assert_eq!(
        response.failures[0].reason.as_deref(),
        Some("RESOURCE:MEMORY")
    );
    assert!(response.failures[0]
        .arn
        .as_deref()
        .unwrap()
        .contains(":container-instance/default/"));
    assert_eq!(world.state.tasks.len(), 1);
}

#[test]
fn stopped_tasks_are_forgotten_after_the_retention_only() {
    let mut world = World::with_node();
    steady_service(&mut world, 1, json!({}));
    let id = world.live_tasks("svc")[0].id.clone();
    world.agent_exit(&id, 1);
    world.settle();
    world.advance_secs(60 * 60);
    world.settle();
    assert!(
        world.state.tasks.contains_key(&id),
        "stopped tasks stay describable for an hour"
    );
    let _ = CLUSTER;
}

#[test]
fn stopped_tasks_are_forgotten_after_three_hours() {
    let mut world = World::with_node();
    steady_service(&mut world, 1, json!({}));
    let id = world.live_tasks("svc")[0].id.clone();
    world.agent_exit(&id, 1);
    world.settle();
    world.advance_secs(3 * 60 * 60 + 1);
    world.settle();
    assert!(!world.state.tasks.contains_key(&id));
    assert_eq!(world.live_tasks("svc").len(), 1);
}

#[test]
fn a_stable_period_resets_the_crash_backoff() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    // Three quick crashes in a row.
    for _ in 0..3 {
        world.advance_secs(10);
        world.settle();
        let id = world.live_tasks("svc")[0].id.clone();
        world.agent_start_all(HealthStatus::Unknown);
        world.settle();
        world.agent_exit(&id, 1);
        world.settle();
    }
    assert_eq!(world.model_service("svc").consecutive_failures, 3);
    // Then the service runs steadily for ten minutes, the scheduler passing right after the
    // task starts (as the server does on every report) and then regularly.
    world.advance_secs(10);
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    for _ in 0..20 {
        world.advance_secs(30);
        world.settle();
    }
    assert!(services_stable(&world.service("svc")));
    // What a user sees: the task is replaced (a deploy, a StopTask) and the new one
    // crashes at once; as the first crash after a stable period it is replaced at once.
    let id = world.live_tasks("svc")[0].id.clone();
    world.ok(ecs::stop_task, req(json!({ "task": id })));
    world.settle();
    world.agent_stop_all();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    let id = world.live_tasks("svc")[0].id.clone();
    world.advance_secs(1);
    world.agent_exit(&id, 1);
    world.reconcile_once();
    assert_eq!(
        world.live_tasks("svc").len(),
        1,
        "the first crash after ten steady minutes waits {:?} ms (consecutive_failures {})",
        world
            .model_service("svc")
            .next_launch_at
            .map(|at| at.millis_since(world.now)),
        world.model_service("svc").consecutive_failures
    );
}

#[test]
fn a_service_task_stopped_by_the_user_is_replaced_without_backoff() {
    let mut world = World::with_node();
    steady_service(&mut world, 2, json!({}));
    let id = world.live_tasks("svc")[0].id.clone();
    world.ok(
        ecs::stop_task,
        req(json!({ "task": id, "reason": "bad host" })),
    );
    world.reconcile_once();
    assert_eq!(world.live_tasks("svc").len(), 2, "replaced at once");
    world.agent_stop_all();
    world.settle();
    let service = world.model_service("svc");
    assert_eq!(service.consecutive_failures, 0, "a user's stop is no crash");
    assert_eq!(service.next_launch_at, None);
    assert_eq!(service.deployments[0].failed_tasks, 0);
}

#[test]
fn daemon_service_runs_one_task_per_node() {
    let mut world = World::with_node();
    world.register_simple("agent");
    let created = world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "agent", "schedulingStrategy": "DAEMON"
    }));
    assert_eq!(created.desired_count, 1);
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 1);
    world.add_node("node-2");
    world.settle();
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), 2);
    let instances: std::collections::BTreeSet<_> = live
        .iter()
        .map(|t| t.container_instance_id.clone())
        .collect();
    assert_eq!(instances.len(), 2, "one task per node");
    assert_eq!(world.service("svc").desired_count, 2);
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "svc", "desiredCount": 5 })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
}

#[test]
fn default_placement_spreads_over_nodes() {
    let mut world = World::with_node();
    world.add_node("node-2");
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 4 }),
    );
    world.settle();
    let mut per_instance = std::collections::BTreeMap::new();
    for task in world.live_tasks("svc") {
        *per_instance
            .entry(task.container_instance_id.clone())
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_instance.values().copied().collect::<Vec<_>>(),
        vec![2, 2]
    );
}

#[test]
fn binpack_fills_one_node_first() {
    let mut world = World::with_node();
    world.add_node("node-2");
    world.register_simple("web");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 3,
        "placementStrategy": [{ "type": "binpack", "field": "memory" }]
    }));
    world.settle();
    let instances: std::collections::BTreeSet<_> = world
        .live_tasks("svc")
        .iter()
        .map(|t| t.container_instance_id.clone())
        .collect();
    assert_eq!(instances.len(), 1);
}

#[test]
fn distinct_instance_limits_tasks_to_one_per_node() {
    let mut world = World::with_node();
    world.add_node("node-2");
    world.register_simple("web");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 3,
        "placementConstraints": [{ "type": "distinctInstance" }]
    }));
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 2);
    assert_eq!(
        world.count_events("svc", &unable_to_place("svc")),
        1,
        "events: {:?}",
        world.events("svc")
    );
}

#[test]
fn two_services_on_one_host_port_in_one_pass() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "web",
        "containerDefinitions": [{
            "name": "app", "image": "nginx:1.27", "memory": 128,
            "portMappings": [{ "containerPort": 80, "hostPort": 8080 }]
        }]
    }));
    world.create_service(json!({ "serviceName": "a", "taskDefinition": "web", "desiredCount": 1 }));
    world.create_service(json!({ "serviceName": "b", "taskDefinition": "web", "desiredCount": 1 }));
    world.reconcile_once();
    assert_eq!(
        world.live_tasks("a").len() + world.live_tasks("b").len(),
        1,
        "8080 is booked once"
    );
}

#[test]
fn a_node_in_two_clusters_shares_its_memory() {
    let mut world = World::with_node();
    world.create_cluster("other");
    world.register(json!({
        "family": "big",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 3000 }]
    }));
    let first = world.ok(ecs::run_task, req(json!({ "taskDefinition": "big" })));
    assert_eq!(first.tasks.len(), 1);
    let second = world.ok(
        ecs::run_task,
        req(json!({ "cluster": "other", "taskDefinition": "big" })),
    );
    assert!(second.tasks.is_empty());
    assert_eq!(
        second.failures[0].reason.as_deref(),
        Some("RESOURCE:MEMORY")
    );

    // Once the first task has stopped, its memory is free again.
    world.ok(
        ecs::stop_task,
        req(json!({ "task": first.tasks[0].task_arn })),
    );
    let third = world.ok(
        ecs::run_task,
        req(json!({ "cluster": "other", "taskDefinition": "big" })),
    );
    assert!(
        third.tasks.is_empty(),
        "a stopping task still holds its memory"
    );
    world.agent_stop_all();
    let fourth = world.ok(
        ecs::run_task,
        req(json!({ "cluster": "other", "taskDefinition": "big" })),
    );
    assert_eq!(fourth.tasks.len(), 1);
}

#[test]
fn tasks_are_not_placed_on_a_disconnected_agent() {
    let mut world = World::with_node();
    world.add_node("node-2");
    let node_1_instance = world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == "node-1")
        .map(|i| i.id.clone())
        .unwrap();
    for instance in world
        .state
        .container_instances
        .values_mut()
        .filter(|i| i.node_id == "node-1")
    {
        std::sync::Arc::make_mut(instance).agent_connected = false;
    }
    if let Some(node) = world.state.nodes.get_mut("node-1") {
        std::sync::Arc::make_mut(node).connected = false;
    }
    world.register_simple("web");
    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "count": 4 })),
    );
    assert_eq!(run.tasks.len(), 4);
    for task in &run.tasks {
        assert!(
            !task
                .container_instance_arn
                .as_deref()
                .unwrap()
                .ends_with(&node_1_instance),
            "a task went to the disconnected node"
        );
    }
}

/// Gives node-1's instance and node-2's instance attributes, as their agents would.
fn label_instances(world: &mut World, attributes: &[(&str, &[(&str, &str)])]) {
    for instance in world.state.container_instances.values_mut() {
        if let Some((_, pairs)) = attributes
            .iter()
            .find(|(node, _)| *node == instance.node_id)
        {
            for (name, value) in pairs.iter() {
                std::sync::Arc::make_mut(instance)
                    .attributes
                    .insert(name.to_string(), value.to_string());
            }
        }
    }
}

#[test]
fn member_of_places_on_matching_instances_and_reports_the_rest() {
    let mut world = World::with_node();
    world.add_node("node-2");
    label_instances(
        &mut world,
        &[
            (
                "node-1",
                &[("stack", "prod"), ("ecs.availability-zone", "zone-a")],
            ),
            (
                "node-2",
                &[("stack", "dev"), ("ecs.availability-zone", "zone-b")],
            ),
        ],
    );
    world.register(json!({
        "family": "web",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 1024 }],
        "placementConstraints": [{ "type": "memberOf", "expression": "attribute:stack in [prod, staging]" }]
    }));
    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "count": 5 })),
    );
    assert_eq!(run.tasks.len(), 4, "node-1's 4096 MiB take four tasks");
    let node_1 = world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == "node-1")
        .map(|i| i.id.clone())
        .unwrap();
    assert!(run.tasks.iter().all(|t| t
        .container_instance_arn
        .as_deref()
        .unwrap()
        .ends_with(&node_1)));
    let mut reasons: Vec<&str> = run
        .failures
        .iter()
        .filter_map(|f| f.reason.as_deref())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "MemberOf placement constraint unsatisfied.",
            "RESOURCE:MEMORY"
        ]
    );
}

#[test]
fn a_service_spreads_over_zones_by_default() {
    let mut world = World::with_node();
    world.add_node("node-2");
    world.add_node("node-3");
    label_instances(
        &mut world,
        &[
            ("node-1", &[("ecs.availability-zone", "zone-a")]),
            ("node-2", &[("ecs.availability-zone", "zone-a")]),
            ("node-3", &[("ecs.availability-zone", "zone-b")]),
        ],
    );
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 4 }),
    );
    world.settle();
    let node_of: std::collections::BTreeMap<String, String> = world
        .state
        .container_instances
        .values()
        .map(|i| (i.id.clone(), i.node_id.clone()))
        .collect();
    let mut per_node = std::collections::BTreeMap::new();
    for task in world.live_tasks("svc") {
        let node = node_of[task.container_instance_id.as_ref().unwrap()].clone();
        *per_node.entry(node).or_insert(0) += 1;
    }
    assert_eq!(
        per_node.into_iter().collect::<Vec<_>>(),
        [
            ("node-1".to_string(), 1),
            ("node-2".to_string(), 1),
            ("node-3".to_string(), 2)
        ],
        "two per zone, then one per instance within zone a"
    );
}

#[test]
fn bad_placement_is_refused_where_it_is_given() {
    let mut world = World::with_node();
    world.register_simple("web");
    let error = world.fails(
        ecs::run_task,
        req(json!({
            "taskDefinition": "web",
            "placementConstraints": [{ "type": "memberOf", "expression": "attribute:stack ~= prod" }]
        })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(
        error
            .message
            .starts_with("placementConstraints[0].expression 'attribute:stack ~= prod' is invalid"),
        "{}",
        error.message
    );
    let error = world.fails(
        ecs::create_service,
        req(json!({
            "serviceName": "svc", "taskDefinition": "web",
            "placementStrategy": [{ "type": "spread", "field": "attribute:zone" }, { "type": "binpack" }]
        })),
    );
    assert_eq!(
        error.message,
        "placementStrategy[1].field is required for type binpack: use cpu or memory"
    );
    world.create_service(json!({ "serviceName": "svc", "taskDefinition": "web" }));
    let error = world.fails(
        ecs::update_service,
        req(json!({
            "service": "svc",
            "placementConstraints": [{ "type": "distinctInstance", "expression": "attribute:a exists" }]
        })),
    );
    assert_eq!(
        error.message,
        "placementConstraints[0].expression 'attribute:a exists' cannot be given for type distinctInstance"
    );
    let error = world.fails(
        ecs::register_task_definition,
        req(json!({
            "family": "web",
            "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 128 }],
            "placementConstraints": [{ "type": "memberOf", "expression": "attribute:a in [x" }]
        })),
    );
    assert_eq!(
        error.message,
        "placementConstraints[0].expression 'attribute:a in [x' is invalid: expected ',' or ']', found the end of the expression at character 18"
    );
}

#[test]
fn draining_an_instance_replaces_its_tasks_first_within_the_deployment_configuration() {
    use berth_core::model::ContainerInstanceStatus;
    let mut world = World::with_node();
    world.add_node("node-2");
    world.register_simple("web");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 4,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 150}
    }));
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.advance_millis(UNCHECKED_TASK_SETTLE_MS);
    world.settle();
    let drained = world.change_instance("node-1", |i| i.status = ContainerInstanceStatus::Draining);
    let on_drained = |world: &World| -> Vec<String> {
        world
            .live_tasks("svc")
            .iter()
            .filter(|t| t.container_instance_id.as_deref() == Some(drained.as_str()))
            .map(|t| t.id.clone())
            .collect()
    };
    assert_eq!(on_drained(&world).len(), 2);

    // maximumPercent 150 leaves room for 2 more: they start on the other instance
    // while the drained instance's tasks keep serving.
    world.settle();
    assert_eq!(world.live_tasks("svc").len(), 6);
    assert_eq!(
        on_drained(&world).len(),
        2,
        "none stops before its replacement is healthy"
    );
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    assert_eq!(
        on_drained(&world).len(),
        2,
        "a replacement that nothing checks must run a while before it counts"
    );
    world.advance_millis(UNCHECKED_TASK_SETTLE_MS);
    world.settle();
    assert!(
        on_drained(&world).is_empty(),
        "drained once replacements run"
    );
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), 4);
    assert!(live
        .iter()
        .all(|t| t.container_instance_id.as_deref() != Some(drained.as_str())));
    let stopped: Vec<Task> = world
        .tasks_of("svc")
        .into_iter()
        .filter(|t| t.desired_status == DesiredStatus::Stopped)
        .collect();
    assert_eq!(stopped.len(), 2);
    assert!(stopped
        .iter()
        .all(|t| t.stopped_reason.as_deref() == Some("Container instance is being drained")));

    // A draining instance takes no new task; ACTIVE again, it does.
    world.update_service(json!({ "service": "svc", "desiredCount": 6 }));
    world.settle();
    assert!(on_drained(&world).is_empty());
    world.change_instance("node-1", |i| i.status = ContainerInstanceStatus::Active);
    world.update_service(json!({ "service": "svc", "desiredCount": 8 }));
    world.settle();
    assert!(!on_drained(&world).is_empty());
}

#[test]
fn a_daemon_runs_on_each_instance_that_meets_its_constraints_and_leaves_a_drained_one() {
    use berth_core::model::ContainerInstanceStatus;
    let mut world = World::with_node();
    world.add_node("node-2");
    world.add_node("node-3");
    for (node, zone) in [("node-1", "a"), ("node-2", "b"), ("node-3", "a")] {
        world.change_instance(node, |i| {
            i.attributes
                .insert("ecs.availability-zone".into(), zone.into());
        });
    }
    world.register_simple("agent");
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "agent", "schedulingStrategy": "DAEMON",
        "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone == a"}
        ]
    }));
    world.settle();
    let nodes_of = |world: &World| -> std::collections::BTreeSet<String> {
        world
            .live_tasks("svc")
            .iter()
            .map(|t| {
                let instance = t.container_instance_id.clone().unwrap();
                world.state.container_instances[&instance].node_id.clone()
            })
            .collect()
    };
    assert_eq!(world.live_tasks("svc").len(), 2);
    assert_eq!(
        nodes_of(&world),
        ["node-1", "node-3"].map(String::from).into()
    );
    assert_eq!(world.service("svc").desired_count, 2);

    // An instance that joins later in the zone gets its task.
    world.add_node("node-4");
    world.change_instance("node-4", |i| {
        i.attributes
            .insert("ecs.availability-zone".into(), "a".into());
    });
    world.settle();
    assert_eq!(
        nodes_of(&world),
        ["node-1", "node-3", "node-4"].map(String::from).into()
    );

    // Drained: the daemon's task there stops and is not placed again elsewhere.
    world.change_instance("node-3", |i| i.status = ContainerInstanceStatus::Draining);
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    assert_eq!(
        nodes_of(&world),
        ["node-1", "node-4"].map(String::from).into()
    );
    assert_eq!(world.service("svc").desired_count, 2);
}

#[test]
fn container_instances_are_drained_and_deregistered_through_the_api() {
    use berth_core::model::ContainerInstanceStatus;
    let mut world = World::with_node();
    world.add_node("node-2");
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 2 }),
    );
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    let instance = |world: &World, node: &str| {
        world
            .state
            .container_instances
            .values()
            .find(|i| i.node_id == node && i.status != ContainerInstanceStatus::Inactive)
            .unwrap()
            .id
            .clone()
    };
    let first = instance(&world, "node-1");

    for (status, message) in [
        (
            "STOPPED",
            "status 'STOPPED' is invalid: use ACTIVE or DRAINING",
        ),
        (
            "INACTIVE",
            "status 'INACTIVE' is invalid: use ACTIVE or DRAINING",
        ),
        ("", "status '' is invalid: use ACTIVE or DRAINING"),
    ] {
        let error = world.fails(
            ecs::update_container_instances_state,
            req(json!({ "containerInstances": [first], "status": status })),
        );
        assert_eq!(error.message, message);
    }
    let error = world.fails(
        ecs::update_container_instances_state,
        req(json!({ "containerInstances": vec![first.clone(); 11], "status": "DRAINING" })),
    );
    assert!(error.message.contains("at most 10"), "{}", error.message);

    let drained = world.ok(
        ecs::update_container_instances_state,
        req(json!({ "containerInstances": [first, "nope"], "status": "DRAINING" })),
    );
    assert_eq!(drained.container_instances.len(), 1);
    assert_eq!(drained.container_instances[0].status, "DRAINING");
    assert_eq!(drained.failures[0].reason.as_deref(), Some("MISSING"));

    // Without force, an instance with tasks stays.
    let second = instance(&world, "node-2");
    let error = world.fails(
        ecs::deregister_container_instance,
        req(json!({ "containerInstance": second })),
    );
    assert_eq!(error.message, "Found running tasks on the instance.");
    // Forced, it goes, and its service's tasks come back elsewhere.
    world.ok(
        ecs::update_container_instances_state,
        req(json!({ "containerInstances": [first], "status": "ACTIVE" })),
    );
    let gone = world.ok(
        ecs::deregister_container_instance,
        req(json!({ "containerInstance": second, "force": true })),
    );
    assert_eq!(gone.container_instance.status, "INACTIVE");
    world.settle();
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), 2);
    assert!(live
        .iter()
        .all(|t| t.container_instance_id.as_deref() == Some(first.as_str())));
    let error = world.fails(
        ecs::deregister_container_instance,
        req(json!({ "containerInstance": second })),
    );
    assert!(error.message.contains("not found"), "{}", error.message);
}

#[test]
fn an_instance_reports_the_host_ports_its_tasks_hold_and_a_daemon_has_ecs_defaults() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "dns",
        "containerDefinitions": [{
            "name": "app", "image": "dns:1", "memory": 64,
            "portMappings": [
                {"containerPort": 8080, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 5353, "protocol": "udp"},
                {"containerPort": 9000, "hostPort": 0}
            ]
        }]
    }));
    let daemon = world.create_service(json!({
        "serviceName": "dns", "taskDefinition": "dns", "schedulingStrategy": "DAEMON"
    }));
    assert_eq!(daemon.deployment_configuration.maximum_percent, Some(100));
    assert_eq!(
        daemon.deployment_configuration.minimum_healthy_percent,
        Some(0)
    );
    world.settle();
    let instance = world
        .state
        .container_instances
        .keys()
        .next()
        .unwrap()
        .clone();
    let described = world.ok(
        ecs::describe_container_instances,
        req(json!({ "containerInstances": [instance] })),
    );
    let set = |resources: &[berth_core::api::Resource], name: &str| -> Vec<String> {
        resources
            .iter()
            .find(|r| r.name.as_deref() == Some(name))
            .and_then(|r| r.string_set_value.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let ci = &described.container_instances[0];
    assert_eq!(set(&ci.remaining_resources, "PORTS"), ["8080"]);
    assert_eq!(set(&ci.remaining_resources, "PORTS_UDP"), ["5353"]);
    assert!(set(&ci.registered_resources, "PORTS").is_empty());
}

#[test]
fn a_crash_event_names_the_container_and_its_exit_code() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    let started = world.agent_start_all(HealthStatus::Unknown);
    world.settle();
    world.agent_exit(&started[0], 3);
    world.settle();
    let message = format!(
        "(service svc) (task {}) stopped: Essential container in task exited (container app exited with code 3)",
        started[0]
    );
    assert_eq!(
        world.count_events("svc", &message),
        1,
        "{:#?}",
        world.events("svc")
    );
}
