//! kill -9 of `berth dev` loses nothing, and the restart reconciles reality: running
//! containers are adopted, tasks whose containers vanished become STOPPED, orphan
//! containers are removed, and no service ends up with more tasks than it should.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::Dev;

fn describe_service(dev: &Dev) -> Value {
    dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "default",
        "--services",
        "web",
    ])
}

fn running_task_arns(dev: &Dev) -> Vec<String> {
    let list = dev.aws_json(&[
        "ecs",
        "list-tasks",
        "--cluster",
        "default",
        "--service-name",
        "web",
    ]);
    list["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn app_containers(dev: &Dev) -> Vec<String> {
    let node = dev.node_id().unwrap();
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=berth.node={node}"),
        ])
        .args(["--filter", "label=berth.container=web"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_minus_nine_then_restart_reconciles_reality() {
    let mut dev = Dev::start();
    dev.aws_json(&[
        "ecs", "register-task-definition", "--family", "web", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"command":["httpd","-f","-p","8080"]}]"#,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
    ]);
    dev.wait_for("3 running tasks", Duration::from_secs(60), || {
        let service = describe_service(&dev);
        (service
            .pointer("/services/0/runningCount")
            .and_then(Value::as_i64)
            == Some(3))
        .then_some(())
    });
    let before: Vec<String> = app_containers(&dev);
    assert_eq!(before.len(), 3);
    let tasks_before = running_task_arns(&dev);

    // Crash berth, then change reality behind its back: one task's container vanishes,
    // and a stranger container with berth's labels appears.
    dev.kill();
    let vanished = before[0].clone();
    assert!(Command::new("docker")
        .args(["rm", "-f", &vanished])
        .output()
        .unwrap()
        .status
        .success());
    let node = dev.node_id().unwrap();
    let orphan = Command::new("docker")
        .args([
            "run",
            "-d",
            "--label",
            "berth.managed=true",
            "--label",
            &format!("berth.node={node}"),
        ])
        .args([
            "--label",
            "berth.task=00000000000000000000000000000bad",
            "--label",
            "berth.container=web",
        ])
        .args(["berth/busybox:latest", "sleep", "600"])
        .output()
        .unwrap();
    assert!(
        orphan.status.success(),
        "{}",
        String::from_utf8_lossy(&orphan.stderr)
    );
    let orphan_id = String::from_utf8_lossy(&orphan.stdout).trim().to_string();

    dev.spawn();

    // Definitions and the service survived.
    let definition = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "web",
    ]);
    assert_eq!(
        definition
            .pointer("/taskDefinition/revision")
            .and_then(Value::as_i64),
        Some(1)
    );
    // The orphan is removed.
    dev.wait_for(
        "the orphan container to be removed",
        Duration::from_secs(30),
        || {
            let out = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("id={orphan_id}")])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .is_empty()
                .then_some(())
        },
    );
    // The service is back to exactly 3, the two survivors adopted (same containers).
    dev.wait_for("3 running tasks again", Duration::from_secs(60), || {
        let service = describe_service(&dev);
        let running = service
            .pointer("/services/0/runningCount")
            .and_then(Value::as_i64);
        (running == Some(3) && app_containers(&dev).len() == 3).then_some(())
    });
    let after = app_containers(&dev);
    for survivor in &before[1..] {
        assert!(
            after.contains(survivor),
            "container {survivor} was adopted, not replaced"
        );
    }
    // The task whose container vanished is STOPPED with a reason, not RUNNING.
    let vanished_task = tasks_before
        .iter()
        .find(|arn| !running_task_arns(&dev).contains(arn))
        .expect("one of the old tasks is no longer running")
        .clone();
    let described = dev.aws_json(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        "default",
        "--tasks",
        &vanished_task,
    ]);
    assert_eq!(
        described
            .pointer("/tasks/0/lastStatus")
            .and_then(Value::as_str),
        Some("STOPPED")
    );
    let reason = described
        .pointer("/tasks/0/stoppedReason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        reason.contains("vanished") || reason.contains("exited"),
        "a reason is given: {reason}"
    );
    // Never more tasks than desired.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(running_task_arns(&dev).len(), 3);
    assert_eq!(app_containers(&dev).len(), 3);
}
