//! Capacity providers users make, as the real aws CLI v2 and boto3 see them from a real
//! `berth dev`: CreateCapacityProvider, UpdateCapacityProvider, DeleteCapacityProvider,
//! DescribeCapacityProviders, their tags, PutClusterCapacityProviders with them, and
//! the errors ECS gives. Expectations come from botocore's `ecs/2014-11-13` model and
//! ECS's API reference.

mod support;

use support::{assert_refused, Dev};

const GROUP: &str =
    "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/blue";

#[test]
fn aws_cli_creates_updates_and_deletes_capacity_providers() {
    let dev = Dev::start();
    let created = dev.aws_json(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        "blue",
        "--auto-scaling-group-provider",
        &format!("autoScalingGroupArn={GROUP},managedScaling={{status=DISABLED}},managedTerminationProtection=DISABLED"),
        "--tags",
        "key=team,value=web",
    ]);
    let provider = &created["capacityProvider"];
    assert_eq!(provider["name"], "blue");
    assert_eq!(provider["status"], "ACTIVE");
    assert_eq!(
        provider["capacityProviderArn"],
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/blue"
    );
    assert_eq!(
        provider["autoScalingGroupProvider"]["autoScalingGroupArn"],
        GROUP
    );
    assert_eq!(
        provider["autoScalingGroupProvider"]["managedScaling"]["status"],
        "DISABLED"
    );

    // ECS's refusals.
    let again = dev.aws(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        "blue",
        "--auto-scaling-group-provider",
        "autoScalingGroupArn=other",
    ]);
    assert_refused(
        &again,
        "ClientException",
        "The specified capacity provider already exists.",
    );
    let reserved = dev.aws(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        "fargate-mine",
        "--auto-scaling-group-provider",
        "autoScalingGroupArn=other",
    ]);
    assert_refused(&reserved, "ClientException", "cannot be prefixed");
    let scaling = dev.aws(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        "green",
        "--auto-scaling-group-provider",
        "autoScalingGroupArn=green,managedScaling={status=ENABLED,targetCapacity=90}",
    ]);
    assert_refused(
        &scaling,
        "InvalidParameterException",
        "managedScaling.status ENABLED",
    );
    let protection = dev.aws(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        "green",
        "--auto-scaling-group-provider",
        "autoScalingGroupArn=green,managedTerminationProtection=ENABLED",
    ]);
    assert_refused(
        &protection,
        "ClientException",
        "managed termination protection",
    );

    let updated = dev.aws_json(&[
        "ecs",
        "update-capacity-provider",
        "--name",
        "blue",
        "--auto-scaling-group-provider",
        "managedScaling={status=DISABLED,targetCapacity=75},managedTerminationProtection=DISABLED",
    ]);
    assert_eq!(
        updated["capacityProvider"]["updateStatus"],
        "UPDATE_COMPLETE"
    );
    assert_eq!(
        updated["capacityProvider"]["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"],
        75
    );
    let described = dev.aws_json(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        "blue",
        "nope",
        "--include",
        "TAGS",
    ]);
    assert_eq!(described["capacityProviders"][0]["tags"][0]["key"], "team");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    let tags = dev.aws_json(&[
        "ecs",
        "list-tags-for-resource",
        "--resource-arn",
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/blue",
    ]);
    assert_eq!(tags["tags"][0]["value"], "web");

    // In a cluster: a strategy may name it; it cannot be deleted meanwhile.
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", "cp"]);
    let unknown = dev.aws(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        "cp",
        "--capacity-providers",
        "nope",
        "--default-capacity-provider-strategy",
        "[]",
    ]);
    assert_refused(
        &unknown,
        "InvalidParameterException",
        "'nope' does not exist",
    );
    let cluster = dev.aws_json(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        "cp",
        "--capacity-providers",
        "blue",
        "--default-capacity-provider-strategy",
        "capacityProvider=blue,weight=1",
    ]);
    assert_eq!(cluster["cluster"]["capacityProviders"][0], "blue");
    let failed = dev.aws_json(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        "blue",
    ]);
    assert_eq!(failed["capacityProvider"]["updateStatus"], "DELETE_FAILED");
    assert!(failed["capacityProvider"]["updateStatusReason"]
        .as_str()
        .unwrap()
        .contains("associated with cluster: cp"));

    // berth dev's machine serves no provider: a task for blue has nowhere to go.
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox","memory":64,"command":["sleep","3600"]}]"#,
    ]);
    let nowhere = dev.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "cp",
        "--task-definition",
        "web",
    ]);
    assert_refused(
        &nowhere,
        "InvalidParameterException",
        "No Container Instances were found in your capacity provider.",
    );

    // Out of the cluster, it is deleted: INACTIVE, still described.
    dev.aws_json(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        "cp",
        "--capacity-providers",
        "[]",
        "--default-capacity-provider-strategy",
        "[]",
    ]);
    let deleted = dev.aws_json(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/blue",
    ]);
    assert_eq!(deleted["capacityProvider"]["status"], "INACTIVE");
    assert_eq!(
        deleted["capacityProvider"]["updateStatus"],
        "DELETE_COMPLETE"
    );
    let gone = dev.aws(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        "blue",
    ]);
    assert_refused(&gone, "ClientException", "does not exist");
    let fargate = dev.aws(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        "FARGATE",
    ]);
    assert_refused(&fargate, "ClientException", "reserved");
}

#[test]
fn boto3_sees_capacity_provider_strategies_as_ecs_gives_them() {
    let dev = Dev::start();
    let checks = r#"
ecs.create_cluster(clusterName="cp")
ecs.register_task_definition(family="web", containerDefinitions=[
    {"name": "app", "image": "berth/busybox", "memory": 64, "command": ["sleep", "3600"]}])
made = ecs.create_capacity_provider(name="blue",
    autoScalingGroupProvider={"autoScalingGroupArn": "blue-group"})["capacityProvider"]
assert made["autoScalingGroupProvider"]["managedTerminationProtection"] == "DISABLED", made
assert made["autoScalingGroupProvider"]["managedScaling"]["instanceWarmupPeriod"] == 300, made
names = [p["name"] for p in ecs.describe_capacity_providers()["capacityProviders"]]
assert names == ["FARGATE", "FARGATE_SPOT", "blue"], names
mixed = code(ecs.put_cluster_capacity_providers, cluster="cp",
    capacityProviders=["FARGATE", "blue"],
    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1},
                                     {"capacityProvider": "blue", "weight": 1}])
assert mixed[0] == "InvalidParameterException" and "mix" in mixed[1], mixed
ecs.put_cluster_capacity_providers(cluster="cp", capacityProviders=["FARGATE_SPOT", "blue"],
    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])

# Neither a launch type nor a strategy: the cluster's default, on the task too.
task = ecs.run_task(cluster="cp", taskDefinition="web")["tasks"][0]
assert task["capacityProviderName"] == "FARGATE_SPOT", task
assert task["launchType"] == "FARGATE", task
listed = ecs.list_tasks(cluster="cp", launchType="FARGATE")["taskArns"]
assert listed == [task["taskArn"]], listed
assert ecs.list_tasks(cluster="cp", launchType="EC2")["taskArns"] == []

# A service on EC2 switches to a strategy only with a new deployment.
service = ecs.create_service(cluster="cp", serviceName="s", taskDefinition="web",
                             desiredCount=0, launchType="EC2")["service"]
assert service["launchType"] == "EC2", service
spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
refused = code(ecs.update_service, cluster="cp", service="s", capacityProviderStrategy=spot)
assert refused[0] == "InvalidParameterException", refused
assert refused[1].startswith("When switching from launch type to capacity provider strategy"), refused
switched = ecs.update_service(cluster="cp", service="s", capacityProviderStrategy=spot,
                              forceNewDeployment=True)["service"]
assert "launchType" not in switched, switched
assert switched["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT", switched
assert len(switched["deployments"]) == 2, switched
assert ecs.list_services(cluster="cp", launchType="FARGATE")["serviceArns"] == [switched["serviceArn"]]

# FARGATE_SPOT is used: it cannot leave the cluster.
in_use = code(ecs.put_cluster_capacity_providers, cluster="cp", capacityProviders=["blue"],
              defaultCapacityProviderStrategy=[])
assert in_use == ("ResourceInUseException",
                  "The specified capacity provider is in use and cannot be removed."), in_use
ecs.tag_resource(resourceArn=made["capacityProviderArn"], tags=[{"key": "env", "value": "prod"}])
tags = ecs.list_tags_for_resource(resourceArn=made["capacityProviderArn"])["tags"]
assert tags == [{"key": "env", "value": "prod"}], tags
ecs.untag_resource(resourceArn=made["capacityProviderArn"], tagKeys=["env"])
assert ecs.list_tags_for_resource(resourceArn=made["capacityProviderArn"])["tags"] == []
ecs.stop_task(cluster="cp", task=task["taskArn"])
print("ok")
"#;
    dev.boto3_checks(&format!("{}{checks}", support::BOTO3_ECS_PRELUDE));
}
