//! The output of a node's tasks, read through its agent: in process for `berth dev`,
//! and for `berth agent`, answering the server's log requests (see
//! `berth_server::RemoteLogs`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_agent::AgentHandle;
use berth_api::LogLine;
use berth_proto::remote::{LogAnswer, LogRequest, TaskLogLine};
use berth_runtime::LogEntry;
use berth_server::{api_log_line, LogSource, MAX_AGENT_BODY_BYTES};

use berth_remote_link::RemoteLink;

/// How long one ask for log requests may be held by the server.
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

/// The lines of the request, the newest that fit in one answer.
async fn read(agent: &AgentHandle, request: &LogRequest) -> LogAnswer {
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
            LogAnswer {
                id: request.id,
                lines,
                error: None,
            }
        }
        Err(error) => LogAnswer {
            id: request.id,
            lines: Vec::new(),
            error: Some(error.to_string()),
        },
    }
}

/// `berth dev`: GetTaskLogs reads through the local agent.
pub struct AgentLogs(pub AgentHandle);

#[async_trait]
impl LogSource for AgentLogs {
    async fn task_logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogLine>, String> {
        let request = LogRequest {
            id: 0,
            task_id: task_id.to_string(),
            container_name: container_name.map(str::to_string),
            since,
            tail,
        };
        let answer = read(&self.0, &request).await;
        match answer.error {
            Some(error) => Err(error),
            None => Ok(answer.lines.into_iter().map(api_log_line).collect()),
        }
    }
}

/// `berth agent`: answers the server's log requests for this node's tasks until
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
            asked = link.log_requests(LONG_POLL) => asked,
        };
        match asked {
            Ok(requests) => {
                failing = false;
                for request in requests {
                    let (link, agent) = (link.clone(), agent.clone());
                    tokio::spawn(async move {
                        let answer = read(&agent, &request).await;
                        if let Err(error) = link.log_answer(&answer).await {
                            tracing::debug!(%error, request = request.id, "a log answer was not taken");
                        }
                    });
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot ask the server for log requests; retrying");
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
