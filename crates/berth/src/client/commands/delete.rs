//! `berth delete service NAME` and `berth delete cluster NAME`: DeleteService (with
//! force, as `aws ecs delete-service --force` scales to 0 and deletes in one step),
//! followed until the service is INACTIVE; DeleteCluster, refused while the cluster has
//! services or tasks, naming them.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use berth_api::{
    ClusterResponse, DeleteClusterRequest, DeleteServiceRequest, DescribeServicesRequest,
    DescribeServicesResponse, ListServicesRequest, ListServicesResponse, Service, ServiceResponse,
};
use berth_core::model::ServiceStatus;

use super::event_feed::EventFeed;
use super::{find_service, list_tasks, name_from_arn, short_task_id};
use crate::client::ApiClient;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

pub async fn service(client: &ApiClient, service: &str, wait: bool) -> anyhow::Result<()> {
    service_in(client, &client.cluster, service, wait).await
}

/// Deletes a service of `cluster` (the client's own, or one a file names).
pub(super) async fn service_in(
    client: &ApiClient,
    cluster: &str,
    service: &str,
    wait: bool,
) -> anyhow::Result<()> {
    let Some(current) = find_service(client, cluster, service).await? else {
        bail!("service '{service}' not found in cluster '{cluster}'");
    };
    let mut feed = EventFeed::after(&current);
    let request = DeleteServiceRequest {
        cluster: Some(cluster.to_string()),
        service: service.to_string(),
        force: Some(true),
    };
    let deleted: ServiceResponse = client.ecs("DeleteService", &request).await?;
    println!(
        "service {service} deleting from cluster {cluster} (stopping {} running tasks)",
        current.running_count
    );
    if !wait {
        return Ok(());
    }

    let started = Instant::now();
    let mut last_line = String::new();
    let mut latest = Some(deleted.service);
    // A service no longer described at all is gone too.
    while let Some(now) = latest.as_ref() {
        print!("{}", feed.new_lines(now));
        if ServiceStatus::from_ecs(&now.status) == Some(ServiceStatus::Inactive) {
            break;
        }
        let line = format!(
            "{}: running {}, pending {}",
            now.status, now.running_count, now.pending_count
        );
        if line != last_line {
            println!("  {line}");
            last_line = line;
        }
        if started.elapsed() >= GIVE_UP_AFTER {
            bail!(
                "service '{service}' was not INACTIVE after {} s ({last_line}); see `berth events {service}`",
                GIVE_UP_AFTER.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        latest = describe_even_inactive(client, cluster, service).await?;
    }
    println!("service {service} deleted");
    Ok(())
}

/// DescribeServices of one service, also when it is DRAINING or INACTIVE.
async fn describe_even_inactive(
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
    Ok(response.services.into_iter().next())
}

pub async fn cluster(client: &ApiClient, cluster: &str) -> anyhow::Result<()> {
    let request = DeleteClusterRequest {
        cluster: cluster.to_string(),
    };
    let error = match client
        .ecs::<_, ClusterResponse>("DeleteCluster", &request)
        .await
    {
        Ok(_) => {
            println!("cluster {cluster} deleted");
            return Ok(());
        }
        Err(error) => error,
    };
    let text = error.to_string();
    if text.starts_with("ClusterNotFoundException") {
        bail!("cluster '{cluster}' not found");
    }
    if text.starts_with("ClusterContainsServicesException") {
        let names = service_names(client, cluster).await?;
        bail!(
            "cannot delete cluster '{cluster}': {text} (services: {}; `berth delete service -c {cluster} NAME` first)",
            names.join(", ")
        );
    }
    if text.starts_with("ClusterContainsTasksException") {
        let tasks = list_tasks(client, cluster, None, "RUNNING").await?;
        let ids: Vec<&str> = tasks.iter().map(|arn| short_task_id(arn)).collect();
        bail!(
            "cannot delete cluster '{cluster}': {text} (tasks: {}; `berth stop -c {cluster} TASK_ID` first)",
            ids.join(", ")
        );
    }
    Err(anyhow!(error).context(format!("cannot delete cluster '{cluster}'")))
}

/// The names of the cluster's services, following `nextToken`.
pub(super) async fn service_names(
    client: &ApiClient,
    cluster: &str,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListServicesRequest {
            cluster: Some(cluster.to_string()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListServicesResponse = client.ecs("ListServices", &request).await?;
        names.extend(
            response
                .service_arns
                .iter()
                .map(|arn| name_from_arn(arn).to_string()),
        );
        match response.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(names),
        }
    }
}
