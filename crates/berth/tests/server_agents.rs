//! `berth server` with two `berth agent`s on this machine's Docker engine, as three
//! machines would run them: both join with the printed command and register as
//! container instances with their attributes, a service's two tasks run on them, a
//! wrong token and a forged certificate get nothing, a killed agent's instance turns
//! `agentConnected: false` within the heartbeat window, and restarting it without a
//! token connects it again without touching the other agent's containers.
//!
//! Everything the agents made carries their node ids and is removed on drop, also when
//! the test fails (which first prints the end of each process's log).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{aws_v2, free_port, require_docker, require_images, tail};

const KEY: &str = "BERTHTESTKEY0000002";
const SECRET: &str = "berth-test-secret-server-agents-0123456";

fn berth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .env("BERTH_LOG", "info,berth=debug,berth_server=debug")
        .env("NO_COLOR", "1")
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env_remove("BERTH_JOIN_TOKEN")
        .env_remove("BERTH_SERVER")
        .stdin(Stdio::null());
    command
}

/// One berth process with its log file.
struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, log_dir: &Path, mut command: Command) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9, as a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its exit status once it exited, within `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Some(status);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

struct Agent {
    data_dir: PathBuf,
    process: Process,
}

impl Agent {
    fn node_id(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir.join("node-id"))
            .ok()
            .map(|id| id.trim().to_string())
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    api_port: u16,
    agent_port: u16,
    server: Process,
    agents: Vec<Agent>,
}

impl Cluster {
    fn start() -> Cluster {
        require_docker();
        require_images();
        let dir = tempfile::tempdir().expect("temp dir");
        let (api_port, agent_port) = (free_port(), free_port());
        let mut command = berth();
        command
            .args(["server", "--listen", &format!("127.0.0.1:{api_port}")])
            .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
            .arg("--data-dir")
            .arg(dir.path().join("server"))
            .args(["--access-key-id", KEY, "--secret-access-key", SECRET])
            .args(["--heartbeat-timeout", "3s"])
            .env("BERTH_LB_ADDRESS", "127.0.0.1");
        let server = Process::spawn("server", dir.path(), command);
        let cluster = Cluster {
            dir,
            api_port,
            agent_port,
            server,
            agents: Vec::new(),
        };
        cluster.wait_for("berth server to answer", Duration::from_secs(30), || {
            let up = std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", agent_port)).is_ok();
            (up && cluster_join_file(&cluster).exists()).then_some(())
        });
        cluster
    }

    fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// `berth server token` on the server's data dir.
    fn token_command(&self, extra: &[&str]) -> Output {
        berth()
            .args(["server", "token", "--data-dir"])
            .arg(self.server_dir())
            .args(extra)
            .output()
            .expect("run berth server token")
    }

    /// The printed join command's --server and --token.
    fn join_command(&self) -> (String, String) {
        let out = self.token_command(&[]);
        assert!(
            out.status.success(),
            "berth server token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with("berth agent "))
            .unwrap_or_else(|| panic!("no join command in {text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            let at = words.iter().position(|w| *w == flag).expect(flag);
            words[at + 1].to_string()
        };
        (after("--server"), after("--token"))
    }

    /// Starts `berth agent` on its own data dir `name` with these flags.
    fn spawn_agent(&mut self, name: &str, flags: &[&str]) -> usize {
        let data_dir = self.dir.path().join(name);
        let mut command = berth();
        command
            .arg("agent")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(flags);
        let process = Process::spawn(name, self.dir.path(), command);
        self.agents.push(Agent { data_dir, process });
        self.agents.len() - 1
    }

    /// Starts agent `index` again on its data dir with these flags.
    fn respawn_agent(&mut self, index: usize, flags: &[&str]) {
        let agent = &self.agents[index];
        let mut command = berth();
        command
            .arg("agent")
            .arg("--data-dir")
            .arg(&agent.data_dir)
            .args(flags);
        let name = agent.process.name.clone();
        self.agents[index].process = Process::spawn(&name, self.dir.path(), command);
    }

    fn aws(&self, args: &[&str]) -> Output {
        Command::new(aws_v2())
            .args([
                "--endpoint-url",
                &format!("http://127.0.0.1:{}", self.api_port),
            ])
            .args(["--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_PAGER", "")
            .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/berth-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run the aws CLI")
    }

    fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }

    /// DescribeContainerInstances of every instance of the default cluster.
    fn instances(&self) -> Vec<serde_json::Value> {
        let list = self.aws_json(&["ecs", "list-container-instances"]);
        let arns: Vec<&str> = list["containerInstanceArns"]
            .as_array()
            .expect("containerInstanceArns")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        if arns.is_empty() {
            return Vec::new();
        }
        let mut args = vec![
            "ecs",
            "describe-container-instances",
            "--container-instances",
        ];
        args.extend(arns);
        self.aws_json(&args)["containerInstances"]
            .as_array()
            .expect("containerInstances")
            .clone()
    }

    /// The instance of the node `node_id` (its ec2InstanceId is the host name, so it is
    /// found by the `rack` attribute each agent was given).
    fn instance_with_rack(&self, rack: &str) -> Option<serde_json::Value> {
        self.instances()
            .into_iter()
            .find(|instance| attribute(instance, "rack").as_deref() == Some(rack))
    }

    fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Containers labelled with this node id (running or not).
    fn containers_of(&self, node_id: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label=berth.node={node_id}"))
            .output()
            .expect("docker ps");
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids
    }
}

fn cluster_join_file(cluster: &Cluster) -> PathBuf {
    cluster.server_dir().join("join.json")
}

fn attribute(instance: &serde_json::Value, name: &str) -> Option<String> {
    instance["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["value"].as_str())
        .map(str::to_string)
}

fn remove_labelled(kind: &[&str], remove: &[&str], filter: &str) {
    let out = Command::new("docker")
        .args(kind)
        .args(["-q", "--filter", filter])
        .output();
    if let Ok(out) = out {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(remove).args(&ids).output();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for process in
                std::iter::once(&self.server).chain(self.agents.iter().map(|a| &a.process))
            {
                eprintln!(
                    "--- {} log, last 60 lines ---\n{}",
                    process.name,
                    tail(&process.log_text(), 60)
                );
            }
        }
        for agent in &mut self.agents {
            agent.process.kill();
        }
        self.server.kill();
        for agent in &self.agents {
            let Some(node) = agent.node_id() else {
                continue;
            };
            let filter = format!("label=berth.node={node}");
            remove_labelled(&["ps", "-a"], &["rm", "-f", "-v"], &filter);
            remove_labelled(&["network", "ls"], &["network", "rm"], &filter);
            remove_labelled(&["volume", "ls"], &["volume", "rm", "-f"], &filter);
        }
    }
}

/// A POST to the agent listener over TLS that trusts the cluster CA, presenting
/// `client` (certificate chain and key) if given; the status and body, or the error.
fn agent_api_post(
    cluster: &Cluster,
    client: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
    path: &str,
    body: serde_json::Value,
) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    let ca =
        rustls::pki_types::CertificateDer::from_pem_file(cluster.server_dir().join("pki/ca.pem"))
            .expect("the cluster CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let url = format!("https://127.0.0.1:{}{path}", cluster.agent_port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("{e:?}"))?;
        Ok((status, text))
    })
}

/// A node certificate for `node_id` from a CA the cluster never saw.
fn forged_node_certificate(
    node_id: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "berth cluster CA forged");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        format!("berth-node:{node_id}").try_into().unwrap(),
    )];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = params.signed_by(&key, &ca, &ca_key).unwrap();
    (
        vec![certificate.der().clone(), ca.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

#[test]
fn agents_join_run_a_service_and_are_told_apart_from_impostors() {
    let mut cluster = Cluster::start();
    let (server, token) = cluster.join_command();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");

    let a = cluster.spawn_agent(
        "agent-a",
        &[
            "--server",
            &server,
            "--token",
            &token,
            "--attribute",
            "rack=r1",
            "--availability-zone",
            "zone-a",
            "--address",
            "127.0.0.1",
        ],
    );
    let b = cluster.spawn_agent(
        "agent-b",
        &[
            "--server",
            &server,
            "--token",
            &token,
            "--attribute",
            "rack=r2",
        ],
    );

    // Both register as container instances of `default`, with their attributes.
    let instances = cluster.wait_for("two container instances", Duration::from_secs(60), || {
        let instances = cluster.instances();
        (instances.len() == 2 && instances.iter().all(|i| i["agentConnected"] == true))
            .then_some(instances)
    });
    for instance in &instances {
        assert_eq!(attribute(instance, "ecs.os-type").as_deref(), Some("linux"));
        let arch = attribute(instance, "ecs.cpu-architecture").unwrap_or_default();
        assert!(arch == "x86_64" || arch == "arm64", "{instance}");
    }
    let instance_a = cluster
        .instance_with_rack("r1")
        .expect("agent a's instance");
    assert_eq!(
        attribute(&instance_a, "ecs.availability-zone").as_deref(),
        Some("zone-a")
    );
    let instance_b = cluster
        .instance_with_rack("r2")
        .expect("agent b's instance");
    assert_eq!(attribute(&instance_b, "ecs.availability-zone"), None);
    let node_a = cluster.agents[a].node_id().expect("agent a's node id");
    let node_b = cluster.agents[b].node_id().expect("agent b's node id");
    assert_ne!(node_a, node_b);

    // A service of two tasks runs on them.
    cluster.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "web",
        "--container-definitions",
        r#"[{"name":"web","image":"berth/busybox:latest","memory":16,
             "command":["httpd","-f","-p","8080"],
             "environment":[{"name":"WEB_SECRET","value":"not-for-impostors"}]}]"#,
    ]);
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "2",
    ]);
    cluster.wait_for("two running tasks", Duration::from_secs(90), || {
        let services = cluster.aws_json(&["ecs", "describe-services", "--services", "web"]);
        (services["services"][0]["runningCount"] == 2).then_some(())
    });
    let running = cluster.containers_of(&node_a).len() + cluster.containers_of(&node_b).len();
    assert!(
        running >= 2,
        "the service's containers carry the agents' node ids"
    );

    // An agent with a wrong token is refused and gets nothing.
    let secret = token.split('.').nth(2).unwrap();
    let wrong_secret: String = secret.chars().rev().collect();
    let wrong = token.replace(secret, &wrong_secret);
    let c = cluster.spawn_agent("agent-c", &["--server", &server, "--token", &wrong]);
    let status = cluster.agents[c]
        .process
        .wait_exit(Duration::from_secs(30))
        .expect("an agent with a wrong token exits");
    assert!(!status.success());
    let log = cluster.agents[c].process.log_text();
    assert!(log.contains("refused"), "{log}");
    assert!(!log.contains(&wrong_secret), "the refusal echoes the token");
    assert!(!cluster.agents[c].data_dir.join("pki/agent.pem").exists());
    assert_eq!(cluster.instances().len(), 2);

    // Without a certificate, or with one no cluster CA signed, no assignment comes out.
    let poll = serde_json::json!({"nodeId": node_a, "since": 0, "timeoutMs": 0});
    let (status, body) =
        agent_api_post(&cluster, None, "/v1/assignments", poll.clone()).expect("an answer");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("not-for-impostors"), "{body}");
    let forged = agent_api_post(
        &cluster,
        Some(forged_node_certificate(&node_a)),
        "/v1/assignments",
        poll,
    );
    match forged {
        Err(_) => {}
        Ok((status, body)) => {
            assert!(!body.contains("not-for-impostors"), "{body}");
            panic!("a forged certificate got an answer: {status} {body}");
        }
    }

    // Killing agent a marks its instance disconnected within the heartbeat window; b
    // stays connected.
    let b_containers = cluster.containers_of(&node_b);
    cluster.agents[a].process.kill();
    let arn_a = instance_a["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.wait_for(
        "agent a's instance to disconnect",
        Duration::from_secs(30),
        || {
            let instance = cluster.instance_with_rack("r1")?;
            (instance["agentConnected"] == false).then_some(())
        },
    );
    let b_now = cluster
        .instance_with_rack("r2")
        .expect("agent b's instance");
    assert_eq!(b_now["agentConnected"], true);

    // Restarted without a token (nor --server), it connects again as the same instance,
    // and leaves agent b's containers alone.
    cluster.respawn_agent(
        a,
        &["--attribute", "rack=r1", "--availability-zone", "zone-a"],
    );
    cluster.wait_for("agent a to reconnect", Duration::from_secs(60), || {
        let instance = cluster.instance_with_rack("r1")?;
        (instance["agentConnected"] == true).then_some(instance)
    });
    let instance_a = cluster.instance_with_rack("r1").unwrap();
    assert_eq!(instance_a["containerInstanceArn"], arn_a.as_str());
    assert_eq!(cluster.instances().len(), 2);
    cluster.wait_for("both tasks running again", Duration::from_secs(60), || {
        let services = cluster.aws_json(&["ecs", "describe-services", "--services", "web"]);
        (services["services"][0]["runningCount"] == 2).then_some(())
    });
    let b_after = cluster.containers_of(&node_b);
    for container in &b_containers {
        assert!(
            b_after.contains(container),
            "agent a's restart removed agent b's container {container}"
        );
    }

    // The token can be rotated: the old one stops working.
    let rotated = cluster.token_command(&["--rotate"]);
    assert!(rotated.status.success());
    let (_, new_token) = cluster.join_command();
    assert_ne!(new_token, token);
    let d = cluster.spawn_agent("agent-d", &["--server", &server, "--token", &token]);
    let status = cluster.agents[d]
        .process
        .wait_exit(Duration::from_secs(30))
        .expect("an agent with a replaced token exits");
    assert!(!status.success());
}
