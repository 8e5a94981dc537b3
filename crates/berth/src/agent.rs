//! `berth agent`: joins a `berth server`'s cluster and runs this machine's share of its
//! tasks on the local Docker engine, over `RemoteLink`.
//!
//! The agent's data dir (default `~/.local/share/berth-agent`) keeps its node id
//! (`node-id`), the server's URL (`server-url`) and its identity (`pki/`: key,
//! certificate, cluster CA, all 0600): after the first join a restart needs neither
//! the token nor `--server`. Several agents may share one engine, each with its own
//! data dir: each manages only what carries its own node id (`berth.node`).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_agent::{Agent, AgentConfig};
use berth_core::attributes::{node_attributes, parse_operator_attributes};
use berth_runtime::{ContainerRuntime, DockerRuntime};

use crate::paths;
use crate::process::{init_tracing, node_id, parse_duration, wait_for_signal};
use berth_remote_link::{self as remote_link, send_heartbeats, Identity, RemoteLink};

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The agent listener of `berth server`, e.g. https://10.0.0.5:9651 (kept in the data
    /// dir after the first join).
    #[arg(long, env = "BERTH_SERVER")]
    pub server: Option<String>,
    /// The join token `berth server` printed (`berth server token`); needed only to join.
    #[arg(long, env = "BERTH_JOIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The cluster this machine serves as a container instance (made when missing).
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Where the agent keeps its identity (default: the user's data directory, e.g. ~/.local/share/berth-agent).
    #[arg(long, env = "BERTH_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address other machines reach this one at, as the node reports it (default:
    /// this machine's address on the route to the server).
    #[arg(long)]
    pub address: Option<IpAddr>,
    /// A container instance attribute, NAME=VALUE (ECS's rules; repeat for more).
    #[arg(long = "attribute", value_name = "NAME=VALUE")]
    pub attributes: Vec<String>,
    /// The capacity provider (made with `aws ecs create-capacity-provider`) whose
    /// container instances this machine's are: tasks whose strategy picks it run only
    /// on its machines.
    #[arg(long, value_name = "NAME")]
    pub capacity_provider: Option<String>,
    /// The availability zone, reported as the attribute ecs.availability-zone.
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// How often the agent tells the server it is alive.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// Also serve every listener of the cluster's load balancer on this machine, routing
    /// by the server's health checks, so that users' traffic need not pass one machine.
    #[arg(long)]
    pub load_balancer: bool,
    /// The address this machine's listeners bind with --load-balancer (default: the
    /// agent's address).
    #[arg(long, requires = "load_balancer")]
    pub lb_address: Option<IpAddr>,
    /// How long a stopped task's containers are kept (for `berth logs`) before removal, in seconds.
    #[arg(long, default_value_t = 600)]
    pub task_cleanup_wait: u64,
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("berth-agent")
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_tracing();
    let operator = parse_operator_attributes(&args.attributes).context("--attribute")?;
    let attributes = node_attributes(
        std::env::consts::ARCH,
        args.availability_zone.as_deref(),
        &operator,
    )
    .context("--availability-zone")?;
    if let Some(provider) = &args.capacity_provider {
        berth_core::ecs::check_capacity_provider_name(provider)
            .map_err(|e| anyhow::anyhow!("--capacity-provider: {}", e.message))?;
    }
    if args.heartbeat_interval.is_zero() {
        bail!("--heartbeat-interval must be more than 0");
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    paths::create_private_dir(&data_dir)?;
    let node_id = node_id(&data_dir)?;
    let server_file = data_dir.join("server-url");
    let server = match &args.server {
        Some(server) => server.clone(),
        None => std::fs::read_to_string(&server_file)
            .map(|text| text.trim().to_string())
            .map_err(|_| {
                anyhow::anyhow!(
                    "give --server (the URL in the join command `berth server token` prints)"
                )
            })?,
    };
    let server = reqwest::Url::parse(&server)
        .ok()
        .filter(|url| url.scheme() == "https" && url.host().is_some())
        .with_context(|| format!("--server '{server}': expected https://HOST:PORT"))?;

    let source = args.address.and_then(remote_link::source_address);
    let pki_dir = data_dir.join("pki");
    let identity = match Identity::load(&pki_dir)? {
        Some(identity) => {
            if args.token.is_some() {
                tracing::info!("this agent joined before; its certificate is used, not the token");
            }
            identity
        }
        None => {
            let Some(token) = &args.token else {
                bail!("this agent has not joined a cluster yet: give --token (the join command `berth server token` prints)");
            };
            let identity = remote_link::join(&server, token, &node_id, &pki_dir, source).await?;
            println!("Joined the cluster at {server} as node {node_id}");
            identity
        }
    };
    paths::write_private(&server_file, server.as_str().as_bytes())?;

    let runtime: Arc<dyn ContainerRuntime> = match DockerRuntime::connect().await {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => bail!("{error}"),
    };
    let link = Arc::new(RemoteLink::new(&server, &identity, source)?);
    let address = args.address.or_else(|| address_towards(&server));
    // Its threads are started before the agent runs, so a machine that cannot start
    // them says so at once.
    let balancer = match args.load_balancer {
        true => {
            let Some(bind_ip) = args.lb_address.or(address) else {
                bail!("--load-balancer: give --lb-address (no route to the server was found to take this machine's address from)");
            };
            let balancer = berth_lb::LoadBalancer::with_own_threads(
                berth_lb::Limits::default(),
                berth_lb::default_data_plane_threads(),
            )
            .context("starting the load balancer's threads")?;
            Some((balancer, bind_ip))
        }
        false => None,
    };
    let agent = Agent::new(
        AgentConfig {
            node_id: node_id.clone(),
            cluster: args.cluster.clone(),
            joins_every_cluster: false,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            task_cleanup_wait: Duration::from_secs(args.task_cleanup_wait),
            address: address.map(|ip| ip.to_string()),
            attributes,
            capacity_provider: args.capacity_provider.clone(),
        },
        runtime,
        link.clone(),
    );
    println!(
        "berth agent is running: node {node_id} of cluster {} at {server}, data in {}",
        args.cluster,
        data_dir.display()
    );
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let balancer_task = balancer.map(|(balancer, bind_ip)| {
        println!("serving the load balancer's listeners on {bind_ip}");
        tokio::spawn(crate::agent_balancer::run(
            link.clone(),
            balancer,
            bind_ip,
            stopped(stop.clone()),
        ))
    });
    let task_answers = tokio::spawn(crate::task_requests::serve(
        link.clone(),
        agent.handle(),
        stopped(stop.clone()),
    ));
    let heartbeats = tokio::spawn(send_heartbeats(
        link,
        args.heartbeat_interval,
        stopped(stop.clone()),
    ));
    let agent_task = tokio::spawn(agent.run(stopped(stop)));
    wait_for_signal().await;
    tracing::info!(
        "stopping berth agent; running tasks keep running and are adopted at the next start"
    );
    let _ = stop_sender.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = heartbeats.await;
        let _ = task_answers.await;
        let _ = agent_task.await;
        if let Some(balancer_task) = balancer_task {
            let _ = balancer_task.await;
        }
    })
    .await;
    Ok(())
}

/// This machine's address on the route to the server: what the server (and the load
/// balancer beside it) reaches this machine's published ports at. Found by connecting a
/// UDP socket, which sends nothing.
fn address_towards(server: &reqwest::Url) -> Option<IpAddr> {
    let port = server.port_or_known_default()?;
    let target = (server.host_str()?, port).to_socket_addrs().ok()?.next()?;
    let unspecified: IpAddr = match target {
        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind((unspecified, 0)).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn the_default_address_is_the_one_on_the_route_to_the_server() {
        let loopback = reqwest::Url::parse("https://127.0.0.1:9651").unwrap();
        assert_eq!(
            address_towards(&loopback),
            Some("127.0.0.1".parse().unwrap())
        );
        let unresolvable = reqwest::Url::parse("https://no-such-host.invalid:9651").unwrap();
        assert_eq!(address_towards(&unresolvable), None);
    }
}
