//! Three "hosts" on this machine: one `berth server` and three `berth agent`s, each
//! with its own data dir and its own loopback address (127.0.0.11, .12, .13, which
//! Linux answers on without any interface being made), driven by the real aws CLI.
//!
//! A service of six tasks spread over instanceId lands two on each instance and serves
//! through berth's load balancer, which reaches each task at its agent's address.
//! Killing one host (its agent SIGKILLed and its containers `docker kill`ed together,
//! as when a machine dies) turns its instance `agentConnected: false` within the
//! heartbeat window; its tasks are given up and replaced on the two others, and the
//! listener serves again. Draining a second host moves its tasks to the last one.
//! h1's agent also serves the listener (`--load-balancer`): it reaches tasks on every
//! host, drops a task as soon as the server's health checks find it unhealthy (it
//! checks nothing itself), and keeps serving after the server is killed.
//!
//! Timings are printed, never asserted. Everything is removed on drop (see
//! support/cluster.rs), also when the test fails.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{attribute, running_per_instance, Cluster};
use support::{free_port, http_get_at};

/// (host attribute, the address its agent registers).
const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.11"),
    ("h2", "127.0.0.12"),
    ("h3", "127.0.0.13"),
];

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

/// Waits until the service has `count` RUNNING tasks (and no other listed ones) spread
/// `per_instance` over exactly these instances; the tasks.
fn wait_spread(
    cluster: &Cluster,
    what: &str,
    per_instance: &BTreeMap<String, usize>,
    timeout: Duration,
) -> Vec<Value> {
    let count = per_instance.values().sum();
    let deadline = Instant::now() + timeout;
    loop {
        let tasks = cluster.service_tasks("web");
        let spread = running_per_instance(&tasks, count);
        if spread.as_ref() == Some(per_instance) {
            return tasks;
        }
        let statuses: Vec<(&str, &str)> = tasks
            .iter()
            .map(|t| {
                (
                    t["lastStatus"].as_str().unwrap_or("?"),
                    t["containerInstanceArn"].as_str().unwrap_or("?"),
                )
            })
            .collect();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: want {per_instance:?}, last saw {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn target_states(cluster: &Cluster, target_group_arn: &str) -> Vec<String> {
    let health = cluster.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        target_group_arn,
    ]);
    health["TargetHealthDescriptions"]
        .as_array()
        .expect("TargetHealthDescriptions")
        .iter()
        .map(|d| str_at(d, "/TargetHealth/State").to_string())
        .collect()
}

/// Waits until the group has exactly `count` targets, all healthy.
fn wait_targets_healthy(cluster: &Cluster, target_group_arn: &str, count: usize) {
    cluster.wait_for(
        &format!("{count} healthy targets"),
        Duration::from_secs(90),
        || {
            let states = target_states(cluster, target_group_arn);
            (states.len() == count && states.iter().all(|s| s == "healthy")).then_some(())
        },
    );
}

/// Where the server's balancer serves its listeners (`BERTH_LB_ADDRESS` in the harness).
const SERVER_LB: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `n` GETs through the listener at `ip`, one after another, that must all answer 200;
/// the bodies (each task serves its container's host name).
fn all_succeed(ip: IpAddr, port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match http_get_at(ip, port, "/") {
            Ok((200, body)) => body.trim().to_string(),
            other => panic!(
                "request {} of {n} through the listener at {ip}: {other:?}",
                i + 1
            ),
        })
        .collect()
}

/// A client sending GETs through the listener back to back until stopped, counting
/// answers and failures (and when the failures were).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    fn start(ip: IpAddr, port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, ok, failed, failures) =
                (stop.clone(), ok.clone(), failed.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http_get_at(ip, port, "/") {
                        Ok((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().unwrap().push(Instant::now());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Load {
            stop,
            ok,
            failed,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops the client; (answered, failed, from first to last failure).
    fn finish(mut self) -> (usize, usize, Option<Duration>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread");
        }
        let failures = self.failures.lock().unwrap();
        let window = match (failures.first(), failures.last()) {
            (Some(first), Some(last)) => Some(*last - *first),
            _ => None,
        };
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            window,
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `docker ARGS`, which must succeed; its output, trimmed.
fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The one container of task `task_id`.
fn container_of_task(task_id: &str) -> String {
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=berth.task={task_id}"),
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "one container for task {task_id}: {ids:?}");
    ids[0].to_string()
}

/// The container host names (what each task serves) of the tasks on each instance.
fn names_per_instance(tasks: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for task in tasks {
        let runtime_id = str_at(task, "/containers/0/runtimeId");
        names
            .entry(str_at(task, "/containerInstanceArn").to_string())
            .or_default()
            .insert(runtime_id[..12].to_string());
    }
    names
}

/// Every TCP endpoint (address, port), local or remote, of this machine's sockets, from
/// /proc/net/tcp: a connection the balancer made, or its TIME_WAIT, shows there.
fn tcp_endpoints() -> BTreeSet<(std::net::Ipv4Addr, u16)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let endpoint = |field: &str| {
        let (address, port) = field.split_once(':')?;
        let address = u32::from_str_radix(address, 16).ok()?;
        // The kernel prints the address in its own (little-endian) byte order.
        let address = std::net::Ipv4Addr::from(address.swap_bytes());
        Some((address, u16::from_str_radix(port, 16).ok()?))
    };
    table
        .lines()
        .skip(1)
        .flat_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            [fields.get(1), fields.get(2)]
                .into_iter()
                .flatten()
                .filter_map(|field| endpoint(field))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_service_survives_losing_a_host_and_moves_off_a_drained_one() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    let (server, token) = cluster.join_command();
    for (host, address) in HOSTS {
        let mut flags = vec!["--server", &server, "--token", &token, "--address", address];
        let host_attribute = format!("host={host}");
        flags.extend(["--attribute", &host_attribute]);
        // h1 also serves the load balancer's listeners, at its own address.
        if host == "h1" {
            flags.push("--load-balancer");
        }
        cluster.spawn_agent(&format!("agent-{host}"), &flags);
    }
    let h1_lb: IpAddr = HOSTS[0].1.parse().unwrap();
    cluster.wait_for("three connected instances", Duration::from_secs(60), || {
        let instances = cluster.instances();
        (instances.len() == 3 && instances.iter().all(|i| i["agentConnected"] == true))
            .then_some(())
    });
    let arns = cluster.instance_arns("host");
    assert_eq!(arns.len(), 3, "one instance per host: {arns:?}");
    let arn = |host: &str| arns[host].clone();

    // The balancer, a target group of instance targets, and a listener.
    let listener_port = free_port();
    let lb = cluster.aws_json(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "web-lb",
        "--subnets",
        "subnet-berth",
    ]);
    let lb_arn = str_at(&lb, "/LoadBalancers/0/LoadBalancerArn").to_string();
    let tg = cluster.aws_json(&[
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
    cluster.aws_json(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=2",
    ]);
    cluster.aws_json(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &listener_port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);

    // 1. Six tasks spread over instanceId: two on each instance.
    cluster.aws_json(&[
        "ecs", "register-task-definition", "--family", "web", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"stopTimeout":2,
            "portMappings":[{"containerPort":8080,"hostPort":0}],
            "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"]}]"#,
    ]);
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "6",
        "--placement-strategy",
        "type=spread,field=instanceId",
        "--load-balancers",
        &format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080"),
    ]);
    let two_each: BTreeMap<String, usize> = HOSTS.iter().map(|(h, _)| (arn(h), 2)).collect();
    let tasks = wait_spread(
        &cluster,
        "six tasks, two per instance",
        &two_each,
        Duration::from_secs(90),
    );

    // 2. Through the listener: every request answers, and tasks on every host serve
    // (so the balancer reached each agent's own address).
    wait_targets_healthy(&cluster, &tg_arn, 6);
    // The same listener, served by the server's balancer and by h1's.
    for ip in [SERVER_LB, h1_lb] {
        let served: BTreeSet<String> = cluster.wait_for(
            &format!("the listener at {ip} to reach tasks on every host"),
            Duration::from_secs(30),
            || {
                let served: BTreeSet<String> =
                    all_succeed(ip, listener_port, 60).into_iter().collect();
                names_per_instance(&tasks)
                    .values()
                    .all(|names| !names.is_disjoint(&served))
                    .then_some(served)
            },
        );
        assert_eq!(
            served.len(),
            6,
            "the listener at {ip} reached every task: {served:?}"
        );
    }
    // The balancer dialled each task at its own agent's address and host port.
    let endpoints = tcp_endpoints();
    for task in &tasks {
        let instance = str_at(task, "/containerInstanceArn");
        let (_, address) = HOSTS
            .iter()
            .find(|(host, _)| arns[*host] == instance)
            .expect("the task's host");
        let port = task
            .pointer("/containers/0/networkBindings/0/hostPort")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("a host port in {task}"));
        let target = (address.parse().unwrap(), u16::try_from(port).unwrap());
        assert!(
            endpoints.contains(&target),
            "no connection to {}:{} (a task on that host) in /proc/net/tcp",
            target.0,
            target.1
        );
    }
    println!(
        "six tasks on three hosts, serving: {:.1?} since start",
        started.elapsed()
    );

    // 3. Host h3 dies, agent and tasks together, under continuous requests.
    let load = Load::start(SERVER_LB, listener_port);
    let h1_load = Load::start(h1_lb, listener_port);
    std::thread::sleep(Duration::from_secs(1));
    let h3 = HOSTS.iter().position(|(h, _)| *h == "h3").unwrap();
    cluster.kill_host(h3);
    let killed = Instant::now();
    cluster.wait_for(
        "h3's instance to read agentConnected false",
        Duration::from_secs(60),
        || {
            let instance = cluster
                .instances()
                .into_iter()
                .find(|i| attribute(i, "host").as_deref() == Some("h3"))?;
            (instance["agentConnected"] == false).then_some(())
        },
    );
    let disconnected = killed.elapsed();
    let three_each: BTreeMap<String, usize> = [(arn("h1"), 3), (arn("h2"), 3)].into();
    let tasks = wait_spread(
        &cluster,
        "six tasks again, three on each remaining instance",
        &three_each,
        Duration::from_secs(60),
    );
    let replaced = killed.elapsed();
    wait_targets_healthy(&cluster, &tg_arn, 6);
    let serving = killed.elapsed();
    let (ok, failed, window) = load.finish();
    let (h1_ok, h1_failed, h1_window) = h1_load.finish();
    println!(
        "h3 killed: disconnected after {disconnected:.1?}, six tasks running after \
         {replaced:.1?}, six healthy targets after {serving:.1?}; during it {ok} requests \
         answered and {failed} failed (failures spanning {window:.1?}) through the \
         server's listener, {h1_ok} answered and {h1_failed} failed ({h1_window:.1?}) \
         through h1's"
    );
    assert!(ok > 0 && h1_ok > 0, "the client loops sent requests");
    let names = names_per_instance(&tasks);
    for ip in [SERVER_LB, h1_lb] {
        cluster.wait_for(
            &format!("the listener at {ip} to reach the replacements"),
            Duration::from_secs(30),
            || {
                let served: BTreeSet<String> =
                    all_succeed(ip, listener_port, 60).into_iter().collect();
                names
                    .values()
                    .all(|names| !names.is_disjoint(&served))
                    .then_some(())
            },
        );
    }
    let dead = cluster
        .instances()
        .into_iter()
        .find(|i| attribute(i, "host").as_deref() == Some("h3"))
        .expect("h3's instance is still listed");
    assert_eq!(dead["agentConnected"], false, "{dead}");

    // 4. Draining h2 moves its tasks to h1, the one host left.
    let load = Load::start(SERVER_LB, listener_port);
    let drain_started = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "update-container-instances-state",
        "--container-instances",
        &arn("h2"),
        "--status",
        "DRAINING",
    ]);
    let all_on_h1: BTreeMap<String, usize> = [(arn("h1"), 6)].into();
    wait_spread(
        &cluster,
        "all six tasks on h1 after draining h2",
        &all_on_h1,
        Duration::from_secs(120),
    );
    wait_targets_healthy(&cluster, &tg_arn, 6);
    let drained = drain_started.elapsed();
    let (ok, failed, window) = load.finish();
    println!(
        "h2 drained: six healthy targets on h1 after {drained:.1?}; during it {ok} requests \
         answered and {failed} failed (failures spanning {window:.1?})"
    );
    all_succeed(SERVER_LB, listener_port, 60);
    let h2 = cluster
        .instances()
        .into_iter()
        .find(|i| attribute(i, "host").as_deref() == Some("h2"))
        .expect("h2's instance");
    assert_eq!(h2["status"], "DRAINING", "{h2}");
    assert_eq!(h2["runningTasksCount"], 0, "{h2}");

    // 5. One task fails its health checks: h1's balancer checks nothing itself, yet
    // stops sending it requests once the server's checks find it unhealthy.
    let tasks = cluster.service_tasks("web");
    let sick = str_at(&tasks[0], "/taskArn")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let sick_container = container_of_task(&sick);
    let sick_name = docker(&["exec", &sick_container, "cat", "/www/index.html"]);
    docker(&["exec", &sick_container, "rm", "/www/health.html"]);
    println!("task {sick} ({sick_container}, serving {sick_name}) fails its checks from now");
    let failing_since = Instant::now();
    let mut said = false;
    cluster.wait_for(
        "the server's checks to find the task unhealthy",
        Duration::from_secs(60),
        || {
            let states = target_states(&cluster, &tg_arn);
            if !said && failing_since.elapsed() > Duration::from_secs(30) {
                // Not expected: say what the balancer and the task show.
                said = true;
                let health = cluster.aws_json(&[
                    "elbv2",
                    "describe-target-health",
                    "--target-group-arn",
                    &tg_arn,
                ]);
                let check = std::process::Command::new("docker")
                    .args(["exec", &sick_container, "wget", "-qO-", "http://127.0.0.1:8080/health.html"])
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stderr).into_owned());
                let tasks: Vec<String> = cluster.service_tasks("web")
                    .iter()
                    .map(|t| format!("{} {} {}", t["taskArn"], t["lastStatus"], t["containers"][0]["networkBindings"]))
                    .collect();
                eprintln!("after 30 s: {health}\nthe task's own /health.html: {check:?}\ntasks: {tasks:?}");
            }
            states.iter().any(|s| s != "healthy").then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let served = all_succeed(h1_lb, listener_port, 60);
    assert!(
        !served.contains(&sick_name),
        "h1's listener still sent requests to {sick_name}, which the server's checks found unhealthy"
    );

    // 6. The server dies: h1's listener goes on serving what it was last told.
    cluster.server.kill();
    let served: BTreeSet<String> = all_succeed(h1_lb, listener_port, 60).into_iter().collect();
    println!(
        "server killed: h1's listener answered 60 of 60 requests, from {} tasks",
        served.len()
    );
    println!("multi-host test: {:.1?} in all", started.elapsed());
}
