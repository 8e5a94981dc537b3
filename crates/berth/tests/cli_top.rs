//! `berth top` against a real `berth dev` and Docker, and through `berth server` and an
//! agent: each running container's CPU and memory as the engine measures them, a busy
//! task above an idle one, the memory limit the task definition gave, and a clear
//! error for a task that does not exist.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::cluster::Cluster;
use support::Dev;

const MIB: f64 = 1024.0 * 1024.0;

/// One row of `berth top`'s table, by column header.
type Row = BTreeMap<String, String>;

/// The rows of `berth top`'s table. Columns are separated by at least three spaces;
/// a cell holds at most single spaces (`1.5MiB / 16MiB`).
fn rows(table: &str) -> Vec<Row> {
    let cells = |line: &str| -> Vec<String> {
        line.split("   ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut lines = table.lines();
    let headers = cells(lines.next().unwrap_or_default());
    assert_eq!(
        headers,
        [
            "TASK",
            "SERVICE",
            "CONTAINER",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{table}"
    );
    lines
        .map(|line| {
            let row = cells(line);
            assert_eq!(row.len(), headers.len(), "{table}");
            headers.iter().cloned().zip(row).collect()
        })
        .collect()
}

fn cpu_percent(row: &Row) -> f64 {
    row["CPU %"]
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("a CPU figure: {row:?}"))
}

/// A size as `berth top` prints it (`1.50MiB`, `512KiB`, `0B`), in bytes.
fn bytes(text: &str) -> f64 {
    let units = [
        ("GiB", MIB * 1024.0),
        ("MiB", MIB),
        ("KiB", 1024.0),
        ("B", 1.0),
    ];
    for (unit, scale) in units {
        if let Some(number) = text.strip_suffix(unit) {
            return number.parse::<f64>().expect("a number") * scale;
        }
    }
    panic!("not a size: {text}")
}

/// (usage, limit) in bytes.
fn memory(row: &Row) -> (f64, f64) {
    let (usage, limit) = row["MEM USAGE / LIMIT"]
        .split_once(" / ")
        .expect("usage / limit");
    (bytes(usage), bytes(limit))
}

fn top(dev: &Dev, args: &[&str]) -> Vec<Row> {
    let out = dev.berth(&[&["top"], args].concat());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "berth top {args:?}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows(&text)
}

const MANIFEST: &str = r#"
taskDefinitions:
  - family: top-busy
    containerDefinitions:
      - name: spin
        image: berth/busybox:latest
        memory: 32
        stopTimeout: 2
        command: ["sh", "-c", "while :; do :; done"]
  - family: top-idle
    containerDefinitions:
      - name: rest
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        command: ["sleep", "3600"]
services:
  - serviceName: busy
    taskDefinition: top-busy
    desiredCount: 1
  - serviceName: idle
    taskDefinition: top-idle
    desiredCount: 1
"#;

#[test]
fn top_shows_a_busy_task_above_an_idle_one_with_its_memory_limit() {
    let dev = Dev::start();
    let file = dev.data_dir.path().join("top.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    dev.wait_services_stable("default", &["busy", "idle"], "after apply");

    // Every task of the cluster, one row per running container.
    let all = dev.wait_for("both tasks in berth top", Duration::from_secs(60), || {
        let all = top(&dev, &["--no-stream"]);
        (all.len() == 2).then_some(all)
    });
    let busy = all
        .iter()
        .find(|row| row["SERVICE"] == "busy")
        .expect("the busy task's row");
    let idle = all
        .iter()
        .find(|row| row["SERVICE"] == "idle")
        .expect("the idle task's row");
    assert_eq!(busy["CONTAINER"], "spin");
    assert_eq!(idle["CONTAINER"], "rest");
    // The engine measured the loop: a core's worth on a quiet machine, well above
    // 5 % on a crowded one, and above a container that sleeps.
    let (busy_cpu, idle_cpu) = (cpu_percent(busy), cpu_percent(idle));
    assert!(busy_cpu > 5.0, "{busy:?}");
    assert!(busy_cpu > idle_cpu, "{busy:?} vs {idle:?}");
    // The limit is the container's `memory`; something is in use.
    let (busy_usage, busy_limit) = memory(busy);
    let (idle_usage, idle_limit) = memory(idle);
    assert_eq!(busy_limit, 32.0 * MIB, "{busy:?}");
    assert_eq!(idle_limit, 16.0 * MIB, "{idle:?}");
    assert!(busy_usage > 0.0 && idle_usage > 0.0, "{all:?}");
    assert!(busy["PIDS"].parse::<u64>().unwrap() >= 1, "{busy:?}");

    // One service's tasks only; one task by its short id.
    let service = top(&dev, &["busy", "--no-stream"]);
    assert_eq!(service.len(), 1, "{service:?}");
    assert_eq!(service[0]["TASK"], busy["TASK"]);
    let task = top(&dev, &[&idle["TASK"], "--no-stream"]);
    assert_eq!(task.len(), 1, "{task:?}");
    assert_eq!(task[0]["CONTAINER"], "rest");

    // Without --no-stream but with no terminal to redraw on, it prints once and exits.
    let once = top(&dev, &[]);
    assert_eq!(once.len(), 2, "{once:?}");

    // A task that does not exist is an error that names it, not an empty table.
    let missing = "0123456789abcdef0123456789abcdef";
    let out = dev.berth(&["top", missing, "--no-stream"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains(&format!(
            "no task or service '{missing}' in cluster 'default'"
        )),
        "{error}"
    );
}

#[test]
fn top_reads_a_task_on_an_agents_machine_through_berth_server() {
    let mut cluster = Cluster::start();
    cluster.spawn_joined_agent("agent-top", "127.0.0.51", &[]);
    cluster.wait_connected_instances(1, Duration::from_secs(60));
    cluster.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "top-busy",
        "--container-definitions",
        r#"[{"name":"spin","image":"berth/busybox:latest","memory":24,"stopTimeout":2,
             "command":["sh","-c","while :; do :; done"]}]"#,
    ]);
    let run = cluster.aws_json(&["ecs", "run-task", "--task-definition", "top-busy"]);
    let task_arn = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task ARN")
        .to_string();
    cluster.wait_for("the task to run", Duration::from_secs(60), || {
        let described = cluster.aws_json(&["ecs", "describe-tasks", "--tasks", &task_arn]);
        (described["tasks"][0]["lastStatus"] == "RUNNING").then_some(())
    });

    let out = cluster.berth_client(&["top", &task_arn, "--no-stream"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "berth top: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = rows(&text);
    assert_eq!(shown.len(), 1, "{text}");
    let row = &shown[0];
    assert_eq!(row["CONTAINER"], "spin");
    assert_eq!(row["SERVICE"], "-");
    let task_id = task_arn.rsplit('/').next().unwrap();
    assert!(task_id.starts_with(&row["TASK"]), "{row:?}");
    assert!(cpu_percent(row) > 5.0, "{row:?}");
    let (usage, limit) = memory(row);
    assert_eq!(limit, 24.0 * MIB, "{row:?}");
    assert!(usage > 0.0, "{row:?}");

    // The cluster's view has the same task; a stopped task has no figures, and says so.
    let out = cluster.berth_client(&["top", "--no-stream"]);
    assert!(out.status.success());
    assert_eq!(rows(&String::from_utf8_lossy(&out.stdout)).len(), 1);
    cluster.aws_json(&["ecs", "stop-task", "--task", &task_arn]);
    cluster.wait_for("the task to stop", Duration::from_secs(60), || {
        let described = cluster.aws_json(&["ecs", "describe-tasks", "--tasks", &task_arn]);
        (described["tasks"][0]["lastStatus"] == "STOPPED").then_some(())
    });
    let out = cluster.berth_client(&["top", &task_arn, "--no-stream"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("the task is stopped"), "{error}");
}
