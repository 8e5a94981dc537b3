//! ecs-deploy (PyPI's `ecs`, a boto3 deploy tool nobody here wrote) against `berth dev`,
//! pointed at it by `AWS_ENDPOINT_URL` alone: a deploy that changes an environment
//! value (a new revision, the old one deregistered, the new containers run with the
//! new value), a scale, and a release whose containers exit at once, which ecs-deploy
//! gives up on after its timeout and rolls back to the revision before.
//!
//! Everything is removed on drop (support/mod.rs), also when the test fails.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::Dev;

const CLUSTER: &str = "deploys";

/// Runs `ecs ARGS` with nothing but the environment pointing it at `dev`.
fn ecs_deploy(dev: &Dev, args: &[&str]) -> Output {
    let found = Command::new("ecs").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "ecs-deploy is needed on PATH: python3 -m pip install ecs-deploy"
    );
    let out = Command::new("ecs")
        .args(args)
        .env("AWS_ENDPOINT_URL", dev.endpoint())
        .env("AWS_ACCESS_KEY_ID", &dev.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &dev.secret_access_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/berth-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run ecs-deploy");
    println!(
        "ecs {}: {:?}\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn service(dev: &Dev) -> Value {
    let described = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        CLUSTER,
        "--services",
        "api",
    ]);
    described["services"][0].clone()
}

fn definition_status(dev: &Dev, revision: &str) -> String {
    let described = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        revision,
    ]);
    described["taskDefinition"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The RUNNING tasks of api: (task definition ARN, container id).
fn running(dev: &Dev) -> Vec<(String, String)> {
    dev.service_tasks(Some(CLUSTER), "api")
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| {
            (
                t["taskDefinitionArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                t["containers"][0]["runtimeId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// `VERSION` as the container's own process sees it.
fn version_in(container: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", "echo $VERSION"])
        .output()
        .expect("docker exec");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn ecs_deploy_deploys_scales_and_rolls_back_a_berth_service() {
    support::require_docker();
    support::require_images();
    let dev = Dev::start();
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", CLUSTER]);
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "api",
        "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"essential":true,
            "environment":[{"name":"VERSION","value":"v1"}],
            "command":["sleep","3600"],"stopTimeout":1}]"#,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        CLUSTER,
        "--service-name",
        "api",
        "--task-definition",
        "api",
        "--desired-count",
        "2",
    ]);
    dev.wait_services_stable(CLUSTER, &["api"], "api's first tasks");

    // A deploy that changes one value: ecs-deploy registers api:2 from api:1, updates
    // the service, waits until api:2's tasks are all that run, deregisters api:1.
    let deployed = ecs_deploy(
        &dev,
        &[
            "deploy",
            CLUSTER,
            "api",
            "-e",
            "web",
            "VERSION",
            "v2",
            "--timeout",
            "120",
        ],
    );
    assert!(deployed.status.success(), "ecs deploy failed");
    let stdout = String::from_utf8_lossy(&deployed.stdout);
    assert!(stdout.contains("Deployment successful"), "{stdout}");
    let v2 = service(&dev)["taskDefinition"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(v2.ends_with("task-definition/api:2"), "{v2}");
    assert_eq!(definition_status(&dev, "api:1"), "INACTIVE");
    let tasks = running(&dev);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    for (definition, container) in &tasks {
        assert_eq!(definition, &v2);
        assert_eq!(
            version_in(container),
            "v2",
            "the new value reaches the process"
        );
    }

    // Scale, and ecs-deploy waits for it.
    let scaled = ecs_deploy(&dev, &["scale", CLUSTER, "api", "3", "--timeout", "120"]);
    assert!(scaled.status.success(), "ecs scale failed");
    assert_eq!(service(&dev)["desiredCount"], 3);
    assert_eq!(running(&dev).len(), 3);

    // A release that never comes up: ecs-deploy waits out its timeout, then rolls back
    // to api:2 and deregisters the bad api:3. The old tasks served throughout.
    let failed = ecs_deploy(
        &dev,
        &[
            "deploy",
            CLUSTER,
            "api",
            "-c",
            "web",
            r#"["sh","-c","exit 1"]"#,
            "--timeout",
            "20",
            "--rollback",
        ],
    );
    assert!(!failed.status.success(), "a failed deploy exits non-zero");
    let stdout = String::from_utf8_lossy(&failed.stdout);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stdout.contains("Rollback successful"),
        "ecs-deploy rolled back: {stdout} {stderr}"
    );
    assert_eq!(service(&dev)["taskDefinition"], v2.as_str());
    assert_eq!(definition_status(&dev, "api:3"), "INACTIVE");
    dev.wait_for(
        "api back at 3 tasks of api:2, one deployment",
        Duration::from_secs(60),
        || {
            let tasks = running(&dev);
            let service = service(&dev);
            (tasks.len() == 3
                && tasks.iter().all(|(d, _)| d == &v2)
                && service["deployments"].as_array().map(Vec::len) == Some(1))
            .then_some(())
        },
    );
}
