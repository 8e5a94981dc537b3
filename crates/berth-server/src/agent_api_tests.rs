//! The agent listener over real sockets and real TLS on 127.0.0.1: joining takes a
//! valid token, every other call a node certificate of this cluster, and a node acts
//! only as itself. Each refusal is checked to have changed nothing.

use std::sync::Arc;
use std::time::Duration;

use berth_core::elbv2::model::{TargetHealth, TargetHealthState, TargetRecord};
use berth_proto::remote::{
    paths, AssignmentsRequest, BalancerConfigRequest, JoinRequest, JoinResponse, Refusal,
    RefusalCode, RegisterRequest, ReportRequest,
};
use berth_proto::{
    Assignments, BalancerConfig, NodeRegistration, TaskReport, TaskStatus, PROTOCOL_VERSION,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cluster_ca::ClusterCa;
use crate::join_token::{JoinToken, JoinTokens};
use crate::{agent_limits, serve_agents, AgentApi, ApiLimits, ControlPlane, NodeLiveness};

struct Cluster {
    address: std::net::SocketAddr,
    control_plane: Arc<ControlPlane>,
    ca: Arc<ClusterCa>,
    tokens: JoinTokens,
    token: JoinToken,
    dir: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

/// A node's credentials: its key and, once joined, its certificate.
struct Node {
    id: String,
    key: rcgen::KeyPair,
    certificate: Option<CertificateDer<'static>>,
}

impl Node {
    fn new(id: &str) -> Node {
        Node {
            id: id.to_string(),
            key: rcgen::KeyPair::generate().unwrap(),
            certificate: None,
        }
    }

    fn request(&self) -> String {
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&self.key)
            .unwrap()
            .pem()
            .unwrap()
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

fn registration(node_id: &str) -> NodeRegistration {
    NodeRegistration {
        node_id: node_id.to_string(),
        hostname: format!("host-{node_id}"),
        cpu: 2048,
        memory: 4096,
        agent_version: "1".to_string(),
        docker_version: "27".to_string(),
        cluster: "default".to_string(),
        joins_every_cluster: false,
        address: Some("127.0.0.1".to_string()),
        attributes: [("ecs.os-type".to_string(), "linux".to_string())].into(),
        capacity_provider: None,
    }
}

/// One POST over a new TLS connection; the status and body, or the error.
async fn post_to(
    address: std::net::SocketAddr,
    config: rustls::ClientConfig,
    path: &str,
    body: &serde_json::Value,
) -> std::io::Result<(u16, String)> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::net::TcpStream::connect(address).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, stream).await?;
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(&body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

impl Cluster {
    async fn start(name: &str) -> Cluster {
        Cluster::start_with(name, ApiLimits::default()).await
    }

    async fn start_with(name: &str, limits: ApiLimits) -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("berth-agent-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = time::OffsetDateTime::now_utc();
        let (ca, _) = ClusterCa::open_or_create(&dir, now).unwrap();
        let ca = Arc::new(ca);
        let tokens = JoinTokens::in_dir(&dir);
        let (token, _) = tokens
            .rotate(&ca.fingerprint(), now.unix_timestamp() as u64, 3600)
            .unwrap();
        let tls = ca
            .agent_listener_config(&["127.0.0.1".to_string()], now)
            .unwrap();
        let control_plane = Arc::new(ControlPlane::in_memory());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve_agents(
            listener,
            AgentApi {
                control_plane: control_plane.clone(),
                ca: ca.clone(),
                tokens: tokens.clone(),
                liveness: Arc::new(NodeLiveness::new()),
                task_requests: Arc::new(crate::AgentRequests::new(control_plane.store.clone())),
            },
            tls,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Cluster {
            address,
            control_plane,
            ca,
            tokens,
            token,
            dir,
            stop: Some(stop),
        }
    }

    fn client_config(&self, node: Option<&Node>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.certificate().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        match node.and_then(|n| n.certificate.clone().map(|c| (n, c))) {
            Some((node, certificate)) => builder
                .with_client_auth_cert(vec![certificate], node.private_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        }
    }

    /// A new TLS connection, with the node's certificate or none, handshake done.
    async fn open(
        &self,
        node: Option<&Node>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_config(node)));
        let stream = tokio::net::TcpStream::connect(self.address).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        connector.connect(name, stream).await
    }

    async fn post_with(
        &self,
        config: rustls::ClientConfig,
        path: &str,
        body: &serde_json::Value,
    ) -> std::io::Result<(u16, String)> {
        post_to(self.address, config, path, body).await
    }

    async fn post(
        &self,
        node: Option<&Node>,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, String) {
        self.post_with(self.client_config(node), path, &body)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    async fn join_as(&self, node: &mut Node, token: &str) -> (u16, String) {
        let request = JoinRequest {
            protocol_version: PROTOCOL_VERSION,
            token: token.to_string(),
            node_id: node.id.clone(),
            certificate_request: node.request(),
        };
        let (status, body) = self
            .post(None, paths::JOIN, serde_json::to_value(request).unwrap())
            .await;
        if status == 200 {
            let answer: JoinResponse = serde_json::from_str(&body).unwrap();
            assert_eq!(answer.ca_certificate, self.ca.certificate_pem());
            node.certificate =
                Some(CertificateDer::from_pem_slice(answer.certificate.as_bytes()).unwrap());
        }
        (status, body)
    }

    async fn joined(&self, id: &str) -> Node {
        let mut node = Node::new(id);
        let (status, body) = self.join_as(&mut node, &self.token.reveal()).await;
        assert_eq!(status, 200, "{body}");
        node
    }

    async fn register(&self, node: &Node, registration: NodeRegistration) -> (u16, String) {
        let request = RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            registration,
        };
        self.post(
            Some(node),
            paths::REGISTER,
            serde_json::to_value(request).unwrap(),
        )
        .await
    }

    fn revision(&self) -> u64 {
        *self.control_plane.store.watch().borrow()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn refusal(body: &str) -> RefusalCode {
    serde_json::from_str::<Refusal>(body)
        .unwrap_or_else(|e| panic!("not a refusal ({e}): {body}"))
        .code
}

#[tokio::test]
async fn a_node_joins_with_the_token_then_registers_and_polls_as_itself() {
    let cluster = Cluster::start("join").await;
    let node = cluster.joined("n1").await;
    let (status, body) = cluster.register(&node, registration("n1")).await;
    assert_eq!(status, 200, "{body}");
    let attributes = cluster.control_plane.store.read(|state| {
        let instance = state
            .container_instances
            .values()
            .find(|i| i.node_id == "n1")
            .expect("a container instance of n1");
        assert!(instance.agent_connected);
        instance.attributes.clone()
    });
    assert_eq!(attributes["ecs.os-type"], "linux");

    let poll = AssignmentsRequest {
        node_id: "n1".into(),
        since: 0,
        timeout_ms: 0,
    };
    let (status, body) = cluster
        .post(
            Some(&node),
            paths::ASSIGNMENTS,
            serde_json::to_value(poll).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let assignments: Assignments = serde_json::from_str(&body).unwrap();
    assert!(assignments.revision > 0);
    let (status, _) = cluster.post(Some(&node), paths::HEARTBEAT, json!({})).await;
    assert_eq!(status, 200);

    // Joined once, the node id is taken: a second join (even with the token) is refused.
    let mut again = Node::new("n1");
    let (status, body) = cluster.join_as(&mut again, &cluster.token.reveal()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(refusal(&body), RefusalCode::NodeExists);
}

#[tokio::test]
async fn a_bad_expired_or_replaced_token_gets_nothing() {
    let cluster = Cluster::start("tokens").await;
    let text = cluster.token.reveal();
    let secret = text.split('.').nth(2).unwrap().to_string();
    let wrong_secret: String = secret.chars().rev().collect();
    let wrong = text.replace(&secret, &wrong_secret);
    let other_ca = format!(
        "berth1.{}.{}.{}",
        cluster.token.id(),
        secret,
        "ab".repeat(32)
    );
    for (token, what) in [
        (wrong.as_str(), "a wrong secret"),
        (other_ca.as_str(), "another cluster's CA"),
        ("berth1.nope", "a malformed token"),
    ] {
        let mut node = Node::new("n1");
        let (status, body) = cluster.join_as(&mut node, token).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(refusal(&body), RefusalCode::InvalidToken, "{what}");
        assert!(node.certificate.is_none());
        assert!(!body.contains(&secret), "the refusal echoes the secret");
    }

    // Rotated: the old token stops working, the new one joins.
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let (rotated, _) = cluster
        .tokens
        .rotate(&cluster.ca.fingerprint(), now, 3600)
        .unwrap();
    let mut node = Node::new("n1");
    let (status, _) = cluster.join_as(&mut node, &text).await;
    assert_eq!(status, 403);
    let (status, body) = cluster.join_as(&mut node, &rotated.reveal()).await;
    assert_eq!(status, 200, "{body}");

    // Expired (made long ago, for a minute).
    let (expired, _) = cluster
        .tokens
        .rotate(&cluster.ca.fingerprint(), now - 7200, 60)
        .unwrap();
    let mut late = Node::new("n2");
    let (status, body) = cluster.join_as(&mut late, &expired.reveal()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");

    // A join in another protocol version is told so.
    let request = json!({
        "protocolVersion": PROTOCOL_VERSION + 1, "token": rotated.reveal(),
        "nodeId": "n3", "certificateRequest": Node::new("n3").request()
    });
    let (status, body) = cluster.post(None, paths::JOIN, request).await;
    assert_eq!(status, 400);
    assert_eq!(refusal(&body), RefusalCode::IncompatibleVersion);
    assert!(body.contains("version"), "{body}");
    let nodes = cluster.control_plane.store.read(|state| state.nodes.len());
    assert_eq!(nodes, 0, "a join registered something");
}

#[tokio::test]
async fn without_a_node_certificate_only_join_answers() {
    let cluster = Cluster::start("anonymous").await;
    let owner = cluster.joined("n1").await;
    cluster.register(&owner, registration("n1")).await;
    let before = cluster.revision();
    for (path, body) in [
        (
            paths::REGISTER,
            json!({"protocolVersion": 1, "registration": registration("n1")}),
        ),
        (
            paths::ASSIGNMENTS,
            json!({"nodeId": "n1", "since": 0, "timeoutMs": 0}),
        ),
        (paths::REPORT, json!({"reports": []})),
        (paths::HEARTBEAT, json!({})),
    ] {
        let (status, answer) = cluster.post(None, path, body).await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert_eq!(refusal(&answer), RefusalCode::NotAuthorized);
        assert!(!answer.contains("definition"), "{answer}");
    }
    assert_eq!(cluster.revision(), before);

    // A certificate from another CA does not get through the handshake.
    let forger = Cluster::start("forger").await;
    let forged = forger.joined("n1").await;
    let result = cluster
        .post_with(
            cluster.client_config(Some(&forged)),
            paths::ASSIGNMENTS,
            &json!({"nodeId": "n1", "since": 0, "timeoutMs": 0}),
        )
        .await;
    assert!(result.is_err(), "a forged certificate got {result:?}");
}

#[tokio::test]
async fn a_node_acts_only_as_itself() {
    let cluster = Cluster::start("itself").await;
    let other = cluster.joined("n2").await;
    cluster.register(&other, registration("n2")).await;
    // A task on n2 (the only node).
    let definition = json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16,
            "environment": [{"name": "SECRET", "value": "s3cr3t"}]}]
    });
    crate::dispatch(
        &cluster.control_plane,
        "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
        "us-east-1",
        definition.to_string().as_bytes(),
    )
    .await
    .unwrap();
    let run = crate::dispatch(
        &cluster.control_plane,
        "AmazonEC2ContainerServiceV20141113.RunTask",
        "us-east-1",
        json!({"taskDefinition": "web"}).to_string().as_bytes(),
    )
    .await
    .unwrap();
    let run: serde_json::Value = serde_json::from_slice(&run).unwrap();
    let task_id = run["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    let node = cluster.joined("n1").await;
    cluster.register(&node, registration("n1")).await;
    let before = cluster.revision();

    let (status, body) = cluster.register(&node, registration("n2")).await;
    assert_eq!(status, 403, "{body}");
    let poll = json!({"nodeId": "n2", "since": 0, "timeoutMs": 0});
    let (status, body) = cluster.post(Some(&node), paths::ASSIGNMENTS, poll).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("s3cr3t"), "{body}");
    let poll = json!({"nodeId": "n2", "timeoutMs": 0});
    let (status, body) = cluster
        .post(Some(&node), paths::SERVICE_ENDPOINTS, poll)
        .await;
    assert_eq!(status, 403, "{body}");
    let poll = json!({"nodeId": "n1", "timeoutMs": 0});
    let (status, body) = cluster
        .post(Some(&node), paths::SERVICE_ENDPOINTS, poll)
        .await;
    assert_eq!(status, 200, "{body}");
    let endpoints: berth_proto::ServiceEndpoints = serde_json::from_str(&body).unwrap();
    assert_eq!(
        endpoints.services,
        [],
        "no service of its cluster maps a port"
    );
    let report = ReportRequest {
        reports: vec![TaskReport::status(&task_id, TaskStatus::Stopped)],
    };
    let (status, body) = cluster
        .post(
            Some(&node),
            paths::REPORT,
            serde_json::to_value(report).unwrap(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(&task_id), "{body}");
    assert_eq!(
        cluster.revision(),
        before,
        "a refused call changed the state"
    );
    let stopped = cluster
        .control_plane
        .store
        .read(|state| state.tasks[&task_id].last_status == TaskStatus::Stopped);
    assert!(!stopped);

    // n2 reads its own assignments, definition included.
    let poll = json!({"nodeId": "n2", "since": 0, "timeoutMs": 0});
    let (status, body) = cluster.post(Some(&other), paths::ASSIGNMENTS, poll).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("s3cr3t"), "{body}");

    // A malformed registration is refused by name.
    let mut bad = registration("n1");
    bad.attributes.insert("bad name".into(), "x".into());
    let (status, body) = cluster.register(&node, bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad name"), "{body}");
}

/// Puts an ip target of `group` at 10.1.2.3:`port` in `state`.
fn put_ip_target(cluster: &Cluster, group: &str, port: u16, state: TargetHealthState) {
    cluster
        .control_plane
        .store
        .apply(vec![berth_core::Command::PutTarget(Box::new(
            TargetRecord {
                target_group: group.to_string(),
                id: "10.1.2.3".to_string(),
                port,
                availability_zone: None,
                registered_at: berth_core::Timestamp::from_secs_f64(1.0),
                health: TargetHealth {
                    state,
                    reason: None,
                    description: None,
                },
                draining_until: None,
                passed_check: false,
            },
        ))])
        .unwrap();
}

async fn elbv2_id(control_plane: &ControlPlane, body: &str, tag: &str) -> String {
    let answer = crate::dispatch_query(control_plane, "us-east-1", body.as_bytes(), "test").await;
    assert_eq!(answer.status, 200, "{body}: {}", answer.document);
    let open = format!("<{tag}>");
    let start = answer.document.find(&open).unwrap() + open.len();
    let end = answer.document.find(&format!("</{tag}>")).unwrap();
    answer.document[start..end].to_string()
}

#[tokio::test]
async fn a_node_serving_listeners_gets_the_healthy_targets_and_waits_for_a_change() {
    let cluster = Cluster::start("balancer").await;
    let cp = &cluster.control_plane;
    let lb = elbv2_id(cp, "Action=CreateLoadBalancer&Name=lb", "LoadBalancerArn").await;
    let group_arn = elbv2_id(
        cp,
        "Action=CreateTargetGroup&Name=web&Protocol=HTTP&Port=80&VpcId=v&TargetType=ip",
        "TargetGroupArn",
    )
    .await;
    elbv2_id(
        cp,
        &format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=8000\
             &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={group_arn}"
        ),
        "ListenerArn",
    )
    .await;
    let group = group_arn.rsplit('/').next().unwrap().to_string();
    put_ip_target(&cluster, &group, 8080, TargetHealthState::Healthy);
    put_ip_target(&cluster, &group, 8081, TargetHealthState::Initial);
    put_ip_target(&cluster, &group, 8082, TargetHealthState::Unhealthy);

    // Without a node certificate: nothing.
    let ask = |have: Option<&str>, timeout_ms: u64| {
        serde_json::to_value(BalancerConfigRequest {
            have: have.map(str::to_string),
            timeout_ms,
        })
        .unwrap()
    };
    let (status, body) = cluster.post(None, paths::LOAD_BALANCER, ask(None, 0)).await;
    assert_eq!(status, 401, "{body}");

    // A node gets every listener and only the targets the control plane holds healthy.
    let node = cluster.joined("edge").await;
    let (status, body) = cluster
        .post(Some(&node), paths::LOAD_BALANCER, ask(None, 0))
        .await;
    assert_eq!(status, 200, "{body}");
    let first: BalancerConfig = serde_json::from_str(&body).unwrap();
    assert_eq!(first.listeners.len(), 1);
    assert_eq!(first.listeners[0].port, 8000);
    assert_eq!(first.listeners[0].target_group_id, group);
    let addrs = |config: &BalancerConfig| -> Vec<String> {
        config.target_groups[0]
            .targets
            .iter()
            .map(|t| t.addr.to_string())
            .collect()
    };
    assert_eq!(addrs(&first), vec!["10.1.2.3:8080"]);
    // ELBv2's default deregistration delay, 300 s.
    assert_eq!(first.target_groups[0].deregistration_delay_ms, 300_000);

    // Asked with the version it has, the node waits: an unrelated write answers nothing,
    // and the long-poll's end returns the same config.
    let poll = {
        let cluster_address = cluster.address;
        let config = cluster.client_config(Some(&node));
        let body = ask(Some(&first.version), 10_000);
        tokio::spawn(async move {
            post_to(cluster_address, config, paths::LOAD_BALANCER, &body)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = cluster.register(&node, registration("edge")).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "a write that changes no listener or target woke the poll"
    );
    // A target passing its checks wakes it.
    put_ip_target(&cluster, &group, 8081, TargetHealthState::Healthy);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the poll answers when a target turns healthy")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let second: BalancerConfig = serde_json::from_str(&body).unwrap();
    assert_ne!(second.version, first.version);
    assert_eq!(addrs(&second), vec!["10.1.2.3:8080", "10.1.2.3:8081"]);

    let (status, body) = cluster
        .post(
            Some(&node),
            paths::LOAD_BALANCER,
            ask(Some(&second.version), 200),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let same: BalancerConfig = serde_json::from_str(&body).unwrap();
    assert_eq!(
        same, second,
        "the long-poll's end answers with the same config"
    );
}

/// A heartbeat on a kept-alive connection, and its status; the connection stays open.
async fn heartbeat_on(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> u16 {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        paths::HEARTBEAT
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    // The answer is a head and the body `{}`.
    while !response.ends_with(b"\r\n\r\n{}") {
        let read = tokio::time::timeout(Duration::from_secs(20), tls.read(&mut chunk))
            .await
            .expect("an answer to the heartbeat")
            .unwrap();
        assert!(read > 0, "closed: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..read]);
    }
    let response = String::from_utf8_lossy(&response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Nodes are known by their certificates, not their addresses: a node's connections
/// count against the listener's cap only, while clients without a certificate (joins)
/// stay capped per address.
#[tokio::test]
async fn a_nodes_connections_are_not_capped_by_its_address() {
    let cluster = Cluster::start_with(
        "per-address",
        ApiLimits {
            max_connections: 16,
            max_connections_per_client: 2,
            ..ApiLimits::default()
        },
    )
    .await;
    let node = cluster.joined("n1").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tls = cluster
            .open(Some(&node))
            .await
            .expect("a node's connection");
        assert_eq!(heartbeat_on(&mut tls).await, 200);
        held.push(tls);
    }
    // The address's two places for clients without a certificate are all still free.
    let first = cluster
        .open(None)
        .await
        .expect("the first anonymous connection");
    let second = cluster
        .open(None)
        .await
        .expect("the second anonymous connection");
    assert!(
        cluster.open(None).await.is_err(),
        "a third anonymous connection from one address is closed at once"
    );
    // And the node's connections still serve.
    for tls in &mut held {
        assert_eq!(heartbeat_on(tls).await, 200);
    }
    drop((first, second));
}

/// A fleet's connections fit the agent listener: each node holds two or three (its
/// long-poll, its heartbeats and reports), far past the API's cap of 512, and here
/// all from one address.
#[tokio::test]
async fn the_agent_listener_holds_a_fleets_connections() {
    crate::raise_descriptor_limit().unwrap();
    let limits = agent_limits();
    assert!(limits.max_connections > ApiLimits::default().max_connections);
    let cluster = Cluster::start_with("fleet", limits).await;
    let node = cluster.joined("n1").await;
    let wanted = 2 * ApiLimits::default().max_connections;
    let mut held = Vec::with_capacity(wanted);
    for opened in 0..wanted {
        let mut tls = cluster
            .open(Some(&node))
            .await
            .unwrap_or_else(|e| panic!("connection {opened}: {e}"));
        assert_eq!(heartbeat_on(&mut tls).await, 200, "connection {opened}");
        held.push(tls);
    }
    assert_eq!(held.len(), wanted);
}
