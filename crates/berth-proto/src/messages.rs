//! The messages. Durations are relative (milliseconds from when the control plane
//! answered), never instants: the agent's clock need not agree with the server's.

use berth_core::spec::TaskSpec;
use serde::{Deserialize, Serialize};

use crate::{DesiredStatus, TaskStatus};

/// What an agent needs to know about one task it runs, besides its spec.
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

/// A task assigned to a node, with what it runs: its definition's typed spec with the
/// task's overrides applied (`berth_core::ecs::effective_spec`). The agent maps only
/// from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub task: AssignedTask,
    pub spec: TaskSpec,
}

/// A node's whole assignment set at one revision of its change feed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignments {
    pub revision: u64,
    pub assignments: Vec<Assignment>,
}
