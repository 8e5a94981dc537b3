//! `berth describe` and `berth down -f` against a real `berth dev` and Docker: a file
//! with a load balancer, target group, listener, task definition and service is
//! applied; `describe SERVICE` and `describe TASKID` show what the aws CLI sees (the
//! revision, the target turning healthy, a stopped container's exit code); `down
//! --dry-run` changes nothing; `down` removes all of it (checked with the aws CLI, the
//! listener's port and Docker), and a second `down` says it is already gone. A cluster
//! of the file that holds a service the file does not declare is kept, saying why, and
//! a file down cannot read is refused before any change.

mod support;

use std::process::Output;
use std::time::Duration;

use support::{str_at, Dev};

/// The service runs in berth's default cluster (describe-services still answers for it
/// once deleted); the file also declares a cluster of its own, deleted once empty.
const CLUSTER: &str = "default";
const SPARE: &str = "down-spare";

fn manifest(port: u16) -> String {
    format!(
        r#"
clusters: [{SPARE}]
loadBalancers: [down-lb]
targetGroups:
  - name: down-web
    protocol: HTTP
    port: 8080
    healthCheckPath: /health.html
    healthCheckIntervalSeconds: 5
    healthCheckTimeoutSeconds: 2
    healthyThresholdCount: 2
    deregistrationDelaySeconds: 1
listeners:
  - {{loadBalancer: down-lb, port: {port}, targetGroup: down-web}}
taskDefinitions:
  - family: down-web
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        portMappings: [{{containerPort: 8080, hostPort: 0}}]
        command: ["sh", "-c", "mkdir -p /www && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"]
services:
  - serviceName: web
    taskDefinition: down-web
    desiredCount: 1
    loadBalancers: [{{targetGroup: down-web, containerName: web, containerPort: 8080}}]
"#
    )
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output, what: &str) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "{what} failed: {stdout}{stderr}");
    stdout
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

fn field(name: &str, value: &str) -> String {
    format!("  {:<26}{value}", format!("{name}:"))
}

#[test]
fn describe_shows_what_ecs_says_and_down_removes_what_the_file_created() {
    support::require_docker();
    support::require_images();
    let dev = Dev::start_with_flags(&["--task-cleanup-wait", "0"]);
    let port = support::free_port();
    let file = dev.data_dir.path().join("shop.yaml");
    std::fs::write(&file, manifest(port)).unwrap();
    let file = file.to_str().unwrap();
    ok(&dev.berth(&["apply", "-f", file]), "apply");
    dev.wait_services_stable(CLUSTER, &["web"], "after apply");
    let tg_arn = dev.target_group_arn("down-web");
    dev.wait_targets_healthy(&tg_arn, 1);

    // describe SERVICE: the revision, counts, the target group and its healthy target.
    let described = ok(
        &dev.berth(&["describe", "-c", CLUSTER, "web"]),
        "describe web",
    );
    let tasks = dev.service_tasks(Some(CLUSTER), "web");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task_id = str_at(&tasks[0], "/taskArn")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let short_id = &task_id[..12];
    for line in [
        format!("service web (cluster {CLUSTER})"),
        field("status", "ACTIVE"),
        field("task definition", "down-web:1"),
        field("desired/running/pending", "1/1/0"),
        "  target group down-web -> web:8080".to_string(),
    ] {
        assert!(
            has_line(&described, &line),
            "'{line}' missing:\n{described}"
        );
    }
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("    ") && l.ends_with("  healthy")),
        "the target is healthy:\n{described}"
    );
    let services = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        CLUSTER,
        "--services",
        "web",
    ]);
    let deployment = str_at(&services, "/services/0/deployments/0/id");
    assert!(
        described
            .lines()
            .any(|l| l.starts_with(&format!("  {deployment}  PRIMARY  "))),
        "{described}"
    );
    assert!(
        has_line(
            &described,
            &format!("  {short_id}  RUNNING  UNKNOWN  down-web:1  target down-web healthy")
        ),
        "{described}"
    );
    assert!(
        described.contains("has reached a steady state."),
        "{described}"
    );

    // describe TASKID: its bindings as the aws CLI reports them, and its target health.
    let host_port = tasks[0]["containers"][0]["networkBindings"][0]["hostPort"]
        .as_i64()
        .expect("a host port");
    let described = ok(
        &dev.berth(&["describe", "-c", CLUSTER, short_id]),
        "describe task",
    );
    for line in [
        format!("task {task_id} (cluster {CLUSTER})"),
        field("last status", "RUNNING"),
        field("task definition", "down-web:1"),
        field("service", "web"),
        field(
            "network bindings",
            &format!("0.0.0.0:{host_port}->8080/tcp"),
        ),
        "  target group down-web: healthy".to_string(),
    ] {
        assert!(
            has_line(&described, &line),
            "'{line}' missing:\n{described}"
        );
    }

    // A stopped task: its exit code and reason as DescribeTasks has them.
    ok(
        &dev.berth(&["stop", "-c", CLUSTER, &task_id, "--reason", "down test"]),
        "stop",
    );
    let stopped = dev.wait_for("the task stopped", Duration::from_secs(60), || {
        let tasks = dev.aws_json(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            CLUSTER,
            "--tasks",
            &task_id,
        ]);
        let task = tasks["tasks"][0].clone();
        (task["lastStatus"] == "STOPPED" && task["containers"][0]["exitCode"].is_i64())
            .then_some(task)
    });
    let exit_code = stopped["containers"][0]["exitCode"].as_i64().unwrap();
    let described = ok(
        &dev.berth(&["describe", "-c", CLUSTER, &task_id]),
        "describe stopped",
    );
    for line in [
        field("last status", "STOPPED"),
        field("exit code", &exit_code.to_string()),
        field("stopped reason", str_at(&stopped, "/stoppedReason")),
        field("stop code", str_at(&stopped, "/stopCode")),
    ] {
        assert!(
            has_line(&described, &line),
            "'{line}' missing:\n{described}"
        );
    }

    // An unknown name is an error naming the cluster.
    let out = dev.berth(&["describe", "-c", CLUSTER, "nosuch"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "service 'nosuch' not found in cluster '{CLUSTER}'"
        )),
        "{stderr}"
    );
    dev.wait_services_stable(CLUSTER, &["web"], "after the stop");

    // --dry-run: the steps, and nothing changed.
    let dry = ok(
        &dev.berth(&["down", "-f", file, "--dry-run"]),
        "down --dry-run",
    );
    for line in [
        format!("service web of cluster {CLUSTER} deleted (scaled to 0, its tasks stopped)"),
        format!("listener down-lb:{port} deleted"),
        "load balancer down-lb deleted".to_string(),
        "target group down-web deleted".to_string(),
        "task definition down-web:1 deregistered".to_string(),
        format!("cluster {SPARE} deleted"),
    ] {
        assert!(has_line(&dry, &line), "'{line}' missing:\n{dry}");
    }
    let services = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        CLUSTER,
        "--services",
        "web",
    ]);
    assert_eq!(str_at(&services, "/services/0/status"), "ACTIVE");
    dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "down-lb"]);
    assert!(
        support::http_get(port, "/health.html").is_ok(),
        "the listener still answers"
    );

    // down: everything goes, in order.
    let out = ok(&dev.berth(&["down", "-f", file]), "down");
    let order = [
        "service web deleted".to_string(),
        format!("listener down-lb:{port} deleted"),
        "load balancer down-lb deleted".to_string(),
        "target group down-web deleted".to_string(),
        "task definition down-web:1 deregistered".to_string(),
        format!("cluster {SPARE} deleted"),
    ];
    let mut at = 0;
    for line in &order {
        let found = out[at..].find(line.as_str());
        assert!(found.is_some(), "'{line}' missing or out of order:\n{out}");
        at += found.unwrap();
    }

    let services = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        CLUSTER,
        "--services",
        "web",
    ]);
    assert_eq!(
        str_at(&services, "/services/0/status"),
        "INACTIVE",
        "{services}"
    );
    let lbs = dev.aws(&["elbv2", "describe-load-balancers", "--names", "down-lb"]);
    assert!(
        !lbs.status.success() && text(&lbs).1.contains("LoadBalancerNotFound"),
        "{:?}",
        text(&lbs)
    );
    let tgs = dev.aws(&["elbv2", "describe-target-groups", "--names", "down-web"]);
    assert!(
        !tgs.status.success() && text(&tgs).1.contains("TargetGroupNotFound"),
        "{:?}",
        text(&tgs)
    );
    let all_lbs = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(
        all_lbs["LoadBalancers"].as_array().map(Vec::len),
        Some(0),
        "{all_lbs}"
    );
    let definition = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "down-web:1",
    ]);
    assert_eq!(str_at(&definition, "/taskDefinition/status"), "INACTIVE");
    let clusters = dev.aws_json(&["ecs", "describe-clusters", "--clusters", SPARE]);
    assert!(
        clusters["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "INACTIVE"),
        "{clusters}"
    );
    dev.wait_for(
        "the listener's port closed",
        Duration::from_secs(10),
        || {
            support::http_get(port, "/health.html")
                .is_err()
                .then_some(())
        },
    );
    dev.wait_for("no container left", Duration::from_secs(30), || {
        dev.containers().is_empty().then_some(())
    });

    // A second down: all already gone, and a success.
    let again = ok(&dev.berth(&["down", "-f", file]), "second down");
    let lines: Vec<&str> = again.lines().collect();
    assert_eq!(lines.len(), 6, "{again}");
    assert!(
        lines.iter().all(|l| l.ends_with(" already gone")),
        "{again}"
    );
}

#[test]
fn down_keeps_a_cluster_something_else_uses_and_refuses_a_bad_file() {
    support::require_docker();
    let dev = Dev::start();
    let file = dev.data_dir.path().join("keep.yaml");
    std::fs::write(
        &file,
        r#"
clusters: [keep-c]
targetGroups: [{name: keep-tg, protocol: HTTP, port: 80}]
taskDefinitions:
  - family: keep-web
    containerDefinitions: [{name: web, image: berth/busybox:latest, memory: 16}]
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    ok(&dev.berth(&["apply", "-f", file]), "apply");
    // A service the file does not declare, in the file's cluster.
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        "keep-c",
        "--service-name",
        "other",
        "--task-definition",
        "keep-web:1",
        "--desired-count",
        "0",
    ]);

    // A file down cannot read is refused, naming the field, and nothing changes.
    let bad = dev.data_dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "taskDefinitions:\n  - family: keep-web\n    containerDefinitions: [{name: web, image: x, memory: lots}]\n",
    )
    .unwrap();
    let out = dev.berth(&["down", "-f", bad.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("taskDefinitions[0] (family keep-web): containerDefinitions[0].memory"),
        "{stderr}"
    );
    let definition = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "keep-web:1",
    ]);
    assert_eq!(str_at(&definition, "/taskDefinition/status"), "ACTIVE");

    let out = ok(&dev.berth(&["down", "-f", file]), "down");
    for line in [
        "target group keep-tg deleted",
        "task definition keep-web:1 deregistered",
        "cluster keep-c kept: it has services the file does not declare (other)",
    ] {
        assert!(has_line(&out, line), "'{line}' missing:\n{out}");
    }
    let clusters = dev.aws_json(&["ecs", "describe-clusters", "--clusters", "keep-c"]);
    assert_eq!(
        str_at(&clusters, "/clusters/0/status"),
        "ACTIVE",
        "{clusters}"
    );
    let services = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "keep-c",
        "--services",
        "other",
    ]);
    assert_eq!(str_at(&services, "/services/0/status"), "ACTIVE");
}
