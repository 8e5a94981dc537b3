//! ECS's answers as ECS gives them, written from botocore's `ecs/2014-11-13` model and
//! ECS's API reference: the cluster checked before anything else, empty optional
//! parameters read as unset, the fields ECS always returns and the ones it omits, and
//! the cluster and task-definition actions Terraform's provider calls.

mod common;

use berth_core::ecs;
use berth_core::ErrorCode;
use common::{req, World};
use serde_json::{json, Value};

/// Every action that takes a cluster, each with a request that is also wrong in some
/// other way: the unknown cluster must be what is reported.
#[test]
fn an_unknown_cluster_is_reported_before_any_other_parameter() {
    let mut world = World::with_node();
    world.register_simple("web");
    let nope = json!("nope");
    macro_rules! cluster_not_found {
        ($action:expr, $body:expr) => {{
            let error = world.fails($action, req($body));
            assert_eq!(
                error.code,
                ErrorCode::ClusterNotFoundException,
                "{}: {error}",
                stringify!($action)
            );
            assert_eq!(error.message, "Cluster not found.");
        }};
    }
    cluster_not_found!(ecs::describe_tasks, json!({ "cluster": nope, "tasks": [] }));
    cluster_not_found!(ecs::stop_task, json!({ "cluster": nope, "task": "" }));
    cluster_not_found!(
        ecs::list_tasks,
        json!({ "cluster": nope, "desiredStatus": "BOGUS" })
    );
    cluster_not_found!(
        ecs::run_task,
        json!({ "cluster": nope, "taskDefinition": "missing", "count": 99 })
    );
    cluster_not_found!(
        ecs::create_service,
        json!({ "cluster": nope, "serviceName": "bad name!", "launchType": "LAMBDA" })
    );
    cluster_not_found!(
        ecs::update_service,
        json!({ "cluster": nope, "service": "", "desiredCount": -1 })
    );
    cluster_not_found!(
        ecs::describe_services,
        json!({ "cluster": nope, "services": [] })
    );
    cluster_not_found!(
        ecs::list_services,
        json!({ "cluster": nope, "launchType": "LAMBDA" })
    );
    cluster_not_found!(
        ecs::delete_service,
        json!({ "cluster": nope, "service": "missing" })
    );
    cluster_not_found!(
        ecs::list_container_instances,
        json!({ "cluster": nope, "status": "BUSY" })
    );
    cluster_not_found!(
        ecs::describe_container_instances,
        json!({ "cluster": nope, "containerInstances": [] })
    );
    cluster_not_found!(
        ecs::update_container_instances_state,
        json!({ "cluster": nope, "containerInstances": [], "status": "BOGUS" })
    );
    cluster_not_found!(
        ecs::deregister_container_instance,
        json!({ "cluster": nope, "containerInstance": "" })
    );
    cluster_not_found!(ecs::delete_cluster, json!({ "cluster": nope }));
    cluster_not_found!(
        ecs::update_cluster,
        json!({ "cluster": nope, "settings": [{ "name": "bogus", "value": "x" }] })
    );
    cluster_not_found!(
        ecs::update_cluster_settings,
        json!({ "cluster": nope, "settings": [] })
    );
    // A cluster given by ARN, and a deleted cluster, are checked the same way.
    cluster_not_found!(
        ecs::list_tasks,
        json!({ "cluster": "arn:aws:ecs:us-east-1:000000000000:cluster/nope" })
    );
    world.create_cluster("gone");
    world.ok(ecs::delete_cluster, req(json!({ "cluster": "gone" })));
    let error = world.fails(ecs::list_services, req(json!({ "cluster": "gone" })));
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    // Actions without a cluster do not look for one.
    world.ok(ecs::list_clusters, req(json!({ "cluster": "nope" })));
}

#[test]
fn empty_optional_parameters_are_unset() {
    let mut world = World::with_node();
    world.register_simple("web");
    // What an SDK sends for optional arguments left out: empty strings.
    let created = world
        .ok(
            ecs::create_service,
            req(json!({
                "cluster": "", "serviceName": "web", "taskDefinition": "web", "desiredCount": 1,
                "launchType": "", "schedulingStrategy": "", "propagateTags": "",
                "availabilityZoneRebalancing": "", "platformVersion": "", "role": "",
                "clientToken": ""
            })),
        )
        .service;
    assert_eq!(created.cluster_arn.rsplit('/').next(), Some("default"));
    assert_eq!(created.launch_type.as_deref(), Some("EC2"));
    assert_eq!(created.scheduling_strategy, "REPLICA");
    assert_eq!(created.propagate_tags, "NONE");
    assert_eq!(created.availability_zone_rebalancing, "ENABLED");
    assert_eq!(created.role_arn, None);
    assert_eq!(created.platform_version, None);
    let listed = world.ok(
        ecs::list_tasks,
        req(
            json!({ "cluster": "", "desiredStatus": "", "launchType": "", "family": "",
                    "startedBy": "", "serviceName": "", "containerInstance": "", "nextToken": "" }),
        ),
    );
    assert!(listed.next_token.is_none());
    let updated = world
        .ok(
            ecs::update_service,
            req(
                json!({ "service": "web", "taskDefinition": "", "propagateTags": "",
                        "availabilityZoneRebalancing": "" }),
            ),
        )
        .service;
    assert_eq!(
        updated.deployments.len(),
        1,
        "an empty taskDefinition is no change"
    );
    let run = world.ok(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "launchType": "", "group": "", "startedBy": "" })),
    );
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    // ECS's default group for a task RunTask starts.
    assert_eq!(run.tasks[0].group.as_deref(), Some("family:web"));
}

#[test]
fn availability_zone_rebalancing_is_kept_and_echoed_as_ecs_defaults_it() {
    let mut world = World::with_node();
    world.register_simple("web");
    let create = |name: &str, extra: Value| {
        let mut body = json!({ "serviceName": name, "taskDefinition": "web", "desiredCount": 1 });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // "For create service requests, when no value is specified ... ECS defaults the value
    // to ENABLED."
    let plain = world
        .ok(ecs::create_service, req(create("plain", json!({}))))
        .service;
    assert_eq!(plain.availability_zone_rebalancing, "ENABLED");
    let off = world
        .ok(
            ecs::create_service,
            req(create(
                "off",
                json!({ "availabilityZoneRebalancing": "DISABLED" }),
            )),
        )
        .service;
    assert_eq!(off.availability_zone_rebalancing, "DISABLED");
    // "For update service requests, when no value is specified ... ECS defaults to the
    // existing service's value"; a change "doesn't trigger a new service deployment".
    let kept = world
        .ok(
            ecs::update_service,
            req(json!({ "service": "off", "desiredCount": 2 })),
        )
        .service;
    assert_eq!(kept.availability_zone_rebalancing, "DISABLED");
    let changed = world
        .ok(
            ecs::update_service,
            req(json!({ "service": "off", "availabilityZoneRebalancing": "ENABLED" })),
        )
        .service;
    assert_eq!(changed.availability_zone_rebalancing, "ENABLED");
    assert_eq!(changed.deployments.len(), 1);
    let described = world.ok(
        ecs::describe_services,
        req(json!({ "services": ["off", "plain"] })),
    );
    let words: Vec<&str> = described
        .services
        .iter()
        .map(|s| s.availability_zone_rebalancing.as_str())
        .collect();
    assert_eq!(words, ["ENABLED", "ENABLED"]);
    let before = world.state.clone();
    for action_body in [
        create("bad", json!({ "availabilityZoneRebalancing": "enabled" })),
        json!({ "service": "off", "availabilityZoneRebalancing": "ON" }),
    ] {
        let error = if action_body.get("serviceName").is_some() {
            world.fails(ecs::create_service, req(action_body))
        } else {
            world.fails(ecs::update_service, req(action_body))
        };
        assert_eq!(error.code, ErrorCode::InvalidParameterException);
        assert!(
            error.message.contains("availabilityZoneRebalancing")
                && error.message.contains("ENABLED or DISABLED"),
            "{}",
            error.message
        );
    }
    assert!(world.state == before);
}

/// A service as JSON, the way a client reads it.
fn wire(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

#[test]
fn services_return_what_ecs_always_returns_and_omit_what_it_omits() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.register(json!({
        "family": "fargate", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{ "name": "app", "image": "nginx:1.27" }]
    }));
    let plain = world
        .ok(
            ecs::create_service,
            req(json!({ "serviceName": "plain", "taskDefinition": "web" })),
        )
        .service;
    let shown = wire(&plain);
    assert!(shown.get("tags").is_none(), "no tags, no `tags`: {shown}");
    assert_eq!(shown["deploymentController"], json!({ "type": "ECS" }));
    assert_eq!(shown["availabilityZoneRebalancing"], "ENABLED");
    assert_eq!(shown["launchType"], "EC2");
    // platformVersion and platformFamily are Fargate's alone.
    assert!(shown.get("platformVersion").is_none() && shown.get("platformFamily").is_none());
    let fargate = world
        .ok(
            ecs::create_service,
            req(
                json!({ "serviceName": "f", "taskDefinition": "fargate", "launchType": "FARGATE",
                        "tags": [{ "key": "team", "value": "web" }] }),
            ),
        )
        .service;
    let shown = wire(&fargate);
    assert_eq!(shown["platformVersion"], "LATEST");
    assert_eq!(shown["platformFamily"], "Linux");
    assert_eq!(shown["tags"], json!([{ "key": "team", "value": "web" }]));
    // DescribeServices returns tags only when asked (include TAGS).
    let described = world.ok(ecs::describe_services, req(json!({ "services": ["f"] })));
    assert!(wire(&described.services[0]).get("tags").is_none());
    let described = world.ok(
        ecs::describe_services,
        req(json!({ "services": ["f"], "include": ["TAGS"] })),
    );
    assert_eq!(wire(&described.services[0])["tags"][0]["key"], "team");
    // A platform version on an EC2 service is refused, as ECS refuses it.
    let error = world.fails(
        ecs::create_service,
        req(json!({ "serviceName": "p", "taskDefinition": "web", "platformVersion": "1.4.0" })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    let versioned = world
        .ok(
            ecs::update_service,
            req(json!({ "service": "f", "platformVersion": "1.4.0" })),
        )
        .service;
    assert_eq!(versioned.platform_version.as_deref(), Some("1.4.0"));
}

#[test]
fn task_definition_compatibilities_are_computed_as_ecs_computes_them() {
    let mut world = World::new();
    let compatibilities = |world: &mut World, body: Value| -> Vec<String> {
        let mut got = world
            .ok(ecs::register_task_definition, req(body))
            .task_definition
            .compatibilities;
        got.sort();
        got
    };
    let container = json!([{ "name": "app", "image": "nginx:1.27", "memory": 128 }]);
    // ECS's own examples: a bridge definition is ["EXTERNAL", "EC2"], an awsvpc one with
    // task cpu and memory ["EC2", "FARGATE"].
    assert_eq!(
        compatibilities(
            &mut world,
            json!({ "family": "bridge", "containerDefinitions": container })
        ),
        ["EC2", "EXTERNAL"]
    );
    assert_eq!(
        compatibilities(
            &mut world,
            json!({ "family": "host", "networkMode": "host", "containerDefinitions": container })
        ),
        ["EC2", "EXTERNAL"]
    );
    assert_eq!(
        compatibilities(
            &mut world,
            json!({ "family": "f", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                    "containerDefinitions": container })
        ),
        ["EC2", "FARGATE"]
    );
    // awsvpc without task-level cpu and memory cannot run on Fargate.
    assert_eq!(
        compatibilities(
            &mut world,
            json!({ "family": "v", "networkMode": "awsvpc", "containerDefinitions": container })
        ),
        ["EC2"]
    );
}

#[test]
fn cluster_settings_and_configuration_are_kept_echoed_and_checked() {
    let mut world = World::new();
    let configuration = json!({
        "executeCommandConfiguration": {
            "kmsKeyId": "key-1", "logging": "OVERRIDE",
            "logConfiguration": { "cloudWatchLogGroupName": "/ecs/exec", "cloudWatchEncryptionEnabled": true }
        },
        "managedStorageConfiguration": { "fargateEphemeralStorageKmsKeyId": "key-2" }
    });
    let created = world
        .ok(
            ecs::create_cluster,
            req(json!({ "clusterName": "prod",
                        "settings": [{ "name": "containerInsights", "value": "enabled" }],
                        "configuration": configuration })),
        )
        .cluster;
    assert_eq!(
        wire(&created)["settings"],
        json!([{ "name": "containerInsights", "value": "enabled" }])
    );
    assert_eq!(created.configuration.as_ref(), Some(&configuration));
    // DescribeClusters returns settings, configuration and tags only when included.
    let bare = world.ok(ecs::describe_clusters, req(json!({ "clusters": ["prod"] })));
    assert!(bare.clusters[0].settings.is_empty());
    assert!(wire(&bare.clusters[0]).get("configuration").is_none());
    let full = world.ok(
        ecs::describe_clusters,
        req(json!({ "clusters": ["prod"], "include": ["SETTINGS", "CONFIGURATIONS", "TAGS"] })),
    );
    assert_eq!(full.clusters[0].settings[0].value, "enabled");
    assert_eq!(
        full.clusters[0].configuration.as_ref(),
        Some(&configuration)
    );

    let updated = world
        .ok(
            ecs::update_cluster_settings,
            req(json!({ "cluster": "prod",
                        "settings": [{ "name": "containerInsights", "value": "enhanced" }] })),
        )
        .cluster;
    assert_eq!(
        wire(&updated)["settings"],
        json!([{ "name": "containerInsights", "value": "enhanced" }])
    );
    // UpdateCluster changes what it is given and keeps the rest.
    let updated = world
        .ok(
            ecs::update_cluster,
            req(json!({ "cluster": "prod",
                        "configuration": { "executeCommandConfiguration": { "logging": "NONE" } } })),
        )
        .cluster;
    assert_eq!(updated.settings[0].value, "enhanced");
    assert_eq!(
        updated.configuration,
        Some(json!({ "executeCommandConfiguration": { "logging": "NONE" } }))
    );
    // An empty default namespace is ECS's way to remove it: there is none, so nothing.
    world.ok(
        ecs::update_cluster,
        req(json!({ "cluster": "prod", "serviceConnectDefaults": { "namespace": "" } })),
    );

    let refusals = [
        (
            json!({ "cluster": "prod", "settings": [{ "name": "insights", "value": "enabled" }] }),
            "settings.name 'insights' is invalid: use containerInsights",
        ),
        (
            json!({ "cluster": "prod", "settings": [{ "name": "containerInsights", "value": "on" }] }),
            "settings.value 'on' is invalid: use enhanced, enabled or disabled",
        ),
        (
            json!({ "cluster": "prod", "configuration": { "executeCommandConfiguration": { "logging": "ALL" } } }),
            "configuration.executeCommandConfiguration.logging 'ALL' is invalid: use NONE, DEFAULT or OVERRIDE",
        ),
        (
            json!({ "cluster": "prod", "configuration": { "executeCommandConfiguration": { "logging": "OVERRIDE" } } }),
            "configuration.executeCommandConfiguration.logConfiguration is required when logging is OVERRIDE",
        ),
        (
            json!({ "cluster": "prod", "serviceConnectDefaults": { "namespace": "internal" } }),
            "serviceConnectDefaults.namespace 'internal' cannot be set",
        ),
    ];
    let before = world.state.clone();
    for (body, wanted) in refusals {
        let error = world.fails(ecs::update_cluster, req(body.clone()));
        assert_eq!(error.code, ErrorCode::InvalidParameterException, "{body}");
        assert!(
            error.message.starts_with(wanted),
            "{body}: {}",
            error.message
        );
    }
    let error = world.fails(
        ecs::update_cluster_settings,
        req(json!({ "cluster": "prod", "settings": [] })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    let error = world.fails(
        ecs::create_cluster,
        req(json!({ "clusterName": "other",
                    "serviceConnectDefaults": { "namespace": "internal" } })),
    );
    assert!(
        error.message.contains("serviceConnectDefaults"),
        "{}",
        error.message
    );
    let error = world.fails(
        ecs::create_cluster,
        req(json!({ "clusterName": "other", "settings": [{ "name": "containerInsights", "value": "yes" }] })),
    );
    assert!(
        error.message.contains("settings.value"),
        "{}",
        error.message
    );
    assert!(world.state == before, "refused requests store nothing");
}

#[test]
fn delete_task_definitions_deletes_inactive_revisions_only() {
    let mut world = World::with_node();
    world.register_simple("web");
    world.register_simple("web");
    world.ok(
        ecs::deregister_task_definition,
        req(json!({ "taskDefinition": "web:1" })),
    );
    let answer = world.ok(
        ecs::delete_task_definitions,
        req(json!({ "taskDefinitions": ["web:1", "web:2", "web:9"] })),
    );
    assert_eq!(answer.task_definitions.len(), 1);
    assert_eq!(answer.task_definitions[0].revision, 1);
    assert_eq!(answer.task_definitions[0].status, "DELETE_IN_PROGRESS");
    let failed: Vec<(&str, &str)> = answer
        .failures
        .iter()
        .map(|f| (f.arn.as_deref().unwrap(), f.reason.as_deref().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2",
                "The task definition must be INACTIVE to be deleted"
            ),
            (
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web:9",
                "MISSING"
            ),
        ]
    );
    // A deleted revision runs nothing new, and stays describable while it is deleted.
    let error = world.fails(ecs::run_task, req(json!({ "taskDefinition": "web:1" })));
    assert_eq!(error.code, ErrorCode::ClientException);
    let described = world.ok(
        ecs::describe_task_definition,
        req(json!({ "taskDefinition": "web:1" })),
    );
    assert_eq!(described.task_definition.status, "DELETE_IN_PROGRESS");
    let listed = world.ok(
        ecs::list_task_definitions,
        req(json!({ "status": "DELETE_IN_PROGRESS" })),
    );
    assert_eq!(listed.task_definition_arns.len(), 1);
    // The new revision after a deletion is the next number: revisions are never reused.
    assert!(world.register_simple("web").ends_with("web:3"));

    let before = world.state.clone();
    for (body, code) in [
        (
            json!({ "taskDefinitions": [] }),
            ErrorCode::InvalidParameterException,
        ),
        (
            json!({ "taskDefinitions": (1..=11).map(|r| format!("web:{r}")).collect::<Vec<_>>() }),
            ErrorCode::InvalidParameterException,
        ),
        // "You must specify a revision."
        (
            json!({ "taskDefinitions": ["web"] }),
            ErrorCode::ClientException,
        ),
    ] {
        let error = world.fails(ecs::delete_task_definitions, req(body.clone()));
        assert_eq!(error.code, code, "{body}: {error}");
    }
    assert!(world.state == before);
}

#[test]
fn capacity_providers_are_fargates_and_follow_ecs_rules_against_launch_type() {
    let mut world = World::with_node();
    world.register_simple("web");
    let described = world.ok(ecs::describe_capacity_providers, req(json!({})));
    let names: Vec<&str> = described
        .capacity_providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["FARGATE", "FARGATE_SPOT"]);
    assert_eq!(
        described.capacity_providers[0].capacity_provider_arn,
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/FARGATE"
    );
    assert_eq!(described.capacity_providers[0].status, "ACTIVE");
    let missing = world.ok(
        ecs::describe_capacity_providers,
        req(json!({ "capacityProviders": ["FARGATE", "mine"] })),
    );
    assert_eq!(missing.capacity_providers.len(), 1);
    assert_eq!(missing.failures[0].reason.as_deref(), Some("MISSING"));

    // A strategy over a provider the cluster has not associated is refused.
    let strategy = json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }]);
    let error = world.fails(
        ecs::create_service,
        req(json!({ "serviceName": "s", "taskDefinition": "web",
                    "capacityProviderStrategy": strategy })),
    );
    assert!(
        error.message.contains("not associated with the cluster"),
        "{error}"
    );

    let cluster = world
        .ok(
            ecs::put_cluster_capacity_providers,
            req(
                json!({ "cluster": "default", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                        "defaultCapacityProviderStrategy": [
                            { "capacityProvider": "FARGATE", "weight": 1, "base": 1 }] }),
            ),
        )
        .cluster;
    assert_eq!(cluster.capacity_providers, ["FARGATE", "FARGATE_SPOT"]);
    assert_eq!(
        wire(&cluster)["defaultCapacityProviderStrategy"],
        json!([{ "capacityProvider": "FARGATE", "weight": 1, "base": 1 }])
    );

    // Both a launch type and a strategy: ECS refuses.
    let error = world.fails(
        ecs::create_service,
        req(
            json!({ "serviceName": "s", "taskDefinition": "web", "launchType": "EC2",
                    "capacityProviderStrategy": strategy }),
        ),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(
        error.message.starts_with(
            "Specifying both a launch type and capacity provider strategy is not supported"
        ),
        "{error}"
    );
    let error = world.fails(
        ecs::run_task,
        req(json!({ "taskDefinition": "web", "launchType": "FARGATE",
                    "capacityProviderStrategy": strategy })),
    );
    assert_eq!(error.code, ErrorCode::InvalidParameterException);

    // A strategy instead of a launch type: shown instead of launchType.
    let spot = world
        .ok(
            ecs::create_service,
            req(json!({ "serviceName": "spot", "taskDefinition": "web",
                        "capacityProviderStrategy": strategy })),
        )
        .service;
    let shown = wire(&spot);
    assert!(shown.get("launchType").is_none(), "{shown}");
    assert_eq!(
        shown["capacityProviderStrategy"],
        json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0 }])
    );
    // Neither: the cluster's default strategy.
    let defaulted = world
        .ok(
            ecs::create_service,
            req(json!({ "serviceName": "plain", "taskDefinition": "web" })),
        )
        .service;
    assert_eq!(
        defaulted.capacity_provider_strategy[0].capacity_provider,
        "FARGATE"
    );
    // A launch type alone keeps its launch type.
    let ec2 = world
        .ok(
            ecs::create_service,
            req(json!({ "serviceName": "ec2", "taskDefinition": "web", "launchType": "EC2" })),
        )
        .service;
    assert!(ec2.capacity_provider_strategy.is_empty());
    assert_eq!(ec2.launch_type.as_deref(), Some("EC2"));

    let before = world.state.clone();
    for (body, words) in [
        (
            json!({ "cluster": "default", "capacityProviders": ["mine"], "defaultCapacityProviderStrategy": [] }),
            "'mine' does not exist",
        ),
        (
            json!({ "cluster": "default", "capacityProviders": ["FARGATE"],
                    "defaultCapacityProviderStrategy": [{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }] }),
            "not one of the cluster's capacityProviders",
        ),
        (
            json!({ "cluster": "default", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                    "defaultCapacityProviderStrategy": [
                        { "capacityProvider": "FARGATE", "weight": 1, "base": 1 },
                        { "capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 2 }] }),
            "only one capacity provider in a strategy can have a base",
        ),
        (
            json!({ "cluster": "default", "capacityProviders": ["FARGATE"],
                    "defaultCapacityProviderStrategy": [{ "capacityProvider": "FARGATE", "weight": 1001 }] }),
            "weight 1001 is out of range 0-1000",
        ),
    ] {
        let error = world.fails(ecs::put_cluster_capacity_providers, req(body.clone()));
        assert_eq!(error.code, ErrorCode::InvalidParameterException, "{body}");
        assert!(error.message.contains(words), "{body}: {}", error.message);
    }
    let error = world.fails(
        ecs::put_cluster_capacity_providers,
        req(json!({ "cluster": "nope", "capacityProviders": ["mine"], "defaultCapacityProviderStrategy": [] })),
    );
    assert_eq!(error.code, ErrorCode::ClusterNotFoundException);
    assert!(world.state == before);
}
