//! The fleet benchmark's load generator (`bench/fleet.sh`): `--agents` simulated
//! machines in one process, each joined to a running `berth server` as its own node.
//!
//! Each simulated machine is the real agent (`berth_agent::Agent`, the one `berth
//! agent` runs) on an in-memory engine (`berth_runtime::FakeRuntime`) over the real
//! link (`berth_remote_link`): it joins with the token (its own key, certificate
//! request and node certificate, the CA pinned), registers its container instance,
//! heartbeats every `--heartbeat-interval`, long-polls its assignments and reports its
//! tasks as a real agent does. So what the server serves is exactly what a fleet of
//! real machines would send it; only the containers are pretend.
//!
//! With `--spread-addresses` machine N connects from its own loopback address
//! (127.1.0.1, 127.1.0.2, ...), as real machines come from addresses of their own.
//!
//! Every `--status-every` it prints one line: machines joined, machines running, and
//! the containers their engines run.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_agent::{machine_attributes, Agent, AgentConfig};
use berth_remote_link::{send_heartbeats, RemoteLink};
use berth_runtime::{ContainerRuntime, FakeRuntime};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berth-fleet",
    about = "Simulated berth agents against one berth server"
)]
struct Args {
    /// The agent listener's URL, as the join command names it.
    #[arg(long)]
    server: String,
    /// The join token `berth server token` prints.
    #[arg(long, env = "BERTH_JOIN_TOKEN", hide_env_values = true)]
    token: String,
    /// How many machines to simulate.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Where the machines keep their keys and certificates (one directory each).
    #[arg(long)]
    data_dir: PathBuf,
    /// The cluster the machines register with.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// How often each machine heartbeats (berth agent's default: 1 s).
    #[arg(long, default_value_t = 1000)]
    heartbeat_interval_ms: u64,
    /// Joins in flight at once (a fleet does not join in the same millisecond).
    #[arg(long, default_value_t = 32)]
    join_concurrency: usize,
    /// Connect machine N from 127.1.x.y, an address of its own, instead of 127.0.0.1.
    #[arg(long)]
    spread_addresses: bool,
    /// How often to print the status line.
    #[arg(long, default_value_t = 5000)]
    status_every_ms: u64,
}

/// Machine `index`'s own loopback address: 127.1.0.1 up, 250 per /24.
fn source_address(index: usize) -> anyhow::Result<IpAddr> {
    let third = u8::try_from(index / 250).context("at most 64,000 spread addresses")?;
    let fourth = u8::try_from(index % 250 + 1).context("at most 250 per /24")?;
    Ok(IpAddr::V4(Ipv4Addr::new(127, 1, third, fourth)))
}

struct Fleet {
    joined: AtomicUsize,
    running: AtomicUsize,
    engines: std::sync::Mutex<Vec<Arc<FakeRuntime>>>,
}

async fn run_machine(
    args: Arc<Args>,
    server: reqwest::Url,
    index: usize,
    joins: Arc<tokio::sync::Semaphore>,
    fleet: Arc<Fleet>,
) -> anyhow::Result<()> {
    let node_id = format!("fleet-{index:05}");
    let source = if args.spread_addresses {
        Some(source_address(index)?)
    } else {
        None
    };
    let pki_dir = args.data_dir.join(&node_id).join("pki");
    let identity = {
        let _turn = joins.acquire().await.context("join queue closed")?;
        berth_remote_link::join(&server, &args.token, &node_id, &pki_dir, source)
            .await
            .with_context(|| format!("{node_id} joining"))?
    };
    fleet.joined.fetch_add(1, Ordering::Relaxed);
    let link = Arc::new(RemoteLink::new(&server, &identity, source)?);
    let engine = Arc::new(FakeRuntime::new());
    fleet
        .engines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(engine.clone());
    let runtime: Arc<dyn ContainerRuntime> = engine;
    let agent = Agent::new(
        AgentConfig {
            address: Some(
                source
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
                    .to_string(),
            ),
            attributes: machine_attributes(),
            ..AgentConfig::new(node_id.clone(), args.cluster.clone())
        },
        runtime,
        link.clone(),
    );
    tokio::spawn(send_heartbeats(
        link,
        Duration::from_millis(args.heartbeat_interval_ms),
        std::future::pending::<()>(),
    ));
    fleet.running.fetch_add(1, Ordering::Relaxed);
    agent
        .run(std::future::pending::<()>())
        .await
        .with_context(|| format!("{node_id}'s agent stopped"))
}

fn running_containers(fleet: &Fleet) -> usize {
    let engines = fleet
        .engines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    engines
        .iter()
        .map(|engine| {
            engine
                .containers()
                .iter()
                .filter(|container| container.state == berth_runtime::ContainerState::Running)
                .count()
        })
        .sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Arc::new(Args::parse());
    if args.agents == 0 || args.join_concurrency == 0 {
        bail!("--agents and --join-concurrency must be more than 0");
    }
    // Each machine holds a few connections; 1024 descriptors would not do for a fleet.
    berth_server::raise_descriptor_limit().context("raising the descriptor limit")?;
    let server = reqwest::Url::parse(&args.server).context("--server")?;
    let fleet = Arc::new(Fleet {
        joined: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
        engines: std::sync::Mutex::new(Vec::new()),
    });
    let joins = Arc::new(tokio::sync::Semaphore::new(args.join_concurrency));
    let mut machines = tokio::task::JoinSet::new();
    for index in 0..args.agents {
        machines.spawn(run_machine(
            args.clone(),
            server.clone(),
            index,
            joins.clone(),
            fleet.clone(),
        ));
    }
    let started = Instant::now();
    let mut status = tokio::time::interval(Duration::from_millis(args.status_every_ms));
    loop {
        tokio::select! {
            ended = machines.join_next() => match ended {
                // A machine's agent never returns on its own: any end is a failure.
                Some(Ok(Err(error))) => bail!("{error:#}"),
                Some(Ok(Ok(()))) => bail!("a machine's agent stopped"),
                Some(Err(error)) => bail!("a machine panicked: {error}"),
                None => bail!("no machines left"),
            },
            _ = status.tick() => {
                println!(
                    "fleet t={:.1}s joined={} running={} containers={}",
                    started.elapsed().as_secs_f64(),
                    fleet.joined.load(Ordering::Relaxed),
                    fleet.running.load(Ordering::Relaxed),
                    running_containers(&fleet),
                );
            }
        }
    }
}
