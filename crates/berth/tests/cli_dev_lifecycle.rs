//! Starting and stopping `berth dev` by its data dir: it says its pid, keeps it in
//! `<data dir>/berth-dev.pid` (gone after a clean exit, replaced after a crash), refuses
//! a second berth dev on the same data dir naming the first, and `berth dev --stop`
//! stops exactly that one, with a clear word when none runs.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{free_port, Dev};

fn pid_file(dev: &Dev) -> std::path::PathBuf {
    dev.data_dir.path().join("berth-dev.pid")
}

fn pid_in_file(dev: &Dev) -> Option<u32> {
    std::fs::read_to_string(pid_file(dev))
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

fn berth_dev_stop(data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["dev", "--stop", "--data-dir"])
        .arg(data_dir)
        .env_remove("BERTH_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run berth dev --stop")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn berth_dev_stop_stops_the_berth_of_its_data_dir_and_no_other() {
    let mut first = Dev::start();
    let second = Dev::start();
    let pid = first.pid().unwrap();

    // It says who it is and how to stop it.
    let log = first.log_text();
    assert!(
        log.contains(&format!("berth dev is running (pid {pid})")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Stop it with: berth dev --stop --data-dir {}",
            first.data_dir.path().display()
        )),
        "{log}"
    );
    assert_eq!(pid_in_file(&first), Some(pid));

    // A second berth dev on the same data dir is refused, naming the running one.
    let refused = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["dev", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(first.data_dir.path())
        .env("BERTH_LB_ADDRESS", "127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .expect("run a second berth dev");
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(
        message.contains(&format!("another berth dev (pid {pid}) is running")),
        "{message}"
    );
    assert_eq!(
        pid_in_file(&first),
        Some(pid),
        "the refused one leaves the file alone"
    );

    let stopped = berth_dev_stop(first.data_dir.path());
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    assert!(
        text(&stopped.stdout).contains(&format!("stopped berth dev (pid {pid})")),
        "{}",
        text(&stopped.stdout)
    );
    // It has exited (cleanly, from SIGTERM) by the time --stop returns.
    let status = first.terminate().expect("berth dev has exited");
    assert!(status.success(), "{status}");
    assert!(
        !pid_file(&first).exists(),
        "a clean exit removes the pid file"
    );

    // The other data dir's berth dev is untouched.
    let clusters = second.aws_json(&["ecs", "list-clusters"]);
    assert!(
        clusters.to_string().contains("cluster/default"),
        "{clusters}"
    );
    assert_eq!(pid_in_file(&second), second.pid());

    // Nothing runs there any more: --stop says so, and fails.
    let none = berth_dev_stop(first.data_dir.path());
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains(&format!(
            "no berth dev is running on the data directory {}",
            first.data_dir.path().display()
        )),
        "{}",
        text(&none.stderr)
    );
}

#[test]
fn a_pid_file_left_by_a_killed_berth_dev_is_replaced() {
    let mut dev = Dev::start();
    let killed = dev.pid().unwrap();
    dev.kill();
    assert_eq!(
        pid_in_file(&dev),
        Some(killed),
        "kill -9 leaves the file behind"
    );

    // --stop does not signal a pid that is no berth's any more.
    let none = berth_dev_stop(dev.data_dir.path());
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains(&format!("removed the pid file of pid {killed}")),
        "{}",
        text(&none.stderr)
    );
    assert!(!pid_file(&dev).exists());

    // Killed again, then started: the new berth takes the file over.
    dev.spawn();
    let restarted = dev.pid().unwrap();
    dev.kill();
    dev.spawn();
    let current = dev.pid().unwrap();
    assert_ne!(restarted, current);
    assert_eq!(pid_in_file(&dev), Some(current));
    assert!(
        dev.log_text()
            .contains("replaced the pid file of a berth dev that is no longer running"),
        "{}",
        dev.log_text()
    );
}

/// A `berth dev` this file starts itself (under `script`, or with its output in a
/// file); stopped with `berth dev --stop` (and killed if that fails) when dropped.
struct Background {
    data_dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = berth_dev_stop(self.data_dir.path());
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What its agent may have made on the engine (it runs no task here).
        let Ok(node) = std::fs::read_to_string(self.data_dir.path().join("node-id")) else {
            return;
        };
        let filter = format!("label=berth.node={}", node.trim());
        for (list, remove) in [
            (&["ps", "-aq"][..], &["rm", "-f"][..]),
            (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        ] {
            let Ok(out) = Command::new("docker")
                .args(list)
                .args(["--filter", &filter])
                .output()
            else {
                continue;
            };
            let ids: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}

#[test]
fn on_a_terminal_berth_dev_prints_the_generated_secret() {
    support::require_docker();
    let data_dir = tempfile::tempdir().unwrap();
    let typescript = data_dir.path().join("terminal.out");
    let dev_command = format!(
        "{} dev --listen 127.0.0.1:{} --data-dir {}",
        env!("CARGO_BIN_EXE_berth"),
        free_port(),
        data_dir.path().display()
    );
    let child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &dev_command])
        .arg(&typescript)
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env("BERTH_LB_ADDRESS", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run berth dev under script (util-linux)");
    let mut dev = Background { data_dir, child };
    let connection = dev.data_dir.path().join("connection.json");
    let secret = support::poll_until(
        "berth dev on a terminal prints its keys",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || {
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!(
                    "berth dev exited with {status}: {}",
                    std::fs::read_to_string(&typescript).unwrap_or_default()
                );
            }
            let connection: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&connection).ok()?).ok()?;
            let secret = connection["secret_access_key"].as_str()?.to_string();
            std::fs::read_to_string(&typescript)
                .ok()?
                .contains("Stop it with:")
                .then_some(secret)
        },
    );
    let printed = std::fs::read_to_string(&typescript).unwrap();
    assert!(
        printed.contains(&format!("export AWS_SECRET_ACCESS_KEY={secret}")),
        "{printed}"
    );
    let stopped = berth_dev_stop(dev.data_dir.path());
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "berth dev under script: {status}");
}

#[test]
fn a_log_file_gets_plain_text_and_no_secret() {
    support::require_docker();
    let data_dir = tempfile::tempdir().unwrap();
    let log = data_dir.path().join("berth-dev.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["dev", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env_remove("NO_COLOR")
        .env("BERTH_LB_ADDRESS", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("run berth dev");
    let mut dev = Background { data_dir, child };
    support::poll_until(
        "berth dev to start",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || {
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!("berth dev exited with {status}");
            }
            std::fs::read_to_string(&log)
                .ok()?
                .contains("Stop it with:")
                .then_some(())
        },
    );
    let stopped = berth_dev_stop(dev.data_dir.path());
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    assert!(dev.child.wait().unwrap().success());
    let written = std::fs::read_to_string(&log).unwrap();
    let connection: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dev.data_dir.path().join("connection.json")).unwrap(),
    )
    .unwrap();
    let secret = connection["secret_access_key"].as_str().unwrap();
    assert!(!written.contains(secret), "{written}");
    assert!(written.contains(" INFO "), "{written}");
    assert!(
        !written.contains('\x1b'),
        "no colour codes in a file: {written}"
    );
}
