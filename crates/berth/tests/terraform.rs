//! Terraform with the hashicorp/aws provider (5.x) against `berth dev`, unchanged but
//! for the endpoint:
//! - the ECS resources on their own (`aws_ecs_cluster_capacity_providers` too), with a
//!   change of revision, setting and `availability_zone_rebalancing`.
//!
//! Needs `terraform` on PATH and the provider in an offline mirror (support/terraform.rs);
//! where either is missing each test says so loudly and checks nothing, so the suite
//! passes on machines without Terraform. Everything is removed on drop, also when a
//! test fails.

mod support;

use support::terraform::{self, Workspace};
use support::Dev;

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
    format!(
        r#"
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}
provider "aws" {{
  region                      = "us-east-1"
  access_key                  = "{key}"
  secret_key                  = "{secret}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {{ ecs = "{endpoint}" }}
}}
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
