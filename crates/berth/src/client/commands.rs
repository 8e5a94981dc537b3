//! The client commands, one file each, and what they share: naming things the way
//! ECS does (short names from ARNs, short task ids) and finding a service or a task.

mod apply;
mod delete;
mod delete_lb;
mod deploy;
mod describe;
mod down;
mod event_feed;
mod events;
mod exec;
mod logs;
mod nodes;
mod ps;
mod restart;
mod rollback;
mod rollout;
mod scale;
mod stop;
mod top;

use std::io::IsTerminal;

use anyhow::bail;
use berth_api::{
    DescribeServicesRequest, DescribeServicesResponse, DescribeTaskDefinitionRequest,
    DescribeTasksRequest, DescribeTasksResponse, ListTasksRequest, ListTasksResponse, Service,
    Task, TaskDefinition, TaskDefinitionResponse,
};
use berth_core::model::ServiceStatus;

use super::{ApiClient, ClientCommand, DeleteCommand};

pub async fn run(command: ClientCommand) -> anyhow::Result<std::process::ExitCode> {
    let done = match command {
        ClientCommand::Apply {
            file,
            dry_run,
            wait,
            no_wait,
            endpoint,
        } => {
            let wait = wait || (!no_wait && std::io::stdout().is_terminal());
            apply::run(&endpoint, &file, dry_run, wait).await
        }
        ClientCommand::Down {
            file,
            dry_run,
            endpoint,
        } => down::run(&endpoint, &file, dry_run).await,
        ClientCommand::Describe { target, endpoint } => {
            describe::run(&ApiClient::from_flags(&endpoint)?, &target).await
        }
        ClientCommand::Ps { all, endpoint } => {
            // With no cluster selected, the truth is every cluster, not an empty default.
            let all = all || endpoint.cluster.is_none();
            ps::run(&ApiClient::from_flags(&endpoint)?, all).await
        }
        ClientCommand::Logs {
            target,
            follow,
            container,
            tail,
            endpoint,
        } => {
            let options = logs::Options {
                follow,
                container,
                tail,
            };
            logs::run(&ApiClient::from_flags(&endpoint)?, &target, options).await
        }
        ClientCommand::Exec {
            task,
            container,
            interactive,
            tty,
            command,
            endpoint,
        } => {
            let options = exec::Options {
                container,
                interactive,
                tty,
                command,
            };
            return exec::run(&ApiClient::from_flags(&endpoint)?, &task, options).await;
        }
        ClientCommand::Top {
            target,
            no_stream,
            endpoint,
        } => {
            top::run(
                &ApiClient::from_flags(&endpoint)?,
                target.as_deref(),
                no_stream,
            )
            .await
        }
        ClientCommand::Scale {
            service,
            count,
            endpoint,
        } => scale::run(&ApiClient::from_flags(&endpoint)?, &service, count).await,
        ClientCommand::Restart {
            service,
            no_wait,
            endpoint,
        } => restart::run(&ApiClient::from_flags(&endpoint)?, &service, !no_wait).await,
        ClientCommand::Deploy {
            service,
            images,
            envs,
            no_wait,
            endpoint,
        } => {
            let client = ApiClient::from_flags(&endpoint)?;
            deploy::run(&client, &service, &images, &envs, !no_wait).await
        }
        ClientCommand::Rollback {
            service,
            no_wait,
            endpoint,
        } => rollback::run(&ApiClient::from_flags(&endpoint)?, &service, !no_wait).await,
        ClientCommand::Delete { what } => match what {
            DeleteCommand::Service {
                name,
                no_wait,
                endpoint,
            } => delete::service(&ApiClient::from_flags(&endpoint)?, &name, !no_wait).await,
            DeleteCommand::Cluster { name, endpoint } => {
                delete::cluster(&ApiClient::from_flags(&endpoint)?, &name).await
            }
            DeleteCommand::Lb { name, endpoint } => {
                delete_lb::run(&ApiClient::from_flags(&endpoint)?, &name).await
            }
        },
        ClientCommand::Stop {
            task,
            reason,
            endpoint,
        } => stop::run(&ApiClient::from_flags(&endpoint)?, &task, reason).await,
        ClientCommand::Events {
            service,
            follow,
            endpoint,
        } => events::run(&ApiClient::from_flags(&endpoint)?, &service, follow).await,
        ClientCommand::Nodes { all, endpoint } => {
            nodes::run(&ApiClient::from_flags(&endpoint)?, all).await
        }
        ClientCommand::Drain {
            node,
            undo,
            endpoint,
        } => nodes::drain(&ApiClient::from_flags(&endpoint)?, &node, undo).await,
    };
    done.map(|()| std::process::ExitCode::SUCCESS)
}

/// The last part of an ARN (`.../service/c/member` -> `member`); a plain name as is.
pub(crate) fn name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `arn:...:task-definition/member:3` -> `member:3`.
pub(crate) fn task_definition_name(arn: &str) -> &str {
    name_from_arn(arn)
}

/// The first 12 characters of a task id, as `berth ps` shows it (docker's habit).
pub(crate) fn short_task_id(task_arn: &str) -> &str {
    let id = name_from_arn(task_arn);
    id.get(..12).unwrap_or(id)
}

/// The service a task belongs to: ECS puts service tasks in group `service:NAME`.
pub(crate) fn service_of_task(task: &Task) -> Option<&str> {
    task.group
        .as_deref()
        .and_then(|group| group.strip_prefix("service:"))
}

/// Describes one service of the client's cluster; `None` when ECS reports it MISSING or
/// it is INACTIVE (deleted).
pub(crate) async fn find_service(
    client: &ApiClient,
    cluster: &str,
    service: &str,
) -> anyhow::Result<Option<Service>> {
    let request = DescribeServicesRequest {
        cluster: Some(cluster.to_string()),
        services: vec![service.to_string()],
        include: vec![],
    };
    let response: DescribeServicesResponse = client.ecs("DescribeServices", &request).await?;
    Ok(response
        .services
        .into_iter()
        .find(|s| ServiceStatus::from_ecs(&s.status) != Some(ServiceStatus::Inactive)))
}

/// Like [`find_service`], but not finding it is the error users see.
pub(crate) async fn require_service(client: &ApiClient, service: &str) -> anyhow::Result<Service> {
    match find_service(client, &client.cluster, service).await? {
        Some(found) => Ok(found),
        None => bail!(
            "service '{service}' not found in cluster '{}'",
            client.cluster
        ),
    }
}

/// Whether `target` names a task rather than a service: a task ARN, or a hex task id
/// (whole, or the 12-character prefix `berth ps` prints).
pub(crate) fn looks_like_task(target: &str) -> bool {
    target.contains(":task/")
        || (target.len() >= 8
            && target.len() <= 32
            && target.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Finds a task by ARN, id, or unique id prefix (running tasks first, then stopped ones).
pub(crate) async fn find_task(client: &ApiClient, target: &str) -> anyhow::Result<Option<Task>> {
    let cluster = Some(client.cluster.clone());
    if target.contains(":task/") || target.len() == 32 {
        let request = DescribeTasksRequest {
            cluster,
            tasks: vec![target.to_string()],
            include: vec![],
        };
        let response: DescribeTasksResponse = client.ecs("DescribeTasks", &request).await?;
        return Ok(response.tasks.into_iter().next());
    }
    let mut matches = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        for arn in list_tasks(client, &client.cluster, None, status).await? {
            if name_from_arn(&arn).starts_with(target) && !matches.contains(&arn) {
                matches.push(arn);
            }
        }
    }
    match matches.len() {
        0 => Ok(None),
        1 => {
            let request = DescribeTasksRequest {
                cluster,
                tasks: matches,
                include: vec![],
            };
            let response: DescribeTasksResponse = client.ecs("DescribeTasks", &request).await?;
            Ok(response.tasks.into_iter().next())
        }
        n => bail!(
            "task id '{target}' is ambiguous in cluster '{}': {n} tasks start with it",
            client.cluster
        ),
    }
}

/// Every task ARN of the cluster with this desired status, following `nextToken`.
pub(crate) async fn list_tasks(
    client: &ApiClient,
    cluster: &str,
    service_name: Option<&str>,
    desired_status: &str,
) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListTasksRequest {
            cluster: Some(cluster.to_string()),
            service_name: service_name.map(str::to_string),
            desired_status: Some(desired_status.to_string()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListTasksResponse = client.ecs("ListTasks", &request).await?;
        arns.extend(response.task_arns);
        match response.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(arns),
        }
    }
}

/// Describes tasks in ECS's batches of 100.
pub(crate) async fn describe_tasks(
    client: &ApiClient,
    cluster: &str,
    arns: &[String],
) -> anyhow::Result<Vec<Task>> {
    let mut tasks = Vec::with_capacity(arns.len());
    for batch in arns.chunks(100) {
        let request = DescribeTasksRequest {
            cluster: Some(cluster.to_string()),
            tasks: batch.to_vec(),
            include: vec![],
        };
        let response: DescribeTasksResponse = client.ecs("DescribeTasks", &request).await?;
        tasks.extend(response.tasks);
    }
    Ok(tasks)
}

/// A task definition by family, `family:revision` or ARN.
pub(crate) async fn describe_task_definition(
    client: &ApiClient,
    reference: &str,
) -> anyhow::Result<TaskDefinition> {
    let request = DescribeTaskDefinitionRequest {
        task_definition: reference.to_string(),
        include: vec![],
    };
    let response: TaskDefinitionResponse = client.ecs("DescribeTaskDefinition", &request).await?;
    Ok(response.task_definition)
}

/// Seconds since the epoch, now.
pub(crate) fn now_epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_arns() {
        assert_eq!(
            name_from_arn("arn:aws:ecs:us-east-1:0:service/our-project/member"),
            "member"
        );
        assert_eq!(name_from_arn("member"), "member");
        assert_eq!(
            task_definition_name("arn:aws:ecs:us-east-1:0:task-definition/member:3"),
            "member:3"
        );
        assert_eq!(
            short_task_id("arn:aws:ecs:r:0:task/c/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"),
            "1a2b3c4d5e6f"
        );
        assert_eq!(short_task_id("abc"), "abc");
    }

    #[test]
    fn task_targets_are_told_from_service_names() {
        assert!(looks_like_task("1a2b3c4d5e6f"));
        assert!(looks_like_task("1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"));
        assert!(looks_like_task("arn:aws:ecs:r:0:task/c/1a2b"));
        assert!(!looks_like_task("member"));
        assert!(!looks_like_task("cafe")); // too short to be an id prefix: a service name
    }
}
