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

use std::sync::Arc;
use std::time::Duration;

use support::cluster::{attribute, Cluster};

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
    // The server's output here is a log file: it names the command, not the token.
    let log = cluster.server.log_text();
    assert!(
        !log.contains(&token),
        "the join token is not in the log: {log}"
    );
    assert!(log.contains("berth server token --data-dir"), "{log}");

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
             "command":["sh","-c","echo serving on $(hostname); echo a warning >&2; exec httpd -f -p 8080"],
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

    // `berth logs` reads each task's output on the machine that runs it, through its
    // agent.
    let tasks = cluster.aws_json(&["ecs", "list-tasks", "--service-name", "web"]);
    let tasks: Vec<String> = tasks["taskArns"]
        .as_array()
        .expect("taskArns")
        .iter()
        .filter_map(|arn| arn.as_str()?.rsplit('/').next().map(str::to_string))
        .collect();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    for task in &tasks {
        let logs = cluster.wait_for("the task's output", Duration::from_secs(20), || {
            let out = cluster.berth_client(&["logs", task]);
            assert!(
                out.status.success(),
                "berth logs {task}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The container's stderr lines go to the client's stderr.
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let errors = String::from_utf8_lossy(&out.stderr);
            (text.contains("serving on") && errors.contains("a warning")).then_some(text)
        });
        assert!(!logs.contains("not-for-impostors"), "{logs}");
    }
    let service_logs = cluster.berth_client(&["logs", "web"]);
    let text = String::from_utf8_lossy(&service_logs.stdout);
    assert_eq!(
        text.matches("serving on").count(),
        2,
        "the service's logs hold both tasks' output (one on each agent): {text}"
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
