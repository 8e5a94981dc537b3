//! `berth deploy` and `berth apply --wait` against a real `berth dev` and Docker, run
//! in a real terminal (a tmux pane) as a user runs them: the rollout is followed live
//! (the new deployment's counts, the events, a COMPLETED line, exit 0); a release whose
//! container exits at once trips the circuit breaker and ends FAILED with a non-zero
//! exit; `berth apply` waits on a terminal by default and not when its output is piped;
//! bad `deploy` flags and unknown containers are refused before anything is registered.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{str_at, Dev};

/// A tmux server of its own (its socket in a temporary directory) running one command
/// in a pane wide enough that no line wraps; killed (with the command) and its socket
/// removed however the test ends.
struct Terminal {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// `'it''s'` quoting for sh.
fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Terminal {
    /// Runs `berth ARGS` against `dev` in a new terminal; the pane then prints `EXIT=N`.
    fn berth(dev: &Dev, args: &[&str]) -> Terminal {
        let dir = tempfile::Builder::new()
            .prefix("berth-tmux")
            .tempdir_in("/tmp")
            .unwrap();
        let endpoint = dev.endpoint();
        let mut words = vec![env!("CARGO_BIN_EXE_berth")];
        words.extend(args);
        words.extend([
            "--endpoint",
            &endpoint,
            "--access-key-id",
            &dev.access_key_id,
            "--secret-access-key",
            &dev.secret_access_key,
        ]);
        let command: Vec<String> = words.iter().map(|w| quoted(w)).collect();
        let script = format!("{}; echo EXIT=$?; exec sleep 3600", command.join(" "));
        let terminal = Terminal {
            socket: dir.path().join("socket"),
            _dir: dir,
        };
        let out = terminal
            .tmux()
            .args(["new-session", "-d", "-x", "250", "-y", "50", &script])
            .output()
            .expect("run tmux (Debian package tmux)");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        terminal
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket);
        command
    }

    /// Everything the pane shows, its history too, wrapped lines joined.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-E", "-"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the command to end; its exit code and the screen.
    fn wait_for_exit(&self, dev: &Dev, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            let code = screen
                .lines()
                .find_map(|line| line.trim().strip_prefix("EXIT=")?.parse().ok());
            if let Some(code) = code {
                return (code, screen);
            }
            if Instant::now() >= deadline {
                panic!(
                    "the command did not end within {} s; the terminal shows:\n{screen}\nberth: {}",
                    timeout.as_secs(),
                    support::tail(&dev.log_text(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// A container that idles until stopped, or exits at once when `MODE=crash`.
const COMMAND: &str = r#"["sh", "-c", "test \"$MODE\" = crash && exit 1; trap 'exit 0' TERM; while true; do sleep 1; done"]"#;

/// A cluster with one service `web` of two tasks, the circuit breaker on.
fn manifest(cluster: &str, mode: &str) -> String {
    format!(
        r#"
cluster: {cluster}
clusters: [{cluster}]
taskDefinitions:
  - family: {cluster}-web
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        environment: [{{name: MODE, value: {mode}}}, {{name: KEEP, value: kept}}]
        command: {COMMAND}
      - name: sidecar
        image: berth/busybox:latest
        memory: 8
        stopTimeout: 2
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
services:
  - serviceName: web
    taskDefinition: {cluster}-web
    desiredCount: 2
    deploymentConfiguration:
      deploymentCircuitBreaker: {{enable: true, rollback: true}}
"#
    )
}

fn start() -> Dev {
    support::require_docker();
    support::require_images();
    Dev::start_with_flags(&["--task-cleanup-wait", "0"])
}

/// `dev` with the manifest applied (output piped: apply does not wait) and stable.
fn applied(dev: &Dev, cluster: &str) {
    let file = write_manifest(dev, cluster, "blue");
    let out = dev.berth(&["apply", "-f", &file]);
    assert!(out.status.success(), "apply: {out:?}");
    dev.wait_services_stable(cluster, &["web"], "after apply");
}

fn write_manifest(dev: &Dev, cluster: &str, mode: &str) -> String {
    let file = dev.data_dir.path().join(format!("{cluster}-{mode}.yaml"));
    std::fs::write(&file, manifest(cluster, mode)).unwrap();
    file.to_str().unwrap().to_string()
}

fn service(dev: &Dev, cluster: &str) -> serde_json::Value {
    let described = dev.aws_json(&[
        "ecs",
        "describe-services",
        "--cluster",
        cluster,
        "--services",
        "web",
    ]);
    described["services"][0].clone()
}

fn revisions(dev: &Dev, family: &str) -> usize {
    let listed = dev.aws_json(&["ecs", "list-task-definitions", "--family-prefix", family]);
    listed["taskDefinitionArns"].as_array().unwrap().len()
}

fn assert_shows(screen: &str, words: &str) {
    assert!(
        screen.contains(words),
        "{words:?} not on the terminal:\n{screen}"
    );
}

/// The first line of the screen with `words`.
fn line_with<'s>(screen: &'s str, words: &str) -> &'s str {
    screen
        .lines()
        .find(|line| line.contains(words))
        .unwrap_or_else(|| panic!("no line with {words:?} on the terminal:\n{screen}"))
}

#[test]
fn deploy_rolls_out_a_new_image_and_env_and_follows_it_live_to_completed() {
    let dev = start();
    applied(&dev, "dp-ok");

    let terminal = Terminal::berth(
        &dev,
        &[
            "deploy",
            "-c",
            "dp-ok",
            "web",
            "--image",
            "web=berth/nginx:latest",
            "--env",
            "web:MODE=green",
            "--env",
            "web:ADDED=yes",
        ],
    );
    let (code, screen) = terminal.wait_for_exit(&dev, Duration::from_secs(180));
    assert_eq!(code, 0, "deploy failed:\n{screen}");
    assert_shows(
        &screen,
        "task definition dp-ok-web:2 registered (web image berth/busybox:latest -> berth/nginx:latest, web env MODE changed, web env ADDED added)",
    );
    assert_shows(&screen, "service web deploying dp-ok-web:1 -> dp-ok-web:2");
    // Live counts of the new deployment beside the old one, then the finish.
    let counts = line_with(&screen, "web: new ecs-svc/");
    assert!(
        counts.contains(" running, ") && counts.contains(" healthy"),
        "{counts}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.contains("web: new ecs-svc/") && l.contains("| old ")),
        "the old deployment's tasks are counted while they drain:\n{screen}"
    );
    assert_shows(&screen, ") has started "); // the service's events, as they happen
    let completed = line_with(&screen, " COMPLETED (");
    assert!(completed.contains("2/2 running, 2 healthy"), "{completed}");
    assert_shows(&screen, "service web deployed dp-ok-web:2");

    // The new revision is the old one with only those changed.
    let running = service(&dev, "dp-ok");
    assert!(
        str_at(&running, "/taskDefinition").ends_with("task-definition/dp-ok-web:2"),
        "{running}"
    );
    let described = dev.aws_json(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "dp-ok-web:2",
    ]);
    let containers = &described["taskDefinition"]["containerDefinitions"];
    let web = &containers[0];
    assert_eq!(web["image"], "berth/nginx:latest", "{web}");
    assert_eq!(web["memory"], 16, "{web}");
    assert_eq!(web["stopTimeout"], 2, "{web}");
    assert_eq!(web["command"][2].as_str().unwrap(), {
        let command: Vec<String> = serde_json::from_str(COMMAND).unwrap();
        command[2].clone()
    });
    let env: Vec<(String, String)> = web["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (str_at(kv, "/name").into(), str_at(kv, "/value").into()))
        .collect();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    for wanted in [
        pair("MODE", "green"),
        pair("KEEP", "kept"),
        pair("ADDED", "yes"),
    ] {
        assert!(env.contains(&wanted), "{wanted:?} not in {env:?}");
    }
    assert_eq!(containers[1]["image"], "berth/busybox:latest");
    assert_eq!(containers[1]["memory"], 8);
    let tasks = dev.service_tasks(Some("dp-ok"), "web");
    assert!(
        tasks
            .iter()
            .all(|t| str_at(t, "/taskDefinitionArn").ends_with(":2")),
        "{tasks:?}"
    );
}

#[test]
fn a_deploy_whose_container_exits_at_once_ends_failed_with_a_non_zero_exit() {
    let dev = start();
    applied(&dev, "dp-bad");

    let terminal = Terminal::berth(
        &dev,
        &["deploy", "-c", "dp-bad", "web", "--env", "web:MODE=crash"],
    );
    let (code, screen) = terminal.wait_for_exit(&dev, Duration::from_secs(180));
    assert_ne!(code, 0, "a failed release exits non-zero:\n{screen}");
    assert_shows(&screen, "web: new ecs-svc/");
    let failed = line_with(&screen, "FAILED");
    assert!(
        failed.contains("service 'web': deployment ecs-svc/") && failed.contains("circuit breaker"),
        "{failed}"
    );
    assert!(!screen.contains(" COMPLETED ("), "{screen}");
}

#[test]
fn apply_on_a_terminal_waits_for_the_rollout_and_a_failing_one_exits_non_zero() {
    let dev = start();
    let good = write_manifest(&dev, "ap-term", "blue");
    let terminal = Terminal::berth(&dev, &["apply", "-f", &good]);
    let (code, screen) = terminal.wait_for_exit(&dev, Duration::from_secs(180));
    assert_eq!(code, 0, "apply failed:\n{screen}");
    assert_shows(&screen, "service web created");
    let counts = line_with(&screen, "web: new ecs-svc/");
    assert!(counts.contains("/2 running"), "{counts}");
    let completed = line_with(&screen, " COMPLETED (");
    assert!(completed.contains("2/2 running, 2 healthy"), "{completed}");
    drop(terminal);

    // The same service given a crashing container: --wait (here with output piped,
    // where apply would not wait by itself) ends in the circuit breaker's FAILED.
    let bad = write_manifest(&dev, "ap-term", "crash");
    let out = dev.berth(&["apply", "--wait", "-f", &bad]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("service web updated (taskDefinition ap-term-web:1 -> ap-term-web:2)"),
        "{stdout}"
    );
    assert!(stdout.contains("web: new ecs-svc/"), "{stdout}");
    assert!(
        stderr.contains("service 'web': deployment ecs-svc/")
            && stderr.contains("FAILED")
            && stderr.contains("circuit breaker"),
        "{stderr}"
    );
}

#[test]
fn apply_with_its_output_piped_returns_without_following() {
    let dev = start();
    let file = write_manifest(&dev, "ap-pipe", "blue");
    let out = dev.berth(&["apply", "-f", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("service web created"), "{stdout}");
    assert!(
        !stdout.contains("ecs-svc/") && !stdout.contains("COMPLETED"),
        "piped, apply does not follow the rollout:\n{stdout}"
    );
    // --no-wait on a terminal does not follow either.
    dev.wait_services_stable("ap-pipe", &["web"], "after apply");
    let changed = write_manifest(&dev, "ap-pipe", "green");
    let terminal = Terminal::berth(&dev, &["apply", "--no-wait", "-f", &changed]);
    let (code, screen) = terminal.wait_for_exit(&dev, Duration::from_secs(60));
    assert_eq!(code, 0, "{screen}");
    assert_shows(&screen, "service web updated");
    assert!(!screen.contains("ecs-svc/"), "{screen}");
}

#[test]
fn deploy_refuses_bad_flags_and_unknown_containers_and_registers_nothing() {
    let dev = start();
    applied(&dev, "dp-refuse");
    let family = "dp-refuse-web";
    let refused = |args: &[&str], words: &[&str]| {
        let mut all = vec!["deploy", "-c", "dp-refuse", "web"];
        all.extend(args);
        let out = dev.berth(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
        for word in words {
            assert!(stderr.contains(word), "{args:?}: {word:?} not in {stderr}");
        }
    };
    refused(&["--image", "web"], &["--image 'web'", "CONTAINER=IMAGE"]);
    refused(
        &["--env", "web:MODE"],
        &["--env 'web:MODE'", "CONTAINER:KEY=VALUE"],
    );
    refused(
        &["--image", "api=berth/nginx:latest"],
        &["no container 'api'", "its containers: web, sidecar"],
    );
    refused(&["--env", "db:K=v"], &["no container 'db'", "web, sidecar"]);
    refused(&[], &["nothing to deploy"]);
    let out = dev.berth(&["deploy", "-c", "dp-refuse", "nosuch", "--env", "web:K=v"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("service 'nosuch' not found"),
        "{out:?}"
    );

    // What is already there: said so, nothing registered, no new deployment.
    let before = service(&dev, "dp-refuse");
    let out = dev.berth(&[
        "deploy",
        "-c",
        "dp-refuse",
        "web",
        "--image",
        "web=berth/busybox:latest",
        "--env",
        "web:MODE=blue",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to deploy"),
        "{out:?}"
    );
    assert_eq!(revisions(&dev, family), 1);
    let after = service(&dev, "dp-refuse");
    assert_eq!(before["deployments"], after["deployments"]);

    // --no-wait returns once the deployment is started, following nothing.
    let out = dev.berth(&[
        "deploy",
        "-c",
        "dp-refuse",
        "web",
        "--env",
        "web:MODE=green",
        "--no-wait",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("service web deploying dp-refuse-web:1 -> dp-refuse-web:2"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("web: new ") && !stdout.contains("COMPLETED"),
        "{stdout}"
    );
    assert_eq!(revisions(&dev, family), 2);
}

/// One load-balanced service `web` of two httpd tasks, serving `www` of the host:
/// their targets turn healthy once the test writes `www/health.html`.
fn load_balanced_manifest(port: u16, cluster: &str, www: &std::path::Path) -> String {
    let www = www.display();
    format!(
        r#"
cluster: {cluster}
clusters: [{cluster}]
loadBalancers:
  - name: {cluster}-lb
targetGroups:
  - name: {cluster}-web
    protocol: HTTP
    port: 8080
    healthCheckPath: /health.html
    healthCheckIntervalSeconds: 5
    healthCheckTimeoutSeconds: 2
    healthyThresholdCount: 2
    unhealthyThresholdCount: 2
    deregistrationDelaySeconds: 2
listeners:
  - loadBalancer: {cluster}-lb
    port: {port}
    targetGroup: {cluster}-web
taskDefinitions:
  - family: {cluster}-web
    volumes: [{{name: www, host: {{sourcePath: "{www}"}}}}]
    containerDefinitions:
      - name: web
        image: berth/busybox:latest
        memory: 16
        stopTimeout: 2
        portMappings: [{{containerPort: 8080, hostPort: 0}}]
        mountPoints: [{{sourceVolume: www, containerPath: /www, readOnly: true}}]
        command: ["sh", "-c", "exec httpd -f -p 8080 -h /www"]
services:
  - serviceName: web
    taskDefinition: {cluster}-web
    desiredCount: 2
    loadBalancers:
      - targetGroup: {cluster}-web
        containerName: web
        containerPort: 8080
"#
    )
}

#[test]
fn behind_a_load_balancer_a_task_counts_as_healthy_once_its_target_is() {
    let dev = start();
    let www = dev.data_dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let file = dev.data_dir.path().join("lb.yaml");
    let port = support::free_port();
    std::fs::write(&file, load_balanced_manifest(port, "ap-lb", &www)).unwrap();
    let terminal = Terminal::berth(&dev, &["apply", "-f", file.to_str().unwrap()]);

    // Running, but the health check finds no /health.html: none is healthy yet.
    dev.wait_for(
        "the rollout to show 2 running tasks, none healthy",
        Duration::from_secs(120),
        || {
            let screen = terminal.screen();
            assert!(!screen.contains("EXIT="), "{screen}");
            screen
                .lines()
                .any(|l| l.contains("web: new ecs-svc/") && l.ends_with("2/2 running, 0 healthy"))
                .then_some(())
        },
    );
    std::fs::write(www.join("health.html"), "ok\n").unwrap();
    let (code, screen) = terminal.wait_for_exit(&dev, Duration::from_secs(180));
    assert_eq!(code, 0, "apply failed:\n{screen}");
    let completed = line_with(&screen, " COMPLETED (");
    assert!(completed.contains("2/2 running, 2 healthy"), "{completed}");
    let states = dev.target_states(&dev.target_group_arn("ap-lb-web"));
    assert_eq!(states, ["healthy", "healthy"], "{states:?}");
}
