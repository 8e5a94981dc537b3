//! The ECS actions through the crate's public API: what they answer and what they store.

mod common;

use berth_core::ecs;
use berth_core::model::{DesiredStatus, HealthStatus, StopCode, TaskStatus};
use berth_core::ErrorCode;
use common::{req, World};
use serde_json::json;

fn arn(kind_and_name: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:{kind_and_name}")
}

#[test]
fn create_cluster_is_idempotent() {
    let mut world = World::new();
    let first = world
        .ok(ecs::create_cluster, req(json!({ "clusterName": "prod" })))
        .cluster;
    assert_eq!(first.cluster_arn, arn("cluster/prod"));
    assert_eq!(first.status, "ACTIVE");
    let before = world.state.clone();
    let second = world
        .ok(ecs::create_cluster, req(json!({ "clusterName": "prod" })))
        .cluster;
    assert_eq!(second.cluster_arn, first.cluster_arn);
    assert!(
        world.state == before,
        "the second CreateCluster stores nothing"
    );
    let listed = world.ok(ecs::list_clusters, req(json!({})));
    assert_eq!(listed.cluster_arns, vec![arn("cluster/prod")]);

    // No name means `default`.
    let default = world.ok(ecs::create_cluster, req(json!({}))).cluster;
    assert_eq!(default.cluster_name, "default");
}

#[test]
fn create_cluster_rejects_a_bad_name() {
    let mut world = World::new();
    let error = world.fails(
        ecs::create_cluster,
        req(json!({ "clusterName": "no spaces" })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
}

#[test]
fn new_cluster_gets_every_cluster_nodes() {
    let mut world = World::with_node();
    let cluster = world.create_cluster("other");
    assert_eq!(cluster.registered_container_instances_count, 1);
    let listed = world
        .ok(
            ecs::list_container_instances,
            req(json!({ "cluster": "other" })),
        )
        .container_instance_arns;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].starts_with(&arn("container-instance/other/")));
}

#[test]
fn delete_cluster_refuses_while_it_holds_a_service_or_tasks() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 0 }),
    );
    let error = world.fails(ecs::delete_cluster, req(json!({ "cluster": "default" })));
    assert_eq!(error.code, ErrorCode::ClusterContainsServicesException);

    world.ok(ecs::delete_service, req(json!({ "service": "svc" })));
    world.settle();
    assert_eq!(world.service("svc").status, "INACTIVE");

    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    assert_eq!(run.tasks.len(), 1);
    let error = world.fails(ecs::delete_cluster, req(json!({ "cluster": "default" })));
    assert_eq!(error.code, ErrorCode::ClusterContainsTasksException);

    world.ok(
        ecs::stop_task,
        req(json!({ "task": run.tasks[0].task_arn })),
    );
    world.agent_stop_all();
    let deleted = world
        .ok(
            ecs::delete_cluster,
            req(json!({ "cluster": arn("cluster/default") })),
        )
        .cluster;
    assert_eq!(deleted.status, "INACTIVE");
    assert!(world
        .ok(ecs::list_clusters, req(json!({})))
        .cluster_arns
        .is_empty());
    let described = world.ok(
        ecs::describe_clusters,
        req(json!({ "clusters": ["default"] })),
    );
    assert_eq!(described.clusters[0].status, "INACTIVE");
    let error = world.fails(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
}

#[test]
fn task_definition_revisions_count_up_and_are_never_reused() {
    let mut world = World::new();
    for expected in 1..=3 {
        let registered = world.register_simple("web");
        assert_eq!(registered, arn(&format!("task-definition/web:{expected}")));
    }
    let deregistered = world
        .ok(
            ecs::deregister_task_definition,
            req(json!({ "taskDefinition": "web:3" })),
        )
        .task_definition;
    assert_eq!(deregistered.status, "INACTIVE");
    assert!(deregistered.deregistered_at.is_some());
    assert_eq!(
        world.register_simple("web"),
        arn("task-definition/web:4"),
        "3 is not reused"
    );
    assert_eq!(
        world.register_simple("other"),
        arn("task-definition/other:1"),
        "per family"
    );

    // Revisions beyond 9 sort as numbers, not as text.
    for _ in 5..=11 {
        world.register_simple("web");
    }
    let latest = world
        .ok(
            ecs::describe_task_definition,
            req(json!({ "taskDefinition": "web" })),
        )
        .task_definition;
    assert_eq!(latest.revision, 11);
}

#[test]
fn describe_task_definition_by_family_revision_and_arn() {
    let mut world = World::new();
    world.register_simple("web");
    world.register_simple("web");
    world.register_simple("web");
    world.ok(
        ecs::deregister_task_definition,
        req(json!({ "taskDefinition": arn("task-definition/web:3") })),
    );

    let describe = |world: &mut World, given: &str| {
        world
            .ok(
                ecs::describe_task_definition,
                req(json!({ "taskDefinition": given })),
            )
            .task_definition
    };
    let by_family = describe(&mut world, "web");
    assert_eq!(
        by_family.revision, 2,
        "the family means its latest ACTIVE revision"
    );
    assert_eq!(by_family.status, "ACTIVE");
    let by_revision = describe(&mut world, "web:1");
    assert_eq!(
        by_revision.task_definition_arn,
        arn("task-definition/web:1")
    );
    let by_arn = describe(&mut world, &arn("task-definition/web:2"));
    assert_eq!(by_arn.revision, 2);
    let inactive = describe(&mut world, "web:3");
    assert_eq!(
        inactive.status, "INACTIVE",
        "a deregistered revision stays describable"
    );

    // Defaults ECS echoes.
    let container = &by_revision.container_definitions[0];
    assert_eq!(container.essential, Some(true));
    assert_eq!(container.port_mappings.as_deref(), Some(&[][..]));
    assert_eq!(container.environment.as_deref(), Some(&[][..]));
    assert_eq!(by_revision.network_mode, "bridge");

    let error = world.fails(
        ecs::describe_task_definition,
        req(json!({ "taskDefinition": "nope" })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    let error = world.fails(
        ecs::describe_task_definition,
        req(json!({ "taskDefinition": "web:9" })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
}

#[test]
fn deregistered_revision_cannot_start_new_work_but_running_tasks_stay() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.register_simple("web");
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web:2" })));
    let task_id = run.tasks[0]
        .task_arn
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    world.agent_start_all(HealthStatus::Unknown);
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web:2", "desiredCount": 1 }),
    );
    world.settle();
    world.agent_start_all(HealthStatus::Unknown);
    world.settle();

    world.ok(
        ecs::deregister_task_definition,
        req(json!({ "taskDefinition": "web:2" })),
    );
    let before = world.state.clone();
    assert!(world.settle().is_empty(), "deregistering touches no task");
    assert!(world.state == before);
    let task = world.task(&task_id);
    assert_eq!(
        (task.last_status, task.desired_status),
        (TaskStatus::Running, DesiredStatus::Running)
    );

    let error = world.fails(ecs::run_task, req(json!({ "taskDefinition": "web:2" })));
    assert_eq!(error.code, ErrorCode::ClientException);
    let error = world.fails(
        ecs::run_task,
        req(json!({ "taskDefinition": arn("task-definition/web:2") })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    let error = world.fails(
        ecs::create_service,
        req(json!({ "serviceName": "svc2", "taskDefinition": "web:2", "desiredCount": 1 })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "svc", "taskDefinition": "web:2" })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    // The family alone now means revision 1.
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    assert!(run.tasks[0]
        .task_definition_arn
        .ends_with("task-definition/web:1"));

    // A service already on the INACTIVE revision still scales, as in ECS.
    world.update_service(json!({ "service": "svc", "desiredCount": 2 }));
    world.settle();
    let live = world.live_tasks("svc");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|t| t.revision == 2));
}

#[test]
fn run_task_validates_count_cluster_and_definition() {
    let mut world = World::with_node();
    world.register_simple("web");
    for count in [0, 11] {
        let error = world.fails(
            ecs::run_task,
            req(json!({ "taskDefinition": "web", "count": count })),
        );
        assert_eq!(
            error.code,
            ErrorCode::InvalidParameterException,
            "count {count}"
        );
    }
    let error = world.fails(
        ecs::run_task,
        req(json!({ "cluster": "nope", "taskDefinition": "web" })),
    );
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = world.fails(ecs::run_task, req(json!({ "taskDefinition": "missing" })));
    assert_eq!(error.code, ErrorCode::ClientException);

    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "count": 10, "startedBy": "me", "group": "batch" })),
    );
    assert_eq!(run.tasks.len(), 10);
    assert!(run.failures.is_empty());
    for task in &run.tasks {
        assert_eq!(task.last_status, "PROVISIONING");
        assert_eq!(task.desired_status, "RUNNING");
        assert_eq!(task.started_by.as_deref(), Some("me"));
        assert_eq!(task.group.as_deref(), Some("batch"));
        assert!(task.task_arn.starts_with(&arn("task/default/")));
        assert_eq!(task.task_arn.rsplit('/').next().unwrap().len(), 32);
        assert_eq!(task.containers.len(), 1);
    }
    assert_eq!(world.state.tasks.len(), 10);
}

#[test]
fn unknown_cluster_is_cluster_not_found_everywhere() {
    let mut world = World::with_node();
    world.register_simple("web");
    let error = world.fails(ecs::list_tasks, req(json!({ "cluster": "nope" })));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = world.fails(ecs::list_services, req(json!({ "cluster": "nope" })));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = world.fails(
        ecs::describe_tasks,
        req(json!({ "cluster": "nope", "tasks": ["x"] })),
    );
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = world.fails(
        ecs::create_service,
        req(json!({ "cluster": "nope", "serviceName": "s", "taskDefinition": "web" })),
    );
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let error = world.fails(
        ecs::stop_task,
        req(json!({ "cluster": "nope", "task": "x" })),
    );
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    let described = world.ok(ecs::describe_clusters, req(json!({ "clusters": ["nope"] })));
    assert!(described.clusters.is_empty());
    assert_eq!(described.failures[0].reason.as_deref(), Some("MISSING"));
    assert_eq!(
        described.failures[0].arn.as_deref(),
        Some(arn("cluster/nope").as_str())
    );
}

#[test]
fn describe_tasks_reports_missing_tasks_as_failures() {
    let mut world = World::with_node();
    world.register_simple("web");
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    let known = run.tasks[0].task_arn.clone();
    let unknown_id = "0123456789abcdef0123456789abcdef";
    let described = world.ok(
        ecs::describe_tasks,
        req(json!({ "tasks": [known, unknown_id, arn("task/default/feed")] })),
    );
    assert_eq!(described.tasks.len(), 1);
    assert_eq!(described.tasks[0].task_arn, known);
    assert_eq!(described.failures.len(), 2);
    assert_eq!(
        described.failures[0],
        berth_core::api::Failure {
            arn: Some(arn(&format!("task/default/{unknown_id}"))),
            reason: Some("MISSING".to_string()),
            detail: None,
        }
    );
    assert_eq!(
        described.failures[1].arn.as_deref(),
        Some(arn("task/default/feed").as_str())
    );
    assert_eq!(described.failures[1].reason.as_deref(), Some("MISSING"));
}

#[test]
fn stop_task_and_list_tasks_by_desired_status() {
    let mut world = World::with_node();
    world.register_simple("web");
    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "count": 2 })),
    );
    let (first, second) = (run.tasks[0].task_arn.clone(), run.tasks[1].task_arn.clone());
    world.agent_start_all(HealthStatus::Unknown);

    let stopped = world
        .ok(
            ecs::stop_task,
            req(json!({ "task": first, "reason": "maintenance window" })),
        )
        .task;
    assert_eq!(stopped.desired_status, "STOPPED");
    assert_eq!(
        stopped.last_status, "RUNNING",
        "the agent has not stopped it yet"
    );
    assert_eq!(stopped.stop_code.as_deref(), Some("UserInitiated"));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("maintenance window")
    );
    assert!(stopped.stopping_at.is_some());
    let id = first.rsplit('/').next().unwrap();
    assert_eq!(world.task(id).desired_status, DesiredStatus::Stopped);
    assert_eq!(world.task(id).stop_code, Some(StopCode::UserInitiated));

    let running = world.ok(ecs::list_tasks, req(json!({}))).task_arns;
    assert_eq!(running, vec![second.clone()]);
    let wanted_stopped = world
        .ok(ecs::list_tasks, req(json!({ "desiredStatus": "STOPPED" })))
        .task_arns;
    assert_eq!(wanted_stopped, vec![first.clone()]);

    // Once the agent stops it, it is STOPPED with the user's reason kept.
    world.agent_stop_all();
    let described = world.ok(ecs::describe_tasks, req(json!({ "tasks": [first] })));
    let task = &described.tasks[0];
    assert_eq!(task.last_status, "STOPPED");
    assert_eq!(task.stop_code.as_deref(), Some("UserInitiated"));
    assert_eq!(task.stopped_reason.as_deref(), Some("maintenance window"));
    assert!(task.stopped_at.is_some());
    let wanted_stopped = world
        .ok(ecs::list_tasks, req(json!({ "desiredStatus": "STOPPED" })))
        .task_arns;
    assert_eq!(wanted_stopped.len(), 1);

    // Stopping it again changes nothing; an unknown task is an error.
    let before = world.state.clone();
    world.ok(ecs::stop_task, req(json!({ "task": id })));
    assert!(world.state == before);
    let error = world.fails(
        ecs::stop_task,
        req(json!({ "task": "0123456789abcdef0123456789abcdef" })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    let error = world.fails(ecs::list_tasks, req(json!({ "desiredStatus": "SLEEPING" })));
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
}

#[test]
fn stop_task_without_reason_has_a_default_reason() {
    let mut world = World::with_node();
    world.register_simple("web");
    let run = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    let stopped = world
        .ok(
            ecs::stop_task,
            req(json!({ "task": run.tasks[0].task_arn })),
        )
        .task;
    assert_eq!(stopped.stop_code.as_deref(), Some("UserInitiated"));
    assert!(stopped.stopped_reason.is_some_and(|r| !r.is_empty()));
}

#[test]
fn tags_on_a_cluster_and_a_service() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 0 }),
    );
    for resource in [arn("cluster/default"), arn("service/default/svc")] {
        world.ok(
            ecs::tag_resource,
            req(json!({ "resourceArn": resource, "tags": [
                { "key": "team", "value": "core" }, { "key": "env", "value": "dev" } ] })),
        );
        // Tagging an existing key overwrites its value.
        world.ok(
            ecs::tag_resource,
            req(json!({ "resourceArn": resource, "tags": [{ "key": "env", "value": "prod" }] })),
        );
        let tags = world
            .ok(
                ecs::list_tags_for_resource,
                req(json!({ "resourceArn": resource })),
            )
            .tags;
        let pairs: Vec<(String, String)> = tags
            .iter()
            .map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("team".to_string(), "core".to_string()),
                ("env".to_string(), "prod".to_string())
            ],
            "{resource}"
        );
        world.ok(
            ecs::untag_resource,
            req(json!({ "resourceArn": resource, "tagKeys": ["team"] })),
        );
        let tags = world
            .ok(
                ecs::list_tags_for_resource,
                req(json!({ "resourceArn": resource })),
            )
            .tags;
        assert_eq!(tags.len(), 1, "{resource}");
        assert_eq!(tags[0].key.as_deref(), Some("env"));

        let error = world.fails(
            ecs::tag_resource,
            req(json!({ "resourceArn": resource, "tags": [{ "key": "aws:reserved", "value": "x" }] })),
        );
        assert_eq!(error.code, ErrorCode::InvalidParameterException);
    }
    let described = world.ok(
        ecs::describe_services,
        req(json!({ "services": ["svc"], "include": ["TAGS"] })),
    );
    assert_eq!(described.services[0].tags.len(), 1);
    let error = world.fails(
        ecs::list_tags_for_resource,
        req(json!({ "resourceArn": arn("service/default/missing") })),
    );
    assert_eq!(error.code, ErrorCode::ResourceNotFoundException);
    let error = world.fails(
        ecs::list_tags_for_resource,
        req(json!({ "resourceArn": "not-an-arn" })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
}

#[test]
fn invalid_service_requests_store_nothing() {
    let mut world = World::with_node();
    world.register_simple("web");
    let create = |extra: serde_json::Value| {
        let mut body = json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for (extra, code) in [
        (
            json!({ "serviceName": "bad name" }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "desiredCount": -1 }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "taskDefinition": "missing" }),
            ErrorCode::ClientException,
        ),
        (
            json!({ "deploymentConfiguration": { "maximumPercent": 300 } }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "deploymentConfiguration": { "maximumPercent": 100, "minimumHealthyPercent": 100 } }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "placementStrategy": [{ "type": "binpack", "field": "disk" }] }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "placementConstraints": [{ "type": "sameRack" }] }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "schedulingStrategy": "SOMETIMES" }),
            ErrorCode::InvalidParameterException,
        ),
    ] {
        let error = world.fails(ecs::create_service, req(create(extra.clone())));
        assert_eq!(error.code, code, "{extra}");
    }

    world.create_service(create(json!({})));
    let error = world.fails(ecs::create_service, req(create(json!({}))));
    assert_eq!(
        error.code,
        ErrorCode::InvalidParameterException,
        "a second service of the same name"
    );
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "svc", "deploymentConfiguration": { "minimumHealthyPercent": 150 } })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "missing", "desiredCount": 1 })),
    );
    assert_eq!(error.code, ErrorCode::ServiceNotFoundException);
    let error = world.fails(ecs::describe_services, req(json!({ "services": [] })));
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    let described = world.ok(
        ecs::describe_services,
        req(json!({ "services": ["svc", "missing"] })),
    );
    assert_eq!(described.services.len(), 1);
    assert_eq!(
        described.failures[0].arn.as_deref(),
        Some(arn("service/default/missing").as_str())
    );
    assert_eq!(described.failures[0].reason.as_deref(), Some("MISSING"));
}

#[test]
fn read_only_actions_store_nothing() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    world.settle();
    let before = world.state.clone();
    world.ok(ecs::describe_clusters, req(json!({})));
    world.ok(ecs::list_clusters, req(json!({})));
    world.ok(ecs::describe_services, req(json!({ "services": ["svc"] })));
    world.ok(ecs::list_services, req(json!({})));
    world.ok(ecs::list_tasks, req(json!({})));
    world.ok(
        ecs::describe_task_definition,
        req(json!({ "taskDefinition": "web" })),
    );
    world.ok(ecs::list_task_definitions, req(json!({})));
    world.ok(ecs::list_task_definition_families, req(json!({})));
    world.ok(
        ecs::list_tags_for_resource,
        req(json!({ "resourceArn": arn("cluster/default") })),
    );
    assert!(world.state == before);
    let listed = world.ok(ecs::list_services, req(json!({}))).service_arns;
    assert_eq!(listed, vec![arn("service/default/svc")]);
}

#[test]
fn invalid_task_definitions_store_nothing() {
    let mut world = World::new();
    let bodies = [
        json!({ "family": "web", "containerDefinitions": [] }),
        json!({ "family": "web", "containerDefinitions": [{ "image": "nginx", "memory": 128 }] }),
        json!({ "family": "web", "containerDefinitions": [{ "name": "app", "memory": 128 }] }),
        json!({ "family": "web", "containerDefinitions": [
            { "name": "app", "image": "nginx", "memory": 128 },
            { "name": "app", "image": "nginx", "memory": 128 } ] }),
        json!({ "family": "web", "containerDefinitions": [
            { "name": "app", "image": "nginx", "memory": 128, "essential": false } ] }),
        json!({ "family": "bad family", "containerDefinitions": [
            { "name": "app", "image": "nginx", "memory": 128 } ] }),
    ];
    for body in bodies {
        let error = world.fails(ecs::register_task_definition, req(body.clone()));
        assert_eq!(error.code, ErrorCode::ClientException, "{body}: {error}");
    }
    assert!(world.state.task_definitions.is_empty());
    assert!(world.state.family_revisions.is_empty());
}

#[test]
fn describe_clusters_counts_what_runs() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 2 }),
    );
    world.settle();
    world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    let cluster = world
        .ok(ecs::describe_clusters, req(json!({})))
        .clusters
        .remove(0);
    assert_eq!(cluster.registered_container_instances_count, 1);
    assert_eq!(cluster.active_services_count, 1);
    assert_eq!(
        (cluster.running_tasks_count, cluster.pending_tasks_count),
        (0, 3)
    );
    world.agent_start_all(HealthStatus::Unknown);
    let cluster = world
        .ok(ecs::describe_clusters, req(json!({})))
        .clusters
        .remove(0);
    assert_eq!(
        (cluster.running_tasks_count, cluster.pending_tasks_count),
        (3, 0)
    );
}

#[test]
fn run_task_overrides_are_checked_against_the_definition_and_refusals_run_nothing() {
    let mut world = World::with_node();
    world.register(json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "web", "memory": 128, "memoryReservation": 64}
    ]}));
    let cases = [
        (json!({"name": "nope"}), "names no container"),
        (json!({"name": "app", "memory": 4}), "at least 6 MiB"),
        (
            json!({"name": "app", "memory": 32}),
            "memory 32 MiB is less than memoryReservation 64 MiB",
        ),
        (
            json!({"name": "app", "memoryReservation": 256}),
            "memory 128 MiB is less than memoryReservation 256 MiB",
        ),
        (
            json!({"name": "app", "memoryReservation": -1}),
            "memoryReservation must not be negative",
        ),
        (
            json!({"name": "app", "cpu": 1_i64 << 62}),
            "cpu must be at most 1048576",
        ),
        (
            json!({"name": "app", "memory": 1_i64 << 40}),
            "memory must be at most 16777216",
        ),
        (
            json!({"name": "app", "cpu": -5}),
            "cpu must not be negative",
        ),
    ];
    for (container_override, words) in cases {
        let error = world.fails(
            ecs::run_task,
            req(json!({"taskDefinition": "web",
                "overrides": {"containerOverrides": [container_override.clone()]}})),
        );
        assert_eq!(error.code, ErrorCode::InvalidParameterException);
        assert!(
            error.message.contains(words),
            "{container_override}: {}",
            error.message
        );
    }
    assert!(
        world.state.tasks.is_empty(),
        "no refused RunTask made a task"
    );
    // Both limits overridden together, consistently: it runs.
    let run = world.ok(
        ecs::run_task,
        req(
            json!({"taskDefinition": "web", "overrides": {"containerOverrides": [
            {"name": "app", "memory": 512, "memoryReservation": 256}]}}),
        ),
    );
    assert_eq!(run.tasks.len(), 1);
}

#[test]
fn absurd_cpu_and_memory_are_refused_and_nothing_wraps_around_to_fit() {
    let mut world = World::with_node();
    // Four containers of 2^62 CPU units summed to 0 in a u64 and were placed.
    let huge = 1_i64 << 62;
    let containers: Vec<_> = (0..4)
        .map(|i| json!({"name": format!("c{i}"), "image": "web", "memory": 16, "cpu": huge}))
        .collect();
    let error = world.fails(
        ecs::register_task_definition,
        req(json!({"family": "huge", "containerDefinitions": containers})),
    );
    assert!(
        error.message.contains("cpu must be at most 1048576"),
        "{}",
        error.message
    );
    for (field, value) in [("cpu", "1e300 vCPU"), ("memory", "99999999999 GB")] {
        let error = world.fails(
            ecs::register_task_definition,
            req(json!({"family": "huge", field: value,
                "containerDefinitions": [{"name": "a", "image": "web", "memory": 16}]})),
        );
        assert!(
            error
                .message
                .contains(&format!("'{field}' setting for task: at most")),
            "{field}: {}",
            error.message
        );
    }
    assert!(world.state.task_definitions.is_empty());

    // The largest figures berth takes register, and a task of them fits no machine.
    let max = json!({"name": "a", "image": "web", "cpu": 1_i64 << 20, "memory": 1_i64 << 24});
    world.register(json!({"family": "max", "containerDefinitions": [max]}));
    let run = world.ok(ecs::run_task, req(json!({"taskDefinition": "max"})));
    assert!(run.tasks.is_empty());
    assert_eq!(run.failures[0].reason.as_deref(), Some("RESOURCE:CPU"));
}

#[test]
fn tags_are_bounded_wherever_they_are_given() {
    let mut world = World::with_node();
    let tags = |n: usize| -> Vec<_> {
        (0..n)
            .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
            .collect()
    };
    let error = world.fails(
        ecs::create_cluster,
        req(json!({"clusterName": "tagged", "tags": tags(51)})),
    );
    assert!(
        error.message.contains("at most 50 tags"),
        "{}",
        error.message
    );
    world.ok(
        ecs::create_cluster,
        req(json!({"clusterName": "tagged", "tags": tags(50)})),
    );
    let definition = json!({"family": "web", "tags": tags(51),
        "containerDefinitions": [{"name": "a", "image": "web", "memory": 16}]});
    let error = world.fails(ecs::register_task_definition, req(definition));
    assert!(
        error.message.contains("at most 50 tags"),
        "{}",
        error.message
    );
    world.register(json!({"family": "web",
        "containerDefinitions": [{"name": "a", "image": "web", "memory": 16}]}));
    let error = world.fails(
        ecs::create_service,
        req(json!({"serviceName": "s", "taskDefinition": "web", "tags": tags(51)})),
    );
    assert!(
        error.message.contains("at most 50 tags"),
        "{}",
        error.message
    );
    let error = world.fails(
        ecs::run_task,
        req(json!({"taskDefinition": "web", "tags": [{"key": "k".repeat(129)}]})),
    );
    assert!(error.message.contains("tags[0].key"), "{}", error.message);
    assert!(world.state.services.is_empty() && world.state.tasks.is_empty());
}

/// Runs an action that must be refused as InvalidParameterException (storing nothing);
/// returns its message.
fn refused<Q: serde::de::DeserializeOwned + ecs::EcsRequest, R: std::fmt::Debug>(
    world: &mut World,
    action: impl FnOnce(&berth_core::State, Q, &mut ecs::Context<'_>) -> ecs::EcsResult<R>,
    body: serde_json::Value,
) -> String {
    let error = world.fails(action, req(body.clone()));
    assert_eq!(
        error.code,
        ErrorCode::InvalidParameterException,
        "{body}: {error}"
    );
    error.message
}

#[test]
fn unknown_words_for_ecs_enums_are_refused_naming_the_field() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.create_service(
        json!({ "serviceName": "svc", "taskDefinition": "web", "desiredCount": 1 }),
    );
    let service = |extra: serde_json::Value| {
        let mut body = json!({ "serviceName": "new", "taskDefinition": "web" });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    const LAUNCH_TYPES: &str = "use EC2, FARGATE or EXTERNAL";
    const PROPAGATE: &str = "use TASK_DEFINITION, SERVICE or NONE";
    let cases: Vec<(String, String)> = vec![
        (
            refused(&mut world, ecs::create_service, service(json!({ "schedulingStrategy": "SOMETIMES" }))),
            "schedulingStrategy 'SOMETIMES' is invalid: use REPLICA or DAEMON".into(),
        ),
        (
            refused(&mut world, ecs::create_service, service(json!({ "launchType": "LAMBDA" }))),
            format!("launchType 'LAMBDA' is invalid: {LAUNCH_TYPES}"),
        ),
        (
            refused(&mut world, ecs::create_service, service(json!({ "launchType": "ec2" }))),
            format!("launchType 'ec2' is invalid: {LAUNCH_TYPES}"),
        ),
        (
            refused(&mut world, ecs::create_service, service(json!({ "propagateTags": "ALL" }))),
            format!("propagateTags 'ALL' is invalid: {PROPAGATE}"),
        ),
        (
            refused(&mut world, ecs::update_service, json!({ "service": "svc", "propagateTags": "service" })),
            format!("propagateTags 'service' is invalid: {PROPAGATE}"),
        ),
        (
            refused(&mut world, ecs::list_services, json!({ "schedulingStrategy": "BOTH" })),
            "schedulingStrategy 'BOTH' is invalid: use REPLICA or DAEMON".into(),
        ),
        (
            refused(&mut world, ecs::list_services, json!({ "launchType": "LAMBDA" })),
            format!("launchType 'LAMBDA' is invalid: {LAUNCH_TYPES}"),
        ),
        (
            refused(&mut world, ecs::list_tasks, json!({ "launchType": "LAMBDA" })),
            format!("launchType 'LAMBDA' is invalid: {LAUNCH_TYPES}"),
        ),
        (
            refused(&mut world, ecs::run_task, json!({ "taskDefinition": "web", "launchType": "LAMBDA" })),
            format!("launchType 'LAMBDA' is invalid: {LAUNCH_TYPES}"),
        ),
        (
            refused(&mut world, ecs::run_task, json!({ "taskDefinition": "web", "propagateTags": "ALL" })),
            format!("propagateTags 'ALL' is invalid: {PROPAGATE}"),
        ),
        (
            refused(&mut world, ecs::list_container_instances, json!({ "status": "BUSY" })),
            "status 'BUSY' is invalid: use ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED".into(),
        ),
        (
            // ECS lists no deregistered instances: INACTIVE is no filter.
            refused(&mut world, ecs::list_container_instances, json!({ "status": "INACTIVE" })),
            "status 'INACTIVE' is invalid: use ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED".into(),
        ),
        (
            refused(&mut world, ecs::list_task_definitions, json!({ "status": "DELETED" })),
            "status 'DELETED' is invalid: use ACTIVE, INACTIVE, DELETE_IN_PROGRESS or ALL".into(),
        ),
        (
            refused(&mut world, ecs::list_task_definition_families, json!({ "status": "active" })),
            "status 'active' is invalid: use ACTIVE, INACTIVE or ALL".into(),
        ),
    ];
    for (message, wanted) in cases {
        assert_eq!(message, wanted);
    }
    assert!(world.state.service("default", "new").is_none());
}

#[test]
fn services_and_tasks_show_and_filter_by_their_launch_type_and_strategy() {
    let mut world = World::with_node();
    world.register_simple("web");
    for body in [
        json!({ "serviceName": "ec2", "taskDefinition": "web", "desiredCount": 1, "launchType": "EC2",
                "propagateTags": "SERVICE", "tags": [{ "key": "team", "value": "web" }] }),
        json!({ "serviceName": "plain", "taskDefinition": "web", "desiredCount": 1 }),
        json!({ "serviceName": "fargate", "taskDefinition": "web", "desiredCount": 1, "launchType": "FARGATE" }),
        json!({ "serviceName": "daemon", "taskDefinition": "web", "schedulingStrategy": "DAEMON" }),
    ] {
        world.create_service(body);
    }
    world.settle();
    let names = |world: &mut World, filter: serde_json::Value| {
        let mut names: Vec<String> = world
            .ok(ecs::list_services, req(filter))
            .service_arns
            .iter()
            .map(|a| a.rsplit('/').next().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // Without a launch type a service is EC2, ECS's default, as it is shown.
    assert_eq!(
        names(&mut world, json!({ "launchType": "EC2" })),
        ["daemon", "ec2", "plain"]
    );
    assert_eq!(
        names(&mut world, json!({ "launchType": "FARGATE" })),
        ["fargate"]
    );
    assert!(names(&mut world, json!({ "launchType": "EXTERNAL" })).is_empty());
    assert_eq!(
        names(&mut world, json!({ "schedulingStrategy": "DAEMON" })),
        ["daemon"]
    );
    assert_eq!(
        names(
            &mut world,
            json!({ "schedulingStrategy": "REPLICA", "launchType": "EC2" })
        ),
        ["ec2", "plain"]
    );

    let plain = world.service("plain");
    assert_eq!(plain.launch_type.as_deref(), Some("EC2"));
    assert_eq!(plain.propagate_tags, "NONE");
    assert_eq!(plain.scheduling_strategy, "REPLICA");
    assert_eq!(plain.deployments[0].status, "PRIMARY");
    assert_eq!(plain.deployments[0].launch_type.as_deref(), Some("EC2"));
    let daemon = world.service("daemon");
    assert_eq!(daemon.scheduling_strategy, "DAEMON");
    assert_eq!(
        daemon.desired_count, 1,
        "one task per ACTIVE container instance"
    );
    let fargate = world.service("fargate");
    assert_eq!(fargate.launch_type.as_deref(), Some("FARGATE"));

    let fargate_tasks = world
        .ok(ecs::list_tasks, req(json!({ "launchType": "FARGATE" })))
        .task_arns;
    assert_eq!(fargate_tasks.len(), 1);
    let described = world.ok(ecs::describe_tasks, req(json!({ "tasks": fargate_tasks })));
    assert_eq!(described.tasks[0].launch_type.as_deref(), Some("FARGATE"));
    assert_eq!(described.tasks[0].group.as_deref(), Some("service:fargate"));
    let ec2_tasks = world
        .ok(ecs::list_tasks, req(json!({ "launchType": "EC2" })))
        .task_arns;
    assert_eq!(ec2_tasks.len(), 3, "ec2, plain and daemon");

    // propagateTags SERVICE gives the service's tags to its tasks; NONE gives none.
    let ec2_task = world.tasks_of("ec2")[0].clone();
    assert_eq!(ec2_task.tags.len(), 1);
    assert!(world.tasks_of("plain")[0].tags.is_empty());
    world.update_service(json!({ "service": "plain", "propagateTags": "SERVICE" }));
    assert_eq!(world.service("plain").propagate_tags, "SERVICE");
}

#[test]
fn container_instances_are_listed_by_status() {
    let mut world = World::with_node();
    let listed = |world: &mut World, filter: serde_json::Value| {
        world
            .ok(ecs::list_container_instances, req(filter))
            .container_instance_arns
            .len()
    };
    assert_eq!(listed(&mut world, json!({})), 1);
    assert_eq!(listed(&mut world, json!({ "status": "ACTIVE" })), 1);
    assert_eq!(listed(&mut world, json!({ "status": "DRAINING" })), 0);
    assert_eq!(listed(&mut world, json!({ "status": "REGISTERING" })), 0);
}
