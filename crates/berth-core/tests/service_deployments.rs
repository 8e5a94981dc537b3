//! A service's deployment history (ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions): kept after deployments are replaced, bounded, and with
//! ECS's statuses as rollouts complete, fail, are replaced and are rolled back.

mod common;

use berth_api as api;
use berth_core::ecs;
use berth_core::model::{HealthStatus, MAX_SERVICE_DEPLOYMENTS};
use berth_core::{failure_threshold, ErrorCode, ROLLOUT_STABLE_MS};
use common::{req, World};
use serde_json::json;

fn list(world: &mut World, body: serde_json::Value) -> api::ListServiceDeploymentsResponse {
    world.ok(ecs::list_service_deployments, req(body))
}

/// The service's deployments, newest first, as (status, target revision's definition).
fn history(world: &mut World) -> Vec<(String, String)> {
    let listed = list(world, json!({ "service": "svc", "maxResults": 100 }));
    let arns: Vec<String> = listed
        .service_deployments
        .iter()
        .map(|d| d.target_service_revision_arn.clone())
        .collect();
    let revisions = world
        .ok(
            ecs::describe_service_revisions,
            req(json!({ "serviceRevisionArns": arns })),
        )
        .service_revisions;
    assert_eq!(revisions.len(), listed.service_deployments.len());
    listed
        .service_deployments
        .iter()
        .zip(&revisions)
        .map(|(d, r)| {
            assert_eq!(d.target_service_revision_arn, r.service_revision_arn);
            (d.status.clone(), short(&r.task_definition))
        })
        .collect()
}

fn short(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

fn describe(world: &mut World, arn: &str) -> api::ServiceDeployment {
    let mut found = world
        .ok(
            ecs::describe_service_deployments,
            req(json!({ "serviceDeploymentArns": [arn] })),
        )
        .service_deployments;
    assert_eq!(found.len(), 1);
    found.remove(0)
}

/// Starts and keeps running whatever the scheduler placed, until the primary deployment
/// has been stable long enough to complete.
fn roll_out(world: &mut World) {
    for _ in 0..4 {
        world.settle();
        world.agent_start_all(HealthStatus::Unknown);
        world.agent_stop_all();
        world.settle();
        world.advance_millis(ROLLOUT_STABLE_MS);
    }
    world.settle();
}

fn service_with(world: &mut World, extra: serde_json::Value) {
    world.register_simple("web");
    let mut body = json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 2 });
    for (key, value) in extra.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    world.create_service(body);
}

#[test]
fn deployments_are_kept_once_replaced_newest_first() {
    let mut world = World::with_node();
    service_with(&mut world, json!({}));
    assert_eq!(
        history(&mut world),
        [("IN_PROGRESS".into(), "web:1".into())]
    );
    roll_out(&mut world);
    assert_eq!(
        world.service("svc").deployments[0].rollout_state,
        "COMPLETED"
    );
    assert_eq!(history(&mut world), [("SUCCESSFUL".into(), "web:1".into())]);

    // web:2 is replaced by web:3 before it finished: STOPPED.
    world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": "web:2" }));
    world.settle();
    world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": "web:3" }));
    roll_out(&mut world);
    assert_eq!(
        world.service("svc").deployments.len(),
        1,
        "web:1 and web:2 drained"
    );
    assert_eq!(
        history(&mut world),
        [
            ("SUCCESSFUL".into(), "web:3".into()),
            ("STOPPED".into(), "web:2".into()),
            ("SUCCESSFUL".into(), "web:1".into()),
        ]
    );

    let listed = list(&mut world, json!({ "service": "svc" })).service_deployments;
    let newest = describe(&mut world, &listed[0].service_deployment_arn);
    assert_eq!(newest.status, "SUCCESSFUL");
    assert!(newest.finished_at.is_some());
    assert_eq!(newest.stopped_at, None);
    let target = newest.target_service_revision.unwrap();
    assert_eq!(target.arn, listed[0].target_service_revision_arn);
    assert_eq!(
        (target.requested_task_count, target.running_task_count),
        (2, 2),
        "the revision the service runs, with its tasks"
    );
    // It started while web:1 ran and web:2 rolled out.
    let sources: Vec<String> = newest
        .source_service_revisions
        .iter()
        .map(|s| s.arn.clone())
        .collect();
    assert_eq!(
        sources,
        [
            listed[1].target_service_revision_arn.clone(),
            listed[2].target_service_revision_arn.clone()
        ]
    );
    let stopped = describe(&mut world, &listed[1].service_deployment_arn);
    assert_eq!(stopped.status, "STOPPED");
    assert!(stopped.stopped_at.is_some());
    assert!(
        stopped
            .status_reason
            .as_deref()
            .unwrap()
            .contains("replaced"),
        "{:?}",
        stopped.status_reason
    );
    assert_eq!(
        stopped.deployment_circuit_breaker.unwrap().status,
        "DISABLED"
    );

    // The ARNs name the service as ECS does.
    let arn = &listed[0].service_deployment_arn;
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:000000000000:service-deployment/default/svc/"),
        "{arn}"
    );
    let id = world.service("svc").deployments[0].id.clone();
    assert!(
        arn.ends_with(id.trim_start_matches("ecs-svc/")),
        "{arn} {id}"
    );
    assert!(listed[0]
        .target_service_revision_arn
        .starts_with("arn:aws:ecs:us-east-1:000000000000:service-revision/default/svc/"));
}

#[test]
fn the_history_is_bounded_and_keeps_the_newest() {
    let mut world = World::with_node();
    service_with(&mut world, json!({}));
    let first = list(&mut world, json!({ "service": "svc" })).service_deployments[0].clone();
    for _ in 0..MAX_SERVICE_DEPLOYMENTS + 5 {
        world.update_service(json!({ "service": "svc", "forceNewDeployment": true }));
    }
    let all = list(&mut world, json!({ "service": "svc", "maxResults": 100 }));
    assert_eq!(all.service_deployments.len(), MAX_SERVICE_DEPLOYMENTS);
    assert_eq!(all.next_token, None);
    assert_eq!(all.service_deployments[0].status, "IN_PROGRESS");
    assert!(all.service_deployments[1..]
        .iter()
        .all(|d| d.status == "STOPPED"));
    assert_eq!(
        world.model_service("svc").service_deployments.len(),
        MAX_SERVICE_DEPLOYMENTS
    );
    // The oldest fell off: described, it is MISSING.
    let gone = world.ok(
        ecs::describe_service_deployments,
        req(json!({ "serviceDeploymentArns": [first.service_deployment_arn] })),
    );
    assert!(gone.service_deployments.is_empty());
    assert_eq!(gone.failures[0].reason.as_deref(), Some("MISSING"));
}

#[test]
fn pages_and_filters() {
    let mut world = World::with_node();
    service_with(&mut world, json!({}));
    let created = world.now;
    for _ in 0..4 {
        world.advance_secs(10);
        world.update_service(json!({ "service": "svc", "forceNewDeployment": true }));
    }
    // Default page: up to 20; maxResults pages with nextToken.
    let page = list(&mut world, json!({ "service": "svc", "maxResults": 2 }));
    assert_eq!(page.service_deployments.len(), 2);
    let token = page.next_token.clone().expect("more to come");
    let rest = list(
        &mut world,
        json!({ "service": "svc", "maxResults": 10, "nextToken": token }),
    );
    assert_eq!(rest.service_deployments.len(), 3);
    assert_eq!(rest.next_token, None);

    let in_progress = list(
        &mut world,
        json!({ "service": "svc", "status": ["IN_PROGRESS", "PENDING"] }),
    );
    assert_eq!(in_progress.service_deployments.len(), 1);
    let stopped = list(
        &mut world,
        json!({ "service": "svc", "status": ["STOPPED"] }),
    );
    assert_eq!(stopped.service_deployments.len(), 4);

    let after = created.as_epoch_seconds() + 15.0;
    let later = list(
        &mut world,
        json!({ "service": "svc", "createdAt": { "after": after } }),
    );
    assert_eq!(later.service_deployments.len(), 3);
    let earlier = list(
        &mut world,
        json!({ "service": "svc", "createdAt": { "before": created.as_epoch_seconds() } }),
    );
    assert_eq!(earlier.service_deployments.len(), 1);
    // By ARN too, and in the cluster named.
    let by_arn = list(
        &mut world,
        json!({ "service": "arn:aws:ecs:us-east-1:000000000000:service/default/svc",
                "cluster": "default" }),
    );
    assert_eq!(by_arn.service_deployments.len(), 5);
}

#[test]
fn the_circuit_breaker_rolls_the_failed_deployment_back() {
    let mut world = World::with_node();
    service_with(
        &mut world,
        json!({ "deploymentConfiguration": {
            "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }),
    );
    roll_out(&mut world);
    let bad = world.register_simple("web");
    world.update_service(json!({ "service": "svc", "taskDefinition": bad }));
    let failed_id = world.service("svc").deployments[0].id.clone();
    let mut rounds = 0;
    while world.service("svc").deployments[0].id == failed_id {
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
        world.reconcile_once();
    }
    assert_eq!(
        history(&mut world),
        [
            ("ROLLBACK_IN_PROGRESS".into(), "web:2".into()),
            ("SUCCESSFUL".into(), "web:1".into()),
        ],
        "the rollback is the failed deployment's, not one of its own"
    );
    let listed = list(&mut world, json!({ "service": "svc" })).service_deployments;
    let failed = describe(&mut world, &listed[0].service_deployment_arn);
    let rollback = failed.rollback.clone().expect("a rollback");
    assert_eq!(
        rollback.service_revision_arn.as_deref(),
        Some(listed[1].target_service_revision_arn.as_str()),
        "back to web:1's revision"
    );
    let breaker = failed.deployment_circuit_breaker.unwrap();
    assert_eq!(breaker.status, "TRIGGERED");
    assert_eq!(breaker.threshold, failure_threshold(2));
    assert!(breaker.failure_count >= breaker.threshold, "{breaker:?}");

    roll_out(&mut world);
    assert_eq!(
        world.service("svc").deployments[0].rollout_state,
        "COMPLETED"
    );
    assert_eq!(
        history(&mut world),
        [
            ("ROLLBACK_SUCCESSFUL".into(), "web:2".into()),
            ("SUCCESSFUL".into(), "web:1".into()),
        ]
    );
    let done = describe(&mut world, &listed[0].service_deployment_arn);
    assert!(done.finished_at.is_some());
}

#[test]
fn a_failed_rollout_without_rollback_is_stopped() {
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
    assert_eq!(world.service("svc").deployments[0].rollout_state, "FAILED");
    let listed = list(&mut world, json!({ "service": "svc" })).service_deployments;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "STOPPED");
    assert!(
        listed[0]
            .status_reason
            .as_deref()
            .unwrap()
            .contains("circuit breaker"),
        "{:?}",
        listed[0].status_reason
    );
    let described = describe(&mut world, &listed[0].service_deployment_arn);
    assert_eq!(described.rollback, None);
    assert_eq!(
        described.deployment_circuit_breaker.unwrap().status,
        "TRIGGERED"
    );
}

#[test]
fn deleting_the_service_stops_its_unfinished_deployment() {
    let mut world = World::with_node();
    service_with(&mut world, json!({}));
    world.ok(
        ecs::delete_service,
        req(json!({ "service": "svc", "force": true })),
    );
    let listed = list(&mut world, json!({ "service": "svc" })).service_deployments;
    assert_eq!(listed[0].status, "STOPPED");
    assert_eq!(
        listed[0].status_reason.as_deref(),
        Some("The service was deleted.")
    );
}

#[test]
fn bad_input_is_refused_by_name_and_changes_nothing() {
    let mut world = World::with_node();
    service_with(&mut world, json!({}));
    let list_fails = |world: &mut World, body| {
        world.fails(
            ecs::list_service_deployments,
            req::<api::ListServiceDeploymentsRequest>(body),
        )
    };
    let error = list_fails(&mut world, json!({ "service": "svc", "status": ["DONE"] }));
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(error.message.contains("status 'DONE'"), "{}", error.message);
    assert!(
        error.message.contains("ROLLBACK_SUCCESSFUL"),
        "{}",
        error.message
    );
    let error = list_fails(&mut world, json!({}));
    assert!(error.message.contains("service"), "{}", error.message);
    let error = list_fails(&mut world, json!({ "service": "nosuch" }));
    assert_eq!(error.code, ErrorCode::ServiceNotFoundException);
    let error = list_fails(&mut world, json!({ "service": "svc", "cluster": "nosuch" }));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = list_fails(&mut world, json!({ "service": "svc", "maxResults": 101 }));
    assert!(error.message.contains("maxResults"), "{}", error.message);
    let error = list_fails(
        &mut world,
        json!({ "service": "svc", "createdAt": { "after": -1.0 } }),
    );
    assert!(
        error.message.contains("createdAt.after"),
        "{}",
        error.message
    );

    let error = world.fails(
        ecs::describe_service_deployments,
        req(json!({ "serviceDeploymentArns": [] })),
    );
    assert!(
        error.message.contains("serviceDeploymentArns"),
        "{}",
        error.message
    );
    let error = world.fails(
        ecs::describe_service_deployments,
        req(json!({ "serviceDeploymentArns": ["arn:aws:ecs:us-east-1:000000000000:service/default/svc"] })),
    );
    assert!(
        error.message.contains("serviceDeploymentArns[0]"),
        "{}",
        error.message
    );
    let many: Vec<String> = (0..21)
        .map(|i| format!("arn:aws:ecs:us-east-1:000000000000:service-revision/default/svc/{i}"))
        .collect();
    let error = world.fails(
        ecs::describe_service_revisions,
        req(json!({ "serviceRevisionArns": many })),
    );
    assert!(error.message.contains("at most 20"), "{}", error.message);

    // Well-formed but unknown: a MISSING failure, as every Describe call reports it.
    let unknown = world.ok(
        ecs::describe_service_revisions,
        req(json!({ "serviceRevisionArns": [
            "arn:aws:ecs:us-east-1:000000000000:service-revision/default/svc/1",
            "arn:aws:ecs:us-east-1:000000000000:service-revision/nosuch/svc/1",
        ] })),
    );
    assert!(unknown.service_revisions.is_empty());
    assert_eq!(unknown.failures.len(), 2);
    assert!(unknown
        .failures
        .iter()
        .all(|f| f.reason.as_deref() == Some("MISSING")));
}

#[test]
fn a_revision_holds_what_the_deployment_ran() {
    let mut world = World::with_node();
    world.register(json!({
        "family": "web",
        "containerDefinitions": [
            { "name": "app", "image": "nginx:1.27", "memory": 64 },
            { "name": "side", "image": "busybox", "memory": 16, "essential": false }
        ]
    }));
    world.create_service(json!({
        "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1, "launchType": "EC2"
    }));
    let listed = list(&mut world, json!({ "service": "svc" })).service_deployments;
    let revision = world
        .ok(
            ecs::describe_service_revisions,
            req(json!({ "serviceRevisionArns": [listed[0].target_service_revision_arn] })),
        )
        .service_revisions
        .remove(0);
    assert_eq!(
        revision.task_definition,
        "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"
    );
    assert_eq!(revision.launch_type.as_deref(), Some("EC2"));
    assert_eq!(
        revision.service_arn,
        "arn:aws:ecs:us-east-1:000000000000:service/default/svc"
    );
    let images: Vec<(String, String)> = revision
        .container_images
        .iter()
        .map(|c| (c.container_name.clone(), c.image.clone()))
        .collect();
    assert_eq!(
        images,
        [
            ("app".to_string(), "nginx:1.27".to_string()),
            ("side".to_string(), "busybox".to_string())
        ]
    );
}
