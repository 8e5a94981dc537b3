//! Capacity providers users make, as ECS's API reference and botocore's model describe
//! them: Create/Update/DeleteCapacityProvider, their place in a cluster and in a
//! strategy, and the container instances (berth's agents) whose tasks they decide.

mod common;

use std::collections::BTreeMap;

use berth_core::ecs;
use berth_core::ecs::Context;
use berth_core::nodes::{register_node, NodeRegistration};
use berth_core::ErrorCode;
use berth_core::State;
use common::{req, World, CLUSTER};
use serde_json::{json, Value};

fn asg(name: &str) -> Value {
    json!({ "autoScalingGroupArn": format!(
        "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/{name}") })
}

fn create(world: &mut World, name: &str) -> berth_api::CapacityProvider {
    world
        .ok(
            ecs::create_capacity_provider,
            req(json!({ "name": name, "autoScalingGroupProvider": asg(name) })),
        )
        .capacity_provider
}

/// Joins `node` to the default cluster as its agent does with `--capacity-provider`.
fn join(world: &mut World, node: &str, provider: Option<&str>) {
    let registration = NodeRegistration {
        node_id: node.to_string(),
        hostname: format!("host-{node}"),
        cpu: 2048,
        memory: 4096,
        agent_version: "1.0.0".to_string(),
        docker_version: "27.0.0".to_string(),
        cluster: CLUSTER.to_string(),
        joins_every_cluster: false,
        address: None,
        attributes: Default::default(),
        capacity_provider: provider.map(String::from),
    };
    let mut ctx = Context {
        now: world.now,
        scope: &world.scope,
        ids: &mut world.ids,
        policy: &world.policy,
    };
    let commands = register_node(&world.state, &registration, &mut ctx);
    world.apply(&commands);
}

fn instance_of(world: &World, node: &str) -> String {
    world
        .state
        .container_instances
        .values()
        .find(|i| i.node_id == node)
        .map(|i| i.id.clone())
        .unwrap()
}

/// Tasks of the state per (container instance node, capacity provider).
fn placements(state: &State) -> BTreeMap<(String, Option<String>), usize> {
    let mut counts = BTreeMap::new();
    for task in state.tasks.values() {
        let node = task
            .container_instance_id
            .as_ref()
            .and_then(|id| state.container_instances.get(id))
            .map(|i| i.node_id.clone())
            .unwrap_or_default();
        *counts
            .entry((node, task.capacity_provider_name.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_capacity_provider_is_created_described_updated_and_deleted() {
    let mut world = World::new();
    world.create_cluster(CLUSTER);
    let made = create(&mut world, "blue");
    assert_eq!(
        made.capacity_provider_arn,
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/blue"
    );
    assert_eq!(made.status, "ACTIVE");
    let group = made.auto_scaling_group_provider.clone().unwrap();
    assert!(group.auto_scaling_group_arn.unwrap().ends_with("/blue"));
    // ECS's defaults, echoed.
    let scaling = group.managed_scaling.unwrap();
    assert_eq!(scaling.status.as_deref(), Some("DISABLED"));
    assert_eq!(scaling.target_capacity, Some(100));
    assert_eq!(scaling.minimum_scaling_step_size, Some(1));
    assert_eq!(scaling.maximum_scaling_step_size, Some(10_000));
    assert_eq!(scaling.instance_warmup_period, Some(300));
    assert_eq!(
        group.managed_termination_protection.as_deref(),
        Some("DISABLED")
    );
    assert_eq!(group.managed_draining.as_deref(), Some("ENABLED"));

    let all = world.ok(ecs::describe_capacity_providers, req(json!({})));
    let names: Vec<&str> = all
        .capacity_providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["FARGATE", "FARGATE_SPOT", "blue"]);

    // The same name again: ECS's ClientException, nothing changed.
    let before = world.state.clone();
    let error = world.fails(
        ecs::create_capacity_provider,
        req(json!({ "name": "blue", "autoScalingGroupProvider": asg("other") })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    assert!(
        error
            .message
            .starts_with("The specified capacity provider already exists."),
        "{error}"
    );
    // Another provider over the same Auto Scaling group.
    let error = world.fails(
        ecs::create_capacity_provider,
        req(json!({ "name": "green", "autoScalingGroupProvider": asg("blue") })),
    );
    assert_eq!(error.code, ErrorCode::ClientException);
    assert!(world.state == before);

    let updated = world
        .ok(
            ecs::update_capacity_provider,
            req(json!({ "name": "blue", "autoScalingGroupProvider": {
                "managedScaling": { "status": "DISABLED", "targetCapacity": 80 },
                "managedDraining": "DISABLED" } })),
        )
        .capacity_provider;
    assert_eq!(updated.update_status.as_deref(), Some("UPDATE_COMPLETE"));
    let group = updated.auto_scaling_group_provider.unwrap();
    assert_eq!(group.managed_scaling.unwrap().target_capacity, Some(80));
    assert_eq!(group.managed_draining.as_deref(), Some("DISABLED"));

    let deleted = world
        .ok(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": made.capacity_provider_arn })),
        )
        .capacity_provider;
    assert_eq!(deleted.status, "INACTIVE");
    assert_eq!(deleted.update_status.as_deref(), Some("DELETE_COMPLETE"));
    let described = world.ok(
        ecs::describe_capacity_providers,
        req(json!({ "capacityProviders": ["blue"] })),
    );
    assert_eq!(described.capacity_providers[0].status, "INACTIVE");
    // Deleted: neither updated nor deleted again, and no cluster may take it.
    for error in [
        world.fails(
            ecs::update_capacity_provider,
            req(json!({ "name": "blue", "autoScalingGroupProvider": {} })),
        ),
        world.fails(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": "blue" })),
        ),
    ] {
        assert_eq!(error.code, ErrorCode::ClientException, "{error}");
    }
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["blue"],
                    "defaultCapacityProviderStrategy": [] })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(
        error.message.contains("is not in an ACTIVE state"),
        "{error}"
    );
    // Its name is free again.
    create(&mut world, "blue");
}

#[test]
fn names_and_settings_berth_cannot_honour_are_refused_by_name() {
    let mut world = World::new();
    let before = world.state.clone();
    for name in [
        "",
        "aws-x",
        "ECSpool",
        "Fargate2",
        "has space",
        &"x".repeat(256),
    ] {
        let error = world.fails(
            ecs::create_capacity_provider,
            req(json!({ "name": name, "autoScalingGroupProvider": asg("g") })),
        );
        assert_eq!(error.code, ErrorCode::ClientException, "{name:?}: {error}");
    }
    let cases = [
        // No Auto Scaling group.
        (
            json!({ "name": "p" }),
            ErrorCode::InvalidParameterException,
            "autoScalingGroupProvider",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": {} }),
            ErrorCode::InvalidParameterException,
            "autoScalingGroupArn",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "g",
                    "managedScaling": { "status": "ENABLED" } } }),
            ErrorCode::InvalidParameterException,
            "managedScaling.status ENABLED",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "g",
                    "managedTerminationProtection": "ENABLED" } }),
            ErrorCode::ClientException,
            "managed termination protection",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "g",
                    "managedScaling": { "targetCapacity": 0 } } }),
            ErrorCode::InvalidParameterException,
            "targetCapacity",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "g",
                    "managedScaling": { "minimumScalingStepSize": 5, "maximumScalingStepSize": 2 } } }),
            ErrorCode::InvalidParameterException,
            "minimumScalingStepSize",
        ),
        (
            json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "g",
                    "managedDraining": "SOMETIMES" } }),
            ErrorCode::InvalidParameterException,
            "managedDraining",
        ),
        (
            json!({ "name": "p", "managedInstancesProvider": {} }),
            ErrorCode::UnsupportedFeatureException,
            "managedInstancesProvider",
        ),
        (
            json!({ "name": "p", "cluster": "default", "autoScalingGroupProvider": asg("g") }),
            ErrorCode::InvalidParameterException,
            "cluster",
        ),
    ];
    for (body, code, named) in cases {
        let error = world.fails(ecs::create_capacity_provider, req(body.clone()));
        assert_eq!(error.code, code, "{body}: {error}");
        assert!(error.message.contains(named), "{body}: {error}");
    }
    // The built-in providers are reserved.
    for action in [
        world.fails(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": "FARGATE" })),
        ),
        world.fails(
            ecs::update_capacity_provider,
            req(json!({ "name": "FARGATE_SPOT", "autoScalingGroupProvider": {} })),
        ),
        world.fails(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": "never-made" })),
        ),
    ] {
        assert_eq!(action.code, ErrorCode::ClientException, "{action}");
    }
    assert!(world.state == before);
    // Update keeps the group; scaling stays off.
    create(&mut world, "p");
    let before = world.state.clone();
    for body in [
        json!({ "name": "p", "autoScalingGroupProvider": { "autoScalingGroupArn": "other" } }),
        json!({ "name": "p", "autoScalingGroupProvider": { "managedScaling": { "status": "ENABLED" } } }),
        json!({ "name": "p" }),
    ] {
        let error = world.fails(ecs::update_capacity_provider, req(body.clone()));
        assert_eq!(error.code, ErrorCode::InvalidParameterException, "{body}");
    }
    assert!(world.state == before);
}

#[test]
fn a_provider_in_use_stays_in_its_cluster_and_is_not_deleted() {
    let mut world = World::new();
    world.create_cluster(CLUSTER);
    join(&mut world, "node-blue", Some("blue"));
    world.register_simple("web");
    create(&mut world, "blue");
    create(&mut world, "green");
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["nope"],
                    "defaultCapacityProviderStrategy": [] })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(error.message.contains("'nope' does not exist"), "{error}");
    // Fargate's and an Auto Scaling group's providers are not mixed in a strategy.
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(
            json!({ "cluster": CLUSTER, "capacityProviders": ["FARGATE", "blue"],
                    "defaultCapacityProviderStrategy": [
                        { "capacityProvider": "FARGATE", "weight": 1 },
                        { "capacityProvider": "blue", "weight": 1 }] }),
        ),
    );
    assert!(error.message.contains("cannot contain a mix"), "{error}");
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(
            json!({ "cluster": CLUSTER, "capacityProviders": ["blue", "green"],
                    "defaultCapacityProviderStrategy": [] }),
        ),
    );

    // Associated with a cluster: DELETE_FAILED with ECS's reason, still ACTIVE.
    let failed = world
        .ok(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": "green" })),
        )
        .capacity_provider;
    assert_eq!(failed.status, "ACTIVE");
    assert_eq!(failed.update_status.as_deref(), Some("DELETE_FAILED"));
    assert_eq!(
        failed.update_status_reason.as_deref(),
        Some("The capacity provider cannot be deleted because it is associated with cluster: default. Remove the capacity provider from the cluster and try again.")
    );

    // A service's strategy uses blue: it cannot leave the cluster.
    world.create_service(
        json!({ "serviceName": "s", "taskDefinition": "web", "desiredCount": 0,
        "capacityProviderStrategy": [{ "capacityProvider": "blue", "weight": 1 }] }),
    );
    let before = world.state.clone();
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["green"],
                    "defaultCapacityProviderStrategy": [] })),
    );
    assert_eq!(error.code, ErrorCode::ResourceInUseException);
    assert_eq!(
        error.message,
        "The specified capacity provider is in use and cannot be removed."
    );
    assert!(world.state == before);
    // green, unused, leaves; then it can be deleted.
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["blue"],
                    "defaultCapacityProviderStrategy": [] })),
    );
    let deleted = world
        .ok(
            ecs::delete_capacity_provider,
            req(json!({ "capacityProvider": "green" })),
        )
        .capacity_provider;
    assert_eq!(deleted.status, "INACTIVE");

    // A running task placed with blue keeps it in the cluster too.
    world.ok(
        ecs::update_service,
        req(json!({ "service": "s", "capacityProviderStrategy": [], "forceNewDeployment": true })),
    );
    world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web",
                    "capacityProviderStrategy": [{ "capacityProvider": "blue", "weight": 1 }] })),
    );
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": [],
                    "defaultCapacityProviderStrategy": [] })),
    );
    assert_eq!(error.code, ErrorCode::ResourceInUseException);
}

#[test]
fn tags_of_a_capacity_provider_are_listed_and_changed() {
    let mut world = World::new();
    world.ok(
        ecs::create_capacity_provider,
        req(
            json!({ "name": "blue", "autoScalingGroupProvider": asg("blue"),
                    "tags": [{ "key": "team", "value": "a" }] }),
        ),
    );
    let arn = "arn:aws:ecs:us-east-1:000000000000:capacity-provider/blue";
    world.ok(
        ecs::tag_resource,
        req(json!({ "resourceArn": arn, "tags": [{ "key": "env", "value": "prod" }] })),
    );
    let tags = world
        .ok(
            ecs::list_tags_for_resource,
            req(json!({ "resourceArn": arn })),
        )
        .tags;
    let keys: Vec<_> = tags.iter().filter_map(|t| t.key.as_deref()).collect();
    assert_eq!(keys, ["team", "env"]);
    // Tags are shown only with include TAGS.
    let plain = world.ok(
        ecs::describe_capacity_providers,
        req(json!({ "capacityProviders": ["blue"] })),
    );
    assert!(plain.capacity_providers[0].tags.is_empty());
    let tagged = world.ok(
        ecs::describe_capacity_providers,
        req(json!({ "capacityProviders": ["blue"], "include": ["TAGS"] })),
    );
    assert_eq!(tagged.capacity_providers[0].tags.len(), 2);
}

#[test]
fn tasks_go_only_to_the_instances_of_their_provider() {
    let mut world = World::new();
    world.create_cluster(CLUSTER);
    join(&mut world, "node-blue", Some("blue"));
    join(&mut world, "node-green", Some("green"));
    join(&mut world, "node-plain", None);
    let blue_instance = instance_of(&world, "node-blue");
    assert_eq!(
        world.state.container_instances[&blue_instance]
            .capacity_provider_name
            .as_deref(),
        Some("blue")
    );
    let shown = world.ok(
        ecs::describe_container_instances,
        req(json!({ "containerInstances": [blue_instance] })),
    );
    assert_eq!(
        shown.container_instances[0]
            .capacity_provider_name
            .as_deref(),
        Some("blue")
    );
    world.register_simple("web");
    create(&mut world, "blue");
    create(&mut world, "green");
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["blue", "green"],
                    "defaultCapacityProviderStrategy": [{ "capacityProvider": "green", "weight": 1 }] })),
    );
    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "count": 4,
                    "capacityProviderStrategy": [{ "capacityProvider": "blue", "weight": 1 }] })),
    );
    assert_eq!(run.tasks.len(), 4);
    for task in &run.tasks {
        assert_eq!(task.capacity_provider_name.as_deref(), Some("blue"));
        assert_eq!(task.launch_type.as_deref(), Some("EC2"));
    }
    // Neither a launch type nor a strategy: the cluster's default.
    let default = world.ok(ecs::run_task, req(json!({ "taskDefinition": "web" })));
    assert_eq!(
        default.tasks[0].capacity_provider_name.as_deref(),
        Some("green")
    );
    // A launch type: any instance, no provider.
    let launched = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "launchType": "EC2" })),
    );
    assert_eq!(launched.tasks[0].capacity_provider_name, None);
    let counts = placements(&world.state);
    assert_eq!(
        counts[&("node-blue".to_string(), Some("blue".to_string()))],
        4
    );
    assert_eq!(
        counts[&("node-green".to_string(), Some("green".to_string()))],
        1
    );

    // A provider without instances places nothing.
    create(&mut world, "empty");
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(
            json!({ "cluster": CLUSTER, "capacityProviders": ["blue", "green", "empty"],
                    "defaultCapacityProviderStrategy": [] }),
        ),
    );
    let error = world.fails(
        ecs::run_task,
        req(json!({ "taskDefinition": "web",
                    "capacityProviderStrategy": [{ "capacityProvider": "empty", "weight": 1 }] })),
    );
    assert!(
        error
            .message
            .starts_with("No Container Instances were found in your capacity provider."),
        "{error}"
    );
}

#[test]
fn a_service_spreads_its_tasks_by_base_and_weight() {
    let mut world = World::new();
    world.create_cluster(CLUSTER);
    join(&mut world, "node-a", Some("a"));
    join(&mut world, "node-b", Some("b"));
    world.register_simple("web");
    create(&mut world, "a");
    create(&mut world, "b");
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": CLUSTER, "capacityProviders": ["a", "b"],
                    "defaultCapacityProviderStrategy": [
                        { "capacityProvider": "a", "weight": 1, "base": 1 },
                        { "capacityProvider": "b", "weight": 3 }] })),
    );
    // No launch type, no strategy: the cluster's default, shown on the service.
    let service = world
        .create_service(json!({ "serviceName": "s", "taskDefinition": "web", "desiredCount": 5 }));
    assert_eq!(service.capacity_provider_strategy.len(), 2);
    assert_eq!(service.launch_type, None);
    world.settle();
    let counts = placements(&world.state);
    // The base on a first, then 1:3 by weight over the rest: a 1+1, b 3.
    assert_eq!(counts[&("node-a".to_string(), Some("a".to_string()))], 2);
    assert_eq!(counts[&("node-b".to_string(), Some("b".to_string()))], 3);
    // ListTasks and ListServices filter by the launch type the provider gives.
    let ec2 = world.ok(ecs::list_tasks, req(json!({ "launchType": "EC2" })));
    assert_eq!(ec2.task_arns.len(), 5);
    let fargate = world.ok(ecs::list_tasks, req(json!({ "launchType": "FARGATE" })));
    assert!(fargate.task_arns.is_empty());
    let services = world.ok(ecs::list_services, req(json!({ "launchType": "EC2" })));
    assert_eq!(services.service_arns.len(), 1);
    let services = world.ok(ecs::list_services, req(json!({ "launchType": "FARGATE" })));
    assert!(services.service_arns.is_empty());
}

#[test]
fn changing_a_services_strategy_needs_a_new_deployment() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.ok(
        ecs::put_cluster_capacity_providers,
        req(
            json!({ "cluster": CLUSTER, "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                    "defaultCapacityProviderStrategy": [] }),
        ),
    );
    world.create_service(json!({ "serviceName": "ec2", "taskDefinition": "web",
        "desiredCount": 1, "launchType": "EC2" }));
    let spot = json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }]);
    let message = "When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.";
    let before = world.state.clone();
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "ec2", "capacityProviderStrategy": spot })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert_eq!(error.message, message);
    assert!(world.state == before);
    let switched = world.update_service(json!({ "service": "ec2",
        "capacityProviderStrategy": spot, "forceNewDeployment": true }));
    assert_eq!(switched.launch_type, None);
    assert_eq!(
        switched.capacity_provider_strategy[0].capacity_provider,
        "FARGATE_SPOT"
    );
    assert_eq!(switched.deployments.len(), 2, "a new deployment");
    world.settle();
    let tasks = world.live_tasks("ec2");
    assert!(!tasks.is_empty());
    assert!(tasks
        .iter()
        .all(|t| t.capacity_provider_name.as_deref() == Some("FARGATE_SPOT")));
    let shown = world.describe_task(&tasks[0].id);
    assert_eq!(shown.launch_type.as_deref(), Some("FARGATE"));

    // A change to a strategy in use needs one too; the same strategy does not.
    let error = world.fails(
        ecs::update_service,
        req(json!({ "service": "ec2",
                    "capacityProviderStrategy": [{ "capacityProvider": "FARGATE", "weight": 1 }] })),
    );
    assert_eq!(error.message, message);
    let same = world.update_service(json!({ "service": "ec2", "capacityProviderStrategy": spot }));
    assert_eq!(same.deployments.len(), 1);
}
