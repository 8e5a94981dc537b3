//! berth's load balancer in front of a service, driven by the real aws CLI v2:
//! round robin over healthy tasks, unhealthy targets leave rotation and come back, and
//! under continuous load a `docker kill`, a scale 3 -> 6 -> 2 and a StopTask fail no
//! GET request.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{http_get, str_at, Dev, KeepAliveClient};

fn wait_running(dev: &Dev, count: i64) {
    dev.wait_for(
        &format!("{count} running tasks"),
        Duration::from_secs(90),
        || {
            let s = dev.aws_json(&["ecs", "describe-services", "--services", "web"]);
            let running = s
                .pointer("/services/0/runningCount")
                .and_then(Value::as_i64);
            let live = dev.aws_json(&["ecs", "list-tasks", "--service-name", "web"])["taskArns"]
                .as_array()
                .map(Vec::len);
            (running == Some(count) && live == Some(count as usize)).then_some(())
        },
    );
}

#[test]
fn the_load_balancer_serves_healthy_tasks_and_drops_nothing() {
    let dev = Dev::start();
    let port = support::free_port();

    // The balancer, its target group and listener, with the aws elbv2 CLI.
    let lb = dev.aws_json(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "web-lb",
        "--subnets",
        "subnet-berth",
    ]);
    let lb_arn = str_at(&lb, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let tg = dev.aws_json(&[
        "elbv2",
        "create-target-group",
        "--name",
        "web-tg",
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--target-type",
        "instance",
        "--vpc-id",
        "vpc-berth",
        "--health-check-path",
        "/health.html",
        "--health-check-interval-seconds",
        "5",
        "--health-check-timeout-seconds",
        "2",
        "--healthy-threshold-count",
        "2",
        "--unhealthy-threshold-count",
        "2",
    ]);
    let tg_arn = str_at(&tg, "/TargetGroups/0/TargetGroupArn").to_string();
    dev.aws_json(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=2",
    ]);
    let unused = dev.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "early",
        "--task-definition",
        "none",
        "--load-balancers",
        &format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080"),
    ]);
    assert!(
        !unused.status.success(),
        "a service needs a registered task definition"
    );
    dev.aws_json(&[
        "ecs", "register-task-definition", "--family", "web", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"stopTimeout":2,
            "portMappings":[{"containerPort":8080,"hostPort":0}],
            "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"]}]"#,
    ]);
    let orphan_group = dev.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
        "--load-balancers",
        &format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080"),
    ]);
    let stderr = String::from_utf8_lossy(&orphan_group.stderr);
    assert!(
        stderr.contains("InvalidParameterException")
            && stderr.contains("does not have an associated load balancer"),
        "a target group no listener uses is refused: {stderr}"
    );
    dev.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    // The grace period lets a failing target come back instead of being replaced (the
    // replacement of unhealthy targets is the scheduler's, tested in berth-core).
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
        "--health-check-grace-period-seconds",
        "600",
        "--load-balancers",
        &format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080"),
    ]);
    wait_running(&dev, 3);
    dev.wait_targets_healthy(&tg_arn, 3);

    // Round robin over 3 healthy tasks: 300 requests land 100 / 100 / 100.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let (status, body) = http_get(port, "/").expect("the balancer answers");
        assert_eq!(status, 200);
        *counts.entry(body.trim().to_string()).or_default() += 1;
    }
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![100, 100, 100],
        "{counts:?}"
    );

    // A target whose health endpoint fails leaves rotation, and comes back.
    let sick = dev.service_tasks(None, "web")[0].clone();
    let sick_container = str_at(&sick, "/containers/0/runtimeId").to_string();
    let sick_name = sick_container[..12].to_string();
    let exec = |args: &[&str]| {
        let mut command = Command::new("docker");
        command.arg("exec").arg(&sick_container).args(args);
        assert!(command.status().unwrap().success());
    };
    exec(&["mv", "/www/health.html", "/www/health.off"]);
    dev.wait_for(
        "the failing target to leave rotation",
        Duration::from_secs(30),
        || {
            let answers: Vec<String> = (0..20)
                .filter_map(|_| http_get(port, "/").ok())
                .map(|(_, b)| b.trim().to_string())
                .collect();
            // Twenty answers, none from the sick target (no answer proves nothing).
            (answers.len() == 20 && !answers.contains(&sick_name)).then_some(())
        },
    );
    assert!(dev
        .target_states(&tg_arn)
        .contains(&"unhealthy".to_string()));
    exec(&["mv", "/www/health.off", "/www/health.html"]);
    dev.wait_for("the target to return", Duration::from_secs(30), || {
        let answers: Vec<String> = (0..20)
            .filter_map(|_| http_get(port, "/").ok())
            .map(|(_, b)| b.trim().to_string())
            .collect();
        answers.contains(&sick_name).then_some(())
    });
    dev.wait_targets_healthy(&tg_arn, 3);

    // Continuous load while tasks are killed, scaled and stopped: one client opening a
    // connection per request, and two keeping theirs open across requests.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    // What the test was doing, for the failure messages.
    let phase: Arc<Mutex<&'static str>> = Arc::new(Mutex::new("before the docker kill"));
    let set_phase = |name: &'static str| *phase.lock().unwrap() = name;
    // Bounded: each client stops when told, after 5 minutes, or after 100,000 requests.
    let bounded = |started: std::time::Instant, sent: usize, stop: &AtomicBool| {
        !stop.load(Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(300)
            && sent < 100_000
    };
    let mut load = Vec::new();
    for client in 0..3 {
        let (stop, ok, failures, phase) =
            (stop.clone(), ok.clone(), failures.clone(), phase.clone());
        load.push(std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut keep_alive = None;
            let mut sent = 0;
            while bounded(started, sent, &stop) {
                sent += 1;
                let result = if client == 0 {
                    http_get(port, "/")
                } else {
                    if keep_alive.is_none() {
                        keep_alive = KeepAliveClient::connect(port).ok();
                    }
                    match keep_alive.as_mut() {
                        Some(connection) => connection.get("/"),
                        None => Err(std::io::Error::other("connect failed")),
                    }
                };
                let failure = match result {
                    Ok((200, _)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Ok((status, body)) => Some(format!("{status} {}", body.trim())),
                    Err(error) => {
                        keep_alive = None;
                        Some(error.to_string())
                    }
                };
                if let Some(failure) = failure {
                    let phase = *phase.lock().unwrap();
                    failures.lock().unwrap().push(format!(
                        "client {client}, {phase}, {:.1} s into the load: {failure}",
                        started.elapsed().as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    let victim = dev.service_tasks(None, "web")[1].clone();
    let victim_arn = str_at(&victim, "/taskArn").to_string();
    set_phase("after the docker kill");
    assert!(Command::new("docker")
        .args(["kill", str_at(&victim, "/containers/0/runtimeId")])
        .status()
        .unwrap()
        .success());
    // Until berth sees the kill, the service still counts the victim: wait for it to go.
    dev.wait_for(
        "the killed task to be replaced",
        Duration::from_secs(60),
        || {
            let tasks = dev.service_tasks(None, "web");
            let replaced = !tasks.iter().any(|t| str_at(t, "/taskArn") == victim_arn);
            (replaced && tasks.len() == 3).then_some(())
        },
    );
    wait_running(&dev, 3);
    dev.wait_targets_healthy(&tg_arn, 3);
    set_phase("scaling to 6");
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--desired-count",
        "6",
    ]);
    wait_running(&dev, 6);
    dev.wait_targets_healthy(&tg_arn, 6);
    set_phase("scaling to 2");
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--desired-count",
        "2",
    ]);
    wait_running(&dev, 2);
    dev.wait_targets_healthy(&tg_arn, 2);
    let stopped = str_at(&dev.service_tasks(None, "web")[0], "/taskArn").to_string();
    set_phase("after StopTask");
    dev.aws_json(&["ecs", "stop-task", "--task", &stopped]);
    dev.wait_for(
        "the stopped task to be replaced",
        Duration::from_secs(60),
        || {
            let tasks = dev.service_tasks(None, "web");
            let replaced = !tasks.iter().any(|t| str_at(t, "/taskArn") == stopped);
            (replaced && tasks.len() == 2).then_some(())
        },
    );
    dev.wait_targets_healthy(&tg_arn, 2);
    stop.store(true, Ordering::Relaxed);
    for client in load {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let served = ok.load(Ordering::Relaxed);
    assert!(served > 600, "the load ran: {served} requests");
    assert!(
        failures.is_empty(),
        "{} of {} GET requests failed: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(10)]
    );

    // The aws CLI sees the stopped task's target gone.
    dev.wait_for(
        "the stopped task to be STOPPED",
        Duration::from_secs(30),
        || {
            let gone = dev.aws_json(&["ecs", "describe-tasks", "--tasks", &stopped]);
            (str_at(&gone, "/tasks/0/lastStatus") == "STOPPED").then_some(())
        },
    );
    assert_eq!(dev.target_states(&tg_arn).len(), 2);
}
