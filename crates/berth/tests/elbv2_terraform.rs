//! Terraform's hashicorp/aws provider managing berth's load balancer: `aws_lb`,
//! `aws_lb_target_group` (no `protocol_version`, so the provider sends it empty) and
//! `aws_lb_listener` applied, a second plan empty, a change (idle timeout, listener
//! port) applied in place, an empty plan again, and destroy leaving nothing.
//!
//! Needs `terraform` and the provider in a filesystem mirror (`BERTH_TF_PLUGINS`,
//! default `/opt/tf-plugins`), as no registry is reached. Without them the test says so
//! loudly and passes, so the suite passes on machines without Terraform.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Dev;

const PROVIDER_VERSION_DIR: &str = "registry.terraform.io/hashicorp/aws";

/// The mirror directory and the provider version it holds, if Terraform can run here.
fn terraform_setup() -> Option<(PathBuf, String)> {
    let found = Command::new("terraform")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        return None;
    }
    let mirror = std::env::var_os("BERTH_TF_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"));
    let versions = std::fs::read_dir(mirror.join(PROVIDER_VERSION_DIR)).ok()?;
    let version = versions
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("5."))
        .max()?;
    Some((mirror, version))
}

fn config(dev: &Dev, version: &str, idle: u32, port: u16) -> String {
    let endpoint = dev.endpoint();
    format!(
        r#"
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "{version}" }}
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
  endpoints {{
    elbv2 = "{endpoint}"
  }}
}}
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
"#,
        key = dev.access_key_id,
        secret = dev.secret_access_key,
    )
}

fn terraform(dir: &Path, cli_config: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run terraform");
    println!("terraform {}: {:?}", args[0], started.elapsed());
    out
}

fn must(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "terraform {what} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `terraform plan -detailed-exitcode`: 0 is an empty plan, 2 a plan with changes.
fn assert_plan_empty(dir: &Path, cli_config: &Path, when: &str) {
    let out = terraform(
        dir,
        cli_config,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan {when} is not empty:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
    let Some((mirror, version)) = terraform_setup() else {
        eprintln!(
            "\n*** SKIPPED: terraform or the hashicorp/aws 5.x provider mirror (BERTH_TF_PLUGINS, \
             default /opt/tf-plugins) is missing; this test did not run ***\n"
        );
        return;
    };
    let dev = Dev::start();
    let dir = dev.data_dir.path().join("terraform");
    std::fs::create_dir_all(&dir).unwrap();
    let cli_config = dev.data_dir.path().join("terraformrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n    include = [\"{PROVIDER_VERSION_DIR}\"]\n  }}\n  direct {{ exclude = [\"{PROVIDER_VERSION_DIR}\"] }}\n}}\n",
            mirror.display()
        ),
    )
    .unwrap();
    let first_port = support::free_port();
    std::fs::write(dir.join("main.tf"), config(&dev, &version, 30, first_port)).unwrap();
    must(
        terraform(&dir, &cli_config, &["init", "-input=false", "-no-color"]),
        "init",
    );
    let apply = ["apply", "-auto-approve", "-input=false", "-no-color"];
    must(terraform(&dir, &cli_config, &apply), "apply");
    assert_plan_empty(&dir, &cli_config, "after the first apply");

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

    // A change: in place, not a replacement.
    let second_port = support::free_port();
    std::fs::write(dir.join("main.tf"), config(&dev, &version, 5, second_port)).unwrap();
    let changed = must(terraform(&dir, &cli_config, &apply), "apply of the change");
    assert!(
        changed.contains("0 added, 2 changed, 0 destroyed"),
        "{changed}"
    );
    assert_plan_empty(&dir, &cli_config, "after the change");
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

    must(
        terraform(
            &dir,
            &cli_config,
            &["destroy", "-auto-approve", "-input=false", "-no-color"],
        ),
        "destroy",
    );
    let left = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert_eq!(left["LoadBalancers"], Value::Array(vec![]), "{left}");
    let left = dev.aws_json(&["elbv2", "describe-target-groups"]);
    assert_eq!(left["TargetGroups"], Value::Array(vec![]), "{left}");
}
