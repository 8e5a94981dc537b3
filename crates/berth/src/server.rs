//! `berth server`: the control plane (`control_plane.rs`) for agents on other machines,
//! and `berth server token`.
//!
//! Beside the ECS API it serves the agent listener (`--agent-listen`, by default every
//! address on the API's port + 1) with mutual TLS from the cluster CA in
//! `<data dir>/pki/`, and watches the agents' heartbeats. On first start it makes the
//! CA and a join token and prints the join command. The operator's copy of the command
//! is `<data dir>/join.json` (0600, like the connection file); the server itself checks
//! tokens against their hashes only (`pki/join-tokens.json`). `berth server token`
//! works on the data dir directly, with or without the server running: a rotation
//! takes effect at the next join.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_server::cluster_ca::ClusterCa;
use berth_server::join_token::{JoinToken, JoinTokens, TokenRecord};
use berth_server::{
    agent_limits, run_node_liveness, serve_agents, AgentApi, AgentRequests, NodeLiveness,
};
use serde::{Deserialize, Serialize};

use crate::control_plane::{self, ControlPlaneArgs};
use crate::paths;
use crate::process::parse_duration;
use crate::tls;

#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// Address of the agent listener (mutual TLS). Default: every address, on the API's
    /// port + 1.
    #[arg(long, env = "BERTH_AGENT_LISTEN")]
    pub agent_listen: Option<SocketAddr>,
    /// A host name or address agents reach this server at (repeatable): the server's
    /// certificate names it, and the first is the join command's. Default: the agent
    /// listen address, or this machine's first address beyond loopback.
    #[arg(long = "advertise", value_name = "HOST")]
    pub advertise: Vec<String>,
    /// How long the join token made on first start is valid.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// An agent silent for this long is marked disconnected (agentConnected false).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ServerCommand {
    /// Print the join command again, or with --rotate make a new token (the old one
    /// stops working at once).
    Token(TokenArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct TokenArgs {
    /// The server's data directory.
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Make a new token and invalidate the current one.
    #[arg(long)]
    pub rotate: bool,
    /// How long the new token is valid (with --rotate).
    #[arg(long, default_value = "24h", value_parser = parse_duration, requires = "rotate")]
    pub ttl: Duration,
}

/// The operator's copy of the join command.
#[derive(Serialize, Deserialize)]
struct JoinCommand {
    server: String,
    token: String,
}

fn join_file(data_dir: &Path) -> PathBuf {
    data_dir.join("join.json")
}

fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

fn epoch_seconds() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

fn print_join(join: &JoinCommand, record: &TokenRecord) {
    println!(
        "Agents join this cluster with (the token expires {}):",
        describe_expiry(record)
    );
    println!(
        "  berth agent --server {} --token {}",
        join.server, join.token
    );
}

fn describe_expiry(record: &TokenRecord) -> String {
    time::OffsetDateTime::from_unix_timestamp(record.expires_at as i64)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|at| format!("at {at}"))
        .unwrap_or_else(|| "later".to_string())
}

/// Makes a token and keeps the operator's copy; the command, for the caller to print.
fn rotate(
    data_dir: &Path,
    ca: &ClusterCa,
    server: &str,
    ttl: Duration,
) -> anyhow::Result<(JoinCommand, TokenRecord)> {
    let tokens = JoinTokens::in_dir(&pki_dir(data_dir));
    let (token, record) = tokens.rotate(&ca.fingerprint(), epoch_seconds(), ttl.as_secs())?;
    let join = JoinCommand {
        server: server.to_string(),
        token: token.reveal(),
    };
    paths::write_private(&join_file(data_dir), &serde_json::to_vec_pretty(&join)?)?;
    Ok((join, record))
}

/// How a running server points at the join command without writing the token itself.
fn print_join_pointer(data_dir: &Path, record: &TokenRecord) {
    println!(
        "Agents join with the command `berth server token --data-dir {}` prints (its token expires {})",
        data_dir.display(),
        describe_expiry(record)
    );
}

/// `berth server token [--rotate]`.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let data_dir = paths::data_dir(args.data_dir.as_deref());
    let pki = pki_dir(&data_dir);
    if !pki.join("ca.pem").exists() {
        bail!(
            "no cluster in {}: start `berth server --data-dir {}` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    let (ca, _) = ClusterCa::open_or_create(&pki, time::OffsetDateTime::now_utc())?;
    let file = join_file(&data_dir);
    let join: JoinCommand = serde_json::from_slice(
        &std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
    )
    .with_context(|| format!("reading {}", file.display()))?;
    if args.rotate {
        let (join, record) = rotate(&data_dir, &ca, &join.server, args.ttl)?;
        print_join(&join, &record);
        return Ok(());
    }
    let token =
        JoinToken::parse(&join.token).with_context(|| format!("reading {}", file.display()))?;
    let records = JoinTokens::in_dir(&pki).records()?;
    let Some(record) = records.iter().find(|r| r.id == token.id()) else {
        bail!(
            "the join token in {} was replaced; make a new one with `berth server token --rotate`",
            file.display()
        );
    };
    if epoch_seconds() >= record.expires_at {
        bail!(
            "the join token expired {}; make a new one with `berth server token --rotate`",
            describe_expiry(record)
        );
    }
    print_join(&join, record);
    Ok(())
}

/// The agent listener's default: every address, on the API's port + 1.
fn default_agent_listen(api: SocketAddr) -> SocketAddr {
    let any: IpAddr = if api.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(any, api.port().wrapping_add(1))
}

/// The host of the join command: the first --advertise, the listen address, or this
/// machine's first address beyond loopback.
fn advertised_host(args: &ServerArgs, listen: SocketAddr, machine: &[IpAddr]) -> String {
    if let Some(first) = args.advertise.first() {
        return first.clone();
    }
    let ip = if listen.ip().is_unspecified() {
        machine
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() && !ip.is_loopback())
            .unwrap_or(tls::local_address(listen).ip())
    } else {
        listen.ip()
    };
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    if args.heartbeat_timeout.is_zero() {
        bail!("--heartbeat-timeout must be more than 0");
    }
    let prepared = args.control_plane.prepare(false)?;
    let data_dir = prepared.data_dir.clone();
    let now = time::OffsetDateTime::now_utc();
    let (ca, created) = ClusterCa::open_or_create(&pki_dir(&data_dir), now)?;
    let ca = Arc::new(ca);

    let agent_listen = args
        .agent_listen
        .unwrap_or_else(|| default_agent_listen(args.control_plane.listen));
    let agent_listener = tokio::net::TcpListener::bind(agent_listen)
        .await
        .with_context(|| {
            format!("cannot listen for agents on {agent_listen} (choose another address with --agent-listen)")
        })?;
    let agent_listen = agent_listener.local_addr()?;
    let machine = tls::machine_addresses();
    let mut names = tls::names_for(agent_listen, &machine);
    for name in &args.advertise {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let agent_tls = ca.agent_listener_config(&names, now)?;
    let server_url = format!(
        "https://{}:{}",
        advertised_host(&args, agent_listen, &machine),
        agent_listen.port()
    );

    let mut running = control_plane::start(&args.control_plane, prepared, "server").await?;
    let control_plane = running.control_plane.clone();
    let liveness = Arc::new(NodeLiveness::new());
    let task_requests = Arc::new(AgentRequests::new(control_plane.store.clone()));
    control_plane.set_task_agents(task_requests.clone());
    let tokens = JoinTokens::in_dir(&pki_dir(&data_dir));
    running.spawn(serve_agents(
        agent_listener,
        AgentApi {
            control_plane: control_plane.clone(),
            ca: ca.clone(),
            tokens: tokens.clone(),
            liveness: liveness.clone(),
            task_requests: task_requests.clone(),
        },
        agent_tls,
        agent_limits(),
        running.stopped(),
    ));
    let stopped = running.stopped();
    running.spawn(run_node_liveness(
        control_plane,
        liveness,
        args.heartbeat_timeout,
        stopped,
    ));

    running.print_api("server");
    println!(
        "Agent listener at {server_url} (listening on {agent_listen}); cluster CA {} (SHA-256 {})",
        pki_dir(&data_dir).join("ca.pem").display(),
        ca.fingerprint()
    );
    if created || tokens.records()?.is_empty() {
        let (join, record) = rotate(&data_dir, &ca, &server_url, args.token_ttl)?;
        // The token admits machines to the cluster: shown on a terminal, kept out of
        // a log (standard output that is no terminal), as berth dev's secret is.
        if std::io::stdout().is_terminal() {
            print_join(&join, &record);
        } else {
            print_join_pointer(&data_dir, &record);
        }
    } else {
        // The operator's copy follows the address the server is reached at now.
        if let Ok(bytes) = std::fs::read(join_file(&data_dir)) {
            if let Ok(mut join) = serde_json::from_slice::<JoinCommand>(&bytes) {
                if join.server != server_url {
                    join.server = server_url.clone();
                    paths::write_private(
                        &join_file(&data_dir),
                        &serde_json::to_vec_pretty(&join)?,
                    )?;
                }
            }
        }
        let current = tokens
            .records()?
            .into_iter()
            .max_by_key(|record| record.created_at);
        match current {
            Some(record) if epoch_seconds() < record.expires_at => {
                print_join_pointer(&data_dir, &record)
            }
            _ => println!(
                "The join token expired: make a new one with `berth server token --rotate --data-dir {}`",
                data_dir.display()
            ),
        }
    }
    running.run_until_signal("server").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_served_beside_the_api_on_every_address() {
        let api: SocketAddr = "127.0.0.1:9650".parse().unwrap();
        assert_eq!(
            default_agent_listen(api),
            "0.0.0.0:9651".parse::<SocketAddr>().unwrap()
        );
        let api: SocketAddr = "[::1]:9650".parse().unwrap();
        assert_eq!(
            default_agent_listen(api),
            "[::]:9651".parse::<SocketAddr>().unwrap()
        );
    }
}
