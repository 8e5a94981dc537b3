//! `ContainerExec` on the Docker engine: create an exec, start it attached, resize its
//! terminal, inspect its exit code.

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures_util::stream::StreamExt;

use super::DockerRuntime;
use crate::error::RuntimeError;
use crate::exec::{ContainerExec, ExecOutput, ExecSession, ExecSpec, TerminalSize};

#[async_trait]
impl ContainerExec for DockerRuntime {
    async fn start_exec(
        &self,
        container_id: &str,
        spec: &ExecSpec,
    ) -> Result<ExecSession, RuntimeError> {
        let options = CreateExecOptions {
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            cmd: Some(spec.command.clone()),
            ..Default::default()
        };
        let mut config: bollard::models::ExecConfig = options.into();
        if let (true, Some(size)) = (spec.tty, spec.size) {
            config.console_size = Some(vec![usize::from(size.rows), usize::from(size.columns)]);
        }
        let created = self
            .docker
            .create_exec(container_id, config)
            .await
            .map_err(|error| self.error("creating an exec in container", container_id, error))?;
        let start = StartExecOptions {
            detach: false,
            tty: spec.tty,
            output_capacity: None,
        };
        let started = self
            .docker
            .start_exec(&created.id, Some(start))
            .await
            .map_err(|error| self.error("starting exec", &created.id, error))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(RuntimeError::Engine(format!(
                "starting exec {}: the engine did not attach",
                created.id
            )));
        };
        let exec_id = created.id.clone();
        let output = output
            .filter_map(move |chunk| {
                let exec_id = exec_id.clone();
                async move {
                    match chunk {
                        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                            Some(Ok(ExecOutput::Stdout(message.to_vec())))
                        }
                        Ok(LogOutput::StdErr { message }) => {
                            Some(Ok(ExecOutput::Stderr(message.to_vec())))
                        }
                        Ok(LogOutput::StdIn { .. }) => None,
                        Err(error) => Some(Err(RuntimeError::Engine(format!(
                            "reading the output of exec {exec_id}: {error}"
                        )))),
                    }
                }
            })
            .boxed();
        Ok(ExecSession {
            id: created.id,
            output,
            input,
        })
    }

    async fn resize_exec(&self, exec_id: &str, size: TerminalSize) -> Result<(), RuntimeError> {
        let options = ResizeExecOptions {
            height: size.rows,
            width: size.columns,
        };
        self.docker
            .resize_exec(exec_id, options)
            .await
            .map_err(|error| self.error("resizing the terminal of exec", exec_id, error))
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError> {
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|error| self.error("inspecting exec", exec_id, error))?;
        if inspect.running == Some(true) {
            return Ok(None);
        }
        Ok(inspect.exit_code)
    }
}
