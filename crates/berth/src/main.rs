//! The `berth` binary: `berth dev` runs a whole cluster in one process; the other
//! commands are clients of a running berth over the same signed ECS API.

mod client;
mod dev;
mod paths;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// berth: the ECS model and API on your own machines.
#[derive(Parser, Debug)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a whole cluster on this machine: API server, scheduler and agent in one process.
    Dev(DevArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
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
    /// How long a stopped task's containers are kept (for `berth logs`) before removal, in seconds.
    #[arg(long, default_value_t = 600)]
    pub task_cleanup_wait: u64,
    /// The kinds of privilege API callers may use on this host, comma-separated, or `all`
    /// (see README). Default: all when --listen is a loopback address, none otherwise.
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("berth: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Client(command) => client::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
