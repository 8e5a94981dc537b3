//! ECS account settings and ListServicesByNamespace as the real aws CLI v2 and boto3 see
//! them from a real `berth dev`: the caller's (root user's) settings and the account
//! default, effective settings, pagination, what berth refuses and why, the
//! containerInsights default a new cluster takes, settings kept across a restart, and
//! an unknown Cloud Map namespace. Expectations come from botocore's model and ECS's
//! account settings documentation.

mod support;

use serde_json::json;
use support::{assert_refused, Dev};

/// The account id berth puts in its ARNs, read from a cluster's ARN.
fn account_id(dev: &Dev) -> String {
    let created = dev.aws_json(&["ecs", "create-cluster", "--cluster-name", "probe"]);
    let arn = created["cluster"]["clusterArn"].as_str().unwrap();
    arn.split(':').nth(4).unwrap().to_string()
}

#[test]
fn aws_cli_puts_lists_and_deletes_account_settings_and_clusters_take_the_default() {
    let mut dev = Dev::start();
    let account = account_id(&dev);
    let root = format!("arn:aws:iam::{account}:root");
    let alice = format!("arn:aws:iam::{account}:user/alice");

    let put = dev.aws_json(&[
        "ecs",
        "put-account-setting-default",
        "--name",
        "containerInsights",
        "--value",
        "enabled",
    ]);
    assert_eq!(
        put["setting"],
        json!({ "name": "containerInsights", "value": "enabled", "principalArn": root })
    );
    let put = dev.aws_json(&[
        "ecs",
        "put-account-setting",
        "--name",
        "awsvpcTrunking",
        "--value",
        "enabled",
        "--principal-arn",
        &alice,
    ]);
    assert_eq!(put["setting"]["principalArn"], alice);

    // A new cluster without the setting takes the account default; with it, its own.
    let created = dev.aws_json(&["ecs", "create-cluster", "--cluster-name", "insights"]);
    assert_eq!(
        created["cluster"]["settings"],
        json!([{ "name": "containerInsights", "value": "enabled" }])
    );
    let own = dev.aws_json(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        "quiet",
        "--settings",
        "name=containerInsights,value=disabled",
    ]);
    assert_eq!(
        own["cluster"]["settings"],
        json!([{ "name": "containerInsights", "value": "disabled" }])
    );

    // The caller's own settings; Alice's effective ones merge hers over the default.
    let listed = dev.aws_json(&["ecs", "list-account-settings"]);
    assert_eq!(
        listed["settings"],
        json!([{ "name": "containerInsights", "value": "enabled", "principalArn": root }])
    );
    let effective = dev.aws_json(&[
        "ecs",
        "list-account-settings",
        "--principal-arn",
        &alice,
        "--effective-settings",
    ]);
    let settings = effective["settings"].as_array().unwrap();
    let value_of = |name: &str| {
        settings
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {effective}"))["value"]
            .clone()
    };
    assert_eq!(value_of("awsvpcTrunking"), "enabled");
    assert_eq!(value_of("containerInsights"), "enabled");
    assert_eq!(value_of("taskLongArnFormat"), "enabled");
    // The CLI follows nextToken itself: every setting ECS documents, once.
    assert_eq!(settings.len(), 12, "{effective}");
    let page = dev.aws_json(&[
        "ecs",
        "list-account-settings",
        "--effective-settings",
        "--no-paginate",
        "--max-results",
        "5",
    ]);
    assert_eq!(page["settings"].as_array().unwrap().len(), 5, "{page}");
    assert!(page["nextToken"].is_string(), "{page}");
    let filter = |value: &str| {
        dev.aws_json(&[
            "ecs",
            "list-account-settings",
            "--effective-settings",
            "--name",
            "awsvpcTrunking",
            "--value",
            value,
        ])["settings"]
            .clone()
    };
    assert_eq!(
        filter("disabled"),
        json!([{ "name": "awsvpcTrunking", "value": "disabled", "principalArn": root }]),
        "the root user's trunking is ECS's default: Alice's is hers alone"
    );
    assert_eq!(filter("enabled"), json!([]));

    // What berth cannot honour, or ECS does not take, is refused by name.
    let refusals: [(&[&str], &str); 4] = [
        (
            &["--name", "serviceLongArnFormat", "--value", "disabled"],
            "serviceLongArnFormat cannot be disabled",
        ),
        (
            &["--name", "containerInsights", "--value", "sometimes"],
            "value of containerInsights 'sometimes' is invalid",
        ),
        (
            &["--name", "shortArns", "--value", "enabled"],
            "name 'shortArns' is invalid",
        ),
        (
            &[
                "--name",
                "awsvpcTrunking",
                "--value",
                "enabled",
                "--principal-arn",
                "arn:aws:iam::999999999999:user/mallory",
            ],
            "principalArn",
        ),
    ];
    for (args, words) in refusals {
        let mut call = vec!["ecs", "put-account-setting"];
        call.extend(args);
        assert_refused(&dev.aws(&call), "InvalidParameterException", words);
    }
    let out = dev.aws(&["ecs", "list-account-settings", "--value", "enabled"]);
    assert_refused(&out, "InvalidParameterException", "value");

    // Kept across a restart (the store), then deleted.
    dev.restart_with_flags(&[]);
    let listed = dev.aws_json(&["ecs", "list-account-settings", "--principal-arn", &alice]);
    assert_eq!(
        listed["settings"],
        json!([{ "name": "awsvpcTrunking", "value": "enabled", "principalArn": alice }]),
        "refused requests stored nothing, the rest survived the restart"
    );
    let deleted = dev.aws_json(&[
        "ecs",
        "delete-account-setting",
        "--name",
        "awsvpcTrunking",
        "--principal-arn",
        &alice,
    ]);
    assert_eq!(deleted["setting"]["value"], "enabled");
    let listed = dev.aws_json(&["ecs", "list-account-settings", "--principal-arn", &alice]);
    assert_eq!(listed["settings"], json!([]));

    // No Cloud Map namespaces: ECS's answer for one it does not know.
    let out = dev.aws(&[
        "ecs",
        "list-services-by-namespace",
        "--namespace",
        "internal",
    ]);
    assert_refused(&out, "NamespaceNotFoundException", "internal");
}

/// boto3 knows the newer setting names, the `type` member and the paginator.
#[test]
fn boto3_sees_newer_settings_their_type_and_pages() {
    let dev = Dev::start();
    let checks = r#"

put = ecs.put_account_setting(name="fargateTaskRetirementWaitPeriod", value="14")["setting"]
assert put["value"] == "14" and put["type"] == "user" and put["principalArn"].endswith(":root"), put
put = ecs.put_account_setting_default(name="defaultLogDriverMode", value="blocking")["setting"]
assert put["value"] == "blocking", put
wrong = code(ecs.put_account_setting, name="fargateTaskRetirementWaitPeriod", value="30")
assert wrong[0] == "InvalidParameterException" and "0, 7 or 14" in wrong[1], wrong
read_only = code(ecs.put_account_setting, name="guardDutyActivate", value="on")
assert read_only[0] == "InvalidParameterException" and "guardDutyActivate" in read_only[1], read_only

pages = list(ecs.get_paginator("list_account_settings").paginate(
    effectiveSettings=True, PaginationConfig={"PageSize": 4}))
assert [len(p["settings"]) for p in pages] == [4, 4, 4], [len(p["settings"]) for p in pages]
settings = {s["name"]: s for p in pages for s in p["settings"]}
assert settings["fargateTaskRetirementWaitPeriod"]["value"] == "14", settings
assert settings["defaultLogDriverMode"]["value"] == "blocking", settings
assert settings["tagResourceAuthorization"]["value"] == "on", settings
assert settings["guardDutyActivate"] == dict(settings["guardDutyActivate"], value="off", type="aws_managed"), settings
too_many = code(ecs.list_account_settings, maxResults=11)
assert too_many[0] == "InvalidParameterException" and "maxResults" in too_many[1], too_many

missing = code(ecs.list_services_by_namespace, namespace="arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-1")
assert missing[0] == "NamespaceNotFoundException", missing
print("ok")
"#;
    dev.boto3_checks(&format!("{}{checks}", support::BOTO3_ECS_PRELUDE));
}
