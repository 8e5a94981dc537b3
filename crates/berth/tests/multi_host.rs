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
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{
    all_succeed, attribute, names_per_instance, str_at, tcp_connections, wait_spread,
    wait_targets_healthy, Cluster, Load, SERVER_LB,
};

/// (host attribute, the address its agent registers).
const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.11"),
    ("h2", "127.0.0.12"),
    ("h3", "127.0.0.13"),
];

/// Every TCP endpoint (address, port), local or remote, of this machine's sockets: a
/// connection the balancer made, or its TIME_WAIT, shows there.
fn tcp_endpoints() -> BTreeSet<(std::net::Ipv4Addr, u16)> {
    tcp_connections()
        .into_iter()
        .flat_map(|(local, remote)| [(*local.ip(), local.port()), (*remote.ip(), remote.port())])
        .collect()
}

/// Removes the health-check page of one running task, and waits until the server's
/// checks find its target unhealthy; the task's id and the name it serves. A task
/// whose target goes meanwhile (the scheduler may replace one) is passed over for
/// another.
fn make_one_task_fail_its_checks(cluster: &Cluster, tg_arn: &str) -> (String, String) {
    for _ in 0..3 {
        let tasks = cluster.service_tasks("web");
        let task = tasks
            .iter()
            .find(|t| t["lastStatus"] == "RUNNING")
            .expect("a running task");
        let id = str_at(task, "/taskArn")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let port = task
            .pointer("/containers/0/networkBindings/0/hostPort")
            .and_then(Value::as_u64)
            .expect("a host port");
        let container = str_at(task, "/containers/0/runtimeId").to_string();
        let name = container[..12].to_string();
        let removed = std::process::Command::new("docker")
            .args(["exec", &container, "rm", "/www/health.html"])
            .output()
            .expect("docker exec");
        if !removed.status.success() {
            continue;
        }
        let verdict = cluster.wait_for(
            "the server's verdict on the task whose checks fail",
            Duration::from_secs(60),
            || {
                let health = target_health_by_port(cluster, tg_arn);
                match health.get(&port).map(String::as_str) {
                    // Found unhealthy; the scheduler then deregisters the target at
                    // once, so it may already read draining.
                    Some("unhealthy" | "draining") => Some(true),
                    // Gone (replaced meanwhile): try another.
                    None => Some(false),
                    _ => None,
                }
            },
        );
        if verdict {
            return (id, name);
        }
    }
    panic!("no task stayed long enough to be found unhealthy");
}

/// Each target's state by its port.
fn target_health_by_port(cluster: &Cluster, tg_arn: &str) -> BTreeMap<u64, String> {
    let health = cluster.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        tg_arn,
    ]);
    health["TargetHealthDescriptions"]
        .as_array()
        .expect("TargetHealthDescriptions")
        .iter()
        .filter_map(|d| {
            Some((
                d.pointer("/Target/Port")?.as_u64()?,
                d.pointer("/TargetHealth/State")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn a_service_survives_losing_a_host_and_moves_off_a_drained_one() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    // h1 also serves the load balancer's listeners, at its own address.
    cluster.start_hosts_serving(&HOSTS, &["h1"]);
    let h1_lb: IpAddr = HOSTS[0].1.parse().unwrap();
    let arns = cluster.instance_arns("host");
    assert_eq!(arns.len(), 3, "one instance per host: {arns:?}");
    let arn = |host: &str| arns[host].clone();

    // The balancer, a target group of instance targets, and a listener.
    let (listener_port, tg_arn) = cluster.web_balancer();

    // 1. Six tasks spread over instanceId: two on each instance.
    cluster.register_web();
    cluster.create_web_service(6, &tg_arn, &[]);
    let two_each: BTreeMap<String, usize> = HOSTS.iter().map(|(h, _)| (arn(h), 2)).collect();
    let tasks = wait_spread(
        &cluster,
        "web",
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
        "web",
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
        "web",
        "all six tasks on h1 after draining h2",
        &all_on_h1,
        Duration::from_secs(120),
    );
    wait_targets_healthy(&cluster, &tg_arn, 6);
    let drained = drain_started.elapsed();
    let (ok, failed, window) = load.finish();
    let drain_figures = format!(
        "h2 drained: six healthy targets on h1 after {drained:.1?}; during it {ok} requests \
         answered and {failed} failed (failures spanning {window:.1?})"
    );
    println!("{drain_figures}");
    // A drain is planned: every task leaves only after its targets drained, so no
    // request may fail (unlike a host that dies, where some in flight are lost).
    assert!(ok > 0, "the client loop sent requests while draining");
    assert_eq!(failed, 0, "requests failed while draining: {drain_figures}");
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
    let (sick, sick_name) = make_one_task_fail_its_checks(&cluster, &tg_arn);
    std::thread::sleep(Duration::from_millis(500));
    let served = all_succeed(h1_lb, listener_port, 60);
    assert!(
        !served.contains(&sick_name),
        "h1's listener still sent requests to task {sick} ({sick_name}), which the server's checks found unhealthy"
    );

    // 6. The server dies: h1's listener goes on serving what it was last told.
    cluster.kill_server();
    let served: BTreeSet<String> = all_succeed(h1_lb, listener_port, 60).into_iter().collect();
    println!(
        "server killed: h1's listener answered 60 of 60 requests, from {} tasks",
        served.len()
    );
    println!("multi-host test: {:.1?} in all", started.elapsed());
}
