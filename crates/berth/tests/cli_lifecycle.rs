//! `berth restart` and `berth delete` against a real `berth dev` and Docker: a restart
//! replaces every task with a new one and waits for the rollout; deleting a service
//! stops its tasks, and their containers go (at once under `--task-cleanup-wait 0`); a cluster with services is refused,
//! naming them; deleting a load balancer takes its listeners and the target groups no
//! other one uses; a missing service, cluster or load balancer is an error naming it
//! that changes nothing.

mod support;

use std::collections::HashSet;
use std::process::Output;
use std::time::Duration;

use support::{free_port, Dev};

fn manifest(cluster: &str) -> String {
    format!(
        r#"
cluster: {cluster}
clusters: [{cluster}]
taskDefinitions:
  - family: {cluster}-web
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
services:
  - serviceName: web
    taskDefinition: {cluster}-web
    desiredCount: 2
"#
    )
}

/// `berth dev` with the manifest applied and its service stable. Stopped tasks'
/// containers are removed at once (not kept 10 minutes for `berth logs`).
fn start(cluster: &str) -> Dev {
    support::require_docker();
    support::require_images();
    let dev = Dev::start_with_flags(&["--task-cleanup-wait", "0"]);
    let file = dev.data_dir.path().join("lifecycle.yaml");
    std::fs::write(&file, manifest(cluster)).unwrap();
    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert_ok(&applied, "apply");
    dev.wait_services_stable(cluster, &["web"], "after apply");
    dev
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_fails_naming(out: &Output, what: &str, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "{what}: {word:?} not in {stderr}");
    }
}

fn task_arns(dev: &Dev, cluster: &str) -> HashSet<String> {
    dev.service_tasks(Some(cluster), "web")
        .iter()
        .map(|task| task["taskArn"].as_str().expect("taskArn").to_string())
        .collect()
}

fn service_status(dev: &Dev, cluster: &str) -> String {
    let described = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        cluster,
        "--services",
        "web",
    ]);
    described
        .pointer("/services/0/status")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no service web: {described}"))
        .to_string()
}

#[test]
fn restart_replaces_every_task_and_waits_for_the_rollout() {
    let dev = start("lc-restart");
    let before = task_arns(&dev, "lc-restart");
    assert_eq!(before.len(), 2, "{before:?}");

    let out = dev.berth(&["restart", "-c", "lc-restart", "web"]);
    assert_ok(&out, "berth restart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("service web restarting (deployment ecs-svc/"),
        "{stdout}"
    );
    assert!(stdout.contains("has started"), "events are shown: {stdout}");
    assert!(stdout.contains("service web restarted"), "{stdout}");

    // Once the rollout is COMPLETED, two tasks run, none of them an old one.
    let after = dev.service_tasks(Some("lc-restart"), "web");
    let running: Vec<&str> = after
        .iter()
        .filter(|task| task["lastStatus"] == "RUNNING")
        .map(|task| task["taskArn"].as_str().unwrap())
        .collect();
    assert_eq!(running.len(), 2, "{after:?}");
    assert!(
        running.iter().all(|arn| !before.contains(*arn)),
        "old tasks still run: {running:?} vs {before:?}"
    );

    // --no-wait returns once the deployment is started.
    let out = dev.berth(&["restart", "-c", "lc-restart", "web", "--no-wait"]);
    assert_ok(&out, "berth restart --no-wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let out = dev.berth(&["restart", "-c", "lc-restart", "nosuch"]);
    assert_fails_naming(
        &out,
        "restart of a missing service",
        &["nosuch", "lc-restart"],
    );
}

#[test]
fn delete_removes_a_service_and_its_containers_then_the_cluster() {
    let dev = start("lc-delete");
    assert!(!dev.containers().is_empty(), "the service's containers run");

    // A cluster with a service is refused, naming it; nothing changes.
    let out = dev.berth(&["delete", "cluster", "lc-delete"]);
    assert_fails_naming(
        &out,
        "delete of a cluster with a service",
        &["ClusterContainsServicesException", "services: web"],
    );
    assert_eq!(service_status(&dev, "lc-delete"), "ACTIVE");

    let out = dev.berth(&["delete", "service", "-c", "lc-delete", "nosuch"]);
    assert_fails_naming(
        &out,
        "delete of a missing service",
        &["nosuch", "not found"],
    );
    assert_eq!(task_arns(&dev, "lc-delete").len(), 2);

    let out = dev.berth(&["delete", "service", "-c", "lc-delete", "web"]);
    assert_ok(&out, "berth delete service");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("service web deleting"), "{stdout}");
    assert!(stdout.ends_with("service web deleted\n"), "{stdout}");
    assert_eq!(service_status(&dev, "lc-delete"), "INACTIVE");
    assert!(task_arns(&dev, "lc-delete").is_empty());
    dev.wait_for(
        "the deleted service's containers to be removed",
        Duration::from_secs(60),
        || dev.containers().is_empty().then_some(()),
    );

    let out = dev.berth(&["delete", "service", "-c", "lc-delete", "web"]);
    assert_fails_naming(&out, "delete of a deleted service", &["web", "not found"]);

    let out = dev.berth(&["delete", "cluster", "lc-delete"]);
    assert_ok(&out, "berth delete cluster");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "cluster lc-delete deleted\n"
    );
    let out = dev.berth(&["delete", "cluster", "lc-delete"]);
    assert_fails_naming(
        &out,
        "delete of a deleted cluster",
        &["lc-delete", "not found"],
    );
}

#[test]
fn delete_lb_removes_its_listeners_and_its_target_groups_only() {
    support::require_docker();
    let dev = Dev::start();
    let [one, two, three] = [free_port(), free_port(), free_port()];
    let file = dev.data_dir.path().join("lb.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
loadBalancers:
  - name: lc-lb
  - name: lc-other
targetGroups:
  - {{name: lc-only, protocol: HTTP, port: 8080}}
  - {{name: lc-too, protocol: HTTP, port: 8080}}
  - {{name: lc-kept, protocol: HTTP, port: 8080}}
  - {{name: lc-free, protocol: HTTP, port: 8080}}
listeners:
  - {{loadBalancer: lc-lb, port: {one}, targetGroup: lc-only}}
  - {{loadBalancer: lc-lb, port: {two}, targetGroup: lc-too}}
  - {{loadBalancer: lc-other, port: {three}, targetGroup: lc-kept}}
"#
        ),
    )
    .unwrap();
    assert_ok(
        &dev.berth(&["apply", "-f", file.to_str().unwrap()]),
        "apply",
    );

    let out = dev.berth(&["delete", "lb", "nosuch"]);
    assert_fails_naming(
        &out,
        "delete of a missing load balancer",
        &["nosuch", "not found"],
    );

    let out = dev.berth(&["delete", "lb", "lc-lb"]);
    assert_ok(&out, "berth delete lb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        format!("listener HTTP {one} of load balancer lc-lb deleted"),
        format!("listener HTTP {two} of load balancer lc-lb deleted"),
        "load balancer lc-lb deleted".to_string(),
        "target group lc-only deleted".to_string(),
        "target group lc-too deleted".to_string(),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} not in {stdout}"
        );
    }
    assert!(
        !stdout.contains("lc-kept") && !stdout.contains("lc-free"),
        "{stdout}"
    );

    let gone = dev.aws(&["elbv2", "describe-load-balancers", "--names", "lc-lb"]);
    assert!(!gone.status.success(), "lc-lb still there");
    let gone = dev.aws(&["elbv2", "describe-target-groups", "--names", "lc-only"]);
    assert!(!gone.status.success(), "lc-only still there");
    // What another load balancer uses stays, and so do that load balancer's listener
    // and a target group of no load balancer.
    dev.target_group_arn("lc-kept");
    dev.target_group_arn("lc-free");
    let other = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "lc-other"]);
    let other_arn = other
        .pointer("/LoadBalancers/0/LoadBalancerArn")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("lc-other: {other}"));
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        other_arn,
    ]);
    assert_eq!(
        listeners["Listeners"].as_array().map(Vec::len),
        Some(1),
        "{listeners}"
    );
}
