//! `berth events` and `berth logs` against `berth dev` and the real Docker engine, as a
//! user follows a service: a crash's event names the container and its exit code,
//! every event is dated, `-f` prints new events as they happen, a crashed service's
//! logs show what its stopped task wrote, and `logs --tail 0 -f` prints only new lines.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use support::Dev;

/// Kills a followed `berth ... -f` however the test ends.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's stdout, line by line, on a channel.
fn lines_of(follower: &mut Follower) -> mpsc::Receiver<String> {
    let stdout = follower.0.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

fn is_dated(line: &str) -> bool {
    // `YYYY-MM-DD HH:MM:SS message`
    let bytes = line.as_bytes();
    line.len() > 20
        && bytes[..19].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
        && bytes[19] == b' '
}

#[test]
fn a_crash_is_an_event_naming_the_container_and_exit_code_and_follow_prints_it_live() {
    support::require_docker();
    support::require_images();
    let dev = Dev::start();
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "crashy",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox:latest","memory":16,
             "command":["sh","-c","echo fatal: DATABASE_URL not set; sleep 2; exit 3"]}]"#,
    ]);
    // Followed from before its first task, so every event below is printed live.
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "crashy",
        "--task-definition",
        "crashy",
        "--desired-count",
        "0",
    ]);
    let mut follower = Follower(dev.berth_child(&["events", "-f", "crashy"]));
    std::thread::sleep(Duration::from_secs(2));
    dev.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "crashy",
        "--desired-count",
        "1",
    ]);
    let received = lines_of(&mut follower);

    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let crash = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                if line.contains("stopped: Essential container in task exited") {
                    break line;
                }
                seen.push(line);
            }
            Err(_) => panic!(
                "no crash event printed by `berth events -f` within 60 s; printed: {seen:#?}\nberth: {}",
                support::tail(&dev.log_text(), 30)
            ),
        }
    };
    assert!(
        crash.ends_with("(container app exited with code 3)"),
        "{crash}"
    );
    assert!(is_dated(&crash), "{crash}");
    assert!(
        seen.iter().any(|l| l.contains("has started 1 tasks")),
        "the events before the crash came first: {seen:#?}"
    );
    assert!(seen.iter().all(|l| is_dated(l)), "{seen:#?}");

    // The same event, once, in the plain listing.
    let listed = dev.berth(&["events", "crashy"]);
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    let task_event = crash.split_once(' ').unwrap().1.split_once(' ').unwrap().1;
    assert_eq!(
        text.lines().filter(|l| l.ends_with(task_event)).count(),
        1,
        "{text}"
    );

    // Its logs show what the stopped task wrote, whether or not a replacement runs.
    let logs = dev.berth(&["logs", "crashy"]);
    assert!(logs.status.success(), "{logs:?}");
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("fatal: DATABASE_URL not set"),
        "{logs:?}"
    );
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("including stopped task"),
        "{logs:?}"
    );
}

/// The number in a `line N` a counting container writes (after any `[task container]`
/// prefix).
fn counted(line: &str) -> Option<u64> {
    line.rsplit_once("line ")?.1.trim().parse().ok()
}

#[test]
fn logs_tail_0_follow_prints_only_what_is_written_after_it_starts() {
    support::require_docker();
    support::require_images();
    let dev = Dev::start();
    dev.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "counter",
        "--container-definitions",
        r#"[{"name":"app","image":"berth/busybox:latest","memory":16,
             "command":["sh","-c","i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]}]"#,
    ]);
    dev.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "counter",
        "--task-definition",
        "counter",
        "--desired-count",
        "1",
    ]);
    let written = dev.wait_for(
        "the counter to have written 5 lines",
        Duration::from_secs(60),
        || {
            let out = dev.berth(&["logs", "counter"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let last = text.lines().filter_map(counted).max()?;
            (last >= 5).then_some(last)
        },
    );
    let mut follower = Follower(dev.berth_child(&["logs", "counter", "--tail", "0", "-f"]));
    let received = lines_of(&mut follower);
    let mut printed = Vec::new();
    while printed.len() < 5 {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("`logs --tail 0 -f` printed only {printed:?}"));
        printed.push(counted(&line).unwrap_or_else(|| panic!("{line:?}")));
    }
    assert!(
        printed[0] > written,
        "line {written} was written before the follower started, yet it printed {printed:?}"
    );
    assert!(
        printed.windows(2).all(|w| w[1] == w[0] + 1),
        "new lines, each once, in order: {printed:?}"
    );
}
