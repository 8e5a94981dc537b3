//! Service discovery across machines: a `berth server` and three `berth agent`s on this
//! machine's engine, standing for three hosts (127.0.0.41, .42 and .43). Service `api`
//! runs on h2 and h3 only (memberOf `attribute:host != h1`, spread over instances); a
//! client task on h1 calls `http://api:8080/` by name and is answered by api's tasks,
//! through h1's endpoint for `api` (a berth-lb listener inside a container that holds
//! the name on h1's cluster network). Calls by name keep being answered, with no
//! failure, while api's tasks are replaced by a rolling deployment, while the service
//! scales out and in, and while h2 is drained (its tasks move to h3; neither quick calls
//! nor half-second ones under way as h2's tasks stop fail, and afterwards only h3's
//! answer). api exits at once on SIGTERM, so a call still reaching a stopping task
//! would fail, and has a health check, so it is an endpoint once it listens.
//!
//! Failures are counted and printed; timings are printed, never asserted. Everything
//! is removed on drop (support/cluster.rs), also when the test fails.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{names_per_instance, str_at, Cluster};

const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.41"),
    ("h2", "127.0.0.42"),
    ("h3", "127.0.0.43"),
];

fn member_of(expression: &str) -> String {
    serde_json::json!([{"type": "memberOf", "expression": expression}]).to_string()
}

/// What `http://api:8080/` answers from inside `client`, over `count` calls.
fn answers(client: &str, count: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {count}); do timeout 5 wget -qO- http://api:8080/ 2>/dev/null || echo FAILED; done"
    );
    let out = Command::new("docker")
        .args(["exec", client, "sh", "-c", &script])
        .output()
        .expect("docker exec");
    assert!(
        out.status.success(),
        "docker exec in the client: {:?} {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The names api's RUNNING tasks answer with (their hostname: their container's short
/// id), and the instance ARNs they run on.
fn api_names(cluster: &Cluster) -> (BTreeSet<String>, BTreeSet<String>) {
    let tasks = cluster.service_tasks("api");
    let running: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect();
    let names = running
        .iter()
        .filter_map(|t| t.pointer("/containers/0/runtimeId").and_then(Value::as_str))
        .map(|id| id[..12].to_string())
        .collect();
    let instances = running
        .iter()
        .map(|t| str_at(t, "/containerInstanceArn").to_string())
        .collect();
    (names, instances)
}

/// Calls `http://api:8080PATH` by name from inside the client, one after another,
/// until stopped; each call is one line: `ok NAME` or `fail`.
struct Caller {
    child: Option<Child>,
    client: String,
    stop_file: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Caller {
    fn start(client: &str) -> Caller {
        Caller::start_on(client, "/")
    }

    /// Calls `path`; several callers run side by side.
    fn start_on(client: &str, path: &str) -> Caller {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let stop_file = format!("/tmp/stop-{}", STARTED.fetch_add(1, Ordering::Relaxed));
        let _ = Command::new("docker")
            .args(["exec", client, "rm", "-f", &stop_file])
            .output();
        let script = format!(
            "while [ ! -f {stop_file} ]; do \
             if out=$(timeout 5 wget -qO- http://api:8080{path} 2>/dev/null); then echo \"ok $out\"; else echo fail; fi; \
             done"
        );
        let mut child = Command::new("docker")
            .args(["exec", client, "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker exec");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        Caller {
            child: Some(child),
            client: client.to_string(),
            stop_file,
            lines,
            reader: Some(reader),
        }
    }

    fn calls(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Stops calling; every call made, in order.
    fn finish(mut self) -> Calls {
        let _ = Command::new("docker")
            .args(["exec", &self.client, "touch", &self.stop_file])
            .output();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = self.lines.lock().unwrap().clone();
        Calls { lines }
    }
}

/// The calls a `Caller` made, one line each (`ok NAME` or `fail`), in order.
struct Calls {
    lines: Vec<String>,
}

impl Calls {
    fn count(&self) -> usize {
        self.lines.len()
    }

    fn failures(&self) -> usize {
        self.lines.iter().filter(|l| !l.starts_with("ok ")).count()
    }

    /// The names that answered the calls from the `from`th on.
    fn names_from(&self, from: usize) -> BTreeSet<String> {
        self.lines
            .iter()
            .skip(from)
            .filter_map(|l| l.strip_prefix("ok "))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until api has exactly `count` RUNNING tasks, one deployment, and none of the
/// names in `gone`; returns its names.
fn wait_api(
    cluster: &Cluster,
    what: &str,
    count: usize,
    gone: &BTreeSet<String>,
) -> BTreeSet<String> {
    cluster.wait_for(what, Duration::from_secs(120), || {
        let service = cluster.service("api");
        let settled = service["deployments"].as_array().map(Vec::len) == Some(1)
            && service["runningCount"] == count
            && cluster.service_tasks("api").len() == count;
        let (names, _) = api_names(cluster);
        (settled && names.len() == count && names.is_disjoint(gone)).then_some(names)
    })
}

#[test]
fn a_service_on_other_hosts_is_reached_by_name_while_its_tasks_churn_and_a_host_drains() {
    let mut cluster = Cluster::start();
    cluster.start_hosts(&HOSTS);
    let arns = cluster.instance_arns("host");
    let (h1, h2, h3) = (arns["h1"].clone(), arns["h2"].clone(), arns["h3"].clone());

    // api answers with its hostname on 8080 (on /cgi-bin/slow after half a second),
    // published on a host port the engine picks, and exits at once on SIGTERM (as
    // httpd alone, PID 1 without a handler, would not), dropping calls under way. Its
    // health check says when it listens: without one a task is an endpoint as soon as
    // its container runs, and a call can reach its published port before httpd
    // listens, where on these loopback addresses Docker's userland proxy accepts the
    // connection and closes it.
    cluster.aws_json(&[
        "ecs", "register-task-definition", "--family", "api", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,
            "portMappings":[{"containerPort":8080,"hostPort":0}],
            "command":["sh","-c","mkdir -p /www/cgi-bin && hostname > /www/index.html && echo '#!/bin/sh' > /www/cgi-bin/slow && echo 'sleep 0.5; echo Content-Type: text/plain; echo; hostname' >> /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"],
            "healthCheck":{"command":["CMD-SHELL","wget -qO- http://localhost:8080/ >/dev/null"],
                "interval":5,"timeout":2,"retries":2},
            "stopTimeout":2}]"#,
    ]);
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "api",
        "--task-definition",
        "api",
        "--desired-count",
        "2",
        "--placement-constraints",
        &member_of("attribute:host != h1"),
        "--placement-strategy",
        "type=spread,field=instanceId",
    ]);
    cluster.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "client",
        "--container-definitions",
        r#"[{"name":"sh","image":"berth/busybox:latest","memory":128,"command":["sleep","900"]}]"#,
    ]);
    let run = cluster.aws_json(&[
        "ecs",
        "run-task",
        "--task-definition",
        "client",
        "--placement-constraints",
        &member_of("attribute:host == h1"),
    ]);
    let client_arn = str_at(&run, "/tasks/0/taskArn").to_string();
    let client = cluster.wait_for("the client task to run", Duration::from_secs(60), || {
        let d = cluster.aws_json(&["ecs", "describe-tasks", "--tasks", &client_arn]);
        (d.pointer("/tasks/0/lastStatus") == Some(&Value::from("RUNNING"))).then(|| {
            assert_eq!(str_at(&d, "/tasks/0/containerInstanceArn"), h1);
            str_at(&d, "/tasks/0/containers/0/runtimeId").to_string()
        })
    });
    let first = wait_api(&cluster, "2 api tasks", 2, &BTreeSet::new());
    let (_, instances) = api_names(&cluster);
    assert_eq!(
        instances,
        BTreeSet::from([h2.clone(), h3.clone()]),
        "api's two tasks are spread over h2 and h3, none on h1"
    );

    // From h1, the name reaches both api tasks, on h2 and on h3.
    let started = Instant::now();
    let seen = cluster.wait_for(
        "answers by name from both api tasks",
        Duration::from_secs(60),
        || {
            let seen: BTreeSet<String> = answers(&client, 20).into_iter().collect();
            (seen == first).then_some(seen)
        },
    );
    println!(
        "h1 reached both api tasks (on h2 and h3) by name {:?} after the tasks ran",
        started.elapsed()
    );
    assert_eq!(seen.len(), 2);

    // A rolling replacement under calls by name: none fails.
    let caller = Caller::start(&client);
    cluster.wait_for("calls by name to flow", Duration::from_secs(30), || {
        (caller.calls() >= 5).then_some(())
    });
    let started = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "api",
        "--force-new-deployment",
    ]);
    let replaced = wait_api(&cluster, "api's tasks all replaced", 2, &first);
    let rollout = started.elapsed();
    // A few more calls, so the new tasks are called too.
    let before = caller.calls();
    cluster.wait_for("calls after the rollout", Duration::from_secs(30), || {
        (caller.calls() >= before + 20).then_some(())
    });
    let calls = caller.finish();
    let (failures, names) = (calls.failures(), calls.names_from(0));
    let calls = calls.count();
    println!(
        "rolling replacement: {calls} calls by name, {failures} failed, rollout took {rollout:?}, \
         answered by {} tasks ({} old, {} new)",
        names.len(),
        names.intersection(&first).count(),
        names.intersection(&replaced).count()
    );
    assert_eq!(
        failures, 0,
        "calls by name failed during a rolling replacement"
    );
    assert!(
        names.is_subset(&first.union(&replaced).cloned().collect()),
        "only api's tasks answered: {names:?}"
    );
    assert!(
        !names.is_disjoint(&replaced),
        "the new tasks answer by name: {names:?}"
    );

    // Scaling out and in under calls by name: none fails either.
    let caller = Caller::start(&client);
    let started = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "api",
        "--desired-count",
        "4",
    ]);
    let four = wait_api(&cluster, "4 api tasks", 4, &BTreeSet::new());
    let grown = started.elapsed();
    let added: BTreeSet<String> = four.difference(&replaced).cloned().collect();
    cluster.wait_for(
        "the added tasks to answer by name",
        Duration::from_secs(30),
        || {
            let seen: BTreeSet<String> = answers(&client, 20).into_iter().collect();
            (!seen.is_disjoint(&added)).then_some(())
        },
    );
    let started_in = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "api",
        "--desired-count",
        "1",
    ]);
    let one = cluster.wait_for("1 api task", Duration::from_secs(120), || {
        let (names, _) = api_names(&cluster);
        (cluster.service_tasks("api").len() == 1 && names.len() == 1).then_some(names)
    });
    let shrunk = started_in.elapsed();
    let before = caller.calls();
    cluster.wait_for("calls after scaling in", Duration::from_secs(30), || {
        (caller.calls() >= before + 20).then_some(())
    });
    let calls = caller.finish();
    let (calls, failures) = (calls.count(), calls.failures());
    println!(
        "scaling 2 -> 4 ({grown:?}) -> 1 ({shrunk:?}): {calls} calls by name, {failures} failed"
    );
    assert_eq!(failures, 0, "calls by name failed while api scaled");
    let last: BTreeSet<String> = answers(&client, 10).into_iter().collect();
    assert_eq!(last, one, "only the remaining task answers");

    // Draining h2 under calls by name: its tasks move to h3 and no call fails, also
    // none of the slow ones (four callers, nearly always under way, so some are when
    // a task of h2's stops).
    cluster.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "api",
        "--desired-count",
        "4",
    ]);
    let spread = wait_api(&cluster, "4 api tasks again", 4, &BTreeSet::new());
    let per_instance = names_per_instance(&cluster.service_tasks("api"));
    let on = |instance: &str| per_instance.get(instance).map_or(0, BTreeSet::len);
    let on_h2 = per_instance.get(&h2).cloned().unwrap_or_default();
    assert_eq!(
        (on(&h1), on(&h2), on(&h3)),
        (0, 2, 2),
        "api's four tasks are spread two and two over h2 and h3: {per_instance:?}"
    );
    cluster.wait_for(
        "all four api tasks to answer by name",
        Duration::from_secs(30),
        || {
            let seen: BTreeSet<String> = answers(&client, 20).into_iter().collect();
            (seen == spread).then_some(())
        },
    );
    let caller = Caller::start(&client);
    let slow: Vec<Caller> = (0..4)
        .map(|_| Caller::start_on(&client, "/cgi-bin/slow"))
        .collect();
    cluster.wait_for("calls by name to flow", Duration::from_secs(30), || {
        (caller.calls() >= 5 && slow.iter().all(|c| c.calls() >= 2)).then_some(())
    });
    let started = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "update-container-instances-state",
        "--container-instances",
        &h2,
        "--status",
        "DRAINING",
    ]);
    // Drained: api's four tasks run on h3, and every task h2 had has stopped (not
    // only left the service's list, as it does when it starts to drain).
    let on_h3 = cluster.wait_for(
        "api's four tasks on h3 and none left on h2",
        Duration::from_secs(120),
        || {
            let service = cluster.service("api");
            let tasks = cluster.service_tasks("api");
            let settled = service["deployments"].as_array().map(Vec::len) == Some(1)
                && service["runningCount"] == 4
                && tasks.len() == 4
                && tasks
                    .iter()
                    .all(|t| t["lastStatus"] == "RUNNING" && t["containerInstanceArn"] == h3);
            let h2_left = cluster.listed_tasks(&[
                "--service-name",
                "api",
                "--container-instance",
                &h2,
                "--desired-status",
                "STOPPED",
            ]);
            let h2_done = h2_left.iter().all(|t| t["lastStatus"] == "STOPPED");
            (settled && h2_done).then(|| names_per_instance(&tasks).remove(&h3).unwrap_or_default())
        },
    );
    let drained = started.elapsed();
    // More calls, now that h2 has no api task at all (the first may have been under
    // way before).
    let after_drain = caller.calls() + 1;
    cluster.wait_for("calls after the drain", Duration::from_secs(30), || {
        (caller.calls() >= after_drain + 20).then_some(())
    });
    let calls = caller.finish();
    let slow: Vec<Calls> = slow.into_iter().map(Caller::finish).collect();
    let slow_calls: usize = slow.iter().map(Calls::count).sum();
    let slow_failures: usize = slow.iter().map(Calls::failures).sum();
    let (failures, answered_after) = (calls.failures(), calls.names_from(after_drain));
    let mut answered = calls.names_from(0);
    answered.extend(slow.iter().flat_map(|c| c.names_from(0)));
    println!(
        "h2 drained: api's tasks all on h3 and h2's stopped after {drained:?}; {} calls by \
         name, {failures} failed, and {} slow ones, {} failed; answered by {} of h2's tasks and \
         {} of h3's; after the drain by {} tasks ({} on h3)",
        calls.count(),
        slow_calls,
        slow_failures,
        answered.intersection(&on_h2).count(),
        answered.intersection(&on_h3).count(),
        answered_after.len(),
        answered_after.intersection(&on_h3).count()
    );
    assert!(
        !answered.is_disjoint(&on_h2),
        "h2's tasks answered calls by name before they drained: {answered:?}"
    );
    assert_eq!(failures, 0, "calls by name failed while h2 drained");
    assert_eq!(
        slow_failures, 0,
        "slow calls by name failed while h2 drained"
    );
    assert!(
        answered_after.is_subset(&on_h3),
        "only h3's tasks answer after the drain: {answered_after:?}, h3 runs {on_h3:?}"
    );
    let last: BTreeSet<String> = answers(&client, 20).into_iter().collect();
    assert_eq!(last, on_h3, "h3's four tasks answer, and only they");
    let h2_instance = cluster
        .instances()
        .into_iter()
        .find(|i| i["containerInstanceArn"] == h2)
        .expect("h2's instance");
    assert_eq!(h2_instance["status"], "DRAINING", "{h2_instance}");
    assert_eq!(h2_instance["runningTasksCount"], 0, "{h2_instance}");
}
