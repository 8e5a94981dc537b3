//! `BerthV1.GetTaskStats` (`berth top`): which tasks it reads. The figures themselves
//! are on the machines that run the tasks; the server asks each task's agent.

use berth_api as api;

use super::tasks::find_task;
use super::{Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::cluster_name;
use crate::model::Task;
use crate::state::State;

/// At most this many tasks may be named in one request, as DescribeTasks takes.
pub const MAX_STATS_TASKS: usize = 100;

/// A task whose containers' figures are to be read from its agent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsTarget {
    pub task_id: String,
    pub task_arn: String,
    pub group: Option<String>,
    pub container_instance_arn: Option<String>,
}

/// The tasks to read, and the named ones that have nothing to read, with why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsTargets {
    pub targets: Vec<StatsTarget>,
    pub failures: Vec<api::Failure>,
}

/// The tasks GetTaskStats reads: the ones named (each must be a task of the cluster;
/// a stopped one is a failure, since none of its containers runs), or without names
/// every task of the cluster placed on a container instance and not stopped.
pub fn task_stats_targets(
    state: &State,
    request: api::GetTaskStatsRequest,
    ctx: &mut Context,
) -> EcsResult<StatsTargets> {
    let cluster = cluster_name(request.cluster.as_deref());
    let target = |task: &Task| StatsTarget {
        task_id: task.id.clone(),
        task_arn: ctx.scope.task(&cluster, &task.id),
        group: task.group.clone(),
        container_instance_arn: task
            .container_instance_id
            .as_ref()
            .map(|instance| ctx.scope.container_instance(&cluster, instance)),
    };
    let mut answer = StatsTargets::default();
    let named = request.tasks.unwrap_or_default();
    if named.is_empty() {
        let mut live: Vec<&Task> = state
            .tasks
            .values()
            .map(|task| &**task)
            .filter(|task| task.cluster == cluster)
            .filter(|task| !task.is_stopped() && task.container_instance_id.is_some())
            .collect();
        live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        answer.targets = live.into_iter().map(target).collect();
        return Ok(Outcome::read_only(answer));
    }
    if named.len() > MAX_STATS_TASKS {
        return Err(EcsError::invalid_parameter(format!(
            "tasks can name at most {MAX_STATS_TASKS} tasks, got {}",
            named.len()
        )));
    }
    for given in &named {
        let Some(task) = find_task(state, &cluster, given) else {
            return Err(EcsError::invalid_parameter(format!(
                "task '{given}' was not found in cluster '{cluster}'"
            )));
        };
        if task.is_stopped() {
            answer.failures.push(api::Failure {
                arn: Some(ctx.scope.task(&cluster, &task.id)),
                reason: Some("STOPPED".to_string()),
                detail: Some("the task is stopped: none of its containers runs".to_string()),
            });
        } else if !answer.targets.iter().any(|t| t.task_id == task.id) {
            answer.targets.push(target(task));
        }
    }
    Ok(Outcome::read_only(answer))
}
