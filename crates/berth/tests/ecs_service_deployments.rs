//! ECS's service deployment history as boto3 (the real client; the Debian aws CLI v2
//! predates these actions) sees it from `berth dev` running tasks on Docker: a service
//! created and updated twice lists three deployments, newest first, with ECS's
//! statuses, and describes them and their revisions.

mod support;

use support::Dev;

#[test]
fn boto3_lists_and_describes_the_deployments_of_a_service_updated_twice() {
    support::require_docker();
    support::require_images();
    let dev = Dev::start_with_flags(&["--task-cleanup-wait", "0"]);
    let checks = r#"
import time

def register():
    return ecs.register_task_definition(family="sd-web", containerDefinitions=[
        {"name": "app", "image": "berth/busybox:latest", "memory": 16, "stopTimeout": 2,
         "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}]
    )["taskDefinition"]["taskDefinitionArn"]

def deployments():
    return ecs.list_service_deployments(cluster="sd", service="web")["serviceDeployments"]

def wait_successful(what):
    deadline = time.time() + 180
    while time.time() < deadline:
        listed = deployments()
        if listed and listed[0]["status"] == "SUCCESSFUL":
            return listed
        time.sleep(1)
    raise AssertionError(f"{what} never became SUCCESSFUL: {deployments()}")

ecs.create_cluster(clusterName="sd")
v1 = register()
ecs.create_service(cluster="sd", serviceName="web", taskDefinition=v1, desiredCount=1)
first = deployments()
assert [d["status"] for d in first] == ["IN_PROGRESS"], first
wait_successful("the first deployment")

# Updated twice: to v2, and at once to v3, which replaces v2 before it finished.
v2 = register()
ecs.update_service(cluster="sd", service="web", taskDefinition=v2)
v3 = register()
ecs.update_service(cluster="sd", service="web", taskDefinition=v3)
listed = wait_successful("the last deployment")
assert [d["status"] for d in listed] == ["SUCCESSFUL", "STOPPED", "SUCCESSFUL"], listed
service_arn = "arn:aws:ecs:us-east-1:000000000000:service/sd/web"
for d in listed:
    assert d["serviceArn"].endswith(":service/sd/web"), d
    assert d["clusterArn"].endswith(":cluster/sd"), d
    assert ":service-deployment/sd/web/" in d["serviceDeploymentArn"], d
    assert ":service-revision/sd/web/" in d["targetServiceRevisionArn"], d
    assert d["createdAt"].year >= 2024 and "startedAt" in d and "finishedAt" in d, d
assert "replaced" in listed[1]["statusReason"], listed[1]

# Pages, and the status filter.
page = ecs.list_service_deployments(cluster="sd", service="web", maxResults=2)
assert len(page["serviceDeployments"]) == 2 and "nextToken" in page, page
rest = ecs.list_service_deployments(cluster="sd", service="web", nextToken=page["nextToken"])
assert [d["serviceDeploymentArn"] for d in rest["serviceDeployments"]] == [listed[2]["serviceDeploymentArn"]], rest
stopped = ecs.list_service_deployments(cluster="sd", service="web", status=["STOPPED"])
assert [d["serviceDeploymentArn"] for d in stopped["serviceDeployments"]] == [listed[1]["serviceDeploymentArn"]], stopped

described = ecs.describe_service_deployments(
    serviceDeploymentArns=[d["serviceDeploymentArn"] for d in listed] +
        ["arn:aws:ecs:us-east-1:000000000000:service-deployment/sd/web/1"])
found = described["serviceDeployments"]
assert [d["status"] for d in found] == ["SUCCESSFUL", "STOPPED", "SUCCESSFUL"], found
assert [f["reason"] for f in described["failures"]] == ["MISSING"], described["failures"]
newest = found[0]
assert newest["targetServiceRevision"]["arn"] == listed[0]["targetServiceRevisionArn"], newest
assert newest["targetServiceRevision"]["runningTaskCount"] == 1, newest
sources = [s["arn"] for s in newest["sourceServiceRevisions"]]
assert sources == [listed[1]["targetServiceRevisionArn"], listed[2]["targetServiceRevisionArn"]], newest
assert newest["deploymentCircuitBreaker"]["status"] == "DISABLED", newest
assert "stoppedAt" in found[1] and "stoppedAt" not in newest, found

revisions = ecs.describe_service_revisions(
    serviceRevisionArns=[d["targetServiceRevisionArn"] for d in listed])
assert revisions["failures"] == [], revisions
assert [r["taskDefinition"] for r in revisions["serviceRevisions"]] == [v3, v2, v1], revisions
for r in revisions["serviceRevisions"]:
    assert r["launchType"] == "EC2", r
    assert r["containerImages"] == [{"containerName": "app", "image": "berth/busybox:latest"}], r

# Bad input: ECS's codes, naming the field.
wrong = code(ecs.list_service_deployments, cluster="sd", service="web", status=["DONE"])
assert wrong[0] == "InvalidParameterException" and "status" in wrong[1], wrong
wrong = code(ecs.list_service_deployments, cluster="sd", service="nosuch")
assert wrong[0] == "ServiceNotFoundException", wrong
wrong = code(ecs.describe_service_deployments, serviceDeploymentArns=[service_arn])
assert wrong[0] == "InvalidParameterException" and "serviceDeploymentArns[0]" in wrong[1], wrong
print("ok")
"#;
    dev.boto3_checks(&format!("{}{checks}", support::BOTO3_ECS_PRELUDE));
}
