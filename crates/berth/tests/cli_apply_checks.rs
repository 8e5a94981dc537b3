//! `berth apply` checks every reference and every conflict before its first change, and
//! `--dry-run` prints the plan and changes nothing: against a real control plane
//! (berth-server over HTTP, an in-memory store, no agent, no Docker). "Nothing changed"
//! is the whole store compared before and after, and what boto3 lists and describes.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use berth_auth::{Credentials, Verifier};
use berth_server::ControlPlane;
use berth_store::{MemoryBackend, Store};

const ACCESS_KEY_ID: &str = "AKIDAPPLYCHECKS";
const SECRET: &str = "apply-checks-secret";

/// A control plane on a free port for as long as the test runs, over a store the test
/// reads directly.
struct Server {
    address: SocketAddr,
    store: Arc<Store>,
}

impl Server {
    fn start() -> Server {
        let store = Arc::new(Store::open(Box::new(MemoryBackend::default())).unwrap());
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
            store.clone(),
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
        Server { address, store }
    }

    /// `berth apply -f - [ARGS]` with `manifest` on standard input.
    fn apply(&self, manifest: &str, args: &[&str]) -> Applied {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["apply", "-f", "-"])
            .args(args)
            .args(["--endpoint", &format!("http://{}", self.address)])
            .args([
                "--access-key-id",
                ACCESS_KEY_ID,
                "--secret-access-key",
                SECRET,
            ])
            .args(["--region", "us-east-1", "--cluster", "checks"])
            .env(
                "BERTH_DATA_DIR",
                std::env::temp_dir().join("berth-apply-checks-no-such-dir"),
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
        input.write_all(manifest.as_bytes()).unwrap();
        drop(input);
        let output = child.wait_with_output().unwrap();
        Applied {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything berth keeps.
    fn state(&self) -> berth_core::State {
        (*self.store.snapshot()).clone()
    }

    /// What boto3 lists and describes: load balancers, target groups with their
    /// health checks and attributes, every listener, clusters, task definitions and
    /// services.
    fn described(&self) -> serde_json::Value {
        let endpoint = format!("http://{}", self.address);
        let output = support::python_boto3(
            DESCRIBE_EVERYTHING,
            &[&endpoint, ACCESS_KEY_ID, SECRET],
            &[],
        );
        assert!(
            output.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the script printed JSON")
    }

    /// Applies `manifest`, which must be refused with every one of `words` in the
    /// error, and checks that nothing at all changed on the server.
    fn assert_refused_changing_nothing(&self, manifest: &str, words: &[&str]) -> String {
        let (state, described) = (self.state(), self.described());
        let applied = self.apply(manifest, &[]);
        assert!(!applied.ok, "refused: {}", applied.stdout);
        assert!(
            applied.stdout.is_empty(),
            "nothing was done: {}",
            applied.stdout
        );
        for word in words {
            assert!(
                applied.stderr.contains(word),
                "'{word}' missing from: {}",
                applied.stderr
            );
        }
        assert!(
            self.state() == state,
            "the store changed: {}",
            applied.stderr
        );
        assert_eq!(self.described(), described, "{}", applied.stderr);
        applied.stderr
    }
}

const DESCRIBE_EVERYTHING: &str = r#"
import json, sys
import boto3
keys = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
            aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
ecs, elbv2 = boto3.client("ecs", **keys), boto3.client("elbv2", **keys)
seen = {}
seen["loadBalancers"] = elbv2.describe_load_balancers()["LoadBalancers"]
seen["listeners"] = [elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
                     for lb in seen["loadBalancers"]]
seen["targetGroups"] = elbv2.describe_target_groups()["TargetGroups"]
seen["targetGroupAttributes"] = [
    elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    for tg in seen["targetGroups"]]
seen["clusters"] = ecs.list_clusters()["clusterArns"]
seen["taskDefinitions"] = ecs.list_task_definitions()["taskDefinitionArns"]
seen["services"] = []
for cluster in seen["clusters"]:
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    if arns:
        seen["services"] += ecs.describe_services(cluster=cluster, services=arns)["services"]
print(json.dumps(seen, default=str, sort_keys=True))
"#;

struct Applied {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Team A's file: a load balancer, a target group `shared`, a listener, a service.
fn team_a(port: u16, image: &str, health_path: &str) -> String {
    format!(
        r#"
clusters: [checks]
loadBalancers: [team-a]
targetGroups:
  - {{name: shared, protocol: HTTP, port: 80, healthCheckPath: {health_path}}}
listeners:
  - {{loadBalancer: team-a, port: {port}, targetGroup: shared}}
taskDefinitions:
  - family: web
    containerDefinitions:
      - name: web
        image: {image}
        memory: 64
        portMappings: [{{containerPort: 80}}]
services:
  - serviceName: web
    taskDefinition: web
    desiredCount: 2
    loadBalancers: [{{targetGroup: shared, containerName: web, containerPort: 80}}]
"#
    )
}

fn started_with_team_a() -> (Server, u16) {
    let server = Server::start();
    let port = support::free_port();
    let applied = server.apply(&team_a(port, "web:1", "/"), &[]);
    assert!(applied.ok, "{}{}", applied.stdout, applied.stderr);
    (server, port)
}

#[test]
fn a_target_group_of_another_load_balancer_is_refused_before_any_change() {
    let (server, port) = started_with_team_a();
    let other_port = support::free_port();

    // Another file wants `shared` for its own load balancer: its health check would be
    // changed, and its listener would fail, if apply did not check first.
    let team_b = format!(
        r#"
loadBalancers: [team-b]
targetGroups:
  - {{name: shared, protocol: HTTP, port: 80, healthCheckPath: /team-b}}
listeners:
  - {{loadBalancer: team-b, port: {other_port}, targetGroup: shared}}
"#
    );
    server.assert_refused_changing_nothing(
        &team_b,
        &[
            &format!("<stdin>: listeners[0] (listener team-b:{other_port})"),
            "target group 'shared' already belongs to load balancer 'team-a'",
            "from load balancer 'team-b'",
        ],
    );

    // A file that declares the target group alone, no load balancer: still team A's.
    let alone =
        "targetGroups:\n  - {name: shared, protocol: HTTP, port: 80, healthCheckPath: /alone}\n";
    server.assert_refused_changing_nothing(
        alone,
        &[
            "targetGroups[0] (target group shared)",
            "belongs to load balancer 'team-a', which this file does not declare",
        ],
    );
    let groups = &server.described()["targetGroups"];
    assert_eq!(groups[0]["HealthCheckPath"], "/", "{groups}");

    // Team A's own file still applies, and changes the health check.
    let applied = server.apply(&team_a(port, "web:1", "/health"), &[]);
    assert!(applied.ok, "{}", applied.stderr);
    assert!(
        applied
            .stdout
            .contains("target group shared updated (healthCheckPath / -> /health)"),
        "{}",
        applied.stdout
    );

    // Another file's service joins `shared` (naming it is no takeover); team A's file
    // may then no longer change the group under it, but still applies as it is.
    let api = "services:\n  - serviceName: api\n    taskDefinition: web\n    desiredCount: 1\n    loadBalancers: [{targetGroup: shared, containerName: web, containerPort: 80}]\n";
    let applied = server.apply(api, &[]);
    assert!(applied.ok, "{}", applied.stderr);
    assert_eq!(applied.stdout, "service api created\n");
    server.assert_refused_changing_nothing(
        &team_a(port, "web:1", "/again"),
        &[
            "targetGroups[0] (target group shared)",
            "is used by service 'api' of cluster 'checks', which this file does not declare",
        ],
    );
    let applied = server.apply(&team_a(port, "web:1", "/health"), &[]);
    assert!(applied.ok, "{}", applied.stderr);
    assert!(
        applied.stdout.contains("target group shared unchanged"),
        "{}",
        applied.stdout
    );
}

#[test]
fn a_port_another_load_balancer_listens_on_is_refused_before_any_change() {
    let (server, port) = started_with_team_a();
    let taken = format!(
        r#"
loadBalancers: [team-c]
targetGroups:
  - {{name: team-c, protocol: HTTP, port: 80}}
listeners:
  - {{loadBalancer: team-c, port: {port}, targetGroup: team-c}}
"#
    );
    server.assert_refused_changing_nothing(
        &taken,
        &[
            &format!("listeners[0] (listener team-c:{port})"),
            &format!(
                "port {port} is already taken by listener team-a:{port} of load balancer 'team-a'"
            ),
        ],
    );
    // On team A's load balancer, the same port forwarding elsewhere: refused too.
    let elsewhere = taken.replace(
        &format!("{{loadBalancer: team-c, port: {port}"),
        &format!("{{loadBalancer: team-a, port: {port}"),
    );
    server.assert_refused_changing_nothing(
        &elsewhere,
        &["forwards to target group 'shared', not 'team-c'"],
    );
}

#[test]
fn a_service_naming_what_its_task_definition_lacks_is_refused_before_registering() {
    let (server, port) = started_with_team_a();
    // A new image (a new revision to register) and a container the definition lacks.
    let wrong_container = team_a(port, "web:2", "/").replace(
        "containerName: web, containerPort: 80",
        "containerName: nginx, containerPort: 80",
    );
    server.assert_refused_changing_nothing(
        &wrong_container,
        &[
            "services[0] (service web)",
            "loadBalancers[0].containerName 'nginx' names no container of task definition web:2",
        ],
    );
    let wrong_port = team_a(port, "web:2", "/").replace(
        "containerName: web, containerPort: 80",
        "containerName: web, containerPort: 8080",
    );
    server.assert_refused_changing_nothing(
        &wrong_port,
        &["loadBalancers[0].containerPort 8080 is not a port mapping of container 'web'"],
    );
    // A target group no load balancer forwards to.
    let unforwarded = team_a(port, "web:2", "/").replace(
        "services:\n",
        "services:\n  - serviceName: lonely\n    taskDefinition: web\n    loadBalancers: [{targetGroup: lonely, containerName: web, containerPort: 80}]\n",
    ).replace(
        "targetGroups:\n",
        "targetGroups:\n  - {name: lonely, protocol: HTTP, port: 80}\n",
    );
    server.assert_refused_changing_nothing(
        &unforwarded,
        &["services[0] (service lonely): loadBalancers[0]: no load balancer forwards to target group 'lonely'"],
    );
    // berth-core's own rules, before anything is read.
    let too_many = team_a(port, "web:2", "/").replace("desiredCount: 2", "desiredCount: 20000");
    server.assert_refused_changing_nothing(
        &too_many,
        &["services[0] (service web): desiredCount must be between 0 and 10000, got 20000"],
    );
    let definitions = &server.described()["taskDefinitions"];
    assert_eq!(
        definitions.as_array().map(Vec::len),
        Some(1),
        "web:2 was never registered: {definitions}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let server = Server::start();
    let port = support::free_port();

    // On an empty server: every entry would be created; nothing is.
    let (state, described) = (server.state(), server.described());
    let dry = server.apply(&team_a(port, "web:1", "/"), &["--dry-run"]);
    assert!(dry.ok, "{}", dry.stderr);
    assert_eq!(
        dry.stdout,
        format!(
            "cluster checks created\nload balancer team-a created\ntarget group shared created\n\
             listener team-a:{port} created (forward to shared)\ntask definition web:1 registered\n\
             service web created\n"
        )
    );
    assert!(
        dry.stderr.contains("dry run: nothing was changed"),
        "{}",
        dry.stderr
    );
    assert!(server.state() == state, "a dry run changed the store");
    assert_eq!(server.described(), described);

    // The real apply prints the same lines.
    let applied = server.apply(&team_a(port, "web:1", "/"), &[]);
    assert!(applied.ok, "{}", applied.stderr);
    assert_eq!(applied.stdout, dry.stdout);

    // A changed file: the dry run names each change, and the apply after it agrees.
    let changed = team_a(port, "web:2", "/health").replace("desiredCount: 2", "desiredCount: 3");
    let (state, described) = (server.state(), server.described());
    let dry = server.apply(&changed, &["--dry-run"]);
    assert!(dry.ok, "{}", dry.stderr);
    assert_eq!(
        dry.stdout,
        format!(
            "cluster checks unchanged\nload balancer team-a unchanged\n\
             target group shared updated (healthCheckPath / -> /health)\n\
             listener team-a:{port} unchanged\ntask definition web:2 registered\n\
             service web updated (taskDefinition web:1 -> web:2, desiredCount 2 -> 3)\n"
        )
    );
    assert!(server.state() == state, "a dry run changed the store");
    assert_eq!(server.described(), described);
    let applied = server.apply(&changed, &[]);
    assert!(applied.ok, "{}", applied.stderr);
    assert_eq!(applied.stdout, dry.stdout);

    // A dry run of a file apply would refuse is refused the same way.
    let refused = changed.replace("containerName: web,", "containerName: nope,");
    let dry = server.apply(&refused, &["--dry-run"]);
    assert!(!dry.ok);
    assert!(
        dry.stderr
            .contains("containerName 'nope' names no container"),
        "{}",
        dry.stderr
    );
}
