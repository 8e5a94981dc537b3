//! The whole lifecycle driven by the real aws CLI v2 against a real `berth dev` on the
//! real Docker engine: clusters, task definitions, a task that exits 3, a service that
//! heals after `docker kill`, scales, redeploys, bad input, teardown.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::Dev;

const CLUSTER: &str = "acceptance";

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

fn assert_client_error(out: &std::process::Output, code: &str, words: &str) {
    assert!(
        !out.status.success(),
        "expected {code}, the command succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
    assert!(stderr.contains(words), "expected '{words}' in: {stderr}");
}

/// What the engine reports of this machine: (CPUs, memory in bytes).
fn engine_resources() -> (i64, i64) {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.NCPU}} {{.MemTotal}}"])
        .output()
        .expect("docker info");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(|n| n.parse::<i64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn aws_cli_drives_a_whole_lifecycle() {
    let dev = Dev::start();

    // Clusters.
    let created = dev.aws_json(&["ecs", "create-cluster", "--cluster-name", CLUSTER]);
    assert_eq!(
        str_of(&created, "/cluster/clusterArn"),
        "arn:aws:ecs:us-east-1:000000000000:cluster/acceptance"
    );
    assert_eq!(str_of(&created, "/cluster/status"), "ACTIVE");
    let missing = dev.aws_json(&["ecs", "describe-clusters", "--clusters", "nope"]);
    assert_eq!(str_of(&missing, "/failures/0/reason"), "MISSING");

    // This machine is a container instance of the cluster, with the engine's CPU and memory.
    let instances = dev.aws_json(&["ecs", "list-container-instances", "--cluster", CLUSTER]);
    let instance_arns = instances["containerInstanceArns"].as_array().unwrap();
    assert_eq!(instance_arns.len(), 1, "{instances}");
    let instance_arn = instance_arns[0].as_str().unwrap();
    assert!(
        instance_arn
            .starts_with("arn:aws:ecs:us-east-1:000000000000:container-instance/acceptance/"),
        "{instance_arn}"
    );
    let described = dev.aws_json(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        CLUSTER,
        "--container-instances",
        instance_arn,
    ]);
    assert_eq!(str_of(&described, "/containerInstances/0/status"), "ACTIVE");
    assert_eq!(
        described.pointer("/containerInstances/0/agentConnected"),
        Some(&Value::Bool(true))
    );
    let (cpus, memory_bytes) = engine_resources();
    let registered = |name: &str| {
        described["containerInstances"][0]["registeredResources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["integerValue"].as_i64())
            .unwrap_or_else(|| panic!("registeredResources has no {name}: {described}"))
    };
    assert_eq!(registered("CPU"), cpus * 1024);
    assert_eq!(registered("MEMORY"), memory_bytes / (1024 * 1024));

    // Bad input: a clear ClientException, and nothing stored.
    let bad = dev.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "broken",
        "--container-definitions",
        "[]",
    ]);
    assert_client_error(&bad, "ClientException", "Container list cannot be empty.");
    let dup = dev.aws(&[
        "ecs", "register-task-definition", "--family", "broken", "--container-definitions",
        r#"[{"name":"a","image":"berth/busybox:latest","memory":16,"portMappings":[{"containerPort":80}]},
            {"name":"b","image":"berth/busybox:latest","memory":16,"portMappings":[{"containerPort":80}]}]"#,
    ]);
    assert_client_error(&dup, "ClientException", "80");
    let families = dev.aws_json(&["ecs", "list-task-definition-families"]);
    assert!(
        !families.to_string().contains("broken"),
        "an invalid definition stored nothing: {families}"
    );
    let unknown_cluster = dev.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "nope",
        "--task-definition",
        "x",
    ]);
    assert_client_error(
        &unknown_cluster,
        "ClusterNotFoundException",
        "Cluster not found",
    );
    let wrong_secret = dev.aws_as(
        &["ecs", "list-clusters"],
        support::ACCESS_KEY_ID,
        "not-the-secret",
    );
    assert_client_error(&wrong_secret, "InvalidSignatureException", "signature");

    // A task whose essential container exits 3.
    dev.aws_json(&[
        "ecs", "register-task-definition", "--family", "exiter", "--container-definitions",
        r#"[{"name":"main","image":"berth/busybox:latest","memory":16,"command":["sh","-c","echo bye; exit 3"]}]"#,
    ]);
    let run = dev.aws_json(&[
        "ecs",
        "run-task",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "exiter",
    ]);
    assert_eq!(run["failures"].as_array().unwrap().len(), 0, "{run}");
    let task_arn = str_of(&run, "/tasks/0/taskArn").to_string();
    let wait = dev.aws(&[
        "ecs",
        "wait",
        "tasks-stopped",
        "--cluster",
        CLUSTER,
        "--tasks",
        &task_arn,
    ]);
    assert!(
        wait.status.success(),
        "tasks-stopped: {}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let stopped = dev.aws_json(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        CLUSTER,
        "--tasks",
        &task_arn,
    ]);
    assert_eq!(str_of(&stopped, "/tasks/0/lastStatus"), "STOPPED");
    assert_eq!(
        str_of(&stopped, "/tasks/0/stopCode"),
        "EssentialContainerExited"
    );
    assert_eq!(
        str_of(&stopped, "/tasks/0/stoppedReason"),
        "Essential container in task exited"
    );
    assert_eq!(
        stopped
            .pointer("/tasks/0/containers/0/exitCode")
            .and_then(Value::as_i64),
        Some(3)
    );
    // The CLI reformats ECS's epoch-number timestamps; it fails to parse anything else.
    assert!(
        stopped.pointer("/tasks/0/stoppedAt").is_some(),
        "stoppedAt is set"
    );
    // berth's own CLI reads the stopped task's output from the engine.
    let task_id = task_arn.rsplit('/').next().unwrap();
    let logs = dev.berth(&["logs", "-c", CLUSTER, task_id]);
    assert!(
        logs.status.success(),
        "berth logs: {}",
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("bye"),
        "berth logs shows what the container printed: {}",
        String::from_utf8_lossy(&logs.stdout)
    );

    // A service of 3 reaches a steady state.
    let web = r#"[{"name":"web","image":"berth/busybox:latest","memory":16,
        "portMappings":[{"containerPort":8080,"hostPort":0}],
        "environment":[{"name":"VERSION","value":"1"}],
        "command":["sh","-c","mkdir -p /www && echo v$VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"]}]"#;
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        web,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--cluster",
        CLUSTER,
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
    ]);
    dev.wait_services_stable(CLUSTER, &["web"], "after create");
    let tasks = dev.service_tasks(Some(CLUSTER), "web");
    assert_eq!(tasks.len(), 3);
    let mut waiter = vec![
        "ecs",
        "wait",
        "tasks-running",
        "--cluster",
        CLUSTER,
        "--tasks",
    ];
    waiter.extend(tasks.iter().map(|t| str_of(t, "/taskArn")));
    let running = dev.aws(&waiter);
    assert!(
        running.status.success(),
        "tasks-running: {}",
        String::from_utf8_lossy(&running.stderr)
    );
    for task in &tasks {
        assert_eq!(str_of(task, "/lastStatus"), "RUNNING");
        let port = task
            .pointer("/containers/0/networkBindings/0/hostPort")
            .and_then(Value::as_i64)
            .unwrap();
        // RUNNING is the container's state: its httpd may take a moment to listen.
        let answer = dev.wait_for(
            "the task to answer on its host port",
            Duration::from_secs(10),
            // An empty answer (status 0) is the engine's port proxy finding no listener.
            || {
                support::http_get(port as u16, "/")
                    .ok()
                    .filter(|(status, _)| *status != 0)
            },
        );
        assert_eq!((answer.0, answer.1.trim()), (200, "v1"));
    }
    // services-stable looks at the counts; berth's own steady-state event follows the
    // scheduler's next look at the service.
    dev.wait_for("the steady-state event", Duration::from_secs(10), || {
        let described = dev.aws_json(&[
            "ecs",
            "describe-services",
            "--cluster",
            CLUSTER,
            "--services",
            "web",
        ]);
        let events = described.pointer("/services/0/events")?.to_string();
        events
            .contains("(service web) has reached a steady state.")
            .then_some(())
    });

    // docker kill of one container: the task is replaced.
    let victim = tasks[0].clone();
    let victim_arn = str_of(&victim, "/taskArn").to_string();
    let runtime_id = str_of(&victim, "/containers/0/runtimeId").to_string();
    let killed = Command::new("docker")
        .args(["kill", &runtime_id])
        .output()
        .unwrap();
    assert!(killed.status.success());
    dev.wait_for(
        "the killed task to stop and a replacement to run",
        Duration::from_secs(30),
        || {
            let tasks = dev.service_tasks(Some(CLUSTER), "web");
            let replaced = !tasks.iter().any(|t| str_of(t, "/taskArn") == victim_arn);
            let running = tasks
                .iter()
                .filter(|t| str_of(t, "/lastStatus") == "RUNNING")
                .count();
            (replaced && running == 3).then_some(())
        },
    );
    let gone = dev.aws_json(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        CLUSTER,
        "--tasks",
        &victim_arn,
    ]);
    assert_eq!(str_of(&gone, "/tasks/0/lastStatus"), "STOPPED");
    assert_eq!(
        str_of(&gone, "/tasks/0/stopCode"),
        "EssentialContainerExited"
    );

    // Scale to 5.
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--desired-count",
        "5",
    ]);
    dev.wait_services_stable(CLUSTER, &["web"], "after scale");
    assert_eq!(dev.service_tasks(Some(CLUSTER), "web").len(), 5);

    // Redeploy with a new revision.
    let web2 = web.replace(r#""value":"1""#, r#""value":"2""#);
    let registered = dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        &web2,
    ]);
    assert_eq!(
        registered
            .pointer("/taskDefinition/revision")
            .and_then(Value::as_i64),
        Some(2)
    );
    let updated = dev.aws_json(&[
        "ecs",
        "update-service",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--task-definition",
        "web:2",
    ]);
    assert_eq!(
        updated
            .pointer("/service/deployments")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(2)
    );
    dev.wait_services_stable(CLUSTER, &["web"], "after redeploy");
    let tasks = dev.service_tasks(Some(CLUSTER), "web");
    assert_eq!(tasks.len(), 5);
    assert!(tasks
        .iter()
        .all(|t| str_of(t, "/taskDefinitionArn").ends_with("task-definition/web:2")));

    // Deleting a scaled service needs --force; the cluster cannot go while it exists.
    let refused = dev.aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
    ]);
    assert_client_error(&refused, "InvalidParameterException", "scaled above 0");
    let busy = dev.aws(&["ecs", "delete-cluster", "--cluster", CLUSTER]);
    assert_client_error(
        &busy,
        "ClusterContainsServicesException",
        "Services are active",
    );

    // Teardown.
    dev.aws_json(&[
        "ecs",
        "delete-service",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--force",
    ]);
    let inactive = dev.aws(&[
        "ecs",
        "wait",
        "services-inactive",
        "--cluster",
        CLUSTER,
        "--services",
        "web",
    ]);
    assert!(
        inactive.status.success(),
        "services-inactive: {}",
        String::from_utf8_lossy(&inactive.stderr)
    );
    dev.wait_for("every task to stop", Duration::from_secs(60), || {
        let list = dev.aws_json(&["ecs", "list-tasks", "--cluster", CLUSTER]);
        list["taskArns"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    let deleted = dev.aws_json(&["ecs", "delete-cluster", "--cluster", CLUSTER]);
    assert_eq!(str_of(&deleted, "/cluster/status"), "INACTIVE");
}
