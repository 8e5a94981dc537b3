//! `berth ps` against a real `berth dev` and Docker: column headers above the tree, every
//! cluster when none is selected, and tasks behind a load balancer showing their target
//! health (as DescribeTargetHealth reports it, with the reason) rather than `UNKNOWN`.

mod support;

use std::time::Duration;

use support::{free_port, Dev};

fn manifest(up_port: u16, down_port: u16) -> String {
    let group = |name: &str, path: &str| {
        format!(
            r#"
  - name: {name}
    protocol: HTTP
    port: 8080
    healthCheckPath: {path}
    healthCheckIntervalSeconds: 5
    healthCheckTimeoutSeconds: 2
    healthyThresholdCount: 2
    unhealthyThresholdCount: 2
    matcher: "200"
    deregistrationDelaySeconds: 2"#
        )
    };
    let service = |name: &str| {
        format!(
            r#"
  - serviceName: {name}
    taskDefinition: ps-web
    desiredCount: 2
    healthCheckGracePeriodSeconds: 600
    loadBalancers:
      - targetGroup: ps-{name}
        containerName: web
        containerPort: 8080"#
        )
    };
    format!(
        r#"
cluster: ps-lb
clusters: [ps-lb, ps-empty]
loadBalancers:
  - name: ps-lb
targetGroups:{}{}
listeners:
  - loadBalancer: ps-lb
    port: {up_port}
    targetGroup: ps-up
  - loadBalancer: ps-lb
    port: {down_port}
    targetGroup: ps-down
taskDefinitions:
  - family: ps-web
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        portMappings: [{{containerPort: 8080, hostPort: 0}}]
        command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
services:{}{}
"#,
        group("ps-up", "/"),
        group("ps-down", "/missing"),
        service("up"),
        service("down"),
    )
}

fn ps(dev: &Dev, args: &[&str]) -> String {
    let out = dev.berth(&[&["ps"], args].concat());
    assert!(
        out.status.success(),
        "berth ps {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of the tasks of one service in `berth ps`'s tree.
fn task_lines<'t>(text: &'t str, service: &str) -> Vec<&'t str> {
    text.lines()
        .skip_while(|line| !line.contains(&format!("service {service} ")))
        .skip(1)
        .take_while(|line| !line.contains("service "))
        .filter(|line| line.contains("task ") && line.contains("RUNNING"))
        .collect()
}

#[test]
fn ps_shows_headers_and_the_target_health_of_load_balanced_tasks() {
    let dev = Dev::start();
    let file = dev.data_dir.path().join("ps.yaml");
    std::fs::write(&file, manifest(free_port(), free_port())).unwrap();
    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let text = dev.wait_for(
        "ps to show up's targets healthy and down's unhealthy",
        Duration::from_secs(90),
        || {
            let text = ps(&dev, &["-c", "ps-lb"]);
            let up = task_lines(&text, "up");
            let down = task_lines(&text, "down");
            let all_up_healthy = up.len() == 2 && up.iter().all(|l| l.contains("target healthy"));
            let down_unhealthy = down
                .iter()
                .any(|l| l.contains("target unhealthy (Target.ResponseCodeMismatch)"));
            (all_up_healthy && down_unhealthy).then_some(text)
        },
    );
    let header = text.lines().next().unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["NAME", "STATUS", "HEALTH", "DETAIL"], "{text}");
    // The tasks have no container health check: their health is their targets'.
    for line in task_lines(&text, "up")
        .into_iter()
        .chain(task_lines(&text, "down"))
    {
        assert!(!line.contains("UNKNOWN"), "{text}");
    }
    // Each column starts where its header does.
    let health_column = header.find("HEALTH").unwrap();
    for line in task_lines(&text, "up") {
        let at = line
            .char_indices()
            .position(|(i, _)| line[i..].starts_with("target healthy"));
        assert_eq!(at, Some(health_column), "{text}");
    }

    // With no cluster selected, every cluster is shown, each under its headers.
    let out = dev.berth(&["ps"]);
    let every = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{every}");
    for cluster in ["default", "ps-empty", "ps-lb"] {
        assert!(
            every.lines().any(|line| line == cluster),
            "{cluster} in:\n{every}"
        );
    }
    assert_eq!(
        every
            .lines()
            .filter(|line| line.starts_with("NAME "))
            .count(),
        3,
        "{every}"
    );
}
