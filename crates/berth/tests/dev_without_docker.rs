//! `berth dev` without a reachable Docker engine: one clear line saying so and how to
//! fix it, and a non-zero exit (no hang, no panic).

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn dev_says_docker_is_unreachable_and_exits_non_zero() {
    let data_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["dev", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/berth-test-docker.sock")
        .output()
        .expect("run berth dev");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it gives up promptly"
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("docker is not reachable"), "{stderr}");
    assert!(
        lines[0].contains("/nonexistent/berth-test-docker.sock"),
        "names the socket: {stderr}"
    );
    assert!(
        lines[0].contains("DOCKER_HOST"),
        "says how to fix it: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}
