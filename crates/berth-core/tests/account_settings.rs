//! ECS account settings and ListServicesByNamespace, written from botocore's
//! `ecs/2014-11-13` model (the `Setting` shape, `SettingName`, maxResults 1-10) and ECS's
//! account settings documentation (the values and defaults of each setting; the root
//! user's setting is every other principal's default).

mod common;

use berth_core::ecs;
use berth_core::ErrorCode;
use common::{req, World};
use serde_json::{json, Value};

const ROOT: &str = "arn:aws:iam::000000000000:root";
const ALICE: &str = "arn:aws:iam::000000000000:user/alice";

fn wire(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

fn list(world: &mut World, body: Value) -> Value {
    wire(&world.ok(ecs::list_account_settings, req(body)))
}

#[test]
fn a_setting_is_put_for_the_caller_listed_and_deleted() {
    let mut world = World::new();
    let put = world.ok(
        ecs::put_account_setting,
        req(json!({ "name": "awsvpcTrunking", "value": "enabled" })),
    );
    assert_eq!(
        wire(&put),
        json!({ "setting": { "name": "awsvpcTrunking", "value": "enabled",
                             "principalArn": ROOT, "type": "user" } })
    );
    let own = list(&mut world, json!({}));
    assert_eq!(own["settings"], json!([put.setting]));
    assert!(own.get("nextToken").is_none(), "{own}");

    let deleted = world.ok(
        ecs::delete_account_setting,
        req(json!({ "name": "awsvpcTrunking" })),
    );
    assert_eq!(deleted.setting.value, "enabled", "the setting deleted");
    assert_eq!(list(&mut world, json!({}))["settings"], json!([]));
    assert!(world.state.account_settings.is_empty());
}

#[test]
fn effective_settings_merge_the_principal_over_the_account_default_over_ecs() {
    let mut world = World::new();
    world.ok(
        ecs::put_account_setting_default,
        req(json!({ "name": "containerInsights", "value": "enhanced" })),
    );
    world.ok(
        ecs::put_account_setting,
        req(json!({ "name": "containerInsights", "value": "enabled", "principalArn": ALICE })),
    );
    world.ok(
        ecs::put_account_setting_default,
        req(json!({ "name": "defaultLogDriverMode", "value": "blocking" })),
    );

    let effective = |world: &mut World, principal: &str, name: &str| {
        let listed = list(
            world,
            json!({ "principalArn": principal, "name": name, "effectiveSettings": true }),
        );
        assert_eq!(listed["settings"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["settings"][0]["principalArn"], principal);
        listed["settings"][0]["value"].as_str().unwrap().to_string()
    };
    assert_eq!(effective(&mut world, ALICE, "containerInsights"), "enabled");
    assert_eq!(effective(&mut world, ROOT, "containerInsights"), "enhanced");
    assert_eq!(
        effective(&mut world, ALICE, "defaultLogDriverMode"),
        "blocking"
    );
    // ECS's own defaults where nobody set one.
    for (name, value) in [
        ("serviceLongArnFormat", "enabled"),
        ("tagResourceAuthorization", "on"),
        ("fargateTaskRetirementWaitPeriod", "7"),
        ("guardDutyActivate", "off"),
        ("awsvpcTrunking", "disabled"),
    ] {
        assert_eq!(effective(&mut world, ALICE, name), value, "{name}");
    }
    // Alice's own settings: just the one she set.
    let own = list(&mut world, json!({ "principalArn": ALICE }));
    assert_eq!(own["settings"].as_array().unwrap().len(), 1, "{own}");

    // Every setting, by name, 10 a page, then the rest.
    let first = list(&mut world, json!({ "effectiveSettings": true }));
    let names: Vec<&str> = first["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let token = first["nextToken"].as_str().expect("a second page");
    let rest = list(
        &mut world,
        json!({ "effectiveSettings": true, "nextToken": token }),
    );
    assert_eq!(rest["settings"].as_array().unwrap().len(), 2, "{rest}");
    assert!(rest.get("nextToken").is_none());
    let guard_duty = list(
        &mut world,
        json!({ "effectiveSettings": true, "name": "guardDutyActivate" }),
    );
    assert_eq!(guard_duty["settings"][0]["type"], "aws_managed");

    // Filters: name and value.
    let enabled = list(
        &mut world,
        json!({ "effectiveSettings": true, "name": "containerInsights", "value": "disabled" }),
    );
    assert_eq!(enabled["settings"], json!([]));
    let paged = list(
        &mut world,
        json!({ "effectiveSettings": true, "maxResults": 3 }),
    );
    assert_eq!(paged["settings"].as_array().unwrap().len(), 3);

    // Deleting Alice's brings back the account default for her.
    world.ok(
        ecs::delete_account_setting,
        req(json!({ "name": "containerInsights", "principalArn": ALICE })),
    );
    assert_eq!(
        effective(&mut world, ALICE, "containerInsights"),
        "enhanced"
    );
}

#[test]
fn a_new_cluster_takes_the_account_container_insights_default() {
    let mut world = World::new();
    let plain = world.create_cluster("plain");
    assert_eq!(
        wire(&plain)["settings"],
        json!([{ "name": "containerInsights", "value": "disabled" }]),
        "ECS echoes the default it applied"
    );
    world.ok(
        ecs::put_account_setting_default,
        req(json!({ "name": "containerInsights", "value": "enabled" })),
    );
    let after = world.create_cluster("after");
    assert_eq!(
        wire(&after)["settings"],
        json!([{ "name": "containerInsights", "value": "enabled" }])
    );
    // A cluster's own setting wins over the account's.
    let own = world
        .ok(
            ecs::create_cluster,
            req(json!({ "clusterName": "own",
                        "settings": [{ "name": "containerInsights", "value": "enhanced" }] })),
        )
        .cluster;
    assert_eq!(own.settings.len(), 1);
    assert_eq!(own.settings[0].value, "enhanced");
    // The setting is the cluster's from its creation: a later account change leaves it.
    world.ok(
        ecs::put_account_setting,
        req(json!({ "name": "containerInsights", "value": "disabled" })),
    );
    let described = world.ok(
        ecs::describe_clusters,
        req(json!({ "clusters": ["after"], "include": ["SETTINGS"] })),
    );
    assert_eq!(described.clusters[0].settings[0].value, "enabled");
    // A cluster made by a node joining it (`default`) takes the default too.
    world.add_node("node-1");
    assert_eq!(ecs::default_container_insights(&world.state), "disabled");
    assert_eq!(
        wire(&world.state.clusters["default"].settings),
        json!([{ "name": "containerInsights", "value": "disabled" }])
    );
}

#[test]
fn invalid_settings_name_the_field_and_store_nothing() {
    let mut world = World::new();
    let cases = [
        (
            json!({ "name": "longArns", "value": "enabled" }),
            "name 'longArns' is invalid: use serviceLongArnFormat",
        ),
        (
            json!({ "name": "", "value": "enabled" }),
            "name is required",
        ),
        (
            json!({ "name": "containerInsights", "value": "on" }),
            "value of containerInsights 'on' is invalid: use enhanced, enabled or disabled",
        ),
        (json!({ "name": "containerInsights" }), "value is required"),
        (
            json!({ "name": "fargateTaskRetirementWaitPeriod", "value": "3" }),
            "value of fargateTaskRetirementWaitPeriod '3' is invalid: use 0, 7 or 14",
        ),
        (
            json!({ "name": "fargateTaskRetirementWaitPeriod", "value": "14", "principalArn": ALICE }),
            "fargateTaskRetirementWaitPeriod is set for the root user only",
        ),
        (
            json!({ "name": "taskLongArnFormat", "value": "disabled" }),
            "taskLongArnFormat cannot be disabled: berth always uses the long ARN",
        ),
        (
            json!({ "name": "guardDutyActivate", "value": "on" }),
            "guardDutyActivate is read-only",
        ),
        (
            json!({ "name": "awsvpcTrunking", "value": "enabled",
                    "principalArn": "arn:aws:iam::999999999999:root" }),
            "principalArn 'arn:aws:iam::999999999999:root' is invalid",
        ),
        (
            json!({ "name": "awsvpcTrunking", "value": "enabled",
                    "principalArn": "arn:aws:iam::000000000000:user/" }),
            "principalArn 'arn:aws:iam::000000000000:user/' is invalid",
        ),
    ];
    for (body, wanted) in cases {
        let error = world.fails(ecs::put_account_setting, req(body.clone()));
        assert_eq!(error.code, ErrorCode::InvalidParameterException, "{body}");
        assert!(
            error.message.starts_with(wanted),
            "{body}: {}",
            error.message
        );
    }
    let error = world.fails(
        ecs::put_account_setting_default,
        req(json!({ "name": "containerInstanceLongArnFormat", "value": "disabled" })),
    );
    assert!(error.message.contains("containerInstanceLongArnFormat"));
    let error = world.fails(
        ecs::delete_account_setting,
        req(json!({ "name": "guardDutyActivate" })),
    );
    assert!(error.message.contains("guardDutyActivate"));
    let error = world.fails(
        ecs::list_account_settings,
        req(json!({ "value": "enabled" })),
    );
    assert!(error.message.contains("value"), "{}", error.message);
    let error = world.fails(ecs::list_account_settings, req(json!({ "maxResults": 11 })));
    assert!(error.message.contains("maxResults"), "{}", error.message);
    assert!(world.state.account_settings.is_empty());
    // Long ARNs enabled is what berth does: accepted.
    world.ok(
        ecs::put_account_setting,
        req(json!({ "name": "serviceLongArnFormat", "value": "enabled" })),
    );
}

#[test]
fn list_services_by_namespace_knows_no_namespace() {
    let mut world = World::with_node();
    let error = world.fails(
        ecs::list_services_by_namespace,
        req(json!({ "namespace": "internal" })),
    );
    assert_eq!(error.code, ErrorCode::NamespaceNotFoundException);
    assert!(error.message.contains("'internal'"), "{}", error.message);
    let error = world.fails(ecs::list_services_by_namespace, req(json!({})));
    assert_eq!(error.code, ErrorCode::InvalidParameterException);
    assert!(error.message.contains("namespace"));
    let error = world.fails(
        ecs::list_services_by_namespace,
        req(json!({ "namespace": "internal", "maxResults": 101 })),
    );
    assert!(error.message.contains("maxResults"), "{}", error.message);
}
