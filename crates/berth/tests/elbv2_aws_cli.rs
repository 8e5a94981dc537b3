//! The ELBv2 API driven by the real `aws elbv2` CLI v2 against a real `berth dev`:
//! load balancer, target groups, listener, targets and their health, attributes,
//! the errors users meet, and teardown that leaves nothing behind.

mod support;

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Dev, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

fn assert_error(out: &Output, code: &str, words: &str) {
    assert!(
        !out.status.success(),
        "expected {code}, the command succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
    assert!(stderr.contains(words), "expected '{words}' in: {stderr}");
}

/// The aws CLI with its own parameter validation off, so values outside the model's
/// ranges reach berth (the CLI itself refuses an interval below 5).
fn aws_unvalidated(dev: &Dev, args: &[&str]) -> Output {
    let config = dev.data_dir.path().join("aws-config-no-validation");
    std::fs::write(&config, "[default]\nparameter_validation = false\n").unwrap();
    Command::new(support::aws_v2())
        .arg("--endpoint-url")
        .arg(dev.endpoint())
        .args(["--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .env("AWS_CONFIG_FILE", &config)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/berth-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run the aws CLI")
}

#[test]
fn aws_elbv2_cli_drives_load_balancers_target_groups_listeners_and_targets() {
    let dev = Dev::start();

    // Signed like ECS: a wrong secret or an unknown key is refused, and stores nothing.
    let wrong_secret = dev.aws_as(
        &["elbv2", "create-load-balancer", "--name", "forged"],
        ACCESS_KEY_ID,
        "not-the-secret",
    );
    assert_error(&wrong_secret, "InvalidSignatureException", "signature");
    let unknown_key = dev.aws_as(
        &["elbv2", "describe-load-balancers"],
        "AKIAUNKNOWNKEY000000",
        SECRET_ACCESS_KEY,
    );
    assert_error(
        &unknown_key,
        "UnrecognizedClientException",
        "security token",
    );
    let none = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(none["LoadBalancers"], Value::Array(vec![]), "{none}");

    // Load balancer.
    let created = dev.aws_json(&["elbv2", "create-load-balancer", "--name", "web-lb"]);
    let lb = &created["LoadBalancers"][0];
    let lb_arn = str_of(lb, "/LoadBalancerArn").to_string();
    assert!(
        lb_arn.starts_with("arn:aws:elasticloadbalancing:us-east-1:")
            && lb_arn.contains(":loadbalancer/app/web-lb/"),
        "{lb_arn}"
    );
    assert_eq!(str_of(lb, "/DNSName"), "web-lb.berth.internal");
    assert_eq!(str_of(lb, "/State/Code"), "active");
    assert_eq!(str_of(lb, "/Type"), "application");
    assert_eq!(str_of(lb, "/Scheme"), "internet-facing");
    assert!(str_of(lb, "/CreatedTime").starts_with("20"), "{lb}");
    let described = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "web-lb"]);
    assert_eq!(
        str_of(&described, "/LoadBalancers/0/LoadBalancerArn"),
        lb_arn
    );
    assert_error(
        &dev.aws(&["elbv2", "describe-load-balancers", "--names", "nope"]),
        "LoadBalancerNotFound",
        "nope",
    );

    // Target groups: a good one and a bad one.
    let created = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "web",
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--target-type",
        "ip",
        "--health-check-path",
        "/health",
        "--vpc-id",
        "vpc-1",
    ]);
    let tg = &created["TargetGroups"][0];
    let tg_arn = str_of(tg, "/TargetGroupArn").to_string();
    assert!(tg_arn.contains(":targetgroup/web/"), "{tg_arn}");
    assert_eq!(tg["HealthCheckIntervalSeconds"], 30);
    assert_eq!(tg["HealthCheckTimeoutSeconds"], 5);
    assert_eq!(tg["HealthyThresholdCount"], 5);
    assert_eq!(tg["UnhealthyThresholdCount"], 2);
    assert_eq!(str_of(tg, "/Matcher/HttpCode"), "200");
    assert_eq!(str_of(tg, "/HealthCheckPath"), "/health");
    assert_eq!(str_of(tg, "/TargetType"), "ip");
    let bad = aws_unvalidated(
        &dev,
        &[
            "elbv2",
            "create-target-group",
            "--name",
            "bad",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--health-check-interval-seconds",
            "3",
        ],
    );
    assert_error(&bad, "ValidationError", "healthCheckIntervalSeconds");
    let groups = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(
        groups["TargetGroups"].as_array().unwrap().len(),
        1,
        "{groups}"
    );
    assert_error(
        &dev.aws(&["elbv2", "describe-target-groups", "--names", "bad"]),
        "TargetGroupNotFound",
        "bad",
    );

    // Targets before any listener uses the group: unused.
    dev.aws_json(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=18080",
        "Id=127.0.0.2",
    ]);
    let health = dev.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
    ]);
    let descriptions = health["TargetHealthDescriptions"].as_array().unwrap();
    assert_eq!(descriptions.len(), 2, "{health}");
    assert!(
        descriptions
            .iter()
            .all(|d| d["TargetHealth"]["State"] == "unused"),
        "{health}"
    );
    assert!(descriptions
        .iter()
        .all(|d| d["TargetHealth"]["Reason"] == "Target.NotInUse"));

    // Listener.
    let created = dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        "18081",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    let listener = &created["Listeners"][0];
    let listener_arn = str_of(listener, "/ListenerArn").to_string();
    assert!(
        listener_arn.contains(":listener/app/web-lb/"),
        "{listener_arn}"
    );
    assert_eq!(listener["Port"], 18081);
    assert_eq!(str_of(listener, "/DefaultActions/0/TargetGroupArn"), tg_arn);
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    assert_eq!(str_of(&listeners, "/Listeners/0/ListenerArn"), listener_arn);
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--listener-arns",
        &listener_arn,
    ]);
    assert_eq!(listeners["Listeners"].as_array().unwrap().len(), 1);
    let by_lb = dev.aws_json(&[
        "elbv2",
        "describe-target-groups",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    assert_eq!(str_of(&by_lb, "/TargetGroups/0/LoadBalancerArns/0"), lb_arn);

    // Now the targets are in use: initial, until the data plane reports.
    let health = dev.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
    ]);
    let descriptions = health["TargetHealthDescriptions"].as_array().unwrap();
    assert!(
        descriptions
            .iter()
            .all(|d| d["TargetHealth"]["State"] == "initial"),
        "{health}"
    );
    let ports: Vec<i64> = descriptions
        .iter()
        .map(|d| d["Target"]["Port"].as_i64().unwrap())
        .collect();
    assert!(ports.contains(&18080) && ports.contains(&8080), "{health}");

    // Attributes, then deregistration: a target that never passed a check has no
    // requests to finish, so it goes at once, as ELB completes a deregistration
    // without waiting when the target has no in-flight requests.
    let attributes = dev.aws_json(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=5",
    ]);
    assert!(
        attributes["Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| { a["Key"] == "deregistration_delay.timeout_seconds" && a["Value"] == "5" }),
        "{attributes}"
    );
    let attributes = dev.aws_json(&[
        "elbv2",
        "describe-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
    ]);
    assert!(attributes.to_string().contains("\"5\""), "{attributes}");
    dev.aws_json(&[
        "elbv2",
        "deregister-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=18080",
    ]);
    let health = dev.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=18080",
    ]);
    assert_eq!(
        str_of(&health, "/TargetHealthDescriptions/0/TargetHealth/State"),
        "unused"
    );
    let health = dev.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
    ]);
    assert_eq!(
        health["TargetHealthDescriptions"].as_array().unwrap().len(),
        1,
        "{health}"
    );

    // Health-check settings.
    let modified = dev.aws_json(&[
        "elbv2",
        "modify-target-group",
        "--target-group-arn",
        &tg_arn,
        "--health-check-interval-seconds",
        "10",
        "--healthy-threshold-count",
        "3",
        "--matcher",
        "HttpCode=200-299",
    ]);
    assert_eq!(
        modified["TargetGroups"][0]["HealthCheckIntervalSeconds"],
        10
    );
    assert_eq!(modified["TargetGroups"][0]["HealthyThresholdCount"], 3);
    assert_eq!(
        str_of(&modified, "/TargetGroups/0/Matcher/HttpCode"),
        "200-299"
    );
    assert_error(
        &dev.aws(&[
            "elbv2",
            "modify-target-group",
            "--target-group-arn",
            &tg_arn,
            "--health-check-timeout-seconds",
            "10",
        ]),
        "ValidationError",
        "must be smaller than the interval",
    );

    // Unknown target group.
    let unknown = tg_arn.replace(":targetgroup/web/", ":targetgroup/gone/");
    assert_error(
        &dev.aws(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &unknown,
        ]),
        "TargetGroupNotFound",
        "gone",
    );
    // An action berth does not have.
    assert_error(
        &dev.aws(&["elbv2", "describe-ssl-policies"]),
        "InvalidAction",
        "DescribeSSLPolicies",
    );

    // Teardown, in the order ELBv2 demands.
    assert_error(
        &dev.aws(&[
            "elbv2",
            "delete-target-group",
            "--target-group-arn",
            &tg_arn,
        ]),
        "ResourceInUse",
        "in use",
    );
    dev.aws_json(&["elbv2", "delete-listener", "--listener-arn", &listener_arn]);
    dev.aws_json(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &tg_arn,
    ]);
    dev.aws_json(&[
        "elbv2",
        "delete-load-balancer",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    let left = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(left["LoadBalancers"].as_array().unwrap().len(), 0, "{left}");
    let left = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(left["TargetGroups"].as_array().unwrap().len(), 0, "{left}");

    // ECS still answers on the same endpoint.
    dev.aws_json(&["ecs", "list-clusters"]);
}
