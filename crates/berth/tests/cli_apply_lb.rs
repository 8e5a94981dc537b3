//! `berth apply -f` with load balancers, target groups and listeners, against a real
//! `berth dev` and Docker: everything is created, checked with the real `aws elbv2`
//! CLI, the targets turn healthy, the listener answers, and a second apply changes
//! nothing.

mod support;

use support::{http_get, str_at, Dev};

fn manifest(port: u16, cluster: &str) -> String {
    format!(
        r#"
cluster: {cluster}
clusters: [{cluster}]
loadBalancers:
  - name: apply-lb
targetGroups:
  - Name: apply-web                 # ELBv2's PascalCase reads as camelCase does
    Protocol: HTTP
    Port: 8080
    HealthCheckPath: /health.html
    healthCheckIntervalSeconds: 5
    healthCheckTimeoutSeconds: 2
    healthyThresholdCount: 2
    unhealthyThresholdCount: 2
    matcher: "200-399"
    deregistrationDelaySeconds: 2
listeners:
  - loadBalancer: apply-lb
    port: {port}
    targetGroup: apply-web
taskDefinitions:
  - family: apply-web
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        portMappings: [{{containerPort: 8080, hostPort: 0}}]
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"]
services:
  - serviceName: web
    taskDefinition: apply-web
    desiredCount: 2
    loadBalancers:
      - targetGroup: apply-web
        containerName: web
        containerPort: 8080
"#
    )
}

fn apply(dev: &Dev, file: &std::path::Path) -> (bool, String, String) {
    let out = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn apply_declares_a_load_balancer_and_a_second_apply_changes_nothing() {
    let dev = Dev::start();
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, manifest(port, "lbapply")).unwrap();

    let (ok, stdout, stderr) = apply(&dev, &file);
    assert!(ok, "first apply failed: {stdout}{stderr}");
    for line in [
        "cluster lbapply created",
        "load balancer apply-lb created",
        "target group apply-web created",
        &format!("listener apply-lb:{port} created (forward to apply-web)"),
        "task definition apply-web:1 registered",
        "service web created",
    ] {
        assert!(stdout.contains(line), "'{line}' missing from:\n{stdout}");
    }

    // Everything is there, as the aws CLI sees it.
    let lbs = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "apply-lb"]);
    let lb_arn = str_at(&lbs, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let tgs = dev.aws_json(&["elbv2", "describe-target-groups", "--names", "apply-web"]);
    let tg = &tgs["TargetGroups"][0];
    let tg_arn = str_at(tg, "/TargetGroupArn").to_string();
    assert_eq!(str_at(tg, "/HealthCheckPath"), "/health.html");
    assert_eq!(tg["HealthCheckIntervalSeconds"], 5);
    assert_eq!(tg["HealthyThresholdCount"], 2);
    assert_eq!(str_at(tg, "/Matcher/HttpCode"), "200-399");
    let attributes = dev.aws_json(&[
        "elbv2",
        "describe-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
    ]);
    let delay = attributes["Attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Key"] == "deregistration_delay.timeout_seconds")
        .map(|a| str_at(a, "/Value").to_string());
    assert_eq!(delay.as_deref(), Some("2"), "{attributes}");
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    assert_eq!(listeners["Listeners"][0]["Port"], port);
    assert_eq!(
        str_at(&listeners, "/Listeners/0/DefaultActions/0/TargetGroupArn"),
        tg_arn
    );
    let services = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "lbapply",
        "--services",
        "web",
    ]);
    assert_eq!(
        str_at(&services, "/services/0/loadBalancers/0/targetGroupArn"),
        tg_arn,
        "the service's targetGroup name became the group's ARN"
    );

    // The targets turn healthy and the listener answers.
    dev.wait_targets_healthy(&tg_arn, 2);
    let (status, body) = http_get(port, "/").expect("the listener answers");
    assert_eq!(status, 200, "{body}");
    assert!(!body.trim().is_empty());

    // A second apply of the same file: every entry unchanged, nothing new.
    let (ok, stdout, stderr) = apply(&dev, &file);
    assert!(ok, "second apply failed: {stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines.iter().all(|l| l.ends_with(" unchanged")), "{stdout}");
    let again = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(again["TargetGroups"].as_array().unwrap().len(), 1);

    // A changed health check is modified in place; a listener that forwards elsewhere
    // is refused with the file and the entry it came from.
    std::fs::write(
        &file,
        manifest(port, "lbapply").replace("HealthCheckPath: /health.html", "HealthCheckPath: /"),
    )
    .unwrap();
    let (ok, stdout, stderr) = apply(&dev, &file);
    assert!(ok, "third apply failed: {stdout}{stderr}");
    assert!(
        stdout.contains("target group apply-web updated (healthCheckPath /health.html -> /)"),
        "{stdout}"
    );
    let tgs = dev.aws_json(&["elbv2", "describe-target-groups", "--names", "apply-web"]);
    assert_eq!(str_at(&tgs, "/TargetGroups/0/HealthCheckPath"), "/");

    let elsewhere = manifest(port, "lbapply")
        .replace(
            "listeners:\n",
            "  - name: other\n    protocol: HTTP\n    port: 80\nlisteners:\n",
        )
        .replace(
            "targetGroup: apply-web\ntaskDefinitions",
            "targetGroup: other\ntaskDefinitions",
        );
    assert!(elsewhere.contains("targetGroup: other\n"), "{elsewhere}");
    std::fs::write(&file, &elsewhere).unwrap();
    let (ok, stdout, stderr) = apply(&dev, &file);
    assert!(!ok, "a listener forwarding elsewhere is refused: {stdout}");
    assert!(
        stderr.contains(&format!(
            "web.yaml: listeners[0] (listener apply-lb:{port})"
        )) && stderr.contains("forwards to target group 'apply-web', not 'other'"),
        "{stderr}"
    );
}

#[test]
fn references_to_nothing_are_refused_before_any_change() {
    let dev = Dev::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "loadBalancers: [{name: refs-lb}]\nlisteners:\n  - {loadBalancer: refs-lb, port: 18080, targetGroup: nowhere}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = apply(&dev, &file);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains(
            "bad.yaml: listeners[0] (listener refs-lb:18080): target group 'nowhere' not found"
        ),
        "{stderr}"
    );
    let lbs = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(
        lbs["LoadBalancers"].as_array().map(Vec::len),
        Some(0),
        "nothing was created: {lbs}"
    );
}
