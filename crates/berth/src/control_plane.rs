//! The control plane as `berth dev` and `berth server` both run it: the store in the
//! data dir, the ECS API (with TLS beyond loopback), the credentials and the connection
//! file, the scheduler and the load balancer. Each command adds its own parts (dev its
//! local agent, server the agent listener) and runs until SIGINT / SIGTERM.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_auth::{Credentials, Verifier};
use berth_core::{PrivilegeKind, PrivilegePolicy};
use berth_server::{
    run_load_balancer, run_scheduler, serve_with, ApiLimits, ApiTransport, ControlPlane,
};
use berth_store::{RedbBackend, Store};

use crate::paths::{self, Connection};
use crate::process::random_text;
use crate::tls::{self, CertificateSource, ServerTls, TlsChoice};

/// The flags `berth dev` and `berth server` share.
#[derive(clap::Args, Debug, Clone)]
pub struct ControlPlaneArgs {
    /// Address of the ECS API.
    #[arg(long, default_value = "127.0.0.1:9650", env = "BERTH_LISTEN")]
    pub listen: SocketAddr,
    /// Where berth keeps its state (default: the user's data directory, e.g. ~/.local/share/berth).
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Access key id clients sign with (generated and kept in the data dir when not given).
    #[arg(long, env = "BERTH_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Secret access key clients sign with.
    #[arg(long, env = "BERTH_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// The account id in every ARN.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,
    /// The region ARNs carry when a request names none (requests use their SigV4 region).
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The address the load balancer's listeners bind (ELBv2 CreateListener's ports on it).
    #[arg(long, env = "BERTH_LB_ADDRESS", default_value = "0.0.0.0")]
    pub lb_address: std::net::IpAddr,
    /// Serve the API over TLS (the default when --listen is not a loopback address),
    /// with a self-signed certificate kept in the data dir unless --tls-cert/--tls-key.
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Serve the API over plain HTTP even beyond loopback.
    #[arg(long)]
    pub no_tls: bool,
    /// The certificate (PEM, chain first-to-last) to serve instead of a generated one.
    #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The kinds of privilege API callers may use on the hosts that run tasks,
    /// comma-separated, or `all` (see README). Default for `berth dev`: all when --listen
    /// is a loopback address, none otherwise; for `berth server`: none (its tasks run on
    /// other machines).
    #[arg(
        long,
        value_delimiter = ',',
        env = "BERTH_ALLOW_PRIVILEGED",
        conflicts_with = "deny_privileged"
    )]
    pub allow_privileged: Option<Vec<String>>,
    /// Refuse every kind of privilege, also when --listen is a loopback address.
    #[arg(long)]
    pub deny_privileged: bool,
}

/// What is checked and made before anything starts.
pub struct Prepared {
    pub data_dir: PathBuf,
    privilege_policy: PrivilegePolicy,
}

impl ControlPlaneArgs {
    /// Logging, the descriptor limit, the privilege policy and the private data dir.
    /// `tasks_run_here`: the tasks run on this machine (`berth dev`), so a loopback API
    /// reaches no one else's host and may allow privilege by default.
    pub fn prepare(&self, tasks_run_here: bool) -> anyhow::Result<Prepared> {
        crate::process::init_tracing();
        // Many shells start a process at 1024 descriptors; the API and the balancer hold
        // one or two per connection.
        match berth_server::raise_descriptor_limit() {
            Ok(limit) => tracing::debug!(?limit, "open file descriptor limit"),
            Err(error) => tracing::warn!(%error, "cannot raise the open file descriptor limit"),
        }
        let privilege_policy = privilege_policy(self, tasks_run_here)?;
        let data_dir = paths::data_dir(self.data_dir.as_deref());
        paths::create_private_dir(&data_dir)?;
        Ok(Prepared {
            data_dir,
            privilege_policy,
        })
    }
}

/// A running control plane; more parts join it with [`Running::spawn`].
pub struct Running {
    pub control_plane: Arc<ControlPlane>,
    pub data_dir: PathBuf,
    pub endpoint: String,
    listen: SocketAddr,
    server_tls: Option<ServerTls>,
    credentials: Credentials,
    generated: bool,
    region: String,
    stop_sender: tokio::sync::watch::Sender<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the store and starts the API, the scheduler and the load balancer.
pub async fn start(
    args: &ControlPlaneArgs,
    prepared: Prepared,
    command: &str,
) -> anyhow::Result<Running> {
    let Prepared {
        data_dir,
        privilege_policy,
    } = prepared;
    let store_path = data_dir.join("state.redb");
    let backend = RedbBackend::open(&store_path).with_context(|| {
        format!(
            "cannot open the store {} (is another `berth {command}` using this data directory?)",
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
    let (credentials, generated) = credentials(args, &data_dir)?;
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

    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let mut running = Running {
        control_plane: control_plane.clone(),
        data_dir,
        endpoint,
        listen,
        server_tls,
        credentials: credentials.clone(),
        generated,
        region: args.region.clone(),
        stop_sender,
        stop,
        tasks: Vec::new(),
    };
    let verifier = Verifier::from_credentials(credentials);
    let transport = match &running.server_tls {
        Some(tls) => ApiTransport::Tls(tokio_rustls::TlsAcceptor::from(tls.config.clone())),
        None => ApiTransport::Plain,
    };
    running.spawn(serve_with(
        listener,
        control_plane.clone(),
        verifier,
        api_limits(listen),
        transport,
        running.stopped(),
    ));
    running.spawn(run_scheduler(control_plane.clone(), running.stopped()));
    let balancer = berth_lb::LoadBalancer::with_own_threads(
        berth_lb::Limits::default(),
        berth_lb::default_data_plane_threads(),
    )
    .context("starting the load balancer's threads")?;
    running.spawn(run_load_balancer(
        control_plane,
        balancer,
        args.lb_address,
        running.stopped(),
    ));
    Ok(running)
}

impl Running {
    /// Completes when the control plane is asked to stop.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.stop.clone();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }

    /// Runs `part` beside the control plane; a shutdown waits for it.
    pub fn spawn<T: Send + 'static>(&mut self, part: impl Future<Output = T> + Send + 'static) {
        self.tasks.push(tokio::spawn(async move {
            let _ = part.await;
        }));
    }

    /// The first lines of the start: where the API is, its certificate, its keys.
    pub fn print_api(&self, command: &str) {
        let listening = if tls::local_address(self.listen) == self.listen {
            String::new()
        } else {
            format!(" (listening on {})", self.listen)
        };
        println!(
            "berth {command} is running (pid {}): ECS API at {}{listening}, data in {}",
            std::process::id(),
            self.endpoint,
            self.data_dir.display()
        );
        if let Some(tls) = &self.server_tls {
            let path = tls.cert_path.display();
            match tls.source {
                CertificateSource::SelfSigned { new } => println!(
                    "TLS certificate (self-signed{}): {path}. Clients trust it with `aws --ca-bundle {path}` or AWS_CA_BUNDLE={path}",
                    if new { ", generated now" } else { "" }
                ),
                CertificateSource::Given => println!("TLS certificate: {path} (from --tls-cert)"),
            }
        }
        let connection_file = paths::connection_file(&self.data_dir);
        if self.generated {
            println!(
                "Generated credentials (kept in {}). To use the aws CLI:",
                connection_file.display()
            );
            println!(
                "  export AWS_ACCESS_KEY_ID={}",
                self.credentials.access_key_id
            );
            // Standard output that is no terminal is most often a log file, which
            // others may read and which outlives the key: the secret stays in the
            // connection file.
            if std::io::stdout().is_terminal() {
                println!(
                    "  export AWS_SECRET_ACCESS_KEY={}",
                    self.credentials.secret_access_key
                );
            } else {
                println!(
                    "  export AWS_SECRET_ACCESS_KEY=...   # not written to a log: the secret_access_key in {}",
                    connection_file.display()
                );
            }
            println!(
                "  export AWS_DEFAULT_REGION={} AWS_ENDPOINT_URL={} AWS_PAGER=\"\"",
                self.region, self.endpoint
            );
        } else {
            println!(
                "Credentials: access key id {} (secret in {})",
                self.credentials.access_key_id,
                connection_file.display()
            );
        }
    }

    /// Waits for SIGINT or SIGTERM, then stops every part (5 s at most).
    pub async fn run_until_signal(self, command: &str) {
        crate::process::wait_for_signal().await;
        tracing::info!(
            "stopping berth {command}; running tasks keep running and are adopted at the next start"
        );
        let _ = self.stop_sender.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for task in self.tasks {
                let _ = task.await;
            }
        })
        .await;
    }
}

/// The API's limits. Listening on loopback, every client is this machine and so one
/// client: the per-client cap would be the whole cap's stand-in, so it is the global one.
fn api_limits(listen: SocketAddr) -> ApiLimits {
    let mut limits = ApiLimits::default();
    if listen.ip().is_loopback() {
        limits.max_connections_per_client = limits.max_connections;
    }
    limits
}

/// The flags' policy, else the default for the API's address.
fn privilege_policy(
    args: &ControlPlaneArgs,
    tasks_run_here: bool,
) -> anyhow::Result<PrivilegePolicy> {
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
    } else if tasks_run_here {
        PrivilegePolicy::default_for_listen_address(args.listen.ip())
    } else {
        PrivilegePolicy::deny_all()
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
fn credentials(args: &ControlPlaneArgs, data_dir: &Path) -> anyhow::Result<(Credentials, bool)> {
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
