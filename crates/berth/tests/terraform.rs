//! Terraform with the hashicorp/aws provider (5.x) against `berth dev`, unchanged but
//! for the endpoint:
//! - the README's stack (examples/terraform/main.tf: a cluster with `setting` and
//!   `configuration`, a task definition, an ELBv2 load balancer, target group and
//!   listener, a load-balanced service with a circuit breaker, placement and
//!   `wait_for_steady_state`): apply, the listener answers, a second plan is empty, a
//!   change (the page the tasks serve) applies as a redeploy the listener then answers
//!   with, the plan is empty again, destroy leaves nothing;
//! - the load balancer on its own: `aws_lb_target_group` with no `protocol_version`
//!   (sent empty), then an in-place change of idle timeout and listener port;
//! - listener rules (`aws_lb_listener_rule`: forward by weight, fixed-response and
//!   redirect; path, host, header, query string and source address conditions; tags),
//!   then an in-place change of priority, path and weight;
//! - the ECS resources on their own (`aws_ecs_cluster_capacity_providers` too), with a
//!   change of revision, setting and `availability_zone_rebalancing`.
//!
//! Needs `terraform` on PATH and the provider in an offline mirror (support/terraform.rs);
//! where either is missing each test says so loudly and checks nothing, so the suite
//! passes on machines without Terraform. Everything is removed on drop, also when a
//! test fails.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::terraform::{self, Workspace};
use support::{http_get, Dev};

fn answer(port: u16) -> Option<String> {
    match http_get(port, "/") {
        Ok((200, body)) => Some(body.trim().to_string()),
        _ => None,
    }
}

#[test]
fn terraform_applies_plans_clean_redeploys_and_destroys_the_readme_stack() {
    let Some(mirror) = terraform::mirror_or_say_why(
        "terraform_applies_plans_clean_redeploys_and_destroys_the_readme_stack",
    ) else {
        return;
    };
    support::require_docker();
    support::require_images();
    let dev = Dev::start();
    let port = support::free_port();
    let mut tf = Workspace::new(&mirror);
    // The README's own stack, as a user applies it.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/terraform/main.tf");
    tf.write(&std::fs::read_to_string(&example).expect("read examples/terraform/main.tf"));
    tf.var("endpoint", dev.endpoint());
    tf.var("access_key", &dev.access_key_id);
    tf.var("secret_key", &dev.secret_access_key);
    tf.var("listener_port", port);
    tf.must(&["init"]);

    tf.must(&["apply", "-auto-approve"]);
    dev.wait_for(
        "the listener to answer 'one'",
        Duration::from_secs(60),
        || (answer(port).as_deref() == Some("one")).then_some(()),
    );
    tf.assert_plan_empty("after the first apply");

    // A change: the task definition's command, so a new revision and a redeploy.
    tf.var("tag", "two");
    tf.must(&["apply", "-auto-approve"]);
    let service = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "tf-app",
        "--services",
        "tf-web",
    ]);
    assert!(
        service["services"][0]["taskDefinition"]
            .as_str()
            .is_some_and(|arn| arn.ends_with("task-definition/tf-web:2")),
        "{service}"
    );
    dev.wait_for(
        "the listener to answer 'two'",
        Duration::from_secs(60),
        || (answer(port).as_deref() == Some("two")).then_some(()),
    );
    tf.assert_plan_empty("after the redeploy");

    tf.must(&["destroy", "-auto-approve"]);
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(
        !clusters.to_string().contains("cluster/tf-app"),
        "the cluster is gone: {clusters}"
    );
    let balancers = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(
        balancers["LoadBalancers"],
        Value::Array(vec![]),
        "{balancers}"
    );
    let groups = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(groups["TargetGroups"], Value::Array(vec![]), "{groups}");
    let definitions = dev.aws_json(&[
        "ecs",
        "list-task-definitions",
        "--family-prefix",
        "tf-web",
        "--status",
        "ACTIVE",
    ]);
    assert_eq!(
        definitions["taskDefinitionArns"],
        Value::Array(vec![]),
        "{definitions}"
    );
    // Stopped containers stay a while for `berth logs`; none may still run.
    dev.wait_for("no task container running", Duration::from_secs(60), || {
        let running = std::process::Command::new("docker")
            .args(["ps", "-q", "--filter", "status=running"])
            .args(
                dev.containers()
                    .iter()
                    .flat_map(|id| ["--filter".to_string(), format!("id={id}")]),
            )
            .output()
            .expect("docker ps");
        (dev.containers().is_empty() || running.stdout.iter().all(u8::is_ascii_whitespace))
            .then_some(())
    });
    assert!(answer(port).is_none(), "the listener stopped serving");
}

fn load_balancer_configuration(dev: &Dev, idle: u32, port: u16, target_port: u16) -> String {
    let provider = terraform::provider(
        &dev.endpoint(),
        &dev.access_key_id,
        &dev.secret_access_key,
        &["elbv2"],
    );
    format!(
        r#"{provider}
resource "aws_lb" "web" {{
  name               = "tf-web"
  load_balancer_type = "application"
  subnets            = ["subnet-a", "subnet-b"]
  idle_timeout       = {idle}
}}
resource "aws_lb_target_group" "web" {{
  name        = "tf-web"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = "vpc-berth"
  health_check {{
    path     = "/"
    interval = 5
    timeout  = 2
  }}
}}
resource "aws_lb_listener" "web" {{
  load_balancer_arn = aws_lb.web.arn
  port              = {port}
  protocol          = "HTTP"
  default_action {{
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }}
}}
resource "aws_lb_target_group_attachment" "web" {{
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = "127.0.0.1"
  port             = {target_port}
}}
"#
    )
}

fn attribute(answer: &Value, key: &str) -> String {
    answer["Attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Key"] == key)
        .and_then(|a| a["Value"].as_str())
        .unwrap_or_else(|| panic!("{key} missing in {answer}"))
        .to_string()
}

#[test]
fn terraform_manages_a_load_balancer_target_group_and_listener() {
    let Some(mirror) =
        terraform::mirror_or_say_why("terraform_manages_a_load_balancer_target_group_and_listener")
    else {
        return;
    };
    let dev = Dev::start();
    let tf = Workspace::new(&mirror);
    let first_port = support::free_port();
    let target_port = support::free_port();
    tf.write(&load_balancer_configuration(
        &dev,
        30,
        first_port,
        target_port,
    ));
    tf.must(&["init"]);
    tf.must(&["apply", "-auto-approve"]);
    tf.assert_plan_empty("after the first apply");

    let lbs = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "tf-web"]);
    let lb_arn = lbs["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let describe = || {
        dev.aws_json(&[
            "elbv2",
            "describe-load-balancer-attributes",
            "--load-balancer-arn",
            &lb_arn,
        ])
    };
    assert_eq!(attribute(&describe(), "idle_timeout.timeout_seconds"), "30");
    // Created although the provider sent `ProtocolVersion=` (empty: unset).
    let groups = dev.aws_json(&["elbv2", "describe-target-groups", "--names", "tf-web"]);
    assert_eq!(groups["TargetGroups"][0]["Protocol"], "HTTP", "{groups}");
    // aws_lb_target_group_attachment registered its target (RegisterTargets), and
    // reads it back (DescribeTargetHealth) for the clean plan above.
    let tg_arn = groups["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    let registered = || {
        let health = dev.aws_json(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &tg_arn,
        ]);
        health["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["Target"]["Id"].clone(), d["Target"]["Port"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        registered(),
        vec![(Value::from("127.0.0.1"), Value::from(target_port))]
    );

    // A change: in place, not a replacement.
    let second_port = support::free_port();
    tf.write(&load_balancer_configuration(
        &dev,
        5,
        second_port,
        target_port,
    ));
    let changed = tf.must(&["apply", "-auto-approve"]);
    assert!(
        changed.contains("0 added, 2 changed, 0 destroyed"),
        "{changed}"
    );
    tf.assert_plan_empty("after the change");
    // The attachment to another port: the old target leaves, the new one is registered.
    let other_target_port = support::free_port();
    tf.write(&load_balancer_configuration(
        &dev,
        5,
        second_port,
        other_target_port,
    ));
    let moved = tf.must(&["apply", "-auto-approve"]);
    assert!(moved.contains("1 added, 0 changed, 1 destroyed"), "{moved}");
    assert_eq!(
        registered(),
        vec![(Value::from("127.0.0.1"), Value::from(other_target_port))]
    );
    tf.assert_plan_empty("after the change");
    assert_eq!(attribute(&describe(), "idle_timeout.timeout_seconds"), "5");
    let listeners = dev.aws_json(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    assert_eq!(listeners["Listeners"][0]["Port"], second_port);
    dev.wait_for(
        "the listener on its new port",
        Duration::from_secs(30),
        || {
            std::net::TcpStream::connect(("127.0.0.1", second_port))
                .is_ok()
                .then_some(())
        },
    );

    tf.must(&["destroy", "-auto-approve"]);
    let left = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(left["LoadBalancers"], Value::Array(vec![]), "{left}");
    let left = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(left["TargetGroups"], Value::Array(vec![]), "{left}");
}

fn listener_rules_configuration(dev: &Dev, port: u16, changed: bool) -> String {
    let provider = terraform::provider(
        &dev.endpoint(),
        &dev.access_key_id,
        &dev.secret_access_key,
        &["elbv2"],
    );
    let (priority, path, api_weight) = if changed {
        (15, "/v2/*", 3)
    } else {
        (10, "/api/*", 1)
    };
    format!(
        r#"{provider}
resource "aws_lb" "rules" {{
  name               = "tf-rules"
  load_balancer_type = "application"
  subnets            = ["subnet-a", "subnet-b"]
}}
resource "aws_lb_target_group" "web" {{
  name        = "tf-rules-web"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = "vpc-berth"
}}
resource "aws_lb_target_group" "api" {{
  name        = "tf-rules-api"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = "vpc-berth"
}}
resource "aws_lb_listener" "rules" {{
  load_balancer_arn = aws_lb.rules.arn
  port              = {port}
  protocol          = "HTTP"
  default_action {{
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }}
}}
resource "aws_lb_listener_rule" "api" {{
  listener_arn = aws_lb_listener.rules.arn
  priority     = {priority}
  action {{
    type = "forward"
    forward {{
      target_group {{
        arn    = aws_lb_target_group.api.arn
        weight = {api_weight}
      }}
      target_group {{
        arn    = aws_lb_target_group.web.arn
        weight = 1
      }}
    }}
  }}
  condition {{
    path_pattern {{
      values = ["{path}"]
    }}
  }}
  tags = {{
    team = "edge"
  }}
}}
resource "aws_lb_listener_rule" "maintenance" {{
  listener_arn = aws_lb_listener.rules.arn
  priority     = 5
  action {{
    type = "fixed-response"
    fixed_response {{
      content_type = "text/plain"
      message_body = "down for maintenance"
      status_code  = "503"
    }}
  }}
  condition {{
    host_header {{
      values = ["maintenance.example.test"]
    }}
  }}
  condition {{
    http_header {{
      http_header_name = "X-Env"
      values           = ["beta"]
    }}
  }}
}}
resource "aws_lb_listener_rule" "moved" {{
  listener_arn = aws_lb_listener.rules.arn
  priority     = 20
  action {{
    type = "redirect"
    redirect {{
      host        = "new.example.test"
      status_code = "HTTP_301"
    }}
  }}
  condition {{
    query_string {{
      key   = "old"
      value = "1"
    }}
  }}
  condition {{
    source_ip {{
      values = ["127.0.0.0/8"]
    }}
  }}
}}
"#
    )
}

#[test]
fn terraform_manages_listener_rules() {
    let Some(mirror) = terraform::mirror_or_say_why("terraform_manages_listener_rules") else {
        return;
    };
    let dev = Dev::start();
    let tf = Workspace::new(&mirror);
    let port = support::free_port();
    tf.write(&listener_rules_configuration(&dev, port, false));
    tf.must(&["init"]);
    tf.must(&["apply", "-auto-approve"]);
    tf.assert_plan_empty("after the first apply");

    let listener_arn = {
        let lbs = dev.aws_json(&["elbv2", "describe-load-balancers", "--names", "tf-rules"]);
        let lb_arn = lbs["LoadBalancers"][0]["LoadBalancerArn"]
            .as_str()
            .unwrap()
            .to_string();
        let listeners = dev.aws_json(&[
            "elbv2",
            "describe-listeners",
            "--load-balancer-arn",
            &lb_arn,
        ]);
        listeners["Listeners"][0]["ListenerArn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let priorities = || -> Vec<String> {
        let rules = dev.aws_json(&["elbv2", "describe-rules", "--listener-arn", &listener_arn]);
        rules["Rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Priority"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(priorities(), ["5", "10", "20", "default"]);
    let maintenance = http_request_maintenance(port);
    assert_eq!(maintenance, (503, "down for maintenance".to_string()));

    // A change of priority, path and weight: in place.
    tf.write(&listener_rules_configuration(&dev, port, true));
    let changed = tf.must(&["apply", "-auto-approve"]);
    assert!(
        changed.contains("0 added, 1 changed, 0 destroyed"),
        "{changed}"
    );
    tf.assert_plan_empty("after the change");
    assert_eq!(priorities(), ["5", "15", "20", "default"]);

    tf.must(&["destroy", "-auto-approve"]);
    let left = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(left["LoadBalancers"], Value::Array(vec![]), "{left}");
    let left = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(left["TargetGroups"], Value::Array(vec![]), "{left}");
}

/// The maintenance rule's answer, once the data plane has the rule.
fn http_request_maintenance(port: u16) -> (u16, String) {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    support::poll_until(
        "the maintenance rule to answer",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let response = support::http_request(
                loopback,
                port,
                "GET",
                "/",
                &[("Host", "maintenance.example.test"), ("X-Env", "beta")],
            )
            .ok()?;
            (response.status == 503).then_some((response.status, response.body))
        },
    )
}

fn configuration(endpoint: &str, key: &str, secret: &str, changed: bool) -> String {
    let (insights, command, rebalancing) = if changed {
        (
            "disabled",
            "7200",
            "\n  availability_zone_rebalancing = \"ENABLED\"",
        )
    } else {
        ("enabled", "3600", "")
    };
    let provider = terraform::provider(endpoint, key, secret, &["ecs"]);
    format!(
        r#"{provider}
resource "aws_ecs_cluster" "c" {{
  name = "tf-ecs"
  setting {{
    name  = "containerInsights"
    value = "{insights}"
  }}
  configuration {{
    execute_command_configuration {{
      logging = "DEFAULT"
    }}
  }}
}}
resource "aws_ecs_cluster_capacity_providers" "cp" {{
  cluster_name       = aws_ecs_cluster.c.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
  default_capacity_provider_strategy {{
    capacity_provider = "FARGATE"
    weight            = 1
    base              = 1
  }}
}}
resource "aws_ecs_task_definition" "t" {{
  family                = "tf-web"
  container_definitions = jsonencode([{{ name = "app", image = "berth/busybox", memory = 64, essential = true, command = ["sleep", "{command}"] }}])
}}
resource "aws_ecs_service" "s" {{
  name            = "tf-web"
  cluster         = aws_ecs_cluster.c.id
  task_definition = aws_ecs_task_definition.t.arn
  desired_count   = 0
  launch_type     = "EC2"{rebalancing}
  deployment_circuit_breaker {{
    enable   = true
    rollback = true
  }}
}}
"#
    )
}

#[test]
fn terraform_applies_the_ecs_resources_with_a_clean_plan() {
    let Some(mirror) =
        terraform::mirror_or_say_why("terraform_applies_the_ecs_resources_with_a_clean_plan")
    else {
        return;
    };
    let dev = Dev::start();
    let workspace = Workspace::new(&mirror);
    let (key, secret) = (&dev.access_key_id, &dev.secret_access_key);
    workspace.write(&configuration(&dev.endpoint(), key, secret, false));
    workspace.must(&["init"]);
    workspace.must(&["apply", "-auto-approve"]);
    workspace.assert_plan_empty("after the first apply");

    workspace.write(&configuration(&dev.endpoint(), key, secret, true));
    let applied = workspace.must(&["apply", "-auto-approve"]);
    assert!(
        applied.contains("1 added, 2 changed, 1 destroyed"),
        "a new revision, the cluster setting and the service: {applied}"
    );
    workspace.assert_plan_empty("after the change");
    let service = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        "tf-ecs",
        "--services",
        "tf-web",
    ]);
    assert_eq!(
        service["services"][0]["taskDefinition"],
        "arn:aws:ecs:us-east-1:000000000000:task-definition/tf-web:2"
    );

    workspace.must(&["destroy", "-auto-approve"]);
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(
        !clusters.to_string().contains("tf-ecs"),
        "the cluster is gone: {clusters}"
    );
    let services = dev.aws(&["ecs", "list-services", "--cluster", "tf-ecs"]);
    assert!(!services.status.success(), "no services remain");
}

fn capacity_provider_configuration(endpoint: &str, key: &str, secret: &str, target: u32) -> String {
    let provider = terraform::provider(endpoint, key, secret, &["ecs"]);
    format!(
        r#"{provider}
resource "aws_ecs_cluster" "c" {{
  name = "tf-cp"
}}
resource "aws_ecs_capacity_provider" "blue" {{
  name = "tf-blue"
  auto_scaling_group_provider {{
    auto_scaling_group_arn         = "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/tf-blue"
    managed_termination_protection = "DISABLED"
    managed_scaling {{
      status          = "DISABLED"
      target_capacity = {target}
    }}
  }}
  tags = {{
    team = "web"
  }}
}}
resource "aws_ecs_cluster_capacity_providers" "cp" {{
  cluster_name       = aws_ecs_cluster.c.name
  capacity_providers = [aws_ecs_capacity_provider.blue.name]
  default_capacity_provider_strategy {{
    capacity_provider = aws_ecs_capacity_provider.blue.name
    weight            = 1
  }}
}}
"#
    )
}

/// `aws_ecs_capacity_provider`: created, associated with a cluster, updated in place
/// with a clean plan after each apply, and deleted once the cluster lets it go.
#[test]
fn terraform_manages_a_capacity_provider() {
    let Some(mirror) = terraform::mirror_or_say_why("terraform_manages_a_capacity_provider") else {
        return;
    };
    let dev = Dev::start();
    let workspace = Workspace::new(&mirror);
    let (key, secret) = (&dev.access_key_id, &dev.secret_access_key);
    workspace.write(&capacity_provider_configuration(
        &dev.endpoint(),
        key,
        secret,
        100,
    ));
    workspace.must(&["init"]);
    workspace.must(&["apply", "-auto-approve"]);
    workspace.assert_plan_empty("after the first apply");
    let cluster = dev.aws_json(&["ecs", "describe-clusters", "--clusters", "tf-cp"]);
    assert_eq!(cluster["clusters"][0]["capacityProviders"][0], "tf-blue");

    workspace.write(&capacity_provider_configuration(
        &dev.endpoint(),
        key,
        secret,
        80,
    ));
    let applied = workspace.must(&["apply", "-auto-approve"]);
    assert!(
        applied.contains("0 added, 1 changed, 0 destroyed"),
        "the provider updated in place: {applied}"
    );
    workspace.assert_plan_empty("after the change");
    let described = dev.aws_json(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        "tf-blue",
    ]);
    assert_eq!(
        described["capacityProviders"][0]["autoScalingGroupProvider"]["managedScaling"]
            ["targetCapacity"],
        80
    );

    workspace.must(&["destroy", "-auto-approve"]);
    let described = dev.aws_json(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        "tf-blue",
    ]);
    assert_eq!(described["capacityProviders"][0]["status"], "INACTIVE");
}
