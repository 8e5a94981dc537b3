//! `berth dev`: the whole cluster in one process on this machine: the control plane
//! (`control_plane.rs`) and the local agent on the Docker engine, linked in process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use berth_agent::{Agent, AgentConfig};
use berth_runtime::{ContainerRuntime, DockerRuntime};
use berth_server::LocalLink;

use crate::control_plane;
use crate::process::node_id;
use crate::DevArgs;

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    // Checked before anything starts; said once the engine answers (an unreachable
    // engine is one line of error and nothing else).
    let prepared = args.control_plane.prepare(true)?;
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
    control_plane.set_log_source(Arc::new(crate::task_logs::AgentLogs(agent.handle())));
    let stopped = running.stopped();
    running.spawn(agent.run(stopped));
    running.print_api("dev");
    running.run_until_signal("dev").await;
    Ok(())
}
