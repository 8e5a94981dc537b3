//! The client commands against a real control plane (berth-server over HTTP, an
//! in-memory store, no agent): apply's idempotence and errors, ps, events, scale and
//! logs' messages. No Docker: no task ever runs here.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use berth_auth::{Credentials, Verifier};
use berth_server::ControlPlane;
use berth_store::{MemoryBackend, Store};

const ACCESS_KEY_ID: &str = "AKIDCLITEST";
const SECRET: &str = "cli-test-secret";

/// A control plane serving on a free port for as long as the test runs.
fn start_server() -> SocketAddr {
    start_server_over(Arc::new(
        Store::open(Box::new(MemoryBackend::default())).unwrap(),
    ))
}

/// The same, over a store the test can change behind the API (as agents do).
fn start_server_over(store: Arc<Store>) -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let control_plane = Arc::new(ControlPlane::new(
        store,
        "000000000000".to_string(),
        "us-east-1".to_string(),
        berth_core::PrivilegePolicy::allow_all(),
    ));
    let verifier = Verifier::from_credentials(Credentials::new(ACCESS_KEY_ID, SECRET));
    std::thread::spawn(move || {
        runtime
            .block_on(berth_server::serve(
                listener,
                control_plane,
                verifier,
                std::future::pending(),
            ))
            .unwrap();
    });
    address
}

fn berth(address: SocketAddr, args: &[&str], stdin: Option<&str>) -> Output {
    berth_in(Some("our-project"), address, args, stdin)
}

/// `berth ARGS` with `--cluster CLUSTER` when one is given.
fn berth_in(
    cluster: Option<&str>,
    address: SocketAddr,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .args([
            "--endpoint",
            &format!("http://{address}"),
            "--access-key-id",
            ACCESS_KEY_ID,
        ])
        .args(["--secret-access-key", SECRET, "--region", "us-east-1"])
        .args(cluster.map(|c| ["--cluster", c]).into_iter().flatten())
        .env(
            "BERTH_DATA_DIR",
            std::env::temp_dir().join("berth-cli-test-no-such-dir"),
        )
        .env_remove("BERTH_CLUSTER")
        .env_remove("BERTH_ENDPOINT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// The line below `our-project` in `berth ps`'s tree, its columns one space apart.
fn service_line(text: &str) -> String {
    let mut lines = text
        .lines()
        .skip_while(|line| !line.starts_with("our-project"));
    assert_eq!(lines.next(), Some("our-project"), "{text}");
    lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn apply(address: SocketAddr, manifest: &str) -> (bool, String, String) {
    let output = berth(address, &["apply", "-f", "-"], Some(manifest));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn manifest(desired_count: i64, image: &str) -> String {
    format!(
        r#"
cluster: our-project
clusters: [ {{clusterName: our-project}} ]
taskDefinitions:
  - family: member
    containerDefinitions:
      - name: web
        image: {image}
        memory: 64
        portMappings: [ {{containerPort: 8080}} ]
services:
  - serviceName: member
    taskDefinition: member
    desiredCount: {desired_count}
"#
    )
}

#[test]
fn apply_creates_then_changes_only_what_differs() {
    let address = start_server();

    let (ok, stdout, stderr) = apply(address, &manifest(3, "member:1"));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "cluster our-project created\ntask definition member:1 registered\nservice member created\n");

    let (ok, stdout, stderr) = apply(address, &manifest(3, "member:1"));
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "cluster our-project unchanged\ntask definition member:1 unchanged\nservice member unchanged\n");

    let (ok, stdout, stderr) = apply(address, &manifest(5, "member:2"));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "cluster our-project unchanged\ntask definition member:2 registered\n\
         service member updated (taskDefinition member:1 -> member:2, desiredCount 3 -> 5)\n"
    );

    // A bad field anywhere: an error naming the entry and field, and nothing changes.
    let broken = manifest(7, "member:3").replace("memory: 64", "memory: lots");
    let (ok, stdout, stderr) = apply(address, &broken);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("<stdin>: taskDefinitions[0] (family member): containerDefinitions[0].memory: invalid type"),
        "{stderr}"
    );
    let (_, stdout, _) = apply(address, &manifest(5, "member:2"));
    assert!(stdout.contains("service member unchanged"), "{stdout}");

    // Typos are refused by name with the nearest known key, and nothing changes.
    for (typo, expected) in [
        (
            manifest(9, "member:4").replace("desiredCount:", "desiredCont:"),
            "services[0] (service member): desiredCont: unknown field `desiredCont` (did you mean `desiredCount`?)",
        ),
        (
            manifest(5, "member:4").replace("memory: 64", "memory: 64\n        comand: [sh]"),
            "taskDefinitions[0] (family member): containerDefinitions[0].comand: unknown field `comand` (did you mean `command`?)",
        ),
    ] {
        let (ok, stdout, stderr) = apply(address, &typo);
        assert!(!ok, "a typo is refused: {stdout}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let (_, stdout, _) = apply(address, &manifest(5, "member:2"));
    assert!(
        stdout.contains("task definition member:2 unchanged"),
        "{stdout}"
    );
    assert!(stdout.contains("service member unchanged"), "{stdout}");

    // A service naming a task definition nobody registered: refused before any change.
    let missing = "services: [ {serviceName: other, taskDefinition: nosuch, desiredCount: 1} ]";
    let (ok, _, stderr) = apply(address, missing);
    assert!(!ok);
    assert!(
        stderr.contains("services[0] (service other): task definition 'nosuch' not found"),
        "{stderr}"
    );

    let ps = berth(address, &["ps"], None);
    let text = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.status.success(),
        "{}",
        String::from_utf8_lossy(&ps.stderr)
    );
    assert!(
        text.starts_with("NAME ")
            && service_line(&text).starts_with("└─ service member ACTIVE 0/5 running"),
        "{text}"
    );

    let events = berth(address, &["events", "member"], None);
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );

    let stop = berth(address, &["stop", "0123456789ab"], None);
    assert!(!stop.status.success());
    assert!(String::from_utf8_lossy(&stop.stderr)
        .contains("task '0123456789ab' not found in cluster 'our-project'"));
}

#[test]
fn commands_name_what_they_cannot_find() {
    let address = start_server();
    let (ok, _, stderr) = apply(address, "clusters: [our-project]");
    assert!(ok, "{stderr}");

    // One deployment and nothing to start: scaling to 0 settles at once.
    let service = "serviceName: member\ntaskDefinition: member\ndesiredCount: 2\n";
    let definition = r#"{"family": "member", "containerDefinitions": [{"name": "web", "image": "x", "memory": 64}]}"#;
    assert!(apply(address, definition).0);
    let (ok, stdout, stderr) = apply(address, service);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "service member created\n");
    let scale = berth(address, &["scale", "member", "0"], None);
    let stdout = String::from_utf8_lossy(&scale.stdout);
    assert!(
        scale.status.success(),
        "{}",
        String::from_utf8_lossy(&scale.stderr)
    );
    assert!(
        stdout.starts_with("service member: desiredCount 2 -> 0\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("service member: 0 running\n"), "{stdout}");

    let logs = berth(address, &["logs", "member"], None);
    assert!(logs.status.success());
    assert!(String::from_utf8_lossy(&logs.stderr).contains("service 'member' has no running tasks"));

    let ps = berth(address, &["ps", "-a"], None);
    let text = String::from_utf8_lossy(&ps.stdout);
    assert!(
        service_line(&text).starts_with("└─ service member ACTIVE 0/0 running member:1"),
        "{text}"
    );

    for (args, message) in [
        (
            vec!["scale", "nope", "3"],
            "service 'nope' not found in cluster 'our-project'",
        ),
        (
            vec!["events", "nope"],
            "service 'nope' not found in cluster 'our-project'",
        ),
        (
            vec!["logs", "nope"],
            "no task or service 'nope' in cluster 'our-project'",
        ),
    ] {
        let output = berth(address, &args, None);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn nodes_lists_each_container_instance_with_its_agent_and_resources() {
    let store = Arc::new(Store::open(Box::new(MemoryBackend::default())).unwrap());
    let address = start_server_over(store.clone());
    let (ok, _, stderr) = apply(address, "clusters: [our-project]");
    assert!(ok, "{stderr}");
    let none = berth(address, &["nodes"], None);
    assert!(none.status.success());
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "no container instances\n"
    );

    // Two agents join the cluster; the second then loses contact.
    let scope = berth_core::ArnScope {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
    };
    let policy = berth_core::PrivilegePolicy::allow_all();
    let mut ids = berth_core::SequentialIds::default();
    for (node, cpu) in [("node-a", 2048), ("node-b", 4096)] {
        let registration = berth_core::nodes::NodeRegistration {
            node_id: node.into(),
            hostname: format!("host-{node}"),
            cpu,
            memory: 4096,
            agent_version: "1.0.0".into(),
            docker_version: "27.0.0".into(),
            cluster: "our-project".into(),
            joins_every_cluster: false,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        };
        let mut ctx = berth_core::ecs::Context {
            now: berth_core::Timestamp(1_709_251_200_000),
            scope: &scope,
            ids: &mut ids,
            policy: &policy,
        };
        let commands =
            store.read(|state| berth_core::nodes::register_node(state, &registration, &mut ctx));
        store.apply(commands).unwrap();
    }
    let mut lost = store.read(|state| {
        state
            .container_instances
            .values()
            .find(|i| i.node_id == "node-b")
            .map(|i| berth_core::model::ContainerInstance::clone(i))
            .unwrap()
    });
    lost.agent_connected = false;
    store
        .apply(vec![berth_core::Command::PutContainerInstance(lost)])
        .unwrap();

    let nodes = berth(address, &["nodes"], None);
    let text = String::from_utf8_lossy(&nodes.stdout);
    assert!(
        nodes.status.success(),
        "{}",
        String::from_utf8_lossy(&nodes.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("CLUSTER") && lines[0].contains("AGENT"),
        "{text}"
    );
    let row = |host: &str| {
        lines
            .iter()
            .find(|l| l.contains(host))
            .unwrap_or_else(|| panic!("no row for {host}: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let a = row("host-node-a");
    assert_eq!(a[0], "our-project");
    assert!(
        a.contains(&"connected") && a.contains(&"0/2048") && a.contains(&"0/4096"),
        "{a:?}"
    );
    let b = row("host-node-b");
    assert!(
        b.contains(&"disconnected") && b.contains(&"0/4096"),
        "{b:?}"
    );

    // Drained by host name, then made ACTIVE again.
    let drain = berth(address, &["drain", "host-node-a"], None);
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    assert!(String::from_utf8_lossy(&drain.stdout).contains("(host-node-a) is DRAINING"));
    let nodes = berth(address, &["nodes"], None);
    assert!(String::from_utf8_lossy(&nodes.stdout)
        .lines()
        .any(|l| l.contains("host-node-a") && l.contains("DRAINING")));
    let undo = berth(address, &["drain", "--undo", "host-node-a"], None);
    assert!(String::from_utf8_lossy(&undo.stdout).contains("is ACTIVE"));
    let unknown = berth(address, &["drain", "host-nope"], None);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("no container instance 'host-nope' in cluster 'our-project'"));
}

#[test]
fn ps_with_no_cluster_selected_shows_every_cluster() {
    let address = start_server();
    let (ok, _, stderr) = apply(address, "clusters: [alpha, beta]");
    assert!(ok, "{stderr}");
    let every = berth_in(None, address, &["ps"], None);
    let text = String::from_utf8_lossy(&every.stdout);
    assert!(
        every.status.success(),
        "{}",
        String::from_utf8_lossy(&every.stderr)
    );
    assert!(
        text.contains("alpha\n") && text.contains("beta\n"),
        "{text}"
    );
    let one = berth_in(Some("beta"), address, &["ps"], None);
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(
        text.lines().nth(1) == Some("beta") && !text.contains("alpha"),
        "{text}"
    );
}
