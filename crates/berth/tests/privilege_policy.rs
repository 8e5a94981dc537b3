//! The operator's privilege policy over the real API, and a task definition's
//! privilege-reducing settings on a real container: `berth dev --allow-privileged
//! host-path,local-targets` refuses `privileged` by name and runs a task with a host
//! path (logging the use), confined as its definition asks; restarted without
//! local-targets it refuses a loopback ip target and an instance target at a port no task
//! published, and stops serving the ip target registered before.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use support::Dev;

fn assert_refused(out: &Output, code: &str, message: &str) {
    assert!(
        !out.status.success(),
        "expected {code}, the command succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
    assert!(
        stderr.contains(message),
        "expected '{message}' in: {stderr}"
    );
}

/// berth's log without its terminal colours.
fn plain_log(dev: &Dev) -> String {
    let mut plain = String::new();
    let mut chars = dev.log_text().chars().collect::<Vec<_>>().into_iter();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn register(dev: &Dev, name: &str, definition: &Value) -> Output {
    let path = dev.data_dir.path().join(format!("{name}.json"));
    std::fs::write(&path, definition.to_string()).unwrap();
    dev.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", path.display()),
    ])
}

#[test]
fn the_policy_refuses_by_name_and_a_confined_task_runs_confined() {
    let mut dev = Dev::start_with_flags(&["--allow-privileged", "host-path,local-targets"]);
    let log = plain_log(&dev);
    assert!(
        log.contains("allowed=host-path,local-targets"),
        "the policy is said at start:\n{log}"
    );

    let privileged = json!({
        "family": "root",
        "containerDefinitions": [{
            "name": "app", "image": "berth/busybox:latest", "memory": 32, "privileged": true
        }]
    });
    assert_refused(
        &register(&dev, "root", &privileged),
        "ClientException",
        "container 'app': privileged is refused by this server's privilege policy; the \
         operator allows it by starting berth with --allow-privileged privileged",
    );

    let shared = dev.data_dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("greeting"), "hello from the host\n").unwrap();
    let script = "cat /data/greeting; \
        grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; \
        touch /written 2>/dev/null && echo rootfs-writable || echo rootfs-read-only; \
        df -k /scratch | tail -1 | awk '{print \"scratch \" $2}'; \
        df -k /dev/shm | tail -1 | awk '{print \"shm \" $2}'; \
        echo \"nofile $(ulimit -Sn) $(ulimit -Hn)\"; \
        cat /proc/1/comm";
    let confined = json!({
        "family": "confined",
        "volumes": [{"name": "data", "host": {"sourcePath": shared.display().to_string()}}],
        "containerDefinitions": [{
            "name": "app",
            "image": "berth/busybox:latest",
            "memory": 64,
            "essential": true,
            "entryPoint": ["/bin/sh", "-c"],
            "command": [script],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}],
            "readonlyRootFilesystem": true,
            // The ECS spelling of the engine's option: it only takes privilege away, so
            // no policy kind is needed for it.
            "dockerSecurityOptions": ["no-new-privileges:true"],
            "ulimits": [{"name": "nofile", "softLimit": 1234, "hardLimit": 2345}],
            "linuxParameters": {
                "capabilities": {"drop": ["ALL"]},
                "initProcessEnabled": true,
                "sharedMemorySize": 32,
                "tmpfs": [{"containerPath": "/scratch", "size": 16, "mountOptions": ["noexec"]}]
            }
        }]
    });
    let out = register(&dev, "confined", &confined);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dev.aws_json(&["ecs", "run-task", "--task-definition", "confined"]);
    let task_arn = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task")
        .to_string();
    let task_id = task_arn.rsplit('/').next().unwrap().to_string();
    let stopped = dev.wait_for("the confined task to stop", Duration::from_secs(60), || {
        let described = dev.aws_json(&["ecs", "describe-tasks", "--tasks", &task_arn]);
        (described["tasks"][0]["lastStatus"] == "STOPPED").then_some(described)
    });
    let logs = dev.berth(&["logs", &task_id]);
    let output = String::from_utf8_lossy(&logs.stdout).to_string();
    assert_eq!(
        stopped["tasks"][0]["containers"][0]["exitCode"].as_i64(),
        Some(0),
        "{stopped}\n{output}"
    );
    let lines: Vec<String> = output
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for expected in [
        "hello from the host",
        "CapEff: 0000000000000000",
        "NoNewPrivs: 1",
        "rootfs-read-only",
        "scratch 16384",
        "shm 32768",
        "nofile 1234 2345",
        "docker-init",
    ] {
        assert!(
            lines.iter().any(|line| line.ends_with(expected)),
            "'{expected}' missing from the task's output:\n{output}"
        );
    }
    let log = plain_log(&dev);
    let warning = log
        .lines()
        .find(|line| line.contains(&task_id) && line.contains("privilege=host-path"))
        .unwrap_or_else(|| panic!("no warning names the task and its host path:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("volume 'data': host.sourcePath"),
        "{warning}"
    );

    // An ip target at berth's own API, allowed now (local-targets), behind a listener.
    let listener_port = support::free_port().to_string();
    let api_target = format!("Id=127.0.0.1,Port={}", dev.port);
    let balancer = dev.aws_json(&["elbv2", "create-load-balancer", "--name", "local"]);
    let balancer_arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .unwrap();
    let group = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "local",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        "vpc-berth",
        "--target-type",
        "ip",
    ]);
    let group_arn = group["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        balancer_arn,
        "--protocol",
        "HTTP",
        "--port",
        &listener_port,
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={group_arn}"),
    ]);
    dev.aws_json(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &group_arn,
        "--targets",
        &api_target,
    ]);

    let said = format!("target group 'local': ip target 127.0.0.1:{}", dev.port);
    dev.wait_for(
        "the served local target to be logged",
        Duration::from_secs(30),
        || {
            plain_log(&dev)
                .lines()
                .any(|line| {
                    line.contains("WARN")
                        && line.contains("privilege=local-targets")
                        && line.contains(&said)
                })
                .then_some(())
        },
    );

    // Restarted without local-targets: a new one is refused by name, and the one
    // registered before is not served but reported as unusable.
    dev.restart_with_flags(&["--allow-privileged", "host-path"]);
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "register-targets",
            "--target-group-arn",
            &group_arn,
            "--targets",
            "Id=127.0.0.1,Port=22",
        ]),
        "InvalidTarget",
        "the ip target 127.0.0.1 (a loopback, link-local or unspecified address) is refused \
         by this server's privilege policy; the operator allows it by starting berth with \
         --allow-privileged local-targets",
    );
    // An instance target must be a host port a task running there has published: the
    // balancer reaches instance targets on 127.0.0.1, where berth's API listens too.
    let instances = dev.aws_json(&["ecs", "list-container-instances"]);
    let instance_arn = instances["containerInstanceArns"][0]
        .as_str()
        .expect("a container instance")
        .to_string();
    let instance_group = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "instances",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        "vpc-berth",
    ]);
    let instance_group_arn = instance_group["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_refused(
        &dev.aws(&[
            "elbv2",
            "register-targets",
            "--target-group-arn",
            &instance_group_arn,
            "--targets",
            &format!("Id={instance_arn},Port={}", dev.port),
        ]),
        "InvalidTarget",
        &format!(
            "port {} (not a host port a task running on that container instance has \
             published) is refused by this server's privilege policy; the operator allows it \
             by starting berth with --allow-privileged local-targets",
            dev.port
        ),
    );
    dev.aws_json(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &instance_group_arn,
    ]);
    let health = dev.wait_for(
        "the old target to be reported unusable",
        Duration::from_secs(30),
        || {
            let health = dev.aws_json(&[
                "elbv2",
                "describe-target-health",
                "--target-group-arn",
                &group_arn,
            ]);
            (health["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.IpUnusable")
                .then_some(health)
        },
    );
    let description = &health["TargetHealthDescriptions"][0]["TargetHealth"];
    assert_eq!(description["State"], "unhealthy", "{health}");
    assert!(
        description["Description"]
            .as_str()
            .unwrap_or_default()
            .contains("--allow-privileged local-targets"),
        "{health}"
    );
    let port: u16 = listener_port.parse().unwrap();
    let (status, body) = support::http_get(port, "/").expect("the listener answers");
    assert_eq!(
        status, 503,
        "the API is not published through the listener: {body}"
    );
    dev.aws_json(&[
        "elbv2",
        "delete-load-balancer",
        "--load-balancer-arn",
        balancer_arn,
    ]);
    dev.aws_json(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &group_arn,
    ]);
}
