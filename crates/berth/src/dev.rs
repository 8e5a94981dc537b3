//! `berth dev`: the whole cluster in one process on this machine: store, ECS API,
//! service scheduler and the local agent on the Docker engine.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig, AgentHandle};
use berth_api::LogLine;
use berth_auth::{Credentials, Verifier};
use berth_core::{PrivilegeKind, PrivilegePolicy};
use berth_runtime::{ContainerRuntime, DockerRuntime};
use berth_server::{
    run_load_balancer, run_scheduler, serve_with, ApiLimits, ApiTransport, ControlPlane, LocalLink,
    LogSource,
};
use berth_store::{RedbBackend, Store};

use crate::paths::{self, Connection};
use crate::tls::{self, CertificateSource, TlsChoice};
use crate::DevArgs;

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    init_tracing();
    // Many shells start a process at 1024 descriptors; the API and the balancer hold one
    // or two per connection.
    match berth_server::raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(?limit, "open file descriptor limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file descriptor limit"),
    }
    // Checked before anything starts; said once the engine answers (an unreachable
    // engine is one line of error and nothing else).
    let privilege_policy = privilege_policy(&args)?;
    let data_dir = paths::data_dir(args.data_dir.as_deref());
    paths::create_private_dir(&data_dir)?;

    let runtime: Arc<dyn ContainerRuntime> = match DockerRuntime::connect().await {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => bail!("{error}"),
    };

    let store_path = data_dir.join("state.redb");
    let backend = RedbBackend::open(&store_path).with_context(|| {
        format!(
            "cannot open the store {} (is another `berth dev` using this data directory?)",
            store_path.display()
        )
    })?;
    let store = Arc::new(Store::open(Box::new(backend))?);

    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {} (is another berth running? choose another address with --listen)", args.listen)
    })?;
    let listen = listener.local_addr()?;
    let choice = TlsChoice::from_flags(args.tls, args.no_tls, args.tls_cert.is_some())?;
    let server_tls = if choice.uses_tls(listen) {
        Some(tls::server_tls(
            &data_dir,
            listen,
            args.tls_cert.as_deref(),
            args.tls_key.as_deref(),
        )?)
    } else {
        None
    };
    let scheme = if server_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = format!("{scheme}://{}", tls::local_address(listen));
    let (credentials, generated) = credentials(&args, &data_dir)?;
    let connection = Connection {
        endpoint: endpoint.clone(),
        region: args.region.clone(),
        access_key_id: credentials.access_key_id.clone(),
        secret_access_key: credentials.secret_access_key.clone(),
        ca_bundle: server_tls.as_ref().map(|tls| tls.cert_path.clone()),
    };
    paths::write_private(
        &paths::connection_file(&data_dir),
        &serde_json::to_vec_pretty(&connection)?,
    )?;

    let control_plane = Arc::new(ControlPlane::new(
        store,
        args.account_id.clone(),
        args.region.clone(),
        privilege_policy,
    ));
    log_privilege_policy(&control_plane.privilege_policy);
    let node_id = node_id(&data_dir)?;
    let agent = Agent::new(
        AgentConfig {
            node_id,
            cluster: "default".to_string(),
            joins_every_cluster: true,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            task_cleanup_wait: Duration::from_secs(args.task_cleanup_wait),
            address: None,
            attributes: berth_agent::machine_attributes(),
        },
        runtime,
        Arc::new(LocalLink::new(control_plane.clone())),
    );
    control_plane.set_log_source(Arc::new(AgentLogs(agent.handle())));

    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let verifier = Verifier::from_credentials(credentials.clone());
    let transport = match &server_tls {
        Some(tls) => ApiTransport::Tls(tokio_rustls::TlsAcceptor::from(tls.config.clone())),
        None => ApiTransport::Plain,
    };
    let server = tokio::spawn(serve_with(
        listener,
        control_plane.clone(),
        verifier,
        api_limits(listen),
        transport,
        stopped(stop.clone()),
    ));
    let scheduler = tokio::spawn(run_scheduler(control_plane.clone(), stopped(stop.clone())));
    let balancer = berth_lb::LoadBalancer::with_own_threads(
        berth_lb::Limits::default(),
        berth_lb::default_data_plane_threads(),
    )
    .context("starting the load balancer's threads")?;
    let load_balancer = tokio::spawn(run_load_balancer(
        control_plane.clone(),
        balancer,
        args.lb_address,
        stopped(stop.clone()),
    ));
    let agent_task = tokio::spawn(agent.run(stopped(stop.clone())));

    let listening = if tls::local_address(listen) == listen {
        String::new()
    } else {
        format!(" (listening on {listen})")
    };
    println!(
        "berth dev is running: ECS API at {endpoint}{listening}, data in {}",
        data_dir.display()
    );
    if let Some(tls) = &server_tls {
        let path = tls.cert_path.display();
        match tls.source {
            CertificateSource::SelfSigned { new } => println!(
                "TLS certificate (self-signed{}): {path}. Clients trust it with `aws --ca-bundle {path}` or AWS_CA_BUNDLE={path}",
                if new { ", generated now" } else { "" }
            ),
            CertificateSource::Given => println!("TLS certificate: {path} (from --tls-cert)"),
        }
    }
    if generated {
        println!(
            "Generated credentials (kept in {}). To use the aws CLI:",
            paths::connection_file(&data_dir).display()
        );
        println!("  export AWS_ACCESS_KEY_ID={}", credentials.access_key_id);
        println!(
            "  export AWS_SECRET_ACCESS_KEY={}",
            credentials.secret_access_key
        );
        println!(
            "  export AWS_DEFAULT_REGION={} AWS_ENDPOINT_URL={endpoint} AWS_PAGER=\"\"",
            args.region
        );
    } else {
        println!(
            "Credentials: access key id {} (secret in {})",
            credentials.access_key_id,
            paths::connection_file(&data_dir).display()
        );
    }

    wait_for_signal().await;
    tracing::info!(
        "stopping berth dev; running tasks keep running and are adopted at the next start"
    );
    let _ = stop_sender.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = server.await;
        let _ = scheduler.await;
        let _ = load_balancer.await;
        let _ = agent_task.await;
    })
    .await;
    Ok(())
}

/// The API's limits. Listening on loopback, every client is this machine and so one
/// client: the per-client cap would be the whole cap's stand-in, so it is the global one.
fn api_limits(listen: std::net::SocketAddr) -> ApiLimits {
    let mut limits = ApiLimits::default();
    if listen.ip().is_loopback() {
        limits.max_connections_per_client = limits.max_connections;
    }
    limits
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// The flags' policy, else the default for the API's address.
fn privilege_policy(args: &DevArgs) -> anyhow::Result<PrivilegePolicy> {
    let policy = if args.deny_privileged {
        PrivilegePolicy::deny_all()
    } else if let Some(kinds) = &args.allow_privileged {
        let mut allowed = Vec::new();
        for kind in kinds
            .iter()
            .map(|kind| kind.trim())
            .filter(|k| !k.is_empty())
        {
            if kind == "all" {
                allowed.extend(PrivilegeKind::ALL);
            } else {
                allowed.push(
                    kind.parse::<PrivilegeKind>()
                        .map_err(|error| anyhow::anyhow!("--allow-privileged: {error}"))?,
                );
            }
        }
        PrivilegePolicy::allowing(allowed)
    } else {
        PrivilegePolicy::default_for_listen_address(args.listen.ip())
    };
    Ok(policy)
}

/// Said at start: it decides what anyone who reaches the API can make this machine do.
fn log_privilege_policy(policy: &PrivilegePolicy) {
    let allowed: Vec<&str> = policy.allowed().map(PrivilegeKind::as_str).collect();
    if allowed.is_empty() {
        tracing::info!("privilege policy: tasks and targets may use no privilege on this host");
    } else {
        tracing::info!(
            allowed = %allowed.join(","),
            "privilege policy: tasks and targets may use these kinds of privilege on this host; each use is logged"
        );
    }
}

/// The flags' pair, else the one kept in the data dir, else a new one (then `true`).
fn credentials(args: &DevArgs, data_dir: &Path) -> anyhow::Result<(Credentials, bool)> {
    match (&args.access_key_id, &args.secret_access_key) {
        (Some(id), Some(secret)) => {
            return Ok((Credentials::new(id.clone(), secret.clone()), false))
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("give both --access-key-id and --secret-access-key (or BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY), or neither")
        }
        (None, None) => {}
    }
    if let Ok(existing) = paths::read_connection(data_dir) {
        return Ok((
            Credentials::new(existing.access_key_id, existing.secret_access_key),
            false,
        ));
    }
    let id = format!(
        "BERTH{}",
        random_text(15, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?
    );
    let secret = random_text(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    )?;
    Ok((Credentials::new(id, secret), true))
}

/// Random text from the operating system's generator; without one there is no safe
/// secret to make, so berth refuses to start rather than invent a guessable one.
fn random_text(length: usize, alphabet: &[u8]) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; length];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no random numbers from the system: {error}"))?;
    Ok(bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect())
}

/// This machine's node id, kept in the data dir so a restart is the same node.
fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = random_text(32, b"0123456789abcdef")?;
    paths::write_private(&path, id.as_bytes())?;
    Ok(id)
}

/// `berth logs` reads through the local agent.
struct AgentLogs(AgentHandle);

#[async_trait]
impl LogSource for AgentLogs {
    async fn task_logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogLine>, String> {
        let entries = self
            .0
            .logs(task_id, container_name, since, tail)
            .await
            .map_err(|e| e.to_string())?;
        Ok(entries
            .into_iter()
            .map(|(container_name, entry)| LogLine {
                container_name,
                timestamp: entry.timestamp,
                stream: format!("{:?}", entry.stream).to_lowercase(),
                message: entry.message,
            })
            .collect())
    }
}
