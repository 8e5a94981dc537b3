//! `berth exec` against a real `berth dev` and Docker: a command's stdout and stderr
//! reach the user's and its exit code is berth's (for a command that cannot run, the
//! engine's, as `docker exec` gives it); piped input reaches it with `-i` only;
//! `--container` picks a container of a task of three, the default is its first
//! essential one, and an unknown name is refused naming the task's containers; an
//! exited container and a stopped task are refused with their status; and an
//! interactive shell with `-it` in a real terminal (tmux): raw mode (Ctrl-C reaches the
//! container's shell, not berth), a terminal inside, its size forwarded and followed,
//! the shell's exit code, and the local terminal back in its normal mode afterwards,
//! also when berth is sent SIGTERM mid-session.
//! Without this machine's engine, the refusal names the container instance and host.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::Dev;

const CLUSTER: &str = "exec";

const MANIFEST: &str = r#"
cluster: exec
clusters: [exec]
taskDefinitions:
  - family: exec-solo
    containerDefinitions:
      - name: app
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 1
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  - family: exec-pair
    containerDefinitions:
      - name: sidecar
        image: berth/busybox:latest
        memory: 16
        essential: false
        stopTimeout: 1
        environment: [{name: WHO, value: sidecar}]
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 1
        environment: [{name: WHO, value: web}]
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
      - name: oneshot
        image: berth/busybox:latest
        memory: 16
        essential: false
        command: ["sh", "-c", "exit 4"]
services:
  - serviceName: solo
    taskDefinition: exec-solo
    desiredCount: 1
  - serviceName: pair
    taskDefinition: exec-pair
    desiredCount: 1
"#;

/// `berth dev` with both services running; the id of `service`'s task.
fn start(service: &str) -> (Dev, String) {
    support::require_docker();
    support::require_images();
    let dev = Dev::start();
    let file = dev.data_dir.path().join("exec.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let applied = dev.berth(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    dev.wait_services_stable(CLUSTER, &[service], "after apply");
    let tasks = dev.service_tasks(Some(CLUSTER), service);
    let arn = tasks[0]["taskArn"].as_str().expect("taskArn");
    let id = arn.rsplit('/').next().unwrap().to_string();
    (dev, id)
}

/// `berth exec [FLAGS] TASK -- COMMAND...` against `dev`: the flags before `--`.
fn exec_command(dev: &Dev, flags: &[&str], task: &str, command: &[&str]) -> Command {
    let mut berth = Command::new(env!("CARGO_BIN_EXE_berth"));
    berth
        .arg("exec")
        .args(endpoint_args(dev))
        .args(flags)
        .arg(task)
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    berth
}

fn endpoint_args(dev: &Dev) -> Vec<String> {
    [
        "--endpoint",
        &dev.endpoint(),
        "--access-key-id",
        &dev.access_key_id,
        "--secret-access-key",
        &dev.secret_access_key,
        "--cluster",
        CLUSTER,
    ]
    .map(str::to_string)
    .to_vec()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn refused(out: &Output, what: &str, words: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "{what}: {word:?} not in {stderr}");
    }
}

/// `berth exec FLAGS TASK -- cat` with `input` piped in; its output (it must succeed).
fn with_input(dev: &Dev, flags: &[&str], task: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = exec_command(dev, flags, task, &["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{flags:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn the_command_s_streams_input_and_exit_code_are_the_user_s() {
    let (dev, task) = start("solo");

    let out = exec_command(
        &dev,
        &[],
        &task[..12],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    )
    .output()
    .unwrap();
    assert_eq!(
        (text(&out.stdout), text(&out.stderr), out.status.code()),
        ("out\n".to_string(), "err\n".to_string(), Some(3))
    );

    // With -i piped input reaches the command, and its end ends cat; without, the
    // command's input is empty.
    assert_eq!(
        with_input(&dev, &["-i"], &task, b"hi\nthere\n"),
        "hi\nthere\n"
    );
    assert_eq!(with_input(&dev, &[], &task, b"hi\n"), "");

    // Without this machine's engine: where the task runs, from the API.
    let instance = dev.aws_json(&["ecs", "list-container-instances", "--cluster", CLUSTER]);
    let instance_arn = instance["containerInstanceArns"][0]
        .as_str()
        .expect("an instance");
    let host = dev.aws_json(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        CLUSTER,
        "--container-instances",
        instance_arn,
    ])["containerInstances"][0]["ec2InstanceId"]
        .as_str()
        .expect("ec2InstanceId")
        .to_string();
    let out = exec_command(&dev, &[], &task, &["true"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    refused(
        &out,
        "no engine",
        &[
            "/nonexistent/docker.sock",
            &format!(
                "task {} runs on container instance {} (host {host}): run berth exec on that machine",
                &task[..12],
                instance_arn.rsplit('/').next().unwrap()
            ),
        ],
    );

    // A command that cannot run: the engine's code, as `docker exec` exits with it
    // (126 not executable, 127 not found; Docker 20.10 says 126 for both).
    let out = exec_command(&dev, &[], &task, &["no-such-program"])
        .output()
        .unwrap();
    let container_id = dev.service_tasks(Some(CLUSTER), "solo")[0]["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    let docker = Command::new("docker")
        .args(["exec", &container_id, "no-such-program"])
        .output()
        .unwrap();
    assert!(
        matches!(docker.status.code(), Some(126 | 127)),
        "docker exec: {docker:?}"
    );
    assert_eq!(
        out.status.code(),
        docker.status.code(),
        "stdout {:?}, stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("no-such-program")
            || text(&out.stderr).contains("no-such-program"),
        "the engine's message names the program: {out:?}"
    );
}

#[test]
fn the_container_is_chosen_by_name_and_refusals_say_why() {
    let (dev, task) = start("pair");
    let who = |flags: &[&str]| {
        let out = exec_command(&dev, flags, &task, &["sh", "-c", "echo $WHO"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    // Default: the first essential container (sidecar is not essential).
    assert_eq!(who(&[]), "web\n");
    assert_eq!(who(&["--container", "sidecar"]), "sidecar\n");
    assert_eq!(who(&["--container", "web"]), "web\n");

    let out = exec_command(&dev, &["--container", "db"], &task, &["true"])
        .output()
        .unwrap();
    refused(
        &out,
        "an unknown container",
        &[
            "has no container 'db'",
            "its containers: sidecar, web, oneshot",
        ],
    );

    // A container that has exited, in a task that runs on.
    dev.wait_for("oneshot to exit", Duration::from_secs(30), || {
        let described = dev.aws_json(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            CLUSTER,
            "--tasks",
            &task,
        ]);
        let containers = described["tasks"][0]["containers"].as_array()?.clone();
        containers
            .iter()
            .any(|c| c["name"] == "oneshot" && c["lastStatus"] == "STOPPED")
            .then_some(())
    });
    let out = exec_command(&dev, &["--container", "oneshot"], &task, &["true"])
        .output()
        .unwrap();
    refused(
        &out,
        "an exited container",
        &[&format!(
            "container 'oneshot' of task {} is STOPPED (exit code 4), not RUNNING",
            &task[..12]
        )],
    );

    let out = exec_command(&dev, &[], "0123456789ab", &["true"])
        .output()
        .unwrap();
    refused(
        &out,
        "an unknown task",
        &["task '0123456789ab' not found in cluster 'exec'"],
    );

    let stopped = dev.berth(&["stop", "--cluster", CLUSTER, &task]);
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    dev.wait_for("the task to stop", Duration::from_secs(30), || {
        let described = dev.aws_json(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            CLUSTER,
            "--tasks",
            &task,
        ]);
        (described["tasks"][0]["lastStatus"] == "STOPPED").then_some(())
    });
    let out = exec_command(&dev, &[], &task, &["true"]).output().unwrap();
    refused(
        &out,
        "a stopped task",
        &[&format!("task {} is STOPPED, not RUNNING", &task[..12])],
    );
}

/// A tmux server of the test's own (its socket in a directory of its own), killed
/// when dropped, and its socket removed with the directory.
struct Tmux {
    socket: std::path::PathBuf,
    _directory: tempfile::TempDir,
}

impl Tmux {
    fn start(columns: u16, rows: u16) -> Tmux {
        let directory = tempfile::tempdir().expect("a directory for tmux's socket");
        let tmux = Tmux {
            socket: directory.path().join("tmux"),
            _directory: directory,
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
            "env PS1='$ ' sh",
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn type_line(&self, line: &str) {
        assert!(self.run(&["send-keys", "-l", line]).status.success());
        assert!(self.run(&["send-keys", "Enter"]).status.success());
    }

    fn pane(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-S", "-200"]).stdout)
    }

    /// Waits until a line of the pane is exactly `line`.
    fn wait_for_line(&self, line: &str) {
        support::poll_until(
            &format!("the line {line:?} in the terminal"),
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                let pane = self.pane();
                pane.lines().any(|l| l.trim_end() == line).then_some(())
            },
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("terminal:\n{}", self.pane());
        }
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn an_interactive_shell_gets_a_terminal_and_gives_the_user_s_back() {
    let (dev, task) = start("solo");
    let tmux = Tmux::start(100, 30);
    let berth = [env!("CARGO_BIN_EXE_berth"), "exec"]
        .into_iter()
        .map(str::to_string)
        .chain(endpoint_args(&dev))
        .chain(["-it".into(), task.clone(), "--".into(), "sh".into()])
        .map(|arg| format!("'{arg}'"))
        .collect::<Vec<_>>()
        .join(" ");
    tmux.type_line(&format!("{berth}; echo \"exit-code=$?\""));

    tmux.type_line("echo $((6*7))");
    tmux.wait_for_line("42");
    tmux.type_line("echo tty-$(test -t 0 && echo yes)");
    tmux.wait_for_line("tty-yes");
    tmux.type_line("stty size");
    tmux.wait_for_line("30 100");
    // The window changes size: the command's terminal follows.
    assert!(tmux
        .run(&["resize-window", "-x", "90", "-y", "25"])
        .status
        .success());
    tmux.wait_for_line_after_typing("stty size", "25 90");
    // Raw mode: Ctrl-C goes to the container's shell as a key; berth goes on.
    assert!(tmux.run(&["send-keys", "C-c"]).status.success());
    tmux.type_line("echo still-$((1+1))");
    tmux.wait_for_line("still-2");
    tmux.type_line("exit 5");
    tmux.wait_for_line("exit-code=5");

    // The local terminal is back in its normal (canonical, echoing) mode.
    tmux.assert_normal_mode("after exit");

    // berth terminated politely mid-session puts the terminal back too.
    tmux.type_line(&format!("{berth}; echo \"exit-code=$?\""));
    tmux.type_line("echo $((7*8))");
    tmux.wait_for_line("56");
    let shell = text(&tmux.run(&["list-panes", "-F", "#{pane_pid}"]).stdout);
    let children = Command::new("ps")
        .args(["-o", "pid=,comm=", "--ppid", shell.trim()])
        .output()
        .unwrap();
    let berth_pid = text(&children.stdout)
        .lines()
        .find(|line| line.trim_end().ends_with("berth"))
        .and_then(|line| line.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no berth under the pane's shell: {children:?}"));
    let killed = Command::new("kill")
        .args(["-TERM", &berth_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    tmux.wait_for_line("exit-code=1");
    tmux.assert_normal_mode("after SIGTERM");
}

impl Tmux {
    /// The pane's terminal is canonical and echoes (what a shell's user needs).
    fn assert_normal_mode(&self, when: &str) {
        self.type_line(&format!(
            "echo \"{when}: $(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | sort | tr '\\n' ' ')\""
        ));
        self.wait_for_line(&format!("{when}: echo icanon"));
    }

    /// Types `line` until a line of the pane is `expected` (a resize reaches the command
    /// a moment after the window changes; each attempt asks again).
    fn wait_for_line_after_typing(&self, line: &str, expected: &str) {
        support::poll_until(
            &format!("the line {expected:?} after {line:?}"),
            Duration::from_secs(30),
            Duration::from_millis(500),
            || {
                self.type_line(line);
                std::thread::sleep(Duration::from_millis(200));
                self.pane()
                    .lines()
                    .any(|l| l.trim_end() == expected)
                    .then_some(())
            },
        );
    }
}
