//! `berth logs TARGET`: a task's or a whole service's container output through
//! `BerthV1.GetTaskLogs`; `-f` polls for more until Ctrl-C. A service's output is its
//! running tasks' and its most recently stopped task's (whose last lines say why it
//! stopped, as long as berth keeps its containers).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use berth_api::{GetTaskLogsRequest, GetTaskLogsResponse, LogLine, Task};

use super::{describe_tasks, find_service, find_task, list_tasks, looks_like_task, short_task_id};
use crate::client::ApiClient;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often a followed service is asked for new tasks.
const TASK_REFRESH_POLLS: u32 = 4;

pub struct Options {
    pub follow: bool,
    pub container: Option<String>,
    pub tail: Option<i64>,
}

/// What is being read: one task, or every running task of a service.
enum Target {
    Task {
        arn: String,
        prefix_containers: bool,
    },
    Service {
        name: String,
    },
}

pub async fn run(client: &ApiClient, target: &str, options: Options) -> anyhow::Result<()> {
    if let Some(tail) = options.tail.filter(|tail| *tail < 0) {
        bail!("--tail {tail}: expected a number of lines, 0 or more");
    }
    let target = resolve(client, target, options.container.as_deref()).await?;
    let mut readers: BTreeMap<String, TaskReader> = BTreeMap::new();
    let (service, label_tasks) = match &target {
        Target::Task {
            arn,
            prefix_containers,
        } => {
            readers.insert(
                arn.clone(),
                TaskReader::new(arn, false, *prefix_containers, options.tail),
            );
            (None, false)
        }
        Target::Service { name } => (Some(name.as_str()), true),
    };
    if let Some(service) = service {
        add_service_tasks(client, service, &mut readers, label_tasks, options.tail).await?;
        let stopped = latest_stopped_task(client, service).await?;
        if let Some(task) = &stopped {
            readers
                .entry(task.task_arn.clone())
                .or_insert_with(|| TaskReader::new(&task.task_arn, true, true, options.tail));
        }
        match (&stopped, readers.len()) {
            (None, 0) => {
                let waiting = if options.follow {
                    "; waiting for one to start"
                } else {
                    ""
                };
                eprintln!("berth: service '{service}' has no running tasks{waiting}");
            }
            (Some(task), _) => eprintln!(
                "berth: including stopped task {} ({})",
                short_task_id(&task.task_arn),
                task.stopped_reason.as_deref().unwrap_or("no reason given")
            ),
            (None, _) => {}
        }
    }

    // The first read: everything (or --tail), merged by time across tasks.
    let mut first = Vec::new();
    for reader in readers.values_mut() {
        match reader.poll(client, &options).await {
            Ok(lines) => first.extend(lines),
            Err(error) if service.is_some() => {
                eprintln!("berth: {}: {error:#}", short_task_id(&reader.task_arn))
            }
            Err(error) => return Err(error),
        }
    }
    first.sort_by(|a, b| a.1.timestamp.total_cmp(&b.1.timestamp));
    print_lines(&first)?;
    if !options.follow {
        return Ok(());
    }

    let follow = async {
        let mut polls = 0u32;
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            polls += 1;
            if let Some(service) = service.filter(|_| polls.is_multiple_of(TASK_REFRESH_POLLS)) {
                // A failed refresh is tried again on the next round.
                // Tasks that start now print all they write: --tail was for the past.
                let _ = add_service_tasks(client, service, &mut readers, label_tasks, None).await;
            }
            let mut batch = Vec::new();
            let mut finished = Vec::new();
            for reader in readers.values_mut() {
                match reader.poll(client, &options).await {
                    Ok(lines) => batch.extend(lines),
                    // The task is gone (cleaned up): nothing more will come from it.
                    Err(_) if service.is_some() => finished.push(reader.task_arn.clone()),
                    Err(error) => return Err(error),
                }
            }
            for arn in finished {
                readers.remove(&arn);
            }
            batch.sort_by(|a, b| a.1.timestamp.total_cmp(&b.1.timestamp));
            print_lines(&batch)?;
        }
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn resolve(
    client: &ApiClient,
    target: &str,
    container: Option<&str>,
) -> anyhow::Result<Target> {
    if looks_like_task(target) {
        if let Some(task) = find_task(client, target).await? {
            if let Some(name) = container {
                if !task.containers.iter().any(|c| c.name == name) {
                    bail!(
                        "task {} has no container '{name}'",
                        short_task_id(&task.task_arn)
                    );
                }
            }
            let prefix_containers = container.is_none() && task.containers.len() > 1;
            return Ok(Target::Task {
                arn: task.task_arn,
                prefix_containers,
            });
        }
    }
    if find_service(client, &client.cluster, target)
        .await?
        .is_some()
    {
        return Ok(Target::Service {
            name: target.to_string(),
        });
    }
    bail!(
        "no task or service '{target}' in cluster '{}'",
        client.cluster
    )
}

async fn add_service_tasks(
    client: &ApiClient,
    service: &str,
    readers: &mut BTreeMap<String, TaskReader>,
    label_tasks: bool,
    tail: Option<i64>,
) -> anyhow::Result<()> {
    for arn in list_tasks(client, &client.cluster, Some(service), "RUNNING").await? {
        readers
            .entry(arn.clone())
            .or_insert_with(|| TaskReader::new(&arn, label_tasks, true, tail));
    }
    Ok(())
}

/// The service's task that stopped last, if berth still lists one.
async fn latest_stopped_task(client: &ApiClient, service: &str) -> anyhow::Result<Option<Task>> {
    let arns = list_tasks(client, &client.cluster, Some(service), "STOPPED").await?;
    if arns.is_empty() {
        return Ok(None);
    }
    let tasks = describe_tasks(client, &client.cluster, &arns).await?;
    Ok(tasks.into_iter().max_by(|a, b| {
        let at = |t: &Task| t.stopped_at.unwrap_or(t.created_at);
        at(a).total_cmp(&at(b))
    }))
}

/// Reads one task's output a piece at a time.
struct TaskReader {
    task_arn: String,
    /// `[task-id-12 container]` when reading a service, `[container]` for a task of
    /// several containers, nothing otherwise.
    label_task: bool,
    label_container: bool,
    cursor: LogCursor,
    /// `--tail` for the first read (None once read, or for a task that started while
    /// being followed).
    tail: Option<i64>,
}

impl TaskReader {
    fn new(task_arn: &str, label_task: bool, label_container: bool, tail: Option<i64>) -> Self {
        TaskReader {
            task_arn: task_arn.to_string(),
            label_task,
            label_container,
            cursor: LogCursor::default(),
            tail,
        }
    }

    /// The lines not printed yet, each with its prefix.
    async fn poll(
        &mut self,
        client: &ApiClient,
        options: &Options,
    ) -> anyhow::Result<Vec<(String, LogLine)>> {
        let tail = self.tail.take();
        // `--tail 0`: read the last line only to know where the output ends, print
        // nothing, and go on from there.
        let request = GetTaskLogsRequest {
            cluster: Some(client.cluster.clone()),
            task: self.task_arn.clone(),
            container_name: options.container.clone(),
            since: self.cursor.since(),
            tail: tail.map(|n| n.max(1)),
        };
        let response: GetTaskLogsResponse = match client.berth("GetTaskLogs", &request).await {
            Ok(response) => response,
            Err(error) => {
                self.tail = tail;
                return Err(error);
            }
        };
        if tail == Some(0) {
            self.cursor.accept(response.lines);
            return Ok(Vec::new());
        }
        let prefix = |line: &LogLine| match (self.label_task, self.label_container) {
            (true, _) => format!(
                "[{} {}] ",
                short_task_id(&self.task_arn),
                line.container_name
            ),
            (false, true) => format!("[{}] ", line.container_name),
            (false, false) => String::new(),
        };
        Ok(self
            .cursor
            .accept(response.lines)
            .into_iter()
            .map(|line| (prefix(&line), line))
            .collect())
    }
}

fn print_lines(lines: &[(String, LogLine)]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for (prefix, line) in lines {
        let message = line.message.strip_suffix('\n').unwrap_or(&line.message);
        if line.stream == "stderr" {
            writeln!(stderr, "{prefix}{message}")?;
        } else {
            writeln!(stdout, "{prefix}{message}")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// Where a follower is in a task's output: the newest timestamp printed, and how many
/// times each line at exactly that timestamp was printed, so asking again with
/// `since` = that timestamp prints nothing twice (and repeated lines still print).
#[derive(Debug, Default)]
pub(super) struct LogCursor {
    last: Option<f64>,
    at_last: HashMap<(String, String, String), usize>,
}

impl LogCursor {
    pub(super) fn since(&self) -> Option<f64> {
        self.last
    }

    /// The lines of an answer not printed yet, in time order; remembers them.
    pub(super) fn accept(&mut self, mut lines: Vec<LogLine>) -> Vec<LogLine> {
        lines.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        let mut seen_again: HashMap<(String, String, String), usize> = HashMap::new();
        let mut fresh = Vec::new();
        for line in lines {
            let key = (
                line.container_name.clone(),
                line.stream.clone(),
                line.message.clone(),
            );
            match self.last {
                Some(last) if line.timestamp < last => continue,
                Some(last) if line.timestamp == last => {
                    let count = seen_again.entry(key.clone()).or_default();
                    *count += 1;
                    if *count <= self.at_last.get(&key).copied().unwrap_or(0) {
                        continue;
                    }
                }
                _ => {}
            }
            if self.last != Some(line.timestamp) {
                self.last = Some(line.timestamp);
                self.at_last.clear();
                seen_again.clear();
            }
            *self.at_last.entry(key).or_default() += 1;
            fresh.push(line);
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(timestamp: f64, message: &str) -> LogLine {
        LogLine {
            container_name: "web".to_string(),
            timestamp,
            stream: "stdout".to_string(),
            message: message.to_string(),
        }
    }

    fn messages(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn following_prints_each_line_once() {
        let mut cursor = LogCursor::default();
        assert_eq!(cursor.since(), None);
        let first = cursor.accept(vec![line(2.0, "b"), line(1.0, "a"), line(2.0, "c")]);
        assert_eq!(messages(&first), ["a", "b", "c"]);
        assert_eq!(cursor.since(), Some(2.0));
        // The server answers `since` inclusively: the lines at 2.0 come again.
        let second = cursor.accept(vec![line(2.0, "b"), line(2.0, "c"), line(3.0, "d")]);
        assert_eq!(messages(&second), ["d"]);
        assert!(cursor.accept(vec![line(3.0, "d")]).is_empty());
        assert!(cursor.accept(vec![]).is_empty());
        assert_eq!(cursor.since(), Some(3.0));
    }

    #[test]
    fn a_line_repeated_at_one_instant_is_not_lost() {
        let mut cursor = LogCursor::default();
        assert_eq!(messages(&cursor.accept(vec![line(5.0, "tick")])), ["tick"]);
        // A second identical line written in the same instant arrives with the next poll.
        assert_eq!(
            messages(&cursor.accept(vec![line(5.0, "tick"), line(5.0, "tick")])),
            ["tick"]
        );
        assert!(cursor
            .accept(vec![line(5.0, "tick"), line(5.0, "tick")])
            .is_empty());
    }

    #[test]
    fn older_lines_are_ignored() {
        let mut cursor = LogCursor::default();
        cursor.accept(vec![line(10.0, "new")]);
        assert!(cursor.accept(vec![line(9.0, "old")]).is_empty());
    }
}
