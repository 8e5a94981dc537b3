//! Service discovery by name: a container of the cluster reaches `http://board:8080/`
//! and lands on every running task of service `board`, never on a stopped one, and
//! never on one that failed its health check. Once with a definition that maps 8080
//! (the name is this node's endpoint for board, which proxies to the tasks' published
//! ports), once with one that maps no port (the tasks carry the name themselves).

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::Dev;

/// What `http://board:8080/` answers from inside `client`, over `count` requests. Each
/// request gets 5 s: a connection to a task that was stopped while the request was in
/// flight (its address already given to a replacement) is never answered nor reset,
/// and busybox's wget has no timeout of its own.
fn answers(client: &str, count: usize) -> BTreeSet<String> {
    let script = format!(
        "for i in $(seq {count}); do timeout 5 wget -q -O - http://board:8080/ 2>/dev/null; echo; done"
    );
    let out = Command::new("docker")
        .args(["exec", client, "sh", "-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// What board's running, not unhealthy tasks answer: each its hostname, which is its
/// container's short id.
fn running_answers(dev: &Dev) -> BTreeSet<String> {
    dev.service_tasks(None, "board")
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["healthStatus"] != "UNHEALTHY")
        .filter_map(|t| t.pointer("/containers/0/runtimeId").and_then(Value::as_str))
        .map(|id| id[..12].to_string())
        .collect()
}

#[test]
fn a_service_is_reached_by_name_on_its_healthy_tasks_only() {
    reached_by_name_on_healthy_tasks_only(
        r#""portMappings":[{"containerPort":8080,"hostPort":0}],"#,
    );
}

#[test]
fn a_service_that_maps_no_port_is_reached_by_name_on_its_healthy_tasks_only() {
    reached_by_name_on_healthy_tasks_only("");
}

fn reached_by_name_on_healthy_tasks_only(port_mappings: &str) {
    let dev = Dev::start();
    // Each board task answers with its hostname (its container's short id) and is
    // healthy while /tmp/ok exists.
    let board = format!(
        r#"[{{"name":"web","image":"berth/busybox:latest","memory":16,{port_mappings}
            "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && touch /tmp/ok && exec httpd -f -p 8080 -h /www"],
            "stopTimeout":2,
            "healthCheck":{{"command":["CMD-SHELL","test -f /tmp/ok"],"interval":5,"timeout":2,"retries":1}}}}]"#
    );
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "board",
        "--container-definitions",
        &board,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "board",
        "--task-definition",
        "board",
        "--desired-count",
        "3",
    ]);
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "client",
        "--container-definitions",
        r#"[{"name":"sh","image":"berth/busybox:latest","memory":16,"command":["sleep","600"]}]"#,
    ]);
    let run = dev.aws_json(&["ecs", "run-task", "--task-definition", "client"]);
    let client_arn = run
        .pointer("/tasks/0/taskArn")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let client = dev.wait_for("the client task to run", Duration::from_secs(60), || {
        let d = dev.aws_json(&["ecs", "describe-tasks", "--tasks", &client_arn]);
        (d.pointer("/tasks/0/lastStatus") == Some(&Value::from("RUNNING"))).then(|| {
            d.pointer("/tasks/0/containers/0/runtimeId")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
    });
    let expected = dev.wait_for("3 healthy board tasks", Duration::from_secs(60), || {
        let tasks = dev.service_tasks(None, "board");
        let healthy = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING" && t["healthStatus"] == "HEALTHY")
            .count();
        (healthy == 3).then(|| running_answers(&dev))
    });

    // Every healthy task answers to the name, spread over them.
    let seen = dev.wait_for(
        "answers from every board task",
        Duration::from_secs(30),
        || {
            let seen = answers(&client, 30);
            (seen == expected).then_some(seen)
        },
    );
    assert_eq!(seen.len(), 3);

    // A stopped task is no longer reached.
    let victim = dev.service_tasks(None, "board")[0].clone();
    let victim_arn = victim["taskArn"].as_str().unwrap().to_string();
    let victim_answer = victim
        .pointer("/containers/0/runtimeId")
        .and_then(Value::as_str)
        .unwrap()[..12]
        .to_string();
    dev.aws_json(&["ecs", "stop-task", "--task", &victim_arn]);
    dev.wait_for(
        "the stopped task to be STOPPED",
        Duration::from_secs(60),
        || {
            let d = dev.aws_json(&["ecs", "describe-tasks", "--tasks", &victim_arn]);
            (d.pointer("/tasks/0/lastStatus") == Some(&Value::from("STOPPED"))).then_some(())
        },
    );
    let after_stop = answers(&client, 30);
    assert!(
        !after_stop.contains(&victim_answer),
        "a stopped task answered: {after_stop:?}"
    );
    assert!(!after_stop.is_empty(), "the other tasks still answer");

    // A task that fails its health check is no longer reached. It is one that was
    // reached before: the stopped task's replacement may not have been, and could still
    // join (a check that passed just before the file went) after the wait below.
    let sick = dev
        .service_tasks(None, "board")
        .into_iter()
        .find(|t| {
            t["lastStatus"] == "RUNNING"
                && t["taskArn"] != victim_arn.as_str()
                && t.pointer("/containers/0/runtimeId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| seen.contains(&id[..12]))
        })
        .expect("a task that answered before, other than the stopped one");
    let sick_container = sick
        .pointer("/containers/0/runtimeId")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let sick_answer = sick_container[..12].to_string();
    assert!(Command::new("docker")
        .args(["exec", &sick_container, "rm", "/tmp/ok"])
        .status()
        .unwrap()
        .success());
    dev.wait_for(
        "the sick task to leave discovery",
        Duration::from_secs(30),
        || (!answers(&client, 20).contains(&sick_answer)).then_some(()),
    );
    for _ in 0..3 {
        assert!(
            !answers(&client, 20).contains(&sick_answer),
            "an unhealthy task answered"
        );
    }
}
