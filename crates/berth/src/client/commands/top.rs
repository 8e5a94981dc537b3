//! `berth top [TARGET]`: CPU, memory, network and block I/O of each running container,
//! through `BerthV1.GetTaskStats`, like `docker stats`: every task of the cluster, a
//! service's tasks, or one task. On a terminal it redraws every 2 s until Ctrl-C;
//! with `--no-stream`, or when the output is no terminal, it prints once. Fetching is
//! separate from drawing: [`render`] is a pure function of the API's answer.
//! The containers of one task share its network namespace, so each of them shows the
//! task's network I/O (as `docker stats` does for containers that share one).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::bail;
use berth_api::{ContainerStats, Failure, GetTaskStatsRequest, GetTaskStatsResponse, TaskStats};

use super::{find_service, find_task, list_tasks, looks_like_task, short_task_id};
use crate::client::ApiClient;

const REFRESH: Duration = Duration::from_secs(2);
/// Clears the terminal and moves the cursor home, as `docker stats` redraws.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// What `berth top` shows.
enum Target {
    Cluster,
    Service(String),
    Task(String),
}

pub async fn run(client: &ApiClient, target: Option<&str>, no_stream: bool) -> anyhow::Result<()> {
    let target = match target {
        None => Target::Cluster,
        Some(given) => resolve(client, given).await?,
    };
    let stream = !no_stream && std::io::stdout().is_terminal();
    if !stream {
        let response = fetch(client, &target).await?;
        if let Target::Task(_) = target {
            if let Some(failure) = response.failures.first() {
                bail!("{}", failure_text(failure));
            }
        }
        print!("{}", render(&response));
        for failure in &response.failures {
            eprintln!("berth: {}", failure_text(failure));
        }
        return Ok(());
    }
    let follow = async {
        loop {
            let started = tokio::time::Instant::now();
            let screen = match fetch(client, &target).await {
                Ok(response) => {
                    let mut screen = render(&response);
                    for failure in &response.failures {
                        screen.push_str(&format!("berth: {}\n", failure_text(failure)));
                    }
                    screen
                }
                // The next round tries again: a server restart should not end the view.
                Err(error) => format!("berth: {error:#}\n"),
            };
            let mut stdout = std::io::stdout().lock();
            write!(stdout, "{CLEAR_SCREEN}{screen}")?;
            stdout.flush()?;
            drop(stdout);
            tokio::time::sleep_until(started + REFRESH).await;
        }
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn resolve(client: &ApiClient, given: &str) -> anyhow::Result<Target> {
    if looks_like_task(given) {
        if let Some(task) = find_task(client, given).await? {
            return Ok(Target::Task(task.task_arn));
        }
    }
    if find_service(client, &client.cluster, given)
        .await?
        .is_some()
    {
        return Ok(Target::Service(given.to_string()));
    }
    bail!(
        "no task or service '{given}' in cluster '{}'",
        client.cluster
    )
}

async fn fetch(client: &ApiClient, target: &Target) -> anyhow::Result<GetTaskStatsResponse> {
    let tasks = match target {
        Target::Cluster => None,
        Target::Task(arn) => Some(vec![arn.clone()]),
        Target::Service(service) => {
            // Asked anew each round: a service's tasks come and go.
            let arns = list_tasks(client, &client.cluster, Some(service), "RUNNING").await?;
            if arns.is_empty() {
                return Ok(GetTaskStatsResponse::default());
            }
            Some(arns)
        }
    };
    let mut response = GetTaskStatsResponse::default();
    // GetTaskStats names at most 100 tasks per call.
    let batches: Vec<Option<Vec<String>>> = match tasks {
        None => vec![None],
        Some(arns) => arns.chunks(100).map(|batch| Some(batch.to_vec())).collect(),
    };
    for tasks in batches {
        let request = GetTaskStatsRequest {
            cluster: Some(client.cluster.clone()),
            tasks,
        };
        let answer: GetTaskStatsResponse = client.berth("GetTaskStats", &request).await?;
        response.tasks.extend(answer.tasks);
        response.failures.extend(answer.failures);
    }
    Ok(response)
}

fn failure_text(failure: &Failure) -> String {
    let task = failure.arn.as_deref().map_or("a task", short_task_id);
    match (&failure.reason, &failure.detail) {
        (_, Some(detail)) => format!("task {task}: {detail}"),
        (Some(reason), None) => format!("task {task}: {reason}"),
        (None, None) => format!("task {task}: its figures could not be read"),
    }
}

const HEADERS: [&str; 9] = [
    "TASK",
    "SERVICE",
    "CONTAINER",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

/// The table: one row per running container, by service, task and container; the
/// columns `docker stats` shows, with berth's task and service first.
pub(super) fn render(response: &GetTaskStatsResponse) -> String {
    let mut rows: Vec<(&TaskStats, &ContainerStats)> = response
        .tasks
        .iter()
        .flat_map(|task| {
            task.containers
                .iter()
                .map(move |container| (task, container))
        })
        .collect();
    rows.sort_by(|(a, a_container), (b, b_container)| {
        (service_of(a), &a.task_arn, &a_container.name).cmp(&(
            service_of(b),
            &b.task_arn,
            &b_container.name,
        ))
    });
    let cells: Vec<[String; 9]> = rows
        .into_iter()
        .map(|(task, container)| {
            [
                short_task_id(&task.task_arn).to_string(),
                service_of(task).unwrap_or("-").to_string(),
                container.name.clone(),
                format!("{:.2}%", container.cpu_percent),
                format!(
                    "{} / {}",
                    binary_bytes(container.memory_usage_bytes),
                    binary_bytes(container.memory_limit_bytes)
                ),
                format!(
                    "{:.2}%",
                    percent(container.memory_usage_bytes, container.memory_limit_bytes)
                ),
                format!(
                    "{} / {}",
                    decimal_bytes(container.network_rx_bytes),
                    decimal_bytes(container.network_tx_bytes)
                ),
                format!(
                    "{} / {}",
                    decimal_bytes(container.block_read_bytes),
                    decimal_bytes(container.block_write_bytes)
                ),
                container.pids.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   "));
            }
        }
        text.push('\n');
        text
    };
    let mut table = line(&HEADERS);
    for row in &cells {
        let row: Vec<&str> = row.iter().map(String::as_str).collect();
        table.push_str(&line(&row));
    }
    table
}

fn service_of(task: &TaskStats) -> Option<&str> {
    task.group
        .as_deref()
        .and_then(|group| group.strip_prefix("service:"))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}

/// Memory, in powers of 1024 as `docker stats` shows it: `1.5MiB`.
fn binary_bytes(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// Network and block I/O, in powers of 1000 as `docker stats` shows them: `1.2kB`.
fn decimal_bytes(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

fn scaled(bytes: u64, base: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}{}", units[0])
    } else {
        // Three significant digits, as docker's go-units.
        let decimals = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        format!("{value:.decimals$}{}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, cpu_percent: f64, usage: u64, limit: u64) -> ContainerStats {
        ContainerStats {
            name: name.to_string(),
            cpu_percent,
            memory_usage_bytes: usage,
            memory_limit_bytes: limit,
            network_rx_bytes: 1_234,
            network_tx_bytes: 648,
            block_read_bytes: 0,
            block_write_bytes: 4_096_000,
            pids: 2,
        }
    }

    fn task(id: &str, group: Option<&str>, containers: Vec<ContainerStats>) -> TaskStats {
        TaskStats {
            task_arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}"),
            group: group.map(str::to_string),
            container_instance_arn: None,
            containers,
        }
    }

    #[test]
    fn the_table_has_a_row_per_container_in_aligned_columns() {
        let response = GetTaskStatsResponse {
            tasks: vec![
                task(
                    "ffff00000000aaaabbbbccccddddeeee",
                    Some("service:web"),
                    vec![
                        container("web", 99.5, 1_572_864, 16 * 1024 * 1024),
                        container("log", 0.0, 512, 16 * 1024 * 1024),
                    ],
                ),
                task(
                    "0000aaaabbbbccccddddeeeeffff0000",
                    Some("family:batch"),
                    vec![container("job", 3.25, 0, 0)],
                ),
            ],
            failures: vec![],
        };
        let table = render(&response);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        // Columns start where their headers do.
        let header = lines[0];
        for name in HEADERS {
            assert!(header.contains(name), "{header}");
        }
        let mem_column = header.find("MEM USAGE").unwrap();
        let cpu_column = header.find("CPU %").unwrap();
        // A task outside any service sorts first and shows no service.
        assert!(lines[1].starts_with("0000aaaabbbb   -  "), "{table}");
        assert_eq!(&lines[1][cpu_column..cpu_column + 5], "3.25%");
        // 0 / 0: no division by zero.
        assert!(lines[1][mem_column..].starts_with("0B / 0B"), "{table}");
        // Then the service's containers, by name.
        assert!(
            lines[2].contains(" web ") && lines[2].contains(" log "),
            "{table}"
        );
        assert!(
            lines[3].contains(" web ") && lines[3].contains("99.50%"),
            "{table}"
        );
        assert!(
            lines[3][mem_column..].starts_with("1.50MiB / 16.0MiB   9.38%"),
            "{table}"
        );
        assert!(lines[3].contains("1.23kB / 648B"), "{table}");
        assert!(lines[3].contains("0B / 4.10MB"), "{table}");
        assert!(lines[3].ends_with(" 2"), "{table}");
    }

    #[test]
    fn nothing_running_is_a_header_alone() {
        let table = render(&GetTaskStatsResponse::default());
        assert_eq!(table.lines().count(), 1);
        assert!(table.starts_with("TASK "));
    }

    #[test]
    fn sizes_read_as_docker_stats_writes_them() {
        assert_eq!(binary_bytes(0), "0B");
        assert_eq!(binary_bytes(1023), "1023B");
        assert_eq!(binary_bytes(1024), "1.00KiB");
        assert_eq!(binary_bytes(512 * 1024 * 1024), "512MiB");
        assert_eq!(binary_bytes(3 * 1024 * 1024 * 1024 / 2), "1.50GiB");
        assert_eq!(decimal_bytes(999), "999B");
        assert_eq!(decimal_bytes(1_500), "1.50kB");
        assert_eq!(decimal_bytes(25_000_000), "25.0MB");
    }

    #[test]
    fn a_failure_names_its_task_and_why() {
        let failure = Failure {
            arn: Some("arn:aws:ecs:us-east-1:0:task/default/0123456789abcdef".to_string()),
            reason: Some("AGENT".to_string()),
            detail: Some("the agent of container instance 'i1' is not connected".to_string()),
        };
        assert_eq!(
            failure_text(&failure),
            "task 0123456789ab: the agent of container instance 'i1' is not connected"
        );
    }
}
