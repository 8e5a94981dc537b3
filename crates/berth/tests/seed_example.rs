//! The seed example as a user runs it: `berth apply -f examples/our-project.yaml`
//! against a real `berth dev` on the real engine. Each task is nginx -> web on
//! localhost:8080 -> db in one shared network namespace (a sandbox container holds it
//! and publishes nginx's dynamic host port), member's 3 tasks and board's 1 answer
//! behind one load balancer, and member calls board by its name.
//!
//! The listeners' ports (8000 and 8001 in the file) are moved to free ports in a copy
//! of the file, so the test does not depend on what else this machine runs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, http_get, Dev};

const CLUSTER: &str = "our-project";

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("task has no container {name}: {task}"))
}

fn host_port(task: &Value, name: &str) -> u16 {
    container(task, name)
        .pointer("/networkBindings/0/hostPort")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{name} has no host port: {task}")) as u16
}

/// The engine's containers of one task, by their `berth.container` label.
fn engine_containers(task_id: &str) -> BTreeSet<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=berth.task={task_id}"),
            "--format",
            "{{.Label \"berth.container\"}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_seed_example_answers_through_one_address_and_by_name() {
    let dev = Dev::start();
    let member_port = free_port();
    let board_port = free_port();
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/our-project.yaml"),
    )
    .expect("examples/our-project.yaml");
    let example = original
        .replace("    port: 8000\n", &format!("    port: {member_port}\n"))
        .replace("    port: 8001\n", &format!("    port: {board_port}\n"));
    assert_ne!(example, original, "the example's listener ports moved");
    let file = dev.data_dir.path().join("our-project.yaml");
    std::fs::write(&file, example).unwrap();

    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "berth apply: {}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    dev.wait_services_stable(CLUSTER, &["member", "board"], "after create");
    // services-stable holds once the tasks run: their nginx health checks and the
    // balancer's first verdicts on them may still be a check interval away.
    dev.wait_targets_healthy(&dev.target_group_arn("member"), 3);
    dev.wait_targets_healthy(&dev.target_group_arn("board"), 1);
    let members = dev.wait_for(
        "member's three nginx containers to be HEALTHY",
        Duration::from_secs(60),
        || {
            let members = dev.service_tasks(Some(CLUSTER), "member");
            (members.len() == 3
                && members
                    .iter()
                    .all(|task| container(task, "nginx")["healthStatus"] == "HEALTHY"))
            .then_some(members)
        },
    );

    // Each member task: a sandbox and its three containers, nginx published on a
    // dynamic host port of its own, answering from the task's own web server.
    let mut ports = BTreeSet::new();
    let mut direct_answers = BTreeSet::new();
    for task in &members {
        assert_eq!(task["lastStatus"], "RUNNING", "{task}");
        assert_eq!(
            container(task, "nginx")["healthStatus"],
            "HEALTHY",
            "{task}"
        );
        let task_id = task["taskArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        assert_eq!(
            engine_containers(task_id),
            ["db", "nginx", "web", "~sandbox"]
                .map(String::from)
                .into_iter()
                .collect(),
            "the engine runs the task's sandbox and its three containers"
        );
        let port = host_port(task, "nginx");
        assert!(ports.insert(port), "each task has a host port of its own");
        let (status, body) = http_get(port, "/").expect("nginx answers on its host port");
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("member answers from "), "{body}");
        direct_answers.insert(body.trim().to_string());
    }
    assert_eq!(direct_answers.len(), 3, "three tasks, three web servers");

    // One address: round robin over member's three healthy tasks.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let (status, body) = http_get(member_port, "/").expect("the load balancer answers");
        assert_eq!(status, 200, "{body}");
        *counts.entry(body.trim().to_string()).or_default() += 1;
    }
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        direct_answers,
        "the listener spreads over exactly member's tasks"
    );
    assert!(counts.values().all(|&n| n == 10), "round robin: {counts:?}");

    let (status, board_answer) = http_get(board_port, "/").expect("board's listener answers");
    assert_eq!(status, 200, "{board_answer}");
    assert!(
        board_answer.starts_with("board answers from "),
        "{board_answer}"
    );

    // Service discovery: member's web server asks http://board:80/ by name.
    let (status, body) = http_get(member_port, "/cgi-bin/board").expect("member answers");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("asked board: {}", board_answer.trim())),
        "member reached board by name: {body}"
    );

    // Each task's nginx logs the requests it served (not the health checks), so
    // `berth logs member` shows the traffic.
    let logs = dev.berth(&["logs", "-c", CLUSTER, "member", "--container", "nginx"]);
    assert!(logs.status.success(), "{logs:?}");
    let logged = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logged
            .lines()
            .filter(|l| l.contains("\"GET / HTTP/1.") && l.contains("\" 200 "))
            .count()
            >= 33,
        "the 30 requests through the listener and 3 direct ones are logged: {logged}"
    );
    assert!(logged.contains("\"GET /cgi-bin/board HTTP/1."), "{logged}");
    assert!(
        !logged.contains(" 127.0.0.1 \"GET"),
        "the container's own health check is left out: {logged}"
    );

    // berth ps draws the tree with the tasks' health and nginx's published port.
    let ps = dev.berth(&["ps", "-c", CLUSTER]);
    assert!(ps.status.success());
    let tree = String::from_utf8_lossy(&ps.stdout);
    for service in ["member", "board"] {
        assert!(tree.contains(service), "{tree}");
    }
    for port in &ports {
        assert!(tree.contains(&format!(":{port}->80/tcp")), "{tree}");
    }

    // berth stop of one member task: the service replaces it, and the address keeps
    // answering from three tasks.
    let victim = members[0]["taskArn"].as_str().unwrap();
    let victim_id = victim.rsplit('/').next().unwrap();
    let stopped = dev.berth(&["stop", "-c", CLUSTER, victim_id]);
    assert!(
        stopped.status.success(),
        "berth stop: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    dev.wait_for(
        "a replacement for the stopped member task",
        Duration::from_secs(60),
        || {
            let tasks = dev.service_tasks(Some(CLUSTER), "member");
            let healthy = tasks
                .iter()
                .filter(|t| t["lastStatus"] == "RUNNING" && t["taskArn"] != victim)
                .count();
            (healthy == 3 && !tasks.iter().any(|t| t["taskArn"] == victim)).then_some(())
        },
    );
    // It drains from its target group first (deregistration delay 5 s), then its
    // containers stop, dependents first, each within its stopTimeout.
    let gone = dev.wait_for(
        "the stopped member task to reach STOPPED",
        Duration::from_secs(120),
        || {
            let described = dev.aws_json(&[
                "ecs",
                "describe-tasks",
                "--cluster",
                CLUSTER,
                "--tasks",
                victim,
            ]);
            (described.pointer("/tasks/0/lastStatus") == Some(&"STOPPED".into()))
                .then_some(described)
        },
    );
    assert_eq!(gone.pointer("/tasks/0/lastStatus"), Some(&"STOPPED".into()));
    assert_eq!(
        gone.pointer("/tasks/0/stopCode"),
        Some(&"UserInitiated".into())
    );
    assert!(
        engine_containers(victim_id).is_empty(),
        "the stopped task's containers no longer run"
    );
}
