//! `berth dev`: the whole cluster in one process on this machine: the control plane
//! (`control_plane.rs`) and the local agent on the Docker engine, linked in process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig, AgentHandle};
use berth_api::LogLine;
use berth_runtime::{ContainerRuntime, DockerRuntime};
use berth_server::{LocalLink, LogSource};

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
        },
        runtime,
        Arc::new(LocalLink::new(control_plane.clone())),
    );
    control_plane.set_log_source(Arc::new(AgentLogs(agent.handle())));
    let stopped = running.stopped();
    running.spawn(agent.run(stopped));
    running.print_api("dev");
    running.run_until_signal("dev").await;
    Ok(())
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
