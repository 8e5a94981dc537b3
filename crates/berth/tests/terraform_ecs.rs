//! Terraform's hashicorp/aws provider against `berth dev` for the ECS resources:
//! `aws_ecs_cluster` with `setting` and `configuration`, `aws_ecs_cluster_capacity_providers`,
//! `aws_ecs_task_definition` and `aws_ecs_service`: apply, an empty plan, a change
//! (a new revision, a setting, availability_zone_rebalancing) applied, an empty plan
//! again, destroy, nothing left.
//!
//! It needs `terraform` on PATH and the provider in the offline mirror
//! `/opt/tf-plugins` (or `BERTH_TF_PLUGINS`); where they are missing it says so loudly
//! and checks nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::Dev;

const PROVIDER_VERSION: &str = "5.100.0";

fn plugins_dir() -> PathBuf {
    std::env::var_os("BERTH_TF_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"))
}

fn terraform_available(plugins: &Path) -> bool {
    let provider = plugins.join(format!(
        "registry.terraform.io/hashicorp/aws/{PROVIDER_VERSION}/linux_amd64"
    ));
    let terraform = Command::new("terraform")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    terraform && provider.is_dir()
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
    format!(
        r#"
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "{PROVIDER_VERSION}" }}
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

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(plugins: &Path) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("terraformrc"),
            format!(
                r#"provider_installation {{
  filesystem_mirror {{
    path    = "{}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"#,
                plugins.display()
            ),
        )
        .unwrap();
        Workspace { dir }
    }

    fn write(&self, configuration: &str) {
        std::fs::write(self.dir.path().join("main.tf"), configuration).unwrap();
    }

    fn terraform(&self, args: &[&str]) -> Output {
        let started = std::time::Instant::now();
        let out = Command::new("terraform")
            .args(args)
            .args(["-input=false", "-no-color"])
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run terraform");
        println!("terraform {} took {:?}", args.join(" "), started.elapsed());
        out
    }

    fn must(&self, args: &[&str]) -> String {
        let out = self.terraform(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    /// `plan -detailed-exitcode` must find nothing to change (exit 0, not 2).
    fn assert_plan_empty(&self, when: &str) {
        let out = self.terraform(&["plan", "-detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "the plan {when} is not empty:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn terraform_applies_the_ecs_resources_with_a_clean_plan() {
    let plugins = plugins_dir();
    if !terraform_available(&plugins) {
        eprintln!(
            "SKIPPED: terraform on PATH and the hashicorp/aws {PROVIDER_VERSION} provider in {} are needed; nothing was checked",
            plugins.display()
        );
        return;
    }
    let dev = Dev::start();
    let workspace = Workspace::new(&plugins);
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
