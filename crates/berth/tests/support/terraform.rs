//! Terraform with the hashicorp/aws provider from an offline mirror (there is no
//! registry here): a workspace in a temp dir, its CLI configuration pointing at the
//! mirror, and the runs the Terraform tests make.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

pub const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

/// The mirror holding a hashicorp/aws 5.x provider (`BERTH_TF_PLUGINS`, default
/// `/opt/tf-plugins`) when `terraform` runs here; else why not.
pub fn mirror() -> Result<PathBuf, String> {
    let runs = Command::new("terraform")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !runs {
        return Err("no terraform on PATH".to_string());
    }
    let mirror = std::env::var_os("BERTH_TF_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"));
    let has_v5 = std::fs::read_dir(mirror.join(PROVIDER))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with("5."))
        })
        .unwrap_or(false);
    if has_v5 {
        Ok(mirror)
    } else {
        Err(format!(
            "no hashicorp/aws 5.x provider under {}",
            mirror.join(PROVIDER).display()
        ))
    }
}

/// The mirror, or `None` after saying loudly that the test checks nothing here.
pub fn mirror_or_say_why(test: &str) -> Option<PathBuf> {
    match mirror() {
        Ok(mirror) => Some(mirror),
        Err(why) => {
            eprintln!(
                "\n*** {test} NOT RUN: {why}; it needs terraform and an offline provider ***\n"
            );
            None
        }
    }
}

/// The `terraform` and `provider "aws"` blocks for a berth at `endpoint`, serving the
/// provider's `services` (`ecs`, `elbv2`) there.
pub fn provider(endpoint: &str, access_key: &str, secret_key: &str, services: &[&str]) -> String {
    let endpoints: String = services
        .iter()
        .map(|service| format!("    {service} = \"{endpoint}\"\n"))
        .collect();
    format!(
        "terraform {{\n  required_providers {{\n    aws = {{ source = \"hashicorp/aws\" }}\n  }}\n}}\n\
         provider \"aws\" {{\n  region                      = \"us-east-1\"\n\
         \x20 access_key                  = \"{access_key}\"\n\
         \x20 secret_key                  = \"{secret_key}\"\n\
         \x20 skip_credentials_validation = true\n  skip_requesting_account_id  = true\n\
         \x20 skip_metadata_api_check     = true\n  skip_region_validation      = true\n\
         \x20 endpoints {{\n{endpoints}  }}\n}}\n"
    )
}

pub struct Workspace {
    dir: tempfile::TempDir,
    rc: PathBuf,
    vars: Vec<String>,
}

impl Workspace {
    pub fn new(mirror: &Path) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let rc = dir.path().join("terraformrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{PROVIDER}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER}\"]\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .unwrap();
        Workspace {
            dir,
            rc,
            vars: Vec::new(),
        }
    }

    /// `-var NAME=VALUE` on every plan, apply and destroy.
    pub fn var(&mut self, name: &str, value: impl std::fmt::Display) {
        self.vars.push(format!("-var={name}={value}"));
    }

    pub fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.path().join("main.tf"), main_tf).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let mut command = Command::new("terraform");
        command
            .args(args)
            .args(["-no-color", "-input=false"])
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.rc)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("TF_LOG")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null());
        if args[0] != "init" {
            command.args(&self.vars);
        }
        let out = command.output().expect("run terraform");
        println!(
            "terraform {} ({:?}, {:?}):\n{}\n{}",
            args.join(" "),
            out.status,
            started.elapsed(),
            super::tail(&String::from_utf8_lossy(&out.stdout), 40),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a command that must succeed; its standard output.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `plan -detailed-exitcode` exits 0 only when nothing would change.
    pub fn assert_plan_empty(&self, when: &str) {
        let out = self.run(&["plan", "-detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "the plan {when} is not empty:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
