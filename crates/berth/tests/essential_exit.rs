//! `docker kill` of a task's essential container, against a real `berth dev`: the task
//! reads STOPPING (desired STOPPED) and the killed container STOPPED with its exit code
//! as soon as berth reports anything, while the task's other container is still being
//! stopped, and the task is out of its target group by then. The other container
//! ignores SIGTERM and has a 30 s `stopTimeout`, so "still being stopped" is not a race:
//! it runs until the SIGKILL half a minute later.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, str_at, Dev};

const CLUSTER: &str = "exits";

fn manifest(listener_port: u16) -> String {
    format!(
        r#"
cluster: {CLUSTER}
clusters:
  - clusterName: {CLUSTER}
loadBalancers:
  - name: {CLUSTER}
targetGroups:
  - name: {CLUSTER}
    protocol: HTTP
    port: 80
    healthCheckPath: /
    healthCheckIntervalSeconds: 5
    healthCheckTimeoutSeconds: 2
    healthyThresholdCount: 2
    matcher: "200-499"
    deregistrationDelaySeconds: 5
listeners:
  - loadBalancer: {CLUSTER}
    port: {listener_port}
    targetGroup: {CLUSTER}
taskDefinitions:
  - family: {CLUSTER}
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        essential: true
        memory: 16
        portMappings:
          - containerPort: 8080
            hostPort: 0
        command: ["httpd", "-f", "-p", "8080"]
      - name: slow
        image: berth/busybox:latest
        essential: true
        memory: 16
        # sleep as PID 1 ignores SIGTERM: it stops at the SIGKILL, 30 s after it.
        stopTimeout: 30
        command: ["sleep", "3600"]
services:
  - serviceName: {CLUSTER}
    taskDefinition: {CLUSTER}
    desiredCount: 1
    loadBalancers:
      - targetGroup: {CLUSTER}
        containerName: web
        containerPort: 8080
"#
    )
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("task has no container {name}: {task}"))
}

fn describe(dev: &Dev, task_arn: &str) -> Value {
    let described = dev.aws_json(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        CLUSTER,
        "--tasks",
        task_arn,
    ]);
    described["tasks"][0].clone()
}

#[test]
fn a_killed_essential_container_is_reported_at_once_while_the_rest_of_its_task_stops() {
    let dev = Dev::start();
    let file = dev.data_dir.path().join("exits.yaml");
    std::fs::write(&file, manifest(free_port())).unwrap();
    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "berth apply: {}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    dev.wait_services_stable(CLUSTER, &[CLUSTER], "after create");
    let group = dev.target_group_arn(CLUSTER);
    dev.wait_targets_healthy(&group, 1);
    let task = dev.service_tasks(Some(CLUSTER), CLUSTER).remove(0);
    let task_arn = str_at(&task, "/taskArn").to_string();
    assert_eq!(task["lastStatus"], "RUNNING", "{task}");

    let killed = Command::new("docker")
        .args(["kill", str_at(container(&task, "web"), "/runtimeId")])
        .output()
        .expect("docker kill");
    assert!(killed.status.success(), "docker kill: {killed:?}");

    // The first answer that shows the killed container STOPPED: the task is STOPPING
    // already, not RUNNING, and its other container is still running (berth did not
    // wait for it to stop before saying so).
    let first = dev.wait_for(
        "describe-tasks to show the killed container STOPPED",
        Duration::from_secs(60),
        || {
            let now = describe(&dev, &task_arn);
            (container(&now, "web")["lastStatus"] == "STOPPED").then_some(now)
        },
    );
    assert_eq!(first["lastStatus"], "STOPPING", "{first}");
    assert_eq!(first["desiredStatus"], "STOPPED", "{first}");
    assert_eq!(first["stopCode"], "EssentialContainerExited", "{first}");
    assert_eq!(container(&first, "web")["exitCode"], 137, "{first}");
    assert_eq!(
        container(&first, "slow")["lastStatus"],
        "RUNNING",
        "the other container still gets its stop timeout: {first}"
    );
    // It left its target group when it stopped answering, not once it is STOPPED.
    let port = container(&task, "web")
        .pointer("/networkBindings/0/hostPort")
        .cloned()
        .unwrap_or_else(|| panic!("web has no host port: {task}"));
    let health = dev.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &group,
    ]);
    assert!(
        health["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["Target"]["Port"] != port),
        "the killed task's target is out of the group: {health}"
    );

    // Then the rest stops and the task is STOPPED, with both exit codes.
    let stopped = dev.wait_for("the task to be STOPPED", Duration::from_secs(90), || {
        let now = describe(&dev, &task_arn);
        (now["lastStatus"] == "STOPPED").then_some(now)
    });
    assert_eq!(container(&stopped, "web")["exitCode"], 137, "{stopped}");
    assert_eq!(container(&stopped, "slow")["lastStatus"], "STOPPED");
    assert_eq!(stopped["stopCode"], "EssentialContainerExited", "{stopped}");
}
