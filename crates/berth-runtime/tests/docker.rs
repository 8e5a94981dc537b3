//! End-to-end tests of `DockerRuntime` against the real Docker engine.
//!
//! They fail (never skip) when Docker is unreachable. Every container and volume they
//! create carries `berth.test=runtime` plus a per-test label, and a `Cleanup` guard
//! removes them by that label also when the test fails. Images come from
//! `examples/images/build.sh` (built on first use) since no registry is reachable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, DockerRuntime, Health, HealthCheckSpec,
    LogEntry, MountSpec, NetworkSpec, PortSpec, Protocol, RuntimeError, RuntimeEvent,
    RuntimeEventKind, Stream, VolumeSpec,
};
use futures_util::stream::{BoxStream, StreamExt};

const BUSYBOX: &str = "berth/busybox:latest";
const TEST_LABEL: &str = "berth.test";
const TEST_LABEL_VALUE: &str = "runtime";
const CASE_LABEL: &str = "berth.test.case";

/// Connects or fails the test with what to do about it.
async fn runtime() -> Arc<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => panic!(
            "these tests need a running Docker engine and found none: {error}\n\
             (start it with `sudo systemctl start docker`, or point DOCKER_HOST at one)"
        ),
    }
}

/// Builds the test images once per test binary when they are missing.
fn ensure_test_images() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *built {
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/images/build.sh"
    );
    let check = std::process::Command::new("bash")
        .args([script, "--check"])
        .status()
        .expect("running build.sh --check");
    if !check.success() {
        let output = std::process::Command::new("bash")
            .arg(script)
            .output()
            .expect("running examples/images/build.sh");
        assert!(
            output.status.success(),
            "examples/images/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    *built = true;
}

/// One test's resources: a unique case label and name prefix, removed on drop.
struct Cleanup {
    case: String,
}

impl Cleanup {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let case = format!(
            "{test}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Cleanup { case }
    }

    fn name(&self, suffix: &str) -> String {
        format!("berth-rt-{}-{suffix}", self.case)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TEST_LABEL.to_string(), TEST_LABEL_VALUE.to_string()),
            (CASE_LABEL.to_string(), self.case.clone()),
        ])
    }

    /// A busybox container spec carrying this test's labels.
    fn spec(&self, suffix: &str, shell_command: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(self.name(suffix), BUSYBOX);
        spec.labels = self.labels();
        spec.command = Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            shell_command.to_string(),
        ]);
        spec
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Blocking CLI calls: Drop cannot await, and this must also run after a panic.
        let filter = format!("label={CASE_LABEL}={}", self.case);
        let docker = |args: &[&str]| {
            std::process::Command::new("docker")
                .args(args)
                .output()
                .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
                .unwrap_or_default()
        };
        let containers = docker(&["ps", "-aq", "--filter", &filter]);
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-fv"];
            args.extend(containers);
            docker(&args);
        }
        let volumes = docker(&["volume", "ls", "-q", "--filter", &filter]);
        let volumes: Vec<&str> = volumes.split_whitespace().collect();
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes);
            docker(&args);
        }
    }
}

async fn wait_until_exited(runtime: &DockerRuntime, id: &str) -> berth_runtime::ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = runtime
            .inspect_container(id)
            .await
            .unwrap()
            .expect("container vanished");
        if status.state == ContainerState::Exited {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} still {:?}",
            status.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next event of container `id` matching `wanted`, within 15 s.
async fn next_event(
    events: &mut BoxStream<'static, Result<RuntimeEvent, RuntimeError>>,
    id: &str,
    wanted: impl Fn(&RuntimeEventKind) -> bool,
) -> RuntimeEvent {
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next().await {
            let event = event.expect("event stream error");
            if event.container_id == id && wanted(&event.kind) {
                return event;
            }
        }
        panic!("event stream ended")
    })
    .await;
    found.unwrap_or_else(|_| panic!("no matching event for container {id} within 15 s"))
}

fn messages(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.message.as_str()).collect()
}

#[tokio::test]
async fn info_describes_the_engine() {
    let runtime = runtime().await;
    let info = runtime.info().await.unwrap();
    assert!(!info.engine_version.is_empty());
    assert!(info.cpus > 0);
    assert!(info.memory_bytes > 0);
    assert!(!info.hostname.is_empty());
}

#[tokio::test]
async fn ensure_image_uses_a_local_image_and_reports_a_failed_pull_as_ecs_does() {
    ensure_test_images();
    let runtime = runtime().await;
    let image = runtime.ensure_image(BUSYBOX).await.unwrap();
    assert!(image.id.starts_with("sha256:"), "{image:?}");

    let missing = format!("berth/missing-{}:latest", std::process::id());
    match runtime.ensure_image(&missing).await {
        Err(RuntimeError::ImagePull(message)) => {
            assert!(
                message.starts_with("CannotPullContainerError: "),
                "{message}"
            );
            assert!(message.contains(&missing), "names the image: {message}");
        }
        other => panic!("expected an ImagePull error, got {other:?}"),
    }
}

/// A task: the sandbox holds the namespace, an app serves on :8080, and a second
/// container of the task reaches it at localhost:8080.
#[tokio::test]
async fn task_containers_share_the_sandbox_network_namespace() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("sandbox");

    let sandbox_image = runtime.ensure_sandbox_image().await.unwrap();
    assert!(
        sandbox_image.starts_with("berth/sandbox:"),
        "{sandbox_image}"
    );
    assert_eq!(runtime.ensure_sandbox_image().await.unwrap(), sandbox_image);

    let mut sandbox_spec = ContainerSpec::new(cleanup.name("sandbox"), &sandbox_image);
    sandbox_spec.labels = cleanup.labels();
    sandbox_spec.hostname = Some("task-host".to_string());
    let sandbox = runtime.create_container(&sandbox_spec).await.unwrap();
    runtime.start_container(&sandbox).await.unwrap();

    let mut app = cleanup.spec(
        "app",
        "mkdir -p /www && echo hello-from-app > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    app.network = NetworkSpec::Container(sandbox.clone());
    app.hostname = Some("ignored".to_string()); // must be dropped, Docker rejects it
    let app_id = runtime.create_container(&app).await.unwrap();
    runtime.start_container(&app_id).await.unwrap();

    let mut client = cleanup.spec(
        "client",
        "for i in $(seq 50); do wget -qO- http://localhost:8080/ && hostname && exit 0; \
         sleep 0.1; done; exit 1",
    );
    client.network = NetworkSpec::Container(sandbox.clone());
    let client_id = runtime.create_container(&client).await.unwrap();
    runtime.start_container(&client_id).await.unwrap();
    let status = wait_until_exited(&runtime, &client_id).await;
    let logs = runtime.logs(&client_id, None, None).await.unwrap();
    assert_eq!(status.exit_code, Some(0), "client failed: {logs:?}");
    assert_eq!(messages(&logs), vec!["hello-from-app", "task-host"]);

    // The sandbox kept running all along (a second at least), and goes away at once.
    let sandbox_status = runtime.inspect_container(&sandbox).await.unwrap().unwrap();
    assert_eq!(sandbox_status.state, ContainerState::Running);
    let started = Instant::now();
    runtime.remove_container(&sandbox).await.unwrap();
    let removal = started.elapsed();
    assert_eq!(runtime.inspect_container(&sandbox).await.unwrap(), None);
    eprintln!("sandbox removed with force in {removal:?}");
    runtime.remove_container(&sandbox).await.unwrap(); // missing is fine
}

/// The sandbox's SIGTERM handler: `docker stop` ends it at once with exit code 0 even
/// though it is PID 1.
#[tokio::test]
async fn sandbox_runs_and_stops_on_sigterm_with_exit_code_zero() {
    let runtime = runtime().await;
    let cleanup = Cleanup::new("sandbox-stop");
    let image = runtime.ensure_sandbox_image().await.unwrap();
    let mut spec = ContainerSpec::new(cleanup.name("sandbox"), image);
    spec.labels = cleanup.labels();
    spec.network = NetworkSpec::None;
    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = runtime.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(status.state, ContainerState::Running, "{status:?}");

    runtime
        .stop_container(&id, Duration::from_secs(10))
        .await
        .unwrap();
    let status = runtime.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(status.state, ContainerState::Exited);
    assert_eq!(
        status.exit_code,
        Some(0),
        "exited through the handler, not SIGKILL"
    );
}

#[tokio::test]
async fn published_port_zero_gets_a_dynamic_host_port_reachable_from_the_host() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("ports");
    let mut spec = cleanup.spec(
        "web",
        "mkdir -p /www && echo port-ok > /www/index.html && exec httpd -f -p 80 -h /www",
    );
    spec.network = NetworkSpec::Bridge {
        network: None,
        ports: vec![PortSpec {
            container_port: 80,
            host_port: 0,
            protocol: Protocol::Tcp,
        }],
    };
    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    let status = runtime.inspect_container(&id).await.unwrap().unwrap();
    let port = status
        .ports
        .iter()
        .find(|port| port.container_port == 80 && port.host_ip == "0.0.0.0")
        .unwrap_or_else(|| panic!("no published port: {:?}", status.ports));
    assert_ne!(port.host_port, 0);
    assert_eq!(port.protocol, Protocol::Tcp);
    assert!(status.ip_address.is_some(), "bridge ip: {status:?}");

    // The same port in the listing, and it answers from the host.
    let listed = runtime
        .list_containers(CASE_LABEL, &cleanup.case)
        .await
        .unwrap();
    assert_eq!(listed[0].ports, status.ports);
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port.host_port)) {
            use std::io::{Read, Write};
            stream
                .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                .unwrap();
            body.clear();
            let _ = stream.read_to_string(&mut body);
            if body.contains("port-ok") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("port-ok"), "response: {body:?}");
}

#[tokio::test]
async fn exit_code_shows_in_inspect_and_as_a_die_event() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("exit");
    // Subscribed before the container exists: nothing after this call may be missed,
    // even though the stream is polled only later.
    let mut events = runtime.events(CASE_LABEL, &cleanup.case);
    let id = runtime
        .create_container(&cleanup.spec("exit3", "exit 3"))
        .await
        .unwrap();
    runtime.start_container(&id).await.unwrap();
    let status = wait_until_exited(&runtime, &id).await;
    assert_eq!(status.exit_code, Some(3));
    assert!(
        status.started_at.is_some() && status.finished_at.is_some(),
        "{status:?}"
    );
    // No order check between the two: for a process that exits at once Docker records
    // StartedAt after FinishedAt (seen on 20.10), and berth passes the engine's times on.

    let start = next_event(&mut events, &id, |kind| *kind == RuntimeEventKind::Start).await;
    assert_eq!(start.labels.get(CASE_LABEL), Some(&cleanup.case));
    let die = next_event(&mut events, &id, |kind| {
        matches!(kind, RuntimeEventKind::Die { .. })
    })
    .await;
    assert_eq!(die.kind, RuntimeEventKind::Die { exit_code: Some(3) });
    assert!(die.time > 1_600_000_000.0, "epoch seconds: {}", die.time);

    runtime.remove_container(&id).await.unwrap();
    next_event(&mut events, &id, |kind| *kind == RuntimeEventKind::Destroy).await;
}

#[tokio::test]
async fn health_checks_report_healthy_and_unhealthy_in_inspect_and_events() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("health");
    let mut events = runtime.events(CASE_LABEL, &cleanup.case);
    let check = |command: &str| HealthCheckSpec {
        test: vec!["CMD-SHELL".to_string(), command.to_string()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        retries: 1,
        start_period: Duration::ZERO,
    };
    let mut healthy = cleanup.spec("healthy", "exec sleep 60");
    healthy.health_check = Some(check("true"));
    let mut unhealthy = cleanup.spec("unhealthy", "exec sleep 60");
    unhealthy.health_check = Some(check("exit 1"));
    let healthy_id = runtime.create_container(&healthy).await.unwrap();
    let unhealthy_id = runtime.create_container(&unhealthy).await.unwrap();
    runtime.start_container(&healthy_id).await.unwrap();
    runtime.start_container(&unhealthy_id).await.unwrap();

    let starting = runtime
        .inspect_container(&healthy_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        starting.health.is_some(),
        "a health check reports a health: {starting:?}"
    );

    next_event(&mut events, &healthy_id, |kind| {
        *kind == RuntimeEventKind::Health(Health::Healthy)
    })
    .await;
    next_event(&mut events, &unhealthy_id, |kind| {
        *kind == RuntimeEventKind::Health(Health::Unhealthy)
    })
    .await;
    let healthy_status = runtime
        .inspect_container(&healthy_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(healthy_status.health, Some(Health::Healthy));
    let unhealthy_status = runtime
        .inspect_container(&unhealthy_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unhealthy_status.health, Some(Health::Unhealthy));

    // No health check, no health.
    let plain = runtime
        .create_container(&cleanup.spec("plain", "true"))
        .await
        .unwrap();
    assert_eq!(
        runtime
            .inspect_container(&plain)
            .await
            .unwrap()
            .unwrap()
            .health,
        None
    );
}

#[tokio::test]
async fn stop_sends_sigkill_after_the_timeout_when_sigterm_is_ignored() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("stop");
    let id = runtime
        .create_container(&cleanup.spec("stubborn", "trap '' TERM; while true; do sleep 0.1; done"))
        .await
        .unwrap();
    runtime.start_container(&id).await.unwrap();
    let started = Instant::now();
    runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let status = runtime.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(status.state, ContainerState::Exited);
    assert_eq!(status.exit_code, Some(137), "killed: {status:?}");
    // Not a timing assertion on speed: a stop that returns before the timeout would
    // mean SIGTERM was not what the engine sent first.
    assert!(
        elapsed >= Duration::from_millis(900),
        "stopped after {elapsed:?}"
    );
    eprintln!("stop with a 1 s timeout took {elapsed:?}");

    // Stopping a stopped or missing container is fine.
    runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    runtime.remove_container(&id).await.unwrap();
    runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(runtime.inspect_container(&id).await.unwrap(), None);
}

#[tokio::test]
async fn process_settings_and_labels_are_applied() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("settings");
    let mut spec = ContainerSpec::new(cleanup.name("settings"), BUSYBOX);
    spec.labels = cleanup.labels();
    spec.labels
        .insert("berth.container".to_string(), "web".to_string());
    spec.entrypoint = Some(vec!["/bin/sh".to_string(), "-c".to_string()]);
    spec.command = Some(vec![
        "echo \"$GREETING\"; echo \"$EMPTY|\"; pwd; id -u; hostname".to_string(),
    ]);
    spec.env = vec![
        ("GREETING".to_string(), "hello world=1".to_string()),
        ("EMPTY".to_string(), String::new()),
    ];
    spec.working_dir = Some("/tmp".to_string());
    spec.user = Some("nobody".to_string());
    spec.hostname = Some("berth-host".to_string());
    spec.memory_bytes = Some(64 << 20);
    spec.memory_reservation_bytes = Some(32 << 20);
    spec.cpu_shares = Some(256);
    spec.init = true;

    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    let status = wait_until_exited(&runtime, &id).await;
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(status.name, spec.name);
    assert_eq!(status.image, BUSYBOX);
    assert!(status.image_id.starts_with("sha256:"));
    assert_eq!(
        status.labels.get("berth.container").map(String::as_str),
        Some("web")
    );
    let logs = runtime.logs(&id, None, None).await.unwrap();
    assert_eq!(
        messages(&logs),
        vec!["hello world=1", "|", "/tmp", "65534", "berth-host"]
    );

    // Resources, read back from the engine.
    let inspect = runtime.docker().inspect_container(&id, None).await.unwrap();
    let host_config = inspect.host_config.unwrap();
    assert_eq!(host_config.memory, Some(64 << 20));
    assert_eq!(host_config.memory_reservation, Some(32 << 20));
    assert_eq!(host_config.cpu_shares, Some(256));
    assert_eq!(host_config.init, Some(true));
}

#[tokio::test]
async fn bind_mounts_and_named_volumes_are_mounted() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("mounts");
    let host_dir = std::env::temp_dir().join(cleanup.name("bind"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello.txt"), "from the host\n").unwrap();

    let volume = VolumeSpec {
        name: cleanup.name("data"),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: cleanup.labels(),
    };
    runtime.create_volume(&volume).await.unwrap();
    runtime.create_volume(&volume).await.unwrap(); // idempotent

    let mounts = vec![
        MountSpec::Bind {
            source: host_dir.to_string_lossy().into_owned(),
            target: "/in".to_string(),
            read_only: true,
        },
        MountSpec::Volume {
            name: volume.name.clone(),
            target: "/data".to_string(),
            read_only: false,
        },
    ];
    let mut writer = cleanup.spec(
        "writer",
        "cat /in/hello.txt; echo persisted > /data/file; touch /in/x 2>/dev/null || echo read-only",
    );
    writer.mounts = mounts.clone();
    let writer_id = runtime.create_container(&writer).await.unwrap();
    runtime.start_container(&writer_id).await.unwrap();
    wait_until_exited(&runtime, &writer_id).await;
    let logs = runtime.logs(&writer_id, None, None).await.unwrap();
    assert_eq!(messages(&logs), vec!["from the host", "read-only"]);

    let mut reader = cleanup.spec("reader", "cat /data/file");
    reader.mounts = mounts;
    let reader_id = runtime.create_container(&reader).await.unwrap();
    runtime.start_container(&reader_id).await.unwrap();
    wait_until_exited(&runtime, &reader_id).await;
    let logs = runtime.logs(&reader_id, None, None).await.unwrap();
    assert_eq!(messages(&logs), vec!["persisted"]);

    runtime.remove_container(&writer_id).await.unwrap();
    runtime.remove_container(&reader_id).await.unwrap();
    runtime.remove_volume(&volume.name).await.unwrap();
    runtime.remove_volume(&volume.name).await.unwrap(); // missing is fine
    let _ = std::fs::remove_dir_all(&host_dir);
}

#[tokio::test]
async fn logs_carry_stream_timestamp_and_honour_since_and_tail() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("logs");
    let id = runtime
        .create_container(&cleanup.spec(
            "logs",
            // the sleeps order the lines: the engine copies stdout and stderr
            // concurrently, so back-to-back writes to both may swap
            "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; printf 'no newline'",
        ))
        .await
        .unwrap();
    runtime.start_container(&id).await.unwrap();
    wait_until_exited(&runtime, &id).await;

    let all = runtime.logs(&id, None, None).await.unwrap();
    assert_eq!(
        messages(&all),
        vec!["out1", "err1", "out2", "no newline"],
        "{all:?}"
    );
    assert_eq!(all[0].stream, Stream::Stdout);
    assert_eq!(all[1].stream, Stream::Stderr);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for entry in &all {
        assert!(
            entry.timestamp > now - 60.0 && entry.timestamp <= now + 1.0,
            "{entry:?}"
        );
    }

    let tail = runtime.logs(&id, None, Some(2)).await.unwrap();
    assert_eq!(messages(&tail), vec!["out2", "no newline"]);
    // `since` is exclusive and finer than the engine's whole seconds.
    let since = runtime
        .logs(&id, Some(all[1].timestamp), None)
        .await
        .unwrap();
    assert_eq!(messages(&since), vec!["out2", "no newline"]);

    match runtime.logs("berth-rt-no-such-container", None, None).await {
        Err(RuntimeError::NotFound(message)) => {
            assert!(message.contains("berth-rt-no-such-container"), "{message}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn list_containers_finds_running_and_stopped_containers_by_label() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("list");
    let running = runtime
        .create_container(&cleanup.spec("running", "exec sleep 60"))
        .await
        .unwrap();
    runtime.start_container(&running).await.unwrap();
    let exited = runtime
        .create_container(&cleanup.spec("exited", "exit 5"))
        .await
        .unwrap();
    runtime.start_container(&exited).await.unwrap();
    wait_until_exited(&runtime, &exited).await;

    let mut listed = runtime
        .list_containers(CASE_LABEL, &cleanup.case)
        .await
        .unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].id, exited);
    assert_eq!(listed[0].name, cleanup.name("exited"));
    assert_eq!(listed[0].state, ContainerState::Exited);
    assert_eq!(listed[0].exit_code, Some(5));
    assert_eq!(listed[1].id, running);
    assert_eq!(listed[1].state, ContainerState::Running);
    assert_eq!(
        listed[1].labels.get(TEST_LABEL).map(String::as_str),
        Some(TEST_LABEL_VALUE)
    );

    // Names are unique: a second create with the same name is a conflict.
    match runtime
        .create_container(&cleanup.spec("running", "true"))
        .await
    {
        Err(RuntimeError::Conflict(message)) => {
            assert!(message.contains(&cleanup.name("running")), "{message}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(runtime
        .list_containers(CASE_LABEL, "no-such-case")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn starting_a_missing_container_is_not_found_and_names_it() {
    let runtime = runtime().await;
    match runtime.start_container("berth-rt-missing").await {
        Err(RuntimeError::NotFound(message)) => {
            assert!(message.contains("berth-rt-missing"), "{message}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// What a container's linuxParameters, readonlyRootFilesystem, dockerSecurityOptions and
/// ulimits become: seen from inside the running container, and in the engine's record.
#[tokio::test]
async fn privilege_reducing_settings_confine_the_running_container() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("confined");
    let mut spec = cleanup.spec(
        "confined",
        "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; \
         touch /written 2>/dev/null && echo rootfs-writable || echo rootfs-read-only; \
         touch /scratch/file && echo scratch-writable; \
         df -k /scratch | tail -1 | awk '{print \"scratch \" $2}'; \
         df -k /dev/shm | tail -1 | awk '{print \"shm \" $2}'; \
         echo \"nofile $(ulimit -Sn) $(ulimit -Hn)\"; \
         cat /proc/1/comm",
    );
    spec.cap_drop = vec!["ALL".to_string()];
    spec.readonly_rootfs = true;
    spec.init = true;
    spec.shm_size_bytes = Some(32 << 20);
    spec.tmpfs = vec![("/scratch".to_string(), "size=16m,noexec".to_string())];
    spec.security_options = vec!["no-new-privileges".to_string()];
    spec.ulimits = vec![("nofile".to_string(), 1234, 2345)];
    spec.memory_bytes = Some(64 << 20);
    spec.memory_swap_bytes = Some(64 << 20);

    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    let status = wait_until_exited(&runtime, &id).await;
    let logs = runtime.logs(&id, None, None).await.unwrap();
    assert_eq!(status.exit_code, Some(0), "{logs:?}");
    let lines: Vec<String> = messages(&logs)
        .iter()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        vec![
            "CapEff: 0000000000000000",
            "NoNewPrivs: 1",
            "rootfs-read-only",
            "scratch-writable",
            "scratch 16384",
            "shm 32768",
            "nofile 1234 2345",
            "docker-init",
        ]
    );

    let inspect = runtime.docker().inspect_container(&id, None).await.unwrap();
    let host_config = inspect.host_config.unwrap();
    assert_eq!(host_config.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(host_config.readonly_rootfs, Some(true));
    assert_eq!(
        host_config.security_opt,
        Some(vec!["no-new-privileges".to_string()])
    );
    assert_eq!(host_config.memory_swap, Some(64 << 20));
}

/// pidMode and ipcMode `task`: a container joins the namespaces its sandbox holds.
#[tokio::test]
async fn a_container_joins_the_pid_and_ipc_namespaces_of_another() {
    ensure_test_images();
    let runtime = runtime().await;
    let cleanup = Cleanup::new("namespaces");
    let mut owner = cleanup.spec("owner", "exec sleep 300");
    owner.ipc_mode = Some(berth_runtime::NamespaceMode::Shareable);
    let owner_id = runtime.create_container(&owner).await.unwrap();
    runtime.start_container(&owner_id).await.unwrap();

    let mut joiner = cleanup.spec(
        "joiner",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; readlink /proc/1/ns/ipc; readlink /proc/self/ns/ipc",
    );
    joiner.pid_mode = Some(berth_runtime::NamespaceMode::Container(owner_id.clone()));
    joiner.ipc_mode = Some(berth_runtime::NamespaceMode::Container(owner_id.clone()));
    let joiner_id = runtime.create_container(&joiner).await.unwrap();
    runtime.start_container(&joiner_id).await.unwrap();
    let status = wait_until_exited(&runtime, &joiner_id).await;
    let logs = runtime.logs(&joiner_id, None, None).await.unwrap();
    assert_eq!(status.exit_code, Some(0), "{logs:?}");
    let lines = messages(&logs);
    assert_eq!(
        lines.first().map(|l| l.trim()),
        Some("sleep 300"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1], lines[2], "one IPC namespace: {lines:?}");
    runtime.remove_container(&owner_id).await.unwrap();
}
