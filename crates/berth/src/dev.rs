//! `berth dev`: the whole cluster in one process on this machine: the control plane
//! (`control_plane.rs`) and the local agent on the Docker engine, linked in process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use berth_agent::{Agent, AgentConfig};
use berth_runtime::{ContainerRuntime, DockerRuntime};
use berth_server::LocalLink;

use crate::control_plane;
use crate::paths;
use crate::pid_file::{self, PidFile, Stopped};
use crate::process::node_id;
use crate::DevArgs;

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.stop {
        return stop(&paths::data_dir(args.control_plane.data_dir.as_deref()));
    }
    // Checked before anything starts; said once the engine answers (an unreachable
    // engine is one line of error and nothing else).
    let prepared = args.control_plane.prepare(true)?;
    // Held until berth dev returns: the pid file is removed on a clean exit.
    let (_pid_file, stale) = PidFile::acquire(&prepared.data_dir)?;
    if let Some(pid) = stale.filter(|pid| *pid != std::process::id()) {
        tracing::info!(
            pid,
            "replaced the pid file of a berth dev that is no longer running"
        );
    }
    let runtime: Arc<dyn ContainerRuntime> = match DockerRuntime::connect().await {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => bail!("{error}"),
    };
    let mut running = control_plane::start(&args.control_plane, prepared, "dev").await?;
    let control_plane = running.control_plane.clone();
    let node_id = node_id(&running.data_dir)?;
    let agent = Agent::new(
        AgentConfig {
            node_id,
            cluster: "default".to_string(),
            joins_every_cluster: true,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            task_cleanup_wait: Duration::from_secs(args.task_cleanup_wait),
            address: None,
            attributes: berth_agent::machine_attributes(),
            capacity_provider: None,
        },
        runtime,
        Arc::new(LocalLink::new(control_plane.clone())),
    );
    control_plane.set_task_agents(Arc::new(crate::task_requests::LocalAgent(agent.handle())));
    let stopped = running.stopped();
    running.spawn(agent.run(stopped));
    running.print_api("dev");
    println!(
        "Stop it with: berth dev --stop --data-dir {}",
        running.data_dir.display()
    );
    running.run_until_signal("dev").await;
    Ok(())
}

/// `berth dev --stop`: the berth dev of this data dir, and no other.
fn stop(data_dir: &std::path::Path) -> anyhow::Result<()> {
    match pid_file::stop(data_dir)? {
        Stopped::Stopped(pid) => {
            println!(
                "stopped berth dev (pid {pid}) of {}; its tasks keep running and are adopted at the next start",
                data_dir.display()
            );
            Ok(())
        }
        Stopped::NoneRunning { stale } => {
            let left = stale
                .map(|pid| format!(" (removed the pid file of pid {pid}, which had exited)"))
                .unwrap_or_default();
            bail!(
                "no berth dev is running on the data directory {}{left}",
                data_dir.display()
            )
        }
    }
}
