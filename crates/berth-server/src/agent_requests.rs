//! What the API asks of the agent that runs a task under `berth server`: its output
//! (`berth logs`) and its containers' live figures (`berth top`) are on the machine
//! that runs it, and the server cannot call its agents (they call it). So each agent
//! long-polls for the requests about its own tasks (`/v1/log-requests`) and posts each
//! answer (`/v1/log-answer`); the caller waits for that answer, up to `ANSWER_TIMEOUT`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use berth_api::{ContainerStats, LogLine};
use berth_proto::remote::{TaskAnswer, TaskContainerStats, TaskLogLine, TaskRequest};
use berth_store::Store;
use tokio::sync::{oneshot, Notify};

use crate::control_plane::TaskAgents;

/// How long a caller waits for the agent's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The requests on their way to agents, and the callers waiting for answers.
pub struct AgentRequests {
    store: Arc<Store>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Per node: the requests its agent has not fetched yet.
    queued: HashMap<String, Vec<TaskRequest>>,
    /// Per node: wakes its agent's poll.
    wakers: HashMap<String, Arc<Notify>>,
    /// Per request id: the node asked, and who waits for the answer.
    waiting: HashMap<u64, (String, oneshot::Sender<TaskAnswer>)>,
}

/// Why an answer was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerRefused {
    /// No request of that id waits (answered before, or given up on).
    Unknown(u64),
    /// The request was asked of another node.
    OtherNode(u64),
}

impl AgentRequests {
    pub fn new(store: Arc<Store>) -> AgentRequests {
        AgentRequests {
            store,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn waker(&self, node_id: &str) -> Arc<Notify> {
        self.lock()
            .wakers
            .entry(node_id.to_string())
            .or_default()
            .clone()
    }

    /// The requests for `node_id`'s agent: at once if some are queued, else the first
    /// to come within `timeout` (none when it passes).
    pub async fn next_requests(&self, node_id: &str, timeout: Duration) -> Vec<TaskRequest> {
        let waker = self.waker(node_id);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a request queued in between still wakes it.
            let notified = waker.notified();
            let taken = self.lock().queued.remove(node_id).unwrap_or_default();
            if !taken.is_empty() {
                return taken;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return Vec::new(),
            }
        }
    }

    /// Hands `answer` from `node_id` to whoever waits for it.
    pub fn answer(&self, node_id: &str, answer: TaskAnswer) -> Result<(), AnswerRefused> {
        let mut inner = self.lock();
        match inner.waiting.get(&answer.id) {
            None => return Err(AnswerRefused::Unknown(answer.id)),
            Some((asked, _)) if asked != node_id => {
                return Err(AnswerRefused::OtherNode(answer.id))
            }
            Some(_) => {}
        }
        if let Some((_, sender)) = inner.waiting.remove(&answer.id) {
            // The caller may have given up just now; nothing to do then.
            let _ = sender.send(answer);
        }
        Ok(())
    }

    /// Asks `node_id`'s agent; its answer, or an error once `ANSWER_TIMEOUT` passes.
    async fn ask(&self, node_id: &str, mut request: TaskRequest) -> Result<TaskAnswer, String> {
        let (sender, receiver) = oneshot::channel();
        let id = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            request.id = id;
            inner.waiting.insert(id, (node_id.to_string(), sender));
            inner
                .queued
                .entry(node_id.to_string())
                .or_default()
                .push(request);
            id
        };
        self.waker(node_id).notify_waiters();
        match tokio::time::timeout(ANSWER_TIMEOUT, receiver).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                let mut inner = self.lock();
                inner.waiting.remove(&id);
                if let Some(queued) = inner.queued.get_mut(node_id) {
                    queued.retain(|request| request.id != id);
                }
                Err(format!(
                    "the agent of node '{node_id}' did not answer within {} s",
                    ANSWER_TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// Asks the agent of the node that runs the request's task. `None` when the task
    /// is on no container instance (not placed yet); an error when that instance's
    /// agent is not connected, does not answer in time, or answers with an error.
    async fn ask_about_task(&self, request: TaskRequest) -> Result<Option<TaskAnswer>, String> {
        let node = self.store.read(|state| {
            let instance_id = state
                .tasks
                .get(&request.task_id)?
                .container_instance_id
                .clone()?;
            let instance = state.container_instances.get(&instance_id)?;
            Some((
                instance.node_id.clone(),
                instance.agent_connected,
                instance_id,
            ))
        });
        let Some((node_id, connected, instance_id)) = node else {
            return Ok(None);
        };
        if !connected {
            return Err(format!(
                "the agent of container instance '{instance_id}' is not connected: its tasks cannot be read until it is back"
            ));
        }
        let answer = self.ask(&node_id, request).await?;
        match answer.error {
            Some(error) => Err(error),
            None => Ok(Some(answer)),
        }
    }
}

#[async_trait]
impl TaskAgents for AgentRequests {
    async fn task_logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogLine>, String> {
        let request = TaskRequest::logs(task_id, container_name, since, tail);
        let lines = self
            .ask_about_task(request)
            .await?
            .map(|answer| answer.lines)
            .unwrap_or_default();
        Ok(lines.into_iter().map(api_log_line).collect())
    }

    async fn task_stats(&self, task_id: &str) -> Result<Vec<ContainerStats>, String> {
        let stats = self
            .ask_about_task(TaskRequest::stats(task_id))
            .await?
            .map(|answer| answer.stats)
            .unwrap_or_default();
        Ok(stats.into_iter().map(api_container_stats).collect())
    }
}

/// A line as GetTaskLogs answers it.
pub fn api_log_line(line: TaskLogLine) -> LogLine {
    LogLine {
        container_name: line.container_name,
        timestamp: line.timestamp,
        stream: line.stream,
        message: line.message,
    }
}

/// A container's figures as GetTaskStats answers them.
pub fn api_container_stats(stats: TaskContainerStats) -> ContainerStats {
    ContainerStats {
        name: stats.container_name,
        cpu_percent: stats.cpu_percent,
        memory_usage_bytes: stats.memory_usage_bytes,
        memory_limit_bytes: stats.memory_limit_bytes,
        network_rx_bytes: stats.network_rx_bytes,
        network_tx_bytes: stats.network_tx_bytes,
        block_read_bytes: stats.block_read_bytes,
        block_write_bytes: stats.block_write_bytes,
        pids: stats.pids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> TaskLogLine {
        TaskLogLine {
            container_name: "web".to_string(),
            timestamp: 1.0,
            stream: "stdout".to_string(),
            message: message.to_string(),
        }
    }

    #[tokio::test]
    async fn a_request_reaches_its_nodes_poll_and_the_answer_its_caller() {
        let logs = Arc::new(AgentRequests::new(
            crate::ControlPlane::in_memory().store.clone(),
        ));
        let caller = {
            let logs = logs.clone();
            tokio::spawn(async move {
                logs.ask("n1", TaskRequest::logs("t1", None, None, Some(5)))
                    .await
            })
        };
        // Another node's poll gets nothing; n1's gets the request.
        assert!(logs
            .next_requests("n2", Duration::from_millis(50))
            .await
            .is_empty());
        let requests = logs.next_requests("n1", Duration::from_secs(5)).await;
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].task_id, "t1");
        assert_eq!(requests[0].tail, Some(5));
        let id = requests[0].id;
        // Only the node asked may answer.
        let answer = |lines| TaskAnswer {
            id,
            lines,
            stats: vec![],
            error: None,
        };
        assert_eq!(
            logs.answer("n2", answer(vec![line("forged")])),
            Err(AnswerRefused::OtherNode(id))
        );
        logs.answer("n1", answer(vec![line("GET /")])).unwrap();
        let got = caller.await.unwrap().unwrap();
        assert_eq!(got.lines, vec![line("GET /")]);
        // Answered once: a second answer is refused.
        assert_eq!(
            logs.answer("n1", answer(vec![])),
            Err(AnswerRefused::Unknown(id))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_agent_gets_an_error_after_the_timeout_and_its_request_is_dropped() {
        let logs = AgentRequests::new(crate::ControlPlane::in_memory().store.clone());
        let asked = logs
            .ask("n1", TaskRequest::logs("t1", None, None, None))
            .await;
        let error = asked.unwrap_err();
        assert!(error.contains("node 'n1'"), "{error}");
        // Given up on: not sent to the agent later, and an answer to it is refused.
        assert!(logs
            .next_requests("n1", Duration::from_millis(10))
            .await
            .is_empty());
        assert_eq!(
            logs.answer(
                "n1",
                TaskAnswer {
                    id: 1,
                    lines: vec![],
                    stats: vec![],
                    error: None
                }
            ),
            Err(AnswerRefused::Unknown(1))
        );
    }

    /// One decision of the test's set-up: its commands, and what it found.
    type Decide<'a> = dyn Fn(
            &berth_core::State,
            &mut berth_core::ecs::Context,
        ) -> (Vec<berth_core::Command>, Option<String>)
        + 'a;

    /// A control plane whose default cluster has node `node-1` running one task of
    /// `web`; (control plane, task id).
    fn one_task_on_node_1() -> (crate::ControlPlane, String) {
        use berth_core::PrivilegePolicy;
        let cp = crate::ControlPlane::in_memory();
        let scope = cp.scope("us-east-1");
        let policy = PrivilegePolicy::allow_all();
        let mut ids = crate::RandomIds;
        let mut act = |decide: &Decide<'_>| {
            let mut ctx = berth_core::ecs::Context {
                now: crate::now(),
                scope: &scope,
                ids: &mut ids,
                policy: &policy,
            };
            let (commands, answer) = cp.store.read(|state| decide(state, &mut ctx));
            cp.store.apply(commands).unwrap();
            answer
        };
        let registration = berth_core::nodes::NodeRegistration {
            node_id: "node-1".to_string(),
            hostname: "host-1".to_string(),
            cpu: 2048,
            memory: 4096,
            agent_version: "1.0.0".to_string(),
            docker_version: "27.0.0".to_string(),
            cluster: "default".to_string(),
            joins_every_cluster: true,
            address: None,
            attributes: Default::default(),
            capacity_provider: None,
        };
        act(&|state, ctx| {
            let commands = berth_core::nodes::register_node(state, &registration, ctx);
            (commands, None)
        });
        act(&|state, ctx| {
            let request = serde_json::from_value(serde_json::json!({
                "family": "web",
                "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 64}]
            }))
            .unwrap();
            let outcome = berth_core::ecs::register_task_definition(state, request, ctx).unwrap();
            (outcome.commands, None)
        });
        let task_id = act(&|state, ctx| {
            let request =
                serde_json::from_value(serde_json::json!({"taskDefinition": "web"})).unwrap();
            let outcome = berth_core::ecs::run_task(state, request, ctx).unwrap();
            let arn = outcome.response.tasks[0].task_arn.clone();
            (outcome.commands, arn.rsplit('/').next().map(str::to_string))
        })
        .unwrap();
        (cp, task_id)
    }

    #[tokio::test]
    async fn stats_are_asked_of_the_tasks_node_and_a_disconnected_one_is_named() {
        let (cp, task_id) = one_task_on_node_1();
        let requests = Arc::new(AgentRequests::new(cp.store.clone()));
        let caller = {
            let (requests, task_id) = (requests.clone(), task_id.clone());
            tokio::spawn(async move { requests.task_stats(&task_id).await })
        };
        let asked = requests
            .next_requests("node-1", Duration::from_secs(5))
            .await;
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].kind, berth_proto::remote::TaskRequestKind::Stats);
        assert_eq!(asked[0].task_id, task_id);
        let figures = TaskContainerStats {
            container_name: "app".to_string(),
            cpu_percent: 87.5,
            memory_usage_bytes: 1024,
            memory_limit_bytes: 64 * 1024 * 1024,
            network_rx_bytes: 1,
            network_tx_bytes: 2,
            block_read_bytes: 3,
            block_write_bytes: 4,
            pids: 5,
        };
        requests
            .answer(
                "node-1",
                TaskAnswer {
                    id: asked[0].id,
                    lines: vec![],
                    stats: vec![figures.clone()],
                    error: None,
                },
            )
            .unwrap();
        let got = caller.await.unwrap().unwrap();
        assert_eq!(got, vec![api_container_stats(figures)]);
        assert_eq!(got[0].name, "app");

        // Its agent gone: an error naming the instance, and nothing is asked.
        let instance = cp.store.read(|state| {
            let mut instance = (**state.container_instances.values().next().unwrap()).clone();
            instance.agent_connected = false;
            instance
        });
        let instance_id = instance.id.clone();
        cp.store
            .apply(vec![berth_core::Command::PutContainerInstance(instance)])
            .unwrap();
        let error = requests.task_stats(&task_id).await.unwrap_err();
        assert!(
            error.contains(&format!(
                "container instance '{instance_id}' is not connected"
            )),
            "{error}"
        );
        assert!(requests
            .next_requests("node-1", Duration::from_millis(10))
            .await
            .is_empty());
        // A task on no node has no figures (and no error).
        assert!(requests
            .task_stats("no-such-task")
            .await
            .unwrap()
            .is_empty());
    }
}
