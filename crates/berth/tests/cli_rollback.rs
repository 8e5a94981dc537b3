//! `berth rollback` and a failing `berth restart` against a real `berth dev` and Docker:
//! a service deployed at v1 and updated to v2 rolls back to v1 and runs it again; with
//! nothing earlier that succeeded, rollback is refused and changes nothing; a failed
//! deployment goes back to the last one that succeeded; a restart whose tasks exit at
//! once trips the circuit breaker and `berth restart` fails naming FAILED.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::Dev;

/// Long enough for a rollout to be stable (30 s) and then some.
const ROLLOUT: Duration = Duration::from_secs(180);

fn start() -> Dev {
    support::require_docker();
    support::require_images();
    Dev::start_with_flags(&["--task-cleanup-wait", "0"])
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_fails_naming(out: &Output, what: &str, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for word in words {
        assert!(stderr.contains(word), "{what}: {word:?} not in {stderr}");
    }
}

/// Registers a revision of `family` whose one container runs `script`.
fn register(dev: &Dev, family: &str, script: &str) -> String {
    let containers = serde_json::json!([{
        "name": "app", "image": "berth/busybox:latest", "memory": 16, "stopTimeout": 2,
        "command": ["sh", "-c", script]
    }]);
    let registered = dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--container-definitions",
        &containers.to_string(),
    ]);
    support::str_at(&registered, "/taskDefinition/taskDefinitionArn").to_string()
}

const SERVES: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

fn describe(dev: &Dev, cluster: &str) -> Value {
    let described = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        cluster,
        "--services",
        "web",
    ]);
    described["services"][0].clone()
}

/// Waits until the service's only deployment is COMPLETED; returns the service.
fn wait_completed(dev: &Dev, cluster: &str, when: &str) -> Value {
    dev.wait_for(&format!("the rollout {when}"), ROLLOUT, || {
        let service = describe(dev, cluster);
        let deployments = service["deployments"].as_array()?;
        (deployments.len() == 1 && deployments[0]["rolloutState"] == "COMPLETED").then_some(service)
    })
}

fn deployment_ids(service: &Value) -> Vec<String> {
    service["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| support::str_at(d, "/id").to_string())
        .collect()
}

fn running_definitions(dev: &Dev, cluster: &str) -> Vec<String> {
    dev.service_tasks(Some(cluster), "web")
        .iter()
        .filter(|task| task["lastStatus"] == "RUNNING")
        .map(|task| support::str_at(task, "/taskDefinitionArn").to_string())
        .collect()
}

#[test]
fn rollback_runs_the_previous_task_definition_again() {
    let dev = start();
    let cluster = "rb-back";
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", cluster]);
    let v1 = register(&dev, "rb-web", SERVES);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        cluster,
        "--service-name",
        "web",
        "--task-definition",
        &v1,
        "--desired-count",
        "1",
    ]);
    let first = wait_completed(&dev, cluster, "of v1");

    // Nothing before v1: refused, nothing changed.
    let out = dev.berth(&["rollback", "-c", cluster, "web"]);
    assert_fails_naming(
        &out,
        "rollback with no earlier deployment",
        &["web", "roll back", "rb-web:1", "nothing changed"],
    );
    let unchanged = describe(&dev, cluster);
    assert_eq!(deployment_ids(&unchanged), deployment_ids(&first));
    assert_eq!(unchanged["taskDefinition"].as_str(), Some(v1.as_str()));

    let v2 = register(&dev, "rb-web", SERVES);
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--cluster",
        cluster,
        "--service",
        "web",
        "--task-definition",
        &v2,
    ]);
    wait_completed(&dev, cluster, "of v2");
    assert_eq!(running_definitions(&dev, cluster), [v2]);

    let out = dev.berth(&["rollback", "-c", cluster, "web"]);
    let stdout = assert_ok(&out, "berth rollback");
    assert!(
        stdout
            .starts_with("service web rolling back from rb-web:2 to rb-web:1 (deployment ecs-svc/"),
        "{stdout}"
    );
    assert!(stdout.contains("has started"), "events are shown: {stdout}");
    assert!(
        stdout.contains("service web rolled back to rb-web:1"),
        "{stdout}"
    );
    let service = describe(&dev, cluster);
    assert_eq!(service["taskDefinition"].as_str(), Some(v1.as_str()));
    assert_eq!(running_definitions(&dev, cluster), [v1]);

    // A missing service is an error naming it.
    let out = dev.berth(&["rollback", "-c", cluster, "nosuch"]);
    assert_fails_naming(&out, "rollback of a missing service", &["nosuch", cluster]);
}

#[test]
fn a_restart_whose_rollout_fails_exits_non_zero_naming_failed() {
    let dev = start();
    let cluster = "rb-fail";
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", cluster]);
    let crashing = register(&dev, "rb-crash", "exit 1");
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        cluster,
        "--service-name",
        "web",
        "--task-definition",
        &crashing,
        "--desired-count",
        "1",
        "--deployment-configuration",
        "deploymentCircuitBreaker={enable=true,rollback=false}",
    ]);

    let out = dev.berth(&["restart", "-c", cluster, "web"]);
    assert_fails_naming(
        &out,
        "restart of a service whose tasks exit at once",
        &["web", "FAILED", "circuit breaker"],
    );
    let service = describe(&dev, cluster);
    assert_eq!(service["deployments"][0]["rolloutState"], "FAILED");

    // Nothing of it ever succeeded: there is nothing to roll back to.
    let out = dev.berth(&["rollback", "-c", cluster, "web"]);
    assert_fails_naming(&out, "rollback with no success", &["nothing changed"]);
    let unchanged = describe(&dev, cluster);
    assert_eq!(
        unchanged["deployments"][0]["id"],
        service["deployments"][0]["id"]
    );
    assert_eq!(unchanged["taskDefinition"], service["taskDefinition"]);
}

#[test]
fn a_failed_deployment_rolls_back_to_the_last_success() {
    let dev = start();
    let cluster = "rb-failed";
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", cluster]);
    let good = register(&dev, "rb-good", SERVES);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        cluster,
        "--service-name",
        "web",
        "--task-definition",
        &good,
        "--desired-count",
        "1",
        "--deployment-configuration",
        "deploymentCircuitBreaker={enable=true,rollback=false}",
    ]);
    wait_completed(&dev, cluster, "of the good revision");
    let bad = register(&dev, "rb-good", "exit 1");
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--cluster",
        cluster,
        "--service",
        "web",
        "--task-definition",
        &bad,
    ]);
    dev.wait_for("the bad rollout to fail", ROLLOUT, || {
        (describe(&dev, cluster)["deployments"][0]["rolloutState"] == "FAILED").then_some(())
    });

    let out = dev.berth(&["rollback", "-c", cluster, "web"]);
    let stdout = assert_ok(&out, "berth rollback of a failed deployment");
    assert!(
        stdout.starts_with("service web rolling back from rb-good:2 to rb-good:1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("service web rolled back to rb-good:1"),
        "{stdout}"
    );
    assert_eq!(
        describe(&dev, cluster)["taskDefinition"].as_str(),
        Some(good.as_str())
    );
    assert_eq!(running_definitions(&dev, cluster), [good]);
}
