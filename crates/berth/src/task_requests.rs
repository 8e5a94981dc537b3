//! What the API asks about a node's tasks (their output for `berth logs`, their
//! containers' figures for `berth top`), answered through the node's agent: in process
//! for `berth dev`, and for `berth agent` by answering the server's task requests (see
//! `berth_server::AgentRequests`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_agent::AgentHandle;
use berth_api::{ContainerStats, LogLine};
use berth_proto::remote::{
    TaskAnswer, TaskContainerStats, TaskLogLine, TaskRequest, TaskRequestKind,
};
use berth_runtime::LogEntry;
use berth_server::{api_container_stats, api_log_line, TaskAgents, MAX_AGENT_BODY_BYTES};

use berth_remote_link::RemoteLink;

/// How long one ask for task requests may be held by the server.
const LONG_POLL: Duration = Duration::from_secs(55);
/// What an answer's lines may add up to, below the agent listener's body limit.
const ANSWER_BUDGET: usize = MAX_AGENT_BODY_BYTES * 7 / 8;

fn log_line(container_name: String, entry: LogEntry) -> TaskLogLine {
    TaskLogLine {
        container_name,
        timestamp: entry.timestamp,
        stream: format!("{:?}", entry.stream).to_lowercase(),
        message: entry.message,
    }
}

/// The answer to one request about a task on this node.
async fn answer(agent: &AgentHandle, request: &TaskRequest) -> TaskAnswer {
    match request.kind {
        TaskRequestKind::Logs => read_logs(agent, request).await,
        TaskRequestKind::Stats => read_stats(agent, request).await,
    }
}

/// The figures of the task's running containers.
async fn read_stats(agent: &AgentHandle, request: &TaskRequest) -> TaskAnswer {
    match agent.stats(&request.task_id).await {
        Ok(figures) => TaskAnswer {
            id: request.id,
            lines: Vec::new(),
            stats: figures
                .into_iter()
                .map(|(container_name, stats)| TaskContainerStats {
                    container_name,
                    cpu_percent: stats.cpu_percent,
                    memory_usage_bytes: stats.memory_usage_bytes,
                    memory_limit_bytes: stats.memory_limit_bytes,
                    network_rx_bytes: stats.network_rx_bytes,
                    network_tx_bytes: stats.network_tx_bytes,
                    block_read_bytes: stats.block_read_bytes,
                    block_write_bytes: stats.block_write_bytes,
                    pids: stats.pids,
                })
                .collect(),
            error: None,
        },
        Err(error) => TaskAnswer::failed(request.id, error.to_string()),
    }
}

/// The lines of the request, the newest that fit in one answer.
async fn read_logs(agent: &AgentHandle, request: &TaskRequest) -> TaskAnswer {
    let read = agent
        .logs(
            &request.task_id,
            request.container_name.as_deref(),
            request.since,
            request.tail,
        )
        .await;
    match read {
        Ok(entries) => {
            let mut lines: Vec<TaskLogLine> = entries
                .into_iter()
                .map(|(name, entry)| log_line(name, entry))
                .collect();
            let mut size = 0;
            let keep_from = lines
                .iter()
                .rposition(|line| {
                    // Each line's JSON carries its fields' names and quoting too.
                    size += line.message.len() + line.container_name.len() + 96;
                    size > ANSWER_BUDGET
                })
                .map_or(0, |at| at + 1);
            lines.drain(..keep_from);
            TaskAnswer {
                id: request.id,
                lines,
                stats: Vec::new(),
                error: None,
            }
        }
        Err(error) => TaskAnswer::failed(request.id, error.to_string()),
    }
}

/// `berth dev`: GetTaskLogs and GetTaskStats read through the local agent.
pub struct LocalAgent(pub AgentHandle);

impl LocalAgent {
    async fn ask(&self, request: TaskRequest) -> Result<TaskAnswer, String> {
        let answer = answer(&self.0, &request).await;
        match answer.error {
            Some(error) => Err(error),
            None => Ok(answer),
        }
    }
}

#[async_trait]
impl TaskAgents for LocalAgent {
    async fn task_logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogLine>, String> {
        let request = TaskRequest::logs(task_id, container_name, since, tail);
        let answer = self.ask(request).await?;
        Ok(answer.lines.into_iter().map(api_log_line).collect())
    }

    async fn task_stats(&self, task_id: &str) -> Result<Vec<ContainerStats>, String> {
        let answer = self.ask(TaskRequest::stats(task_id)).await?;
        Ok(answer.stats.into_iter().map(api_container_stats).collect())
    }
}

/// `berth agent`: answers the server's requests about this node's tasks until
/// `shutdown`.
pub async fn serve(
    link: Arc<RemoteLink>,
    agent: AgentHandle,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut failing = false;
    loop {
        let asked = tokio::select! {
            _ = &mut shutdown => return,
            asked = link.task_requests(LONG_POLL) => asked,
        };
        match asked {
            Ok(requests) => {
                failing = false;
                for request in requests {
                    let (link, agent) = (link.clone(), agent.clone());
                    tokio::spawn(async move {
                        let answer = answer(&agent, &request).await;
                        if let Err(error) = link.task_answer(&answer).await {
                            tracing::debug!(%error, request = request.id, "a task answer was not taken");
                        }
                    });
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot ask the server for task requests; retrying");
                }
                failing = true;
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}
