//! `FakeExec`: an in-memory `ContainerExec` for the CLI's tests. Each started command
//! either plays a scripted output and exit code, or echoes its input back on stdout
//! (as `cat` would) until its input is shut down. Records every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use tokio::io::AsyncReadExt;

use crate::error::RuntimeError;
use crate::exec::{ContainerExec, ExecOutput, ExecSession, ExecSpec, TerminalSize};

/// What a fake command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCommand {
    /// Writes these chunks, then exits with the code (ignoring its input).
    Scripted {
        output: Vec<ExecOutput>,
        exit_code: i64,
    },
    /// Writes back what it reads, then exits 0 when its input ends.
    Echo,
}

/// One call made to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecCall {
    Start {
        container_id: String,
        spec: ExecSpec,
    },
    Resize {
        exec_id: String,
        size: TerminalSize,
    },
}

#[derive(Default)]
struct Inner {
    calls: Vec<ExecCall>,
    exit_codes: HashMap<String, Arc<Mutex<Option<i64>>>>,
    next_id: u64,
}

/// See the module comment. Containers not in `containers` are not found.
#[derive(Clone)]
pub struct FakeExec {
    command: FakeCommand,
    containers: Vec<String>,
    inner: Arc<Mutex<Inner>>,
}

impl FakeExec {
    /// Every command started in one of `containers` does `command`.
    pub fn new(containers: &[&str], command: FakeCommand) -> Self {
        FakeExec {
            command,
            containers: containers.iter().map(|c| c.to_string()).collect(),
            inner: Arc::default(),
        }
    }

    pub fn calls(&self) -> Vec<ExecCall> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl ContainerExec for FakeExec {
    async fn start_exec(
        &self,
        container_id: &str,
        spec: &ExecSpec,
    ) -> Result<ExecSession, RuntimeError> {
        if !self.containers.iter().any(|c| c == container_id) {
            return Err(RuntimeError::NotFound(format!(
                "creating an exec in container {container_id}: no such container"
            )));
        }
        let exit_code = Arc::new(Mutex::new(None));
        let id = {
            let mut inner = self.lock();
            inner.calls.push(ExecCall::Start {
                container_id: container_id.to_string(),
                spec: spec.clone(),
            });
            inner.next_id += 1;
            let id = format!("fake-exec-{}", inner.next_id);
            inner.exit_codes.insert(id.clone(), exit_code.clone());
            id
        };
        let (input, mut reader) = tokio::io::duplex(4096);
        let output = match self.command.clone() {
            FakeCommand::Scripted {
                output,
                exit_code: code,
            } => {
                *exit_code.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
                // Its input is read and dropped, so a writer never blocks on it.
                tokio::spawn(async move {
                    let mut sink = Vec::new();
                    let _ = reader.read_to_end(&mut sink).await;
                });
                stream::iter(output.into_iter().map(Ok)).boxed()
            }
            FakeCommand::Echo => {
                stream::unfold((reader, exit_code), |(mut reader, exit_code)| async move {
                    let mut buffer = vec![0; 4096];
                    match reader.read(&mut buffer).await {
                        Ok(0) | Err(_) => {
                            *exit_code.lock().unwrap_or_else(|p| p.into_inner()) = Some(0);
                            None
                        }
                        Ok(n) => {
                            buffer.truncate(n);
                            Some((Ok(ExecOutput::Stdout(buffer)), (reader, exit_code)))
                        }
                    }
                })
                .boxed()
            }
        };
        Ok(ExecSession {
            id,
            output,
            input: Box::pin(input),
        })
    }

    async fn resize_exec(&self, exec_id: &str, size: TerminalSize) -> Result<(), RuntimeError> {
        self.lock().calls.push(ExecCall::Resize {
            exec_id: exec_id.to_string(),
            size,
        });
        Ok(())
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError> {
        match self.lock().exit_codes.get(exec_id) {
            Some(code) => Ok(*code.lock().unwrap_or_else(|p| p.into_inner())),
            None => Err(RuntimeError::NotFound(format!(
                "inspecting exec {exec_id}: no such exec"
            ))),
        }
    }
}
