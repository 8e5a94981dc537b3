//! ECS's error codes and answer shapes, as the real aws CLI v2 and boto3 see them from a
//! real `berth dev`: an unknown cluster in every action that takes one, cluster settings
//! and configuration, task-definition compatibilities, the fields a service always has
//! and the ones it omits, availabilityZoneRebalancing, empty optional parameters and
//! DeleteTaskDefinitions, and the definition rules ECS applies by launch type.
//! Expectations come from botocore's model and ECS's reference.

mod support;

use serde_json::{json, Value};
use support::{assert_refused, Dev};

fn sorted_strings(value: &Value) -> Vec<String> {
    let mut words: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    words.sort();
    words
}

#[test]
fn aws_cli_sees_ecs_error_codes_and_answer_shapes() {
    let dev = Dev::start();
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", "shapes"]);
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox","memory":64,"command":["sleep","3600"]}]"#,
    ]);

    // An unknown cluster, in every action that takes one, whatever else is wrong.
    let nope = ["--cluster", "nope"];
    let calls: Vec<Vec<&str>> = vec![
        vec!["describe-tasks", "--tasks", "x"],
        vec!["stop-task", "--task", "x"],
        vec!["list-tasks"],
        vec!["run-task", "--task-definition", "missing", "--count", "99"],
        vec![
            "create-service",
            "--service-name",
            "bad name!",
            "--task-definition",
            "web",
        ],
        vec!["update-service", "--service", "x", "--desired-count", "1"],
        vec!["describe-services", "--services", "x"],
        vec!["list-services"],
        vec!["delete-service", "--service", "x"],
        vec!["list-container-instances"],
        vec!["describe-container-instances", "--container-instances", "x"],
        vec![
            "update-container-instances-state",
            "--container-instances",
            "x",
            "--status",
            "DRAINING",
        ],
        vec!["deregister-container-instance", "--container-instance", "x"],
        vec!["delete-cluster"],
        vec![
            "update-cluster-settings",
            "--settings",
            "name=containerInsights,value=enabled",
        ],
        vec![
            "update-cluster",
            "--settings",
            "name=containerInsights,value=enabled",
        ],
        vec![
            "put-cluster-capacity-providers",
            "--capacity-providers",
            "mine",
            "--default-capacity-provider-strategy",
            "[]",
        ],
    ];
    for call in calls {
        let mut args = vec!["ecs"];
        args.extend(&call);
        args.extend(nope);
        let out = dev.aws(&args);
        assert_refused(&out, "ClusterNotFoundException", "Cluster not found");
    }

    // Cluster settings and configuration: kept, echoed, returned when included.
    let created = dev.aws_json(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        "insights",
        "--settings",
        "name=containerInsights,value=enabled",
        "--configuration",
        r#"{"executeCommandConfiguration":{"logging":"OVERRIDE","logConfiguration":{"cloudWatchLogGroupName":"/ecs/exec"}}}"#,
    ]);
    assert_eq!(
        created["cluster"]["settings"],
        json!([{ "name": "containerInsights", "value": "enabled" }])
    );
    let updated = dev.aws_json(&[
        "ecs",
        "update-cluster-settings",
        "--cluster",
        "insights",
        "--settings",
        "name=containerInsights,value=disabled",
    ]);
    assert_eq!(updated["cluster"]["settings"][0]["value"], "disabled");
    let out = dev.aws(&[
        "ecs",
        "update-cluster",
        "--cluster",
        "insights",
        "--service-connect-defaults",
        "namespace=internal",
    ]);
    assert_refused(&out, "InvalidParameterException", "serviceConnectDefaults");
    let out = dev.aws(&[
        "ecs",
        "update-cluster-settings",
        "--cluster",
        "insights",
        "--settings",
        "name=containerInsights,value=sometimes",
    ]);
    assert_refused(&out, "InvalidParameterException", "settings.value");
    let described = dev.aws_json(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        "insights",
        "--include",
        "SETTINGS",
        "CONFIGURATIONS",
    ]);
    let cluster = &described["clusters"][0];
    assert_eq!(
        cluster["settings"],
        json!([{ "name": "containerInsights", "value": "disabled" }]),
        "refused updates changed nothing"
    );
    assert_eq!(
        cluster["configuration"]["executeCommandConfiguration"]["logging"],
        "OVERRIDE"
    );
    let bare = dev.aws_json(&["ecs", "describe-clusters", "--clusters", "insights"]);
    assert!(
        bare["clusters"][0].get("configuration").is_none(),
        "configuration only when included: {bare}"
    );

    // compatibilities, as ECS computes them.
    let bridge = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "web",
    ]);
    assert_eq!(
        sorted_strings(&bridge["taskDefinition"]["compatibilities"]),
        ["EC2", "EXTERNAL"]
    );
    let fargate = dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "fargate",
        "--network-mode",
        "awsvpc",
        "--requires-compatibilities",
        "FARGATE",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox","command":["sleep","3600"]}]"#,
    ]);
    assert_eq!(
        sorted_strings(&fargate["taskDefinition"]["compatibilities"]),
        ["EC2", "FARGATE"]
    );

    // A service without tags has no `tags`; deploymentController is always there.
    let service = dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        "shapes",
        "--service-name",
        "quiet",
        "--task-definition",
        "web",
        "--desired-count",
        "0",
    ]);
    let service = &service["service"];
    assert!(service.get("tags").is_none(), "{service}");
    assert_eq!(service["deploymentController"], json!({ "type": "ECS" }));
    assert!(service.get("platformFamily").is_none(), "{service}");
    let out = dev.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        "shapes",
        "--service-name",
        "versioned",
        "--task-definition",
        "web",
        "--platform-version",
        "1.4.0",
    ]);
    assert_refused(&out, "InvalidParameterException", "platform version");
    let listed = dev.aws_json(&["ecs", "list-services", "--cluster", "shapes"]);
    assert_eq!(
        listed["serviceArns"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    dev.aws_json(&[
        "ecs",
        "delete-service",
        "--cluster",
        "shapes",
        "--service",
        "quiet",
    ]);
}

/// boto3 (whose botocore knows the newest members: availabilityZoneRebalancing,
/// DeleteTaskDefinitions) against berth; the script's assertions name what failed.
#[test]
fn boto3_sees_rebalancing_empty_parameters_and_deleted_definitions() {
    let dev = Dev::start();
    let checks = r#"

ecs.create_cluster(clusterName="az")
ecs.register_task_definition(family="web", containerDefinitions=[
    {"name": "app", "image": "berth/busybox", "memory": 64, "command": ["sleep", "3600"]}])

# Terraform and other SDK clients send "" for optional arguments left out.
created = ecs.create_service(cluster="az", serviceName="plain", taskDefinition="web",
                             desiredCount=0, launchType="", propagateTags="",
                             availabilityZoneRebalancing="")["service"]
assert created["availabilityZoneRebalancing"] == "ENABLED", created
assert created["launchType"] == "EC2", created
assert created["deploymentController"] == {"type": "ECS"}, created
assert "tags" not in created, created

off = ecs.create_service(cluster="az", serviceName="off", taskDefinition="web", desiredCount=0,
                         availabilityZoneRebalancing="DISABLED")["service"]
assert off["availabilityZoneRebalancing"] == "DISABLED", off
kept = ecs.update_service(cluster="az", service="off", desiredCount=0)["service"]
assert kept["availabilityZoneRebalancing"] == "DISABLED", kept
changed = ecs.update_service(cluster="az", service="off",
                             availabilityZoneRebalancing="ENABLED")["service"]
assert changed["availabilityZoneRebalancing"] == "ENABLED", changed
assert len(changed["deployments"]) == 1, changed["deployments"]
described = ecs.describe_services(cluster="az", services=["off", "plain"])["services"]
assert [s["availabilityZoneRebalancing"] for s in described] == ["ENABLED", "ENABLED"], described
wrong = code(ecs.update_service, cluster="az", service="off", availabilityZoneRebalancing="ON")
assert wrong[0] == "InvalidParameterException" and "availabilityZoneRebalancing" in wrong[1], wrong
missing = code(ecs.describe_tasks, cluster="nowhere", tasks=["x"])
assert missing[0] == "ClusterNotFoundException", missing

# UpdateCluster with Terraform's `setting` and `configuration`.
cluster = ecs.update_cluster(cluster="az",
    settings=[{"name": "containerInsights", "value": "enhanced"}],
    configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}})["cluster"]
assert cluster["settings"] == [{"name": "containerInsights", "value": "enhanced"}], cluster
assert cluster["configuration"] == {"executeCommandConfiguration": {"logging": "DEFAULT"}}, cluster

# DeleteTaskDefinitions: INACTIVE revisions only, the others in failures.
ecs.register_task_definition(family="web", containerDefinitions=[
    {"name": "app", "image": "berth/busybox", "memory": 64}])
ecs.deregister_task_definition(taskDefinition="web:2")
answer = ecs.delete_task_definitions(taskDefinitions=["web:2", "web:1"])
assert [d["status"] for d in answer["taskDefinitions"]] == ["DELETE_IN_PROGRESS"], answer
assert [f["arn"].rsplit("/", 1)[1] for f in answer["failures"]] == ["web:1"], answer
assert ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
refused = code(ecs.run_task, cluster="az", taskDefinition="web:2")
assert refused[0] == "ClientException", refused

# Capacity providers: the built-in FARGATE and FARGATE_SPOT, and ECS's rules.
providers = ecs.describe_capacity_providers()["capacityProviders"]
assert [p["name"] for p in providers] == ["FARGATE", "FARGATE_SPOT"], providers
strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
unassociated = code(ecs.create_service, cluster="az", serviceName="spot", taskDefinition="web:1",
                    capacityProviderStrategy=strategy)
assert "not associated with the cluster" in unassociated[1], unassociated
cluster = ecs.put_cluster_capacity_providers(cluster="az", capacityProviders=["FARGATE", "FARGATE_SPOT"],
    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 1}])["cluster"]
assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"], cluster
assert cluster["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}], cluster
both = code(ecs.create_service, cluster="az", serviceName="spot", taskDefinition="web:1",
            launchType="EC2", capacityProviderStrategy=strategy)
assert both[0] == "InvalidParameterException" and "launch type" in both[1], both
spot = ecs.create_service(cluster="az", serviceName="spot", taskDefinition="web:1", desiredCount=0,
                          capacityProviderStrategy=strategy)["service"]
assert "launchType" not in spot, spot
assert spot["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}], spot
assert spot["platformVersion"] == "LATEST", spot
print("ok")
"#;
    dev.boto3_checks(&format!("{}{checks}", support::BOTO3_ECS_PRELUDE));
}

/// RegisterTaskDefinition's rules that ECS applies by launch type: a container needs a
/// memory figure unless the task has one, and a Fargate definition needs awsvpc, a
/// Fargate task size and no host namespaces. The aws CLI v2 and boto3 see ECS's code
/// and message, and nothing refused is stored.
#[test]
fn task_definition_launch_type_rules_get_ecs_code_and_message() {
    let dev = Dev::start();
    let out = dev.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "no-memory",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox","command":["sleep","3600"]}]"#,
    ]);
    assert_refused(
        &out,
        "ClientException",
        "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified.",
    );
    let out = dev.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "fargate-host-pid",
        "--requires-compatibilities",
        "FARGATE",
        "--network-mode",
        "awsvpc",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--pid-mode",
        "host",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox"}]"#,
    ]);
    assert_refused(
        &out,
        "ClientException",
        "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
    );

    let checks = r#"
app = [{"name": "app", "image": "berth/busybox"}]
fargate = dict(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512")
refused = [
    (dict(family="no-memory", containerDefinitions=app),
     "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."),
    (dict(family="fargate-host-pid", containerDefinitions=app, **{**fargate, "pidMode": "host"}),
     "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."),
    (dict(family="fargate-ipc", containerDefinitions=app, **{**fargate, "ipcMode": "task"}),
     "Tasks using the Fargate launch type do not support ipcMode."),
    (dict(family="fargate-bridge", containerDefinitions=app, **{**fargate, "networkMode": "bridge"}),
     "Fargate only supports network mode \u2018awsvpc\u2019."),
    (dict(family="fargate-size", containerDefinitions=app, **{**fargate, "memory": "256"}),
     "No Fargate configuration exists for given values: 256 CPU, 256 memory. See the Amazon ECS documentation for the valid values."),
]
for request, message in refused:
    answer = code(ecs.register_task_definition, **request)
    assert answer == ("ClientException", message), (request["family"], answer)
assert ecs.list_task_definition_families()["families"] == [], "a refused definition was stored"

# What ECS accepts: a reservation alone, task-level memory, a Fargate size, pidMode task.
ecs.register_task_definition(family="soft", containerDefinitions=[{**app[0], "memoryReservation": 64}])
ecs.register_task_definition(family="task-memory", memory="128", containerDefinitions=app)
ecs.register_task_definition(family="fargate", containerDefinitions=app, **{**fargate, "pidMode": "task"})
families = ecs.list_task_definition_families()["families"]
assert sorted(families) == ["fargate", "soft", "task-memory"], families
print("ok")
"#;
    dev.boto3_checks(&format!("{}{checks}", support::BOTO3_ECS_PRELUDE));
}
