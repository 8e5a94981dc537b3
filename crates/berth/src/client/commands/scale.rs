//! `berth scale SERVICE N`: sets the desired count, then follows the service until
//! N tasks run in one deployment, printing each change of the counts.

use std::time::{Duration, Instant};

use anyhow::bail;
use berth_api::{Service, ServiceResponse, UpdateServiceRequest};

use super::require_service;
use crate::client::ApiClient;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

pub async fn run(client: &ApiClient, service: &str, count: i64) -> anyhow::Result<()> {
    if count < 0 {
        bail!("cannot scale service '{service}' to {count}: the count must be 0 or more");
    }
    let current = require_service(client, service).await?;
    let request = UpdateServiceRequest {
        cluster: Some(client.cluster.clone()),
        service: service.to_string(),
        desired_count: Some(count),
        ..Default::default()
    };
    let updated: ServiceResponse = client.ecs("UpdateService", &request).await?;
    println!(
        "service {service}: desiredCount {} -> {count}",
        current.desired_count
    );

    let started = Instant::now();
    let mut last_line = String::new();
    let mut latest = updated.service;
    loop {
        let line = progress(&latest);
        if line != last_line {
            println!("  {line}");
            last_line = line;
        }
        if is_settled(&latest, count) {
            println!("service {service}: {count} running");
            return Ok(());
        }
        if started.elapsed() >= GIVE_UP_AFTER {
            bail!(
                "service '{service}' did not reach {count} running tasks in {} s ({}); see `berth events {service}`",
                GIVE_UP_AFTER.as_secs(),
                progress(&latest)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        latest = require_service(client, service).await?;
    }
}

/// `running 3/5, pending 2`, plus the deployments while more than one is live.
pub(super) fn progress(service: &Service) -> String {
    let mut line = format!(
        "running {}/{}",
        service.running_count, service.desired_count
    );
    if service.pending_count > 0 {
        line.push_str(&format!(", pending {}", service.pending_count));
    }
    if service.deployments.len() > 1 {
        line.push_str(&format!(", {} deployments", service.deployments.len()));
    }
    line
}

/// ECS's ServicesStable, for one service and the count asked for.
pub(super) fn is_settled(service: &Service, count: i64) -> bool {
    service.desired_count == count
        && service.running_count == count
        && service.deployments.len() <= 1
}

#[cfg(test)]
mod tests {
    use berth_api::Deployment;

    use super::*;

    fn service(desired: i64, running: i64, pending: i64, deployments: usize) -> Service {
        Service {
            desired_count: desired,
            running_count: running,
            pending_count: pending,
            deployments: vec![Deployment::default(); deployments],
            ..Default::default()
        }
    }

    #[test]
    fn progress_names_the_counts() {
        assert_eq!(progress(&service(5, 3, 2, 1)), "running 3/5, pending 2");
        assert_eq!(progress(&service(5, 5, 0, 2)), "running 5/5, 2 deployments");
    }

    #[test]
    fn settled_needs_the_count_and_one_deployment() {
        assert!(is_settled(&service(5, 5, 0, 1), 5));
        assert!(!is_settled(&service(5, 4, 1, 1), 5));
        assert!(!is_settled(&service(5, 5, 0, 2), 5));
        assert!(is_settled(&service(0, 0, 0, 1), 0));
    }
}
