//! The messages of the network transport between an agent and `berth server`: JSON
//! over HTTP/1.1 on the agent listener, mutually authenticated TLS. An agent first
//! joins with a token (the only call without a client certificate) and from then on
//! proves itself with the certificate it got; every other call acts for the node its
//! certificate names.

use serde::{Deserialize, Serialize};

use crate::{NodeRegistration, TaskReport};

/// The agent listener's paths, all `POST` with a JSON body.
pub mod paths {
    /// A join token and a certificate request in, the node's certificate out.
    pub const JOIN: &str = "/v1/join";
    /// [`super::RegisterRequest`] in, nothing out.
    pub const REGISTER: &str = "/v1/register";
    /// [`super::AssignmentsRequest`] in, `Assignments` out (a long-poll).
    pub const ASSIGNMENTS: &str = "/v1/assignments";
    /// [`super::ReportRequest`] in, nothing out.
    pub const REPORT: &str = "/v1/report";
    /// An empty object in, nothing out: the agent is alive.
    pub const HEARTBEAT: &str = "/v1/heartbeat";
    /// [`super::BalancerConfigRequest`] in, `BalancerConfig` out (a long-poll).
    pub const LOAD_BALANCER: &str = "/v1/load-balancer";
    /// [`super::ServiceEndpointsRequest`] in, `ServiceEndpoints` out (a long-poll):
    /// service discovery's endpoints for the node's clusters.
    pub const SERVICE_ENDPOINTS: &str = "/v1/service-endpoints";
    /// [`super::TaskRequestsPoll`] in, [`super::TaskRequests`] out (a long-poll): what
    /// `berth logs` and `berth top` ask of this node's tasks (the path keeps the name
    /// it had when it carried logs only).
    pub const TASK_REQUESTS: &str = "/v1/log-requests";
    /// [`super::TaskAnswer`] in, nothing out.
    pub const TASK_ANSWER: &str = "/v1/log-answer";
}

/// An agent asking to join the cluster. The token is a secret: this type's `Debug`
/// leaves it out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub protocol_version: u32,
    pub token: String,
    /// The id the node asks for, kept in its data dir; it goes into its certificate.
    pub node_id: String,
    /// A PKCS#10 certificate request (PEM) for the key the agent made and keeps: the
    /// private key never leaves the agent's machine.
    pub certificate_request: String,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("protocol_version", &self.protocol_version)
            .field("token", &"<secret>")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// The certificate the cluster's CA issued for the node, and the CA's certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    pub certificate: String,
    pub ca_certificate: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub protocol_version: u32,
    pub registration: NodeRegistration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentsRequest {
    /// The node asking: the one its certificate names, or the call is refused.
    pub node_id: String,
    /// The revision of the node's feed the agent has; 0 for "answer at once".
    pub since: u64,
    /// How long the server may hold the answer (it caps this).
    pub timeout_ms: u64,
}

/// A node serving the load balancer's listeners asks for their config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancerConfigRequest {
    /// The `version` of the config the node serves, if any: the answer waits until the
    /// config differs from it (or `timeout_ms` passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub have: Option<String>,
    /// How long the server may hold the answer (it caps this).
    pub timeout_ms: u64,
}

/// A node asks for service discovery's endpoints of its clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpointsRequest {
    /// The node asking: the one its certificate names, or the call is refused.
    pub node_id: String,
    /// The `version` of the endpoints the node serves, if any: the answer waits until
    /// they differ from it (or `timeout_ms` passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub have: Option<String>,
    /// How long the server may hold the answer (it caps this).
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRequest {
    pub reports: Vec<TaskReport>,
}

/// A node asks what the API's callers want of its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequestsPoll {
    /// How long the server may hold the answer (it caps this).
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequests {
    pub requests: Vec<TaskRequest>,
}

/// What a [`TaskRequest`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskRequestKind {
    /// The output of the task's containers, as GetTaskLogs asks (the kind of a request
    /// that names none, as every request did before there were others).
    #[default]
    Logs,
    /// The live figures of the task's running containers, as GetTaskStats asks.
    Stats,
}

impl TaskRequestKind {
    fn is_logs(&self) -> bool {
        *self == TaskRequestKind::Logs
    }
}

/// A question about one task, for the node that runs it. For logs: the output of its
/// containers (all, or the one named), only lines after `since` (epoch seconds) and
/// only the last `tail` lines, as GetTaskLogs asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequest {
    /// What the answer names.
    pub id: u64,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "TaskRequestKind::is_logs")]
    pub kind: TaskRequestKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u64>,
}

impl TaskRequest {
    /// A request for the output of `task_id`'s containers.
    pub fn logs(
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> TaskRequest {
        TaskRequest {
            id: 0,
            task_id: task_id.to_string(),
            kind: TaskRequestKind::Logs,
            container_name: container_name.map(str::to_string),
            since,
            tail,
        }
    }

    /// A request for the live figures of `task_id`'s containers.
    pub fn stats(task_id: &str) -> TaskRequest {
        TaskRequest {
            id: 0,
            task_id: task_id.to_string(),
            kind: TaskRequestKind::Stats,
            container_name: None,
            since: None,
            tail: None,
        }
    }
}

/// A node's answer to a [`TaskRequest`]: the lines, oldest first (logs), or the
/// containers' figures (stats), or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAnswer {
    pub id: u64,
    #[serde(default)]
    pub lines: Vec<TaskLogLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<TaskContainerStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TaskAnswer {
    /// The answer to request `id` that it failed, and why.
    pub fn failed(id: u64, error: String) -> TaskAnswer {
        TaskAnswer {
            id,
            lines: Vec::new(),
            stats: Vec::new(),
            error: Some(error),
        }
    }
}

/// One running container's figures, as `docker stats` shows them: CPU as a percent of
/// one core (so a task may show more than 100 on a machine of several), memory in use
/// (the page cache the kernel may reclaim left out) and the container's limit, and the
/// bytes it moved since it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainerStats {
    pub container_name: String,
    pub cpu_percent: f64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

/// One line a task's container wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLogLine {
    pub container_name: String,
    /// Epoch seconds at which the container wrote it.
    pub timestamp: f64,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub message: String,
}

/// The body of every refusal: a code a program can match, and a message for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// The join token is unknown, wrong or expired (403).
    InvalidToken,
    /// No client certificate of this cluster (401), or one of another node (403).
    NotAuthorized,
    /// The agent speaks another protocol version (400).
    IncompatibleVersion,
    /// A field is malformed; the message names it (400).
    BadRequest,
    /// The node id has joined already; its agent keeps its certificate (409).
    NodeExists,
    /// The control plane could not do it now; retry (503).
    Unavailable,
}

impl RefusalCode {
    /// Whether trying again as it is may work.
    pub fn is_retryable(self) -> bool {
        matches!(self, RefusalCode::Unavailable)
    }
}
