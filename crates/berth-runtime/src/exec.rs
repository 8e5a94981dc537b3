//! `ContainerExec`: running a command inside a running container, as `docker exec`
//! does, for `berth exec`. A trait of its own, apart from [`crate::ContainerRuntime`]:
//! the agent never execs, and only the CLI needs this. Plain std and tokio types only.

use std::pin::Pin;

use futures_util::stream::BoxStream;
use tokio::io::AsyncWrite;

use crate::error::RuntimeError;

/// Runs commands in running containers on this machine's engine. Implemented by
/// [`crate::DockerRuntime`] and [`crate::FakeExec`] (in memory, for tests).
#[async_trait::async_trait]
pub trait ContainerExec: Send + Sync {
    /// Starts `spec.command` in the container and attaches to it. The session's output
    /// ends when the command has exited (and its output is drained); then
    /// [`ContainerExec::exec_exit_code`] tells its exit code.
    async fn start_exec(
        &self,
        container_id: &str,
        spec: &ExecSpec,
    ) -> Result<ExecSession, RuntimeError>;

    /// Tells the command's terminal its new size (only for `spec.tty`).
    async fn resize_exec(&self, exec_id: &str, size: TerminalSize) -> Result<(), RuntimeError>;

    /// The command's exit code once it has exited; `None` while it runs. A command that
    /// cannot be run gets the engine's code (Docker 20.10: 126, also for one not found).
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError>;
}

/// What to run and how to attach to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (not through a shell).
    pub command: Vec<String>,
    /// Attach the caller's input to the command's standard input.
    pub stdin: bool,
    /// Give the command a terminal; its output then comes as one stream (stdout).
    pub tty: bool,
    /// The terminal's size at start (only with `tty`).
    pub size: Option<TerminalSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub rows: u16,
    pub columns: u16,
}

/// One chunk of a command's output, as the engine sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// An attached command: its id (for resize and exit code), its output and its input.
/// Shutting `input` down closes the command's standard input.
pub struct ExecSession {
    pub id: String,
    pub output: BoxStream<'static, Result<ExecOutput, RuntimeError>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession").field("id", &self.id).finish()
    }
}
