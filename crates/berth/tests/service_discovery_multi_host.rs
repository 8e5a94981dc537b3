//! Service discovery across machines: a `berth server` and two `berth agent`s on this
//! machine's engine, standing for two hosts (127.0.0.41 and .42). Service `api` runs on
//! h2 only; a client task on h1 calls `http://api:8080/` by name and is answered by
//! h2's tasks, through h1's endpoint for `api` (a berth-lb listener inside a container
//! that holds the name on h1's cluster network). Calls by name keep being answered,
//! with no failure, while api's tasks are replaced by a rolling deployment and while
//! the service scales out and in.
//!
//! Failures are counted and printed; timings are printed, never asserted. Everything
//! is removed on drop (support/cluster.rs), also when the test fails.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{str_at, Cluster};

const HOSTS: [(&str, &str); 2] = [("h1", "127.0.0.41"), ("h2", "127.0.0.42")];

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

/// Calls `http://api:8080/` by name from inside the client, one after another, until
/// stopped; each call is one line: `ok NAME` or `fail`.
struct Caller {
    child: Option<Child>,
    client: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Caller {
    fn start(client: &str) -> Caller {
        let _ = Command::new("docker")
            .args(["exec", client, "rm", "-f", "/tmp/stop"])
            .output();
        let script = "while [ ! -f /tmp/stop ]; do \
             if out=$(timeout 5 wget -qO- http://api:8080/ 2>/dev/null); then echo \"ok $out\"; else echo fail; fi; \
             done";
        let mut child = Command::new("docker")
            .args(["exec", client, "sh", "-c", script])
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
            lines,
            reader: Some(reader),
        }
    }

    fn calls(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Stops calling; (calls, failures, the names that answered).
    fn finish(mut self) -> (usize, usize, BTreeSet<String>) {
        let _ = Command::new("docker")
            .args(["exec", &self.client, "touch", "/tmp/stop"])
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
        let failures = lines.iter().filter(|l| !l.starts_with("ok ")).count();
        let names = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ok "))
            .map(str::to_string)
            .collect();
        (lines.len(), failures, names)
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
fn a_service_on_one_host_is_reached_by_name_from_another_while_its_tasks_churn() {
    let mut cluster = Cluster::start();
    cluster.start_hosts(&HOSTS);
    let arns = cluster.instance_arns("host");
    let (h1, h2) = (arns["h1"].clone(), arns["h2"].clone());

    // api answers with its hostname on 8080, published on a host port the engine picks.
    cluster.aws_json(&[
        "ecs", "register-task-definition", "--family", "api", "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,
            "portMappings":[{"containerPort":8080,"hostPort":0}],
            "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
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
        &member_of("attribute:host == h2"),
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
        BTreeSet::from([h2.clone()]),
        "api runs on h2 only"
    );

    // From h1, the name reaches both of h2's tasks.
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
        "h1 reached both of h2's api tasks by name {:?} after the tasks ran",
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
    let (calls, failures, names) = caller.finish();
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
    let (calls, failures, _) = caller.finish();
    println!(
        "scaling 2 -> 4 ({grown:?}) -> 1 ({shrunk:?}): {calls} calls by name, {failures} failed"
    );
    assert_eq!(failures, 0, "calls by name failed while api scaled");
    let last: BTreeSet<String> = answers(&client, 10).into_iter().collect();
    assert_eq!(last, one, "only the remaining task answers");
}
