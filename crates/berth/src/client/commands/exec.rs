//! `berth exec TASK [--container NAME] [-i] [-t] -- CMD [ARGS...]`: a command in a
//! running container of a task, as ECS Exec (and `docker exec`) runs one. The task and
//! its container come from the API; the command runs through this machine's Docker
//! engine (`berth_runtime::ContainerExec`), so the task must run here.

use std::io::{IsTerminal, Read};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_agent::labels::{CONTAINER as CONTAINER_LABEL, TASK as TASK_LABEL};
use berth_api::{
    Container, DescribeContainerInstancesRequest, DescribeContainerInstancesResponse, Task,
};
use berth_core::model::{ContainerStatus, TaskStatus};
use berth_runtime::{
    ContainerExec, ContainerRuntime, DockerRuntime, ExecOutput, ExecSpec, TerminalSize,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;

use super::{find_task, name_from_arn, short_task_id};
use crate::client::ApiClient;

pub struct Options {
    pub container: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

pub async fn run(client: &ApiClient, target: &str, options: Options) -> anyhow::Result<ExitCode> {
    let Some(task) = find_task(client, target).await? else {
        bail!("task '{target}' not found in cluster '{}'", client.cluster);
    };
    let short = short_task_id(&task.task_arn).to_string();
    if task.last_status != TaskStatus::Running.as_ecs() {
        bail!(
            "task {short} is {}, not RUNNING: berth exec runs commands only in a running task",
            task.last_status
        );
    }
    let definition = super::describe_task_definition(client, &task.task_definition_arn)
        .await
        .with_context(|| format!("describing task definition {}", task.task_definition_arn))?;
    let container = choose_container(&task, &definition, options.container.as_deref())?;
    if container.last_status != ContainerStatus::Running.as_ecs() {
        bail!(
            "container '{}' of task {short} is {}{}, not RUNNING",
            container.name,
            container.last_status,
            container
                .exit_code
                .map(|code| format!(" (exit code {code})"))
                .unwrap_or_default()
        );
    }
    let Some(container_id) = container.runtime_id.clone() else {
        bail!(
            "container '{}' of task {short} has no Docker container yet",
            container.name
        );
    };

    let docker = match DockerRuntime::connect().await {
        Ok(docker) => docker,
        Err(error) => bail!(
            "berth exec runs the command through this machine's Docker engine: {error}; {}: run berth exec on that machine",
            location(client, &task, &short).await
        ),
    };
    let here = docker
        .inspect_container(&container_id)
        .await
        .with_context(|| format!("inspecting container {container_id}"))?;
    let task_id = name_from_arn(&task.task_arn);
    // The agent labels each container with its task and name: the engine's container
    // of that id is this task's only if those agree (another engine's id is unknown).
    let runs_here = here.is_some_and(|status| {
        status.labels.get(TASK_LABEL).map(String::as_str) == Some(task_id)
            && status.labels.get(CONTAINER_LABEL) == Some(&container.name)
    });
    if !runs_here {
        bail!(
            "{}, not on this machine's Docker engine: run berth exec on that machine",
            location(client, &task, &short).await
        );
    }

    let stdin_is_terminal = std::io::stdin().is_terminal();
    let (interactive, tty) = attach_modes(
        options.interactive,
        options.tty,
        stdin_is_terminal && std::io::stdout().is_terminal(),
    );
    if interactive && tty && !stdin_is_terminal {
        bail!("the input device is not a TTY: -t with -i needs a terminal on standard input (leave out -t to pipe input)");
    }
    let local_terminal = tty && stdin_is_terminal;
    let spec = ExecSpec {
        command: options.command,
        stdin: interactive,
        tty,
        size: local_terminal.then(terminal_size).flatten(),
    };
    // Raw from here on; the guard puts the terminal back on every way out of this
    // function (an error, a panic's unwind, the command's end).
    let _raw = local_terminal.then(RawTerminal::enter).transpose()?;
    let input = interactive.then(read_stdin_in_background);
    let code = attach(
        &docker,
        &container_id,
        &spec,
        input,
        local_terminal,
        tokio::io::stdout(),
        tokio::io::stderr(),
    )
    .await
    .with_context(|| {
        format!(
            "running {:?} in container '{}'",
            spec.command, container.name
        )
    })?;
    // docker exec's habit: the command's exit status is ours.
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// Which of stdin and a terminal to attach. Given flags are obeyed as `docker exec`
/// obeys them; with neither flag, a user at a terminal (stdin and stdout both one) gets
/// `-i -t`, a shell that works, and a script or pipe gets neither.
fn attach_modes(interactive: bool, tty: bool, at_terminal: bool) -> (bool, bool) {
    if interactive || tty {
        (interactive, tty)
    } else {
        (at_terminal, at_terminal)
    }
}

/// The container to run in: the one named, else the task's only container, else its
/// first essential one (in the task definition's order).
fn choose_container<'a>(
    task: &'a Task,
    definition: &berth_api::TaskDefinition,
    requested: Option<&str>,
) -> anyhow::Result<&'a Container> {
    let short = short_task_id(&task.task_arn);
    let names = || {
        task.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = requested {
        return task
            .containers
            .iter()
            .find(|c| c.name == name)
            .with_context(|| {
                format!(
                    "task {short} has no container '{name}'; its containers: {}",
                    names()
                )
            });
    }
    if let [only] = task.containers.as_slice() {
        return Ok(only);
    }
    definition
        .container_definitions
        .iter()
        .filter(|d| berth_core::is_essential(d))
        .find_map(|d| {
            task.containers
                .iter()
                .find(|c| Some(c.name.as_str()) == d.name.as_deref())
        })
        .or(task.containers.first())
        .with_context(|| format!("task {short} has no containers"))
}

/// Where the task runs: its container instance and that instance's host.
async fn location(client: &ApiClient, task: &Task, short: &str) -> String {
    let Some(instance_arn) = task.container_instance_arn.as_deref() else {
        return location_message(short, None, None);
    };
    let request = DescribeContainerInstancesRequest {
        cluster: Some(client.cluster.clone()),
        container_instances: vec![instance_arn.to_string()],
        include: vec![],
    };
    let host = client
        .ecs::<_, DescribeContainerInstancesResponse>("DescribeContainerInstances", &request)
        .await
        .ok()
        .and_then(|response| response.container_instances.into_iter().next())
        .map(|instance| instance.ec2_instance_id);
    location_message(short, Some(name_from_arn(instance_arn)), host.as_deref())
}

fn location_message(short: &str, instance_id: Option<&str>, host: Option<&str>) -> String {
    match (instance_id, host) {
        (None, _) => format!("task {short} is on no container instance"),
        (Some(instance_id), None) => {
            format!("task {short} runs on container instance {instance_id}")
        }
        (Some(instance_id), Some(host)) => {
            format!("task {short} runs on container instance {instance_id} (host {host})")
        }
    }
}

/// Runs the command and relays its streams until it ends; its exit code. `input`
/// carries the user's stdin (closed at its end); with `forward_size` the local
/// terminal's size is sent at start and on every SIGWINCH, and SIGTERM or SIGHUP end
/// the relay (an error) rather than the process, so the caller restores the terminal.
async fn attach(
    exec: &dyn ContainerExec,
    container_id: &str,
    spec: &ExecSpec,
    input: Option<mpsc::Receiver<Vec<u8>>>,
    forward_size: bool,
    mut stdout: impl AsyncWrite + Unpin,
    mut stderr: impl AsyncWrite + Unpin,
) -> anyhow::Result<i64> {
    let session = exec.start_exec(container_id, spec).await?;
    let exec_id = session.id.clone();
    let mut output = session.output;
    let mut command_input = session.input;
    // The engine may not take the size at create (API 1.41 has no ConsoleSize).
    if forward_size {
        if let Some(size) = terminal_size() {
            let _ = exec.resize_exec(&exec_id, size).await;
        }
    }
    let watch = |kind| {
        forward_size
            .then(|| tokio::signal::unix::signal(kind))
            .transpose()
            .context("watching signals")
    };
    let mut window_changes = watch(SignalKind::window_change())?;
    // Killed politely while the terminal is raw: end here, so that it is put back.
    let mut terminate = watch(SignalKind::terminate())?;
    let mut hangup = watch(SignalKind::hangup())?;
    let mut input = input;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(ExecOutput::Stdout(bytes))) => {
                    stdout.write_all(&bytes).await?;
                    stdout.flush().await?;
                }
                Some(Ok(ExecOutput::Stderr(bytes))) => {
                    stderr.write_all(&bytes).await?;
                    stderr.flush().await?;
                }
                Some(Err(error)) => return Err(error.into()),
                None => break,
            },
            bytes = next_input(&mut input), if input.is_some() => match bytes {
                Some(bytes) => {
                    // The command may have closed its stdin; its output still counts.
                    if command_input.write_all(&bytes).await.is_err() {
                        input = None;
                    }
                    let _ = command_input.flush().await;
                }
                None => {
                    let _ = command_input.shutdown().await;
                    input = None;
                }
            },
            Some(()) = next_signal(&mut window_changes), if window_changes.is_some() => {
                if let Some(size) = terminal_size() {
                    let _ = exec.resize_exec(&exec_id, size).await;
                }
            },
            Some(()) = next_signal(&mut terminate), if terminate.is_some() => {
                bail!("berth exec was terminated (SIGTERM); the command may still run")
            },
            Some(()) = next_signal(&mut hangup), if hangup.is_some() => {
                bail!("berth exec lost its terminal (SIGHUP); the command may still run")
            },
        }
    }
    // The output ends as the command exits; the engine may take a moment to record it.
    for _ in 0..50 {
        if let Some(code) = exec.exec_exit_code(&exec_id).await? {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the engine told no exit code for exec {exec_id}")
}

async fn next_input(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// The user's stdin, read on a thread of its own: a blocking read cannot be cancelled,
/// and this thread must not keep the process alive once the command has ended (tokio's
/// stdin would hold up the runtime's shutdown until the user pressed a key).
fn read_stdin_in_background() -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; 16 * 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    receiver
}

/// The local terminal's size (of stdout, else stdin), when there is one.
fn terminal_size() -> Option<TerminalSize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout().as_fd())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin().as_fd()))
        .ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some(TerminalSize {
        rows: size.ws_row,
        columns: size.ws_col,
    })
}

/// The local terminal in raw mode (keys go to the command as typed: Ctrl-C too, no
/// local echo), put back as it was when dropped.
struct RawTerminal {
    original: rustix::termios::Termios,
}

impl RawTerminal {
    fn enter() -> anyhow::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let original =
            rustix::termios::tcgetattr(stdin.as_fd()).context("reading the terminal's mode")?;
        let mut raw = original.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(RawTerminal { original })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin().as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.original,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::{ExecCall, FakeCommand, FakeExec};

    fn container(name: &str) -> Container {
        Container {
            container_arn: format!("arn:aws:ecs:r:0:container/c/{name}"),
            task_arn: "arn:aws:ecs:r:0:task/c/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d".into(),
            name: name.into(),
            image: "berth/busybox:latest".into(),
            image_digest: None,
            runtime_id: Some(format!("docker-{name}")),
            last_status: "RUNNING".into(),
            exit_code: None,
            reason: None,
            network_bindings: vec![],
            network_interfaces: vec![],
            health_status: "UNKNOWN".into(),
            cpu: None,
            memory: None,
            memory_reservation: None,
        }
    }

    fn task(containers: &[&str]) -> Task {
        Task {
            task_arn: "arn:aws:ecs:r:0:task/c/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d".into(),
            last_status: "RUNNING".into(),
            containers: containers.iter().map(|name| container(name)).collect(),
            ..Default::default()
        }
    }

    /// Definitions as (name, essential); `None` = not given (ECS's default: essential).
    fn definition(containers: &[(&str, Option<bool>)]) -> berth_api::TaskDefinition {
        berth_api::TaskDefinition {
            container_definitions: containers
                .iter()
                .map(|(name, essential)| berth_api::ContainerDefinition {
                    name: Some(name.to_string()),
                    essential: *essential,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_is_the_named_one_else_the_only_one_else_the_first_essential_one() {
        let one = task(&["web"]);
        let only = definition(&[("web", Some(false))]);
        assert_eq!(choose_container(&one, &only, None).unwrap().name, "web");

        let two = task(&["sidecar", "web"]);
        let first_not_essential = definition(&[("sidecar", Some(false)), ("web", None)]);
        assert_eq!(
            choose_container(&two, &first_not_essential, None)
                .unwrap()
                .name,
            "web"
        );
        assert_eq!(
            choose_container(&two, &first_not_essential, Some("sidecar"))
                .unwrap()
                .name,
            "sidecar"
        );
    }

    #[test]
    fn an_unknown_container_is_refused_naming_the_task_s_containers() {
        let two = task(&["sidecar", "web"]);
        let error = choose_container(&two, &definition(&[]), Some("db"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "task 1a2b3c4d5e6f has no container 'db'; its containers: sidecar, web"
        );
    }

    #[test]
    fn flags_are_obeyed_and_a_terminal_alone_means_interactive_with_a_tty() {
        assert_eq!(attach_modes(false, false, true), (true, true));
        assert_eq!(attach_modes(false, false, false), (false, false));
        assert_eq!(attach_modes(true, false, true), (true, false));
        assert_eq!(attach_modes(false, true, false), (false, true));
    }

    #[test]
    fn a_task_on_another_machine_is_named_by_its_instance_and_host() {
        assert_eq!(
            location_message("1a2b3c4d5e6f", Some("0f9e8d7c"), Some("node-2")),
            "task 1a2b3c4d5e6f runs on container instance 0f9e8d7c (host node-2)"
        );
        assert_eq!(
            location_message("1a2b3c4d5e6f", Some("0f9e8d7c"), None),
            "task 1a2b3c4d5e6f runs on container instance 0f9e8d7c"
        );
    }

    fn spec(stdin: bool) -> ExecSpec {
        ExecSpec {
            command: vec!["sh".into()],
            stdin,
            tty: false,
            size: None,
        }
    }

    #[tokio::test]
    async fn both_streams_are_relayed_and_the_exit_code_is_the_command_s() {
        let exec = FakeExec::new(
            &["docker-web"],
            FakeCommand::Scripted {
                output: vec![
                    ExecOutput::Stdout(b"out\n".to_vec()),
                    ExecOutput::Stderr(b"err\n".to_vec()),
                ],
                exit_code: 3,
            },
        );
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = attach(
            &exec,
            "docker-web",
            &spec(false),
            None,
            false,
            &mut stdout,
            &mut stderr,
        )
        .await
        .unwrap();
        assert_eq!(
            (code, stdout, stderr),
            (3, b"out\n".to_vec(), b"err\n".to_vec())
        );
        assert_eq!(
            exec.calls(),
            vec![ExecCall::Start {
                container_id: "docker-web".into(),
                spec: spec(false)
            }]
        );
    }

    #[tokio::test]
    async fn stdin_reaches_the_command_and_its_end_closes_the_command_s_input() {
        let exec = FakeExec::new(&["docker-web"], FakeCommand::Echo);
        let (sender, receiver) = mpsc::channel(4);
        sender.send(b"hi\n".to_vec()).await.unwrap();
        sender.send(b"there\n".to_vec()).await.unwrap();
        drop(sender);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = attach(
            &exec,
            "docker-web",
            &spec(true),
            Some(receiver),
            false,
            &mut stdout,
            &mut stderr,
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        assert_eq!(String::from_utf8(stdout).unwrap(), "hi\nthere\n");
    }

    #[tokio::test]
    async fn a_container_the_engine_does_not_have_is_an_error() {
        let exec = FakeExec::new(&[], FakeCommand::Echo);
        let error = attach(
            &exec,
            "docker-gone",
            &spec(false),
            None,
            false,
            Vec::new(),
            Vec::new(),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("docker-gone"), "{error}");
    }
}
