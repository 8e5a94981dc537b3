//! The messages. Durations are relative (milliseconds from when the control plane
//! answered), never instants: the agent's clock need not agree with the server's.

use berth_api::{RegisterTaskDefinitionRequest, TaskOverride};
use serde::{Deserialize, Serialize};

use crate::{DesiredStatus, TaskStatus};

/// What an agent needs to know about one task it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub id: String,
    pub cluster: String,
    pub family: String,
    pub revision: u32,
    /// The service that started it: its tasks answer to the service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub desired_status: DesiredStatus,
    pub last_status: TaskStatus,
    /// The task's network mode as placed (empty: the definition's).
    #[serde(default)]
    pub network_mode: String,
    /// The task-level memory (MiB, as ECS writes it), after overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default)]
    pub overrides: TaskOverride,
    /// For a task being stopped: how long its load-balancer targets still drain before
    /// its containers get SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_ms: Option<u64>,
    /// For a STOPPED task: how long ago it stopped (its containers are kept a while for
    /// `berth logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_ms_ago: Option<u64>,
}

impl AssignedTask {
    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }
}

/// A task assigned to a node, with the task definition it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub task: AssignedTask,
    pub definition: RegisterTaskDefinitionRequest,
}

/// A node's whole assignment set at one revision of its change feed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignments {
    pub revision: u64,
    pub assignments: Vec<Assignment>,
}
