//! `DockerRuntime`: the `ContainerRuntime` on a real Docker engine through bollard.
//! The pure request/response mapping lives in `docker_mapping.rs`; `docker/exec.rs`
//! is its `ContainerExec`.

mod exec;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StatsOptions, StopContainerOptions,
};
use bollard::Docker;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::docker_mapping::{
    container_create_body, event_from_message, log_entries, pull_reference, stats_from_sample,
    status_from_inspect, status_from_summary,
};
use crate::error::RuntimeError;
use crate::runtime::{
    ContainerRuntime, ContainerSpec, ContainerStats, ContainerStatus, ImageInfo, LogEntry,
    RuntimeEvent, RuntimeInfo, Stream, VolumeSpec,
};
use crate::sandbox::{
    pause_executable, sandbox_image_reference, sandbox_rootfs_tar, SANDBOX_REPOSITORY,
};

/// bollard's default request timeout; `stop_container` stretches it for long timeouts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The container runtime on the local Docker engine (or `DOCKER_HOST`).
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// Where the engine is, for error messages.
    address: String,
}

impl DockerRuntime {
    /// Connect to the engine named by `DOCKER_HOST` (default: the local socket),
    /// negotiate the API version down to the engine's, and ping it.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let address = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let unreachable = |error: DockerError| {
            RuntimeError::Unreachable(unreachable_message(&address, &error.to_string()))
        };
        let docker = Docker::connect_with_local_defaults().map_err(unreachable)?;
        // bollard speaks the newest API by default; older engines (Debian's 20.10 is
        // 1.41) refuse it, so ask the engine which version to speak.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        tracing::debug!(%address, version = ?docker.client_version(), "connected to docker");
        Ok(DockerRuntime { docker, address })
    }

    /// The bollard client, for callers that need an engine feature the trait lacks.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Map a bollard error of `operation` on `object` to a `RuntimeError`.
    fn error(&self, operation: &str, object: &str, error: DockerError) -> RuntimeError {
        match error {
            DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            } => RuntimeError::NotFound(format!("{operation} {object}: {message}")),
            DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            } => RuntimeError::Conflict(format!("{operation} {object}: {message}")),
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } => RuntimeError::Engine(format!(
                "{operation} {object}: engine answered {status_code}: {message}"
            )),
            DockerError::HyperLegacyError { .. }
            | DockerError::IOError { .. }
            | DockerError::RequestTimeoutError
            | DockerError::SocketNotFoundError(_) => RuntimeError::Unreachable(format!(
                "{operation} {object}: {}",
                unreachable_message(&self.address, &error.to_string())
            )),
            other => RuntimeError::Engine(format!("{operation} {object}: {other}")),
        }
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(ImageInfo {
                id: inspect.id.unwrap_or_default(),
                digest: inspect
                    .repo_digests
                    .and_then(|digests| digests.into_iter().next()),
            })),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(error) => Err(self.error("inspecting image", image, error)),
        }
    }
}

fn unreachable_message(address: &str, error: &str) -> String {
    format!(
        "docker is not reachable at {address}: {error}; is the docker daemon running \
         (systemctl status docker)? is DOCKER_HOST right? can this user use the socket \
         (docker group)?"
    )
}

fn now_epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|error| self.error("reading", "engine info", error))?;
        Ok(RuntimeInfo {
            engine_version: info.server_version.unwrap_or_default(),
            cpus: info
                .ncpu
                .and_then(|cpus| u64::try_from(cpus).ok())
                .unwrap_or(0),
            memory_bytes: info
                .mem_total
                .and_then(|bytes| u64::try_from(bytes).ok())
                .unwrap_or(0),
            hostname: info.name.unwrap_or_default(),
        })
    }

    async fn ensure_image(&self, image: &str) -> Result<ImageInfo, RuntimeError> {
        if let Some(found) = self.inspect_image(image).await? {
            return Ok(found);
        }
        let (from_image, tag) = pull_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag: (!tag.is_empty()).then_some(tag),
            ..Default::default()
        };
        tracing::info!(image, "pulling image");
        let pulled: Result<Vec<_>, _> = self
            .docker
            .create_image(Some(options), None, None)
            .try_collect()
            .await;
        if let Err(error) = pulled {
            let message = match error {
                DockerError::DockerResponseServerError { message, .. } => message,
                DockerError::DockerStreamError { error } => error,
                other => other.to_string(),
            };
            // ECS's wording, so users and tools recognise it; name the image when the
            // engine's message does not.
            let message = if message.contains(image) {
                message
            } else {
                format!("pulling image {image}: {message}")
            };
            return Err(RuntimeError::ImagePull(format!(
                "CannotPullContainerError: {message}"
            )));
        }
        self.inspect_image(image).await?.ok_or_else(|| {
            RuntimeError::Engine(format!("image {image} is missing right after its pull"))
        })
    }

    async fn ensure_sandbox_image(&self) -> Result<String, RuntimeError> {
        let executable = pause_executable(std::env::consts::ARCH)?;
        let reference = sandbox_image_reference(&executable);
        if self.inspect_image(&reference).await?.is_some() {
            return Ok(reference);
        }
        let rootfs = sandbox_rootfs_tar(&executable)?;
        let tag = reference
            .rsplit_once(':')
            .map(|(_, tag)| tag.to_string())
            .unwrap_or_default();
        // `docker import`: POST /images/create?fromSrc=- with the rootfs tar as body.
        let options = CreateImageOptions {
            from_src: Some("-".to_string()),
            repo: Some(SANDBOX_REPOSITORY.to_string()),
            tag: Some(tag),
            changes: vec![
                r#"CMD ["/pause"]"#.to_string(),
                "LABEL berth.sandbox=true".to_string(),
            ],
            ..Default::default()
        };
        let body = bollard::body_full(bytes::Bytes::from(rootfs));
        self.docker
            .create_image(Some(options), Some(body), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|error| self.error("importing sandbox image", &reference, error))?;
        tracing::info!(%reference, "built the sandbox image");
        Ok(reference)
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        // Creating an existing local volume is a no-op in Docker, which is the
        // idempotence the agent needs.
        let request = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(spec.driver_opts.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|error| self.error("creating volume", &spec.name, error))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(self.error("removing volume", name, error)),
        }
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => return Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            // Several networks of that name (made by an older engine race): it exists.
            Err(DockerError::DockerResponseServerError { message, .. })
                if message.contains("ambiguous") =>
            {
                return Ok(())
            }
            Err(error) => return Err(self.error("inspecting network", name, error)),
        }
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Created meanwhile by someone else: what we wanted.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(error) => Err(self.error("creating network", name, error)),
        }
    }

    async fn disconnect_network(
        &self,
        container_id: &str,
        network: &str,
    ) -> Result<(), RuntimeError> {
        let request = bollard::models::NetworkDisconnectRequest {
            container: container_id.to_string(),
            force: Some(true),
        };
        match self.docker.disconnect_network(network, request).await {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            // Docker 20.10 answers 500 "is not connected to network" when already off.
            Err(DockerError::DockerResponseServerError { message, .. })
                if message.contains("not connected") =>
            {
                Ok(())
            }
            Err(error) => Err(self.error("disconnecting from network", container_id, error)),
        }
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let response = self
            .docker
            .create_container(Some(options), container_create_body(spec))
            .await
            .map_err(|error| {
                self.error(
                    "creating container",
                    &format!("{} from image {}", spec.name, spec.image),
                    error,
                )
            })?;
        for warning in response.warnings {
            tracing::warn!(container = %spec.name, %warning, "engine warning on create");
        }
        Ok(response.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|error| self.error("starting container", id, error))
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        // The engine answers only after the container is down, so the request must be
        // allowed to outlive the stop timeout.
        let docker = if timeout + Duration::from_secs(30) > REQUEST_TIMEOUT {
            self.docker
                .clone()
                .with_timeout(timeout + Duration::from_secs(30))
        } else {
            self.docker.clone()
        };
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(seconds),
            signal: None,
        };
        match docker.stop_container(id, Some(options)).await {
            // 304 (already stopped) is a success for bollard
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(self.error("stopping container", id, error)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // "removal already in progress": someone else is removing it
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(error) => Err(self.error("removing container", id, error)),
        }
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerStatus>, RuntimeError> {
        match self.docker.inspect_container(id, None).await {
            Ok(inspect) => Ok(Some(status_from_inspect(inspect))),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(error) => Err(self.error("inspecting container", id, error)),
        }
    }

    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let label = format!("{label_key}={label_value}");
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), vec![label.clone()])])),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| self.error("listing containers with label", &label, error))?;
        Ok(summaries.into_iter().map(status_from_summary).collect())
    }

    fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        // bollard sends the request only when the stream is first polled. `since` = now
        // makes the engine replay from its event buffer whatever happened in between,
        // so nothing after this call is missed however late the caller polls.
        let since = format!("{:.9}", now_epoch_seconds());
        let options = EventsOptions {
            since: Some(since),
            until: None,
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                (
                    "label".to_string(),
                    vec![format!("{label_key}={label_value}")],
                ),
            ])),
        };
        let runtime = self.clone();
        let label = format!("{label_key}={label_value}");
        self.docker
            .events(Some(options))
            .map(move |message| match message {
                Ok(message) => Ok(event_from_message(message)),
                Err(error) => {
                    Err(runtime.error("following events of containers with label", &label, error))
                }
            })
            // After an error the engine connection is gone: yield the error, then end.
            .scan(false, |failed, item| {
                if *failed {
                    return futures_util::future::ready(None);
                }
                *failed = item.is_err();
                futures_util::future::ready(Some(item))
            })
            .filter_map(|item| futures_util::future::ready(item.transpose()))
            .boxed()
    }

    async fn logs(
        &self,
        id: &str,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogEntry>, RuntimeError> {
        let options = LogsOptions {
            follow: false,
            stdout: true,
            stderr: true,
            // The engine takes whole seconds; finer filtering happens below.
            since: since
                .map(|seconds| seconds.floor().clamp(0.0, f64::from(i32::MAX)) as i32)
                .unwrap_or(0),
            until: 0,
            timestamps: true,
            tail: tail.map_or_else(|| "all".to_string(), |lines| lines.to_string()),
        };
        let chunks: Vec<LogOutput> = self
            .docker
            .logs(id, Some(options))
            .try_collect()
            .await
            .map_err(|error| self.error("reading logs of container", id, error))?;
        let mut entries = Vec::new();
        for chunk in chunks {
            let fallback = entries
                .last()
                .map_or(0.0, |entry: &LogEntry| entry.timestamp);
            let (stream, message) = match chunk {
                LogOutput::StdErr { message } => (Stream::Stderr, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (Stream::Stdout, message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            entries.extend(log_entries(&message, stream, fallback));
        }
        if let Some(since) = since {
            entries.retain(|entry| entry.timestamp > since);
        }
        Ok(entries)
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        // Not one-shot: the engine waits for its next sample, so the answer carries
        // two (`precpu_stats`) and the CPU figure is over a real interval, as
        // `docker stats --no-stream` shows it.
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let sample = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| {
                RuntimeError::Engine(format!(
                    "reading stats of container {id}: the engine sent none"
                ))
            })?
            .map_err(|error| self.error("reading stats of container", id, error))?;
        Ok(stats_from_sample(&sample))
    }
}
