//! Services behind a target group, pure: tasks are registered once they run, count as
//! healthy only with healthy targets, drain before they stop, and are replaced when
//! their targets fail after the grace period.

mod common;

use berth_core::api::elbv2 as wire;
use berth_core::ecs::Context;
use berth_core::elbv2::model::{target_key, TargetHealth, TargetHealthState};
use berth_core::elbv2::{self, Elbv2Result};
use berth_core::model::{ContainerStatus, DesiredStatus, HealthStatus, Task, TaskStatus};
use berth_core::{Command, ContainerReport, ErrorCode, State, TaskReport};
use common::World;
use serde_json::json;

fn elb<Q, R>(
    world: &mut World,
    action: impl FnOnce(&State, Q, &mut Context<'_>) -> Elbv2Result<R>,
    request: Q,
) -> R {
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    let outcome = action(&world.state, request, &mut ctx).unwrap_or_else(|e| panic!("{e:?}"));
    world.apply(&outcome.commands);
    outcome.response
}

/// A load balancer with a listener forwarding to an instance target group with a
/// 10 s deregistration delay; returns the target group's ARN and id.
fn balancer(world: &mut World, with_listener: bool) -> (String, String) {
    let lb = elb(
        world,
        elbv2::create_load_balancer,
        wire::CreateLoadBalancerRequest {
            name: "lb".into(),
            ..Default::default()
        },
    );
    let tg = elb(
        world,
        elbv2::create_target_group,
        wire::CreateTargetGroupRequest {
            name: "web".into(),
            protocol: Some("HTTP".into()),
            port: Some(80),
            target_type: Some("instance".into()),
            ..Default::default()
        },
    );
    let tg_arn = tg.target_groups[0].target_group_arn.clone();
    let id = tg_arn.rsplit('/').next().unwrap().to_string();
    let mut group = world.state.target_groups[&id].clone();
    group.attributes.deregistration_delay_seconds = 10;
    world.apply(&[Command::PutTargetGroup(Box::new(group))]);
    if with_listener {
        elb(
            world,
            elbv2::create_listener,
            wire::CreateListenerRequest {
                load_balancer_arn: lb.load_balancers[0].load_balancer_arn.clone(),
                port: Some(8000),
                default_actions: vec![wire::Action {
                    action_type: "forward".into(),
                    target_group_arn: Some(tg_arn.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
    }
    (tg_arn, id)
}

fn register_web(world: &mut World, family: &str) {
    world.register(json!({"family": family, "containerDefinitions": [
        {"name": "web", "image": "web", "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 0}]}
    ]}));
}

fn create_web_service(world: &mut World, tg_arn: &str, desired: i64, grace: i64) {
    world.create_service(json!({
        "serviceName": "web", "taskDefinition": "web", "desiredCount": desired,
        "healthCheckGracePeriodSeconds": grace,
        "loadBalancers": [{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 80}]
    }));
}

/// The agent runs every pending task, publishing container port 80 on a host port.
fn agent_runs_all(world: &mut World, next_port: &mut i64) {
    let pending: Vec<String> = world
        .state
        .tasks
        .values()
        .filter(|t| {
            t.desired_status == DesiredStatus::Running && t.last_status < TaskStatus::Running
        })
        .map(|t| t.id.clone())
        .collect();
    let reports: Vec<TaskReport> = pending
        .iter()
        .map(|id| {
            *next_port += 1;
            let mut report = TaskReport::status(id, TaskStatus::Running);
            report.started_at = Some(world.now);
            report.containers = vec![ContainerReport {
                name: "web".into(),
                runtime_id: Some(format!("docker-{id}")),
                image_digest: None,
                last_status: ContainerStatus::Running,
                exit_code: None,
                reason: None,
                network_bindings: vec![berth_core::api::NetworkBinding {
                    bind_ip: Some("0.0.0.0".into()),
                    container_port: Some(80),
                    host_port: Some(*next_port),
                    protocol: Some("tcp".into()),
                }],
                health_status: HealthStatus::Unknown,
            }];
            report
        })
        .collect();
    world.send_reports(&reports);
}

/// The data plane's verdict on every target of `tg`.
fn targets_say(world: &mut World, tg: &str, state: TargetHealthState) {
    let commands: Vec<Command> = world
        .state
        .targets
        .values()
        .filter(|t| t.target_group == tg && t.draining_until.is_none())
        .map(|t| Command::PutTargetHealth {
            target_group: t.target_group.clone(),
            target_id: t.id.clone(),
            port: t.port,
            health: TargetHealth {
                state,
                reason: None,
                description: None,
            },
        })
        .collect();
    world.apply(&commands);
}

#[test]
fn a_target_group_no_listener_uses_is_refused() {
    let mut world = World::with_node();
    let (tg_arn, _) = balancer(&mut world, false);
    register_web(&mut world, "web");
    let error = world.fails(
        berth_core::ecs::create_service,
        common::req(json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 80}]})),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(
        error
            .message
            .contains("does not have an associated load balancer"),
        "{}",
        error.message
    );
}

#[test]
fn running_tasks_are_registered_and_count_healthy_only_with_healthy_targets() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 2, 0);
    world.settle();
    assert!(
        world.state.targets.is_empty(),
        "nothing is registered before it runs"
    );
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    // The agent says RUNNING; until its targets are registered the task is ACTIVATING.
    assert!(world
        .state
        .tasks
        .values()
        .all(|t| t.last_status == TaskStatus::Activating));
    assert_eq!(world.service("web").running_count, 0);
    world.reconcile_once();
    assert!(world
        .state
        .tasks
        .values()
        .all(|t| t.last_status == TaskStatus::Running && t.load_balancer_targets.len() == 1));
    world.settle();
    let registered: Vec<(String, u16)> = world
        .state
        .targets
        .values()
        .map(|t| (t.id.clone(), t.port))
        .collect();
    assert_eq!(registered.len(), 2);
    assert!(registered
        .iter()
        .all(|(id, port)| world.state.container_instances.contains_key(id) && *port > 30000));
    assert!(world
        .state
        .tasks
        .values()
        .all(|t| t.load_balancer_targets.len() == 1));
    // RUNNING, but the targets are still initial: the rollout is not complete.
    assert_eq!(
        world.service("web").deployments[0].rollout_state,
        "IN_PROGRESS"
    );
    assert_eq!(
        world.count_events("web", "(service web) has reached a steady state."),
        0
    );
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    world.advance_millis(berth_core::ROLLOUT_STABLE_MS);
    world.settle();
    assert_eq!(
        world.service("web").deployments[0].rollout_state,
        "COMPLETED"
    );
    assert_eq!(
        world.count_events("web", "(service web) has reached a steady state."),
        1
    );
}

#[test]
fn stopping_a_task_drains_its_target_before_the_agent_may_stop_it() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 2, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    world.update_service(json!({"service": "web", "desiredCount": 1}));
    world.settle();
    let stopping: Vec<_> = world
        .state
        .tasks
        .values()
        .filter(|t| t.desired_status == DesiredStatus::Stopped)
        .collect();
    assert_eq!(stopping.len(), 1);
    assert_eq!(
        stopping[0].stop_after,
        Some(world.now.plus_secs(10)),
        "the agent waits out the delay"
    );
    let draining: Vec<_> = world
        .state
        .targets
        .values()
        .filter(|t| t.draining_until.is_some())
        .collect();
    assert_eq!(draining.len(), 1);
    assert_eq!(draining[0].draining_until, Some(world.now.plus_secs(10)));
    // After the delay the drained target is gone.
    world.advance_secs(11);
    world.settle();
    assert_eq!(world.state.targets.len(), 1);
}

#[test]
fn a_rollout_stops_old_tasks_only_once_new_targets_are_healthy() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 2, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    register_web(&mut world, "web");
    world.update_service(json!({"service": "web", "taskDefinition": "web:2"}));
    world.settle();
    agent_runs_all(&mut world, &mut port);
    world.settle();
    let old_live = |w: &World| {
        w.state
            .tasks
            .values()
            .filter(|t| t.revision == 1 && t.is_live())
            .count()
    };
    assert_eq!(
        old_live(&world),
        2,
        "new tasks run, but their targets are initial"
    );
    // Only the new targets are still initial; they turn healthy.
    let new_targets: Vec<Command> = world
        .state
        .targets
        .values()
        .filter(|t| t.health.state == TargetHealthState::Initial)
        .map(|t| Command::PutTargetHealth {
            target_group: t.target_group.clone(),
            target_id: t.id.clone(),
            port: t.port,
            health: TargetHealth {
                state: TargetHealthState::Healthy,
                reason: None,
                description: None,
            },
        })
        .collect();
    assert_eq!(new_targets.len(), 2);
    world.apply(&new_targets);
    world.settle();
    assert_eq!(old_live(&world), 0, "old tasks go once the new ones serve");
}

#[test]
fn tasks_whose_targets_fail_are_replaced_after_the_grace_period() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 1, 60);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Unhealthy);
    world.settle();
    let live = |w: &World| w.state.tasks.values().filter(|t| t.is_live()).count();
    assert_eq!(
        live(&world),
        1,
        "within the grace period a failing target is tolerated"
    );
    world.advance_secs(61);
    world.settle();
    let replaced = world
        .state
        .tasks
        .values()
        .find(|t| t.desired_status == DesiredStatus::Stopped)
        .expect("replaced");
    assert_eq!(
        replaced.stopped_reason.as_deref(),
        Some("Task failed ELB health checks in (target-group web)")
    );
    assert_eq!(live(&world), 1, "a replacement runs");
}

#[test]
fn a_task_that_exits_leaves_its_target_group_at_once() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 1, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    let task = world.state.tasks.keys().next().unwrap().clone();
    world.agent_exit(&task, 1);
    world.settle();
    assert!(
        world
            .state
            .targets
            .values()
            .all(|t| !world.state.tasks[&task]
                .load_balancer_targets
                .iter()
                .any(|x| x.id == t.id && x.port == t.port)),
        "the dead task's target was removed without draining"
    );
}

#[test]
fn a_task_whose_essential_container_exited_is_stopping_and_out_of_its_target_group_at_once() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 1, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    let task = world.live_tasks("web")[0].id.clone();
    assert_eq!(world.state.targets.len(), 1);
    // `docker kill`: the agent says so at once, while it still stops the task's other
    // containers (their stop timeouts may be long); no STOPPED report yet.
    let mut report = TaskReport::status(&task, TaskStatus::Stopping);
    report.stop_code = Some(berth_core::model::StopCode::EssentialContainerExited);
    report.stopped_reason = Some("Essential container in task exited".into());
    report.containers = vec![ContainerReport {
        name: "web".into(),
        runtime_id: None,
        image_digest: None,
        last_status: ContainerStatus::Stopped,
        exit_code: Some(137),
        reason: None,
        network_bindings: vec![],
        health_status: HealthStatus::Unknown,
    }];
    world.send_reports(&[report]);
    let described = world.describe_task(&task);
    assert_eq!(described.last_status, "STOPPING");
    assert_eq!(described.desired_status, "STOPPED");
    assert_eq!(described.containers[0].last_status, "STOPPED");
    assert_eq!(described.containers[0].exit_code, Some(137));
    assert_eq!(
        described.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert!(
        world.state.targets.is_empty(),
        "the dead task's target left at once, not when the task is STOPPED: {:?}",
        world.state.targets.values().collect::<Vec<_>>()
    );
    // The scheduler starts its replacement meanwhile.
    world.settle();
    assert_eq!(world.live_tasks("web").len(), 1);
    assert_ne!(world.live_tasks("web")[0].id, task);
}

#[test]
fn the_tasks_of_a_lost_machine_leave_their_targets_at_once_and_are_replaced_elsewhere() {
    let mut world = World::with_node();
    world.add_node("node-2");
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 4, 0);
    world.settle();
    let mut port = 32000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    assert_eq!(world.healthy_tasks("web").len(), 4);
    let lost_instance = world.change_instance("node-1", |i| i.agent_connected = false);
    let on_lost: Vec<String> = world
        .live_tasks("web")
        .iter()
        .filter(|t| t.container_instance_id.as_deref() == Some(lost_instance.as_str()))
        .map(|t| t.id.clone())
        .collect();
    assert!(!on_lost.is_empty(), "spread put some tasks on node-1");

    // One scheduler round gives them up and places their replacements.
    world.reconcile_once();
    for id in &on_lost {
        let task = world.task(id);
        assert_eq!(task.last_status, TaskStatus::Stopped, "{id}");
        assert_eq!(task.desired_status, DesiredStatus::Stopped);
        assert_eq!(
            task.stop_code,
            Some(berth_core::model::StopCode::TerminationNotice)
        );
        assert!(
            task.stopped_reason
                .as_deref()
                .unwrap_or_default()
                .contains("lost contact"),
            "{:?}",
            task.stopped_reason
        );
        // No draining: nothing on that machine can be reached to finish a request.
        assert!(
            !world.state.targets.values().any(|t| t.id == lost_instance),
            "a lost instance's targets are removed at once"
        );
    }
    let live = world.live_tasks("web");
    assert_eq!(live.len(), 4, "the service is back at its desired count");
    assert!(live
        .iter()
        .all(|t| t.container_instance_id.as_deref() != Some(lost_instance.as_str())));
    assert!(world
        .events("web")
        .iter()
        .any(|e| e.contains("lost contact") && e.contains("replacing them")));
    world.settle();
    assert_eq!(
        world.model_service("web").consecutive_failures,
        0,
        "no crash backoff"
    );

    // The machine comes back: its old tasks stay stopped and the service keeps four.
    world.change_instance("node-1", |i| i.agent_connected = true);
    world.settle();
    for id in &on_lost {
        assert_eq!(world.task(id).last_status, TaskStatus::Stopped);
    }
    assert_eq!(world.live_tasks("web").len(), 4);
    // A report from the returning agent does not bring a given-up task back.
    let mut late = TaskReport::status(&on_lost[0], TaskStatus::Running);
    late.started_at = Some(world.now);
    world.send_reports(&[late]);
    assert_eq!(world.task(&on_lost[0]).last_status, TaskStatus::Stopped);
    assert_eq!(world.live_tasks("web").len(), 4);
}

#[test]
fn targets_that_never_passed_a_check_leave_at_once_and_their_tasks_count_as_failures() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    // A grace period longer than the crash window: the tasks run 61 s before they are
    // replaced, so only "never healthy" can make their stops failures.
    world.create_service(json!({
        "serviceName": "web", "taskDefinition": "web", "desiredCount": 2,
        "healthCheckGracePeriodSeconds": 60,
        "loadBalancers": [{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 80}],
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}
    }));
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Unhealthy);
    world.advance_secs(61);
    world.settle();

    let stopping: Vec<Task> = world
        .state
        .tasks
        .values()
        .filter(|t| t.desired_status == DesiredStatus::Stopped)
        .map(|t| Task::clone(t))
        .collect();
    assert_eq!(stopping.len(), 2, "both failing tasks are replaced");
    for task in &stopping {
        assert!(!task.ever_healthy, "{}", task.id);
        assert!(
            task.stop_after
                <= Some(
                    world
                        .now
                        .plus_secs(berth_core::service_discovery::ENDPOINT_DRAIN_SECS)
                ),
            "no deregistration delay for {}: {:?}",
            task.id,
            task.stop_after
        );
        for target in &task.load_balancer_targets {
            assert!(
                !world.state.targets.contains_key(&target_key(
                    &target.target_group,
                    &target.id,
                    target.port
                )),
                "a target that never passed a check is deregistered without a delay"
            );
        }
    }
    world.agent_stop_all();
    world.settle();
    let service = world.model_service("web");
    assert_eq!(
        service.consecutive_failures, 2,
        "each never-healthy task is a failed launch"
    );
    assert!(
        service.next_launch_at.is_some(),
        "the next launch backs off"
    );
    assert_eq!(service.deployments[0].failed_tasks, 2);
}

#[test]
fn a_task_that_served_and_then_failed_after_the_crash_window_is_no_failed_launch() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 1, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    let task = world.live_tasks("web")[0].id.clone();
    assert!(world.task(&task).ever_healthy, "it served");
    world.advance_secs(120);
    targets_say(&mut world, &tg, TargetHealthState::Unhealthy);
    world.settle();
    assert_eq!(world.task(&task).desired_status, DesiredStatus::Stopped);
    assert_eq!(
        world.task(&task).stop_after,
        Some(world.now.plus_secs(10)),
        "a target that served drains for the group's delay"
    );
    world.agent_stop_all();
    world.settle();
    let service = world.model_service("web");
    assert_eq!(service.deployments[0].failed_tasks, 0);
    assert_eq!(
        service.consecutive_failures, 1,
        "a late failure starts a new count"
    );
}

#[test]
fn a_container_that_exited_is_the_stop_reason_even_when_its_target_failed_first() {
    let mut world = World::with_node();
    let (tg_arn, tg) = balancer(&mut world, true);
    register_web(&mut world, "web");
    create_web_service(&mut world, &tg_arn, 1, 0);
    world.settle();
    let mut port = 30000;
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    let task = world.live_tasks("web")[0].id.clone();
    // The container is killed: the balancer's checks notice before the agent reports.
    targets_say(&mut world, &tg, TargetHealthState::Unhealthy);
    world.settle();
    assert!(world
        .task(&task)
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("Task failed ELB health checks")));
    world.agent_exit(&task, 137);
    world.settle();
    let stopped = world.describe_task(&task);
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(stopped.containers[0].exit_code, Some(137));

    // A stop the scheduler decided for another reason keeps it, even when the
    // container then exits on its own while its target drains.
    agent_runs_all(&mut world, &mut port);
    world.settle();
    targets_say(&mut world, &tg, TargetHealthState::Healthy);
    world.settle();
    let replacement = world.live_tasks("web")[0].id.clone();
    world.update_service(json!({"service": "web", "desiredCount": 0}));
    world.settle();
    let reason = world.task(&replacement).stopped_reason.clone();
    assert!(reason.is_some(), "scaled in");
    world.agent_exit(&replacement, 1);
    world.settle();
    let stopped = world.describe_task(&replacement);
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("ServiceSchedulerInitiated")
    );
    assert_eq!(stopped.stopped_reason, reason);
}
