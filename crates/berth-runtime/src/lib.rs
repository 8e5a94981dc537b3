//! berth-runtime: how the agent drives containers. A narrow [`ContainerRuntime`] trait,
//! its Docker implementation ([`DockerRuntime`], bollard) and a recording in-memory fake
//! ([`FakeRuntime`]) for tests, the narrower [`ContainerExec`] (a command in a running
//! container, for `berth exec`; Docker and [`FakeExec`]), plus the self-built sandbox image that holds each task's
//! network namespace.
//!
//! Invariant: nothing outside this crate sees bollard types; the trait speaks plain std
//! types so the agent's tests run without Docker.

mod docker;
mod docker_mapping;
mod error;
mod exec;
mod fake;
mod fake_exec;
mod runtime;
mod sandbox;

pub use docker::DockerRuntime;
pub use error::RuntimeError;
pub use exec::{ContainerExec, ExecOutput, ExecSession, ExecSpec, TerminalSize};
pub use fake::{
    FakeRuntime, RecordedCall, FAKE_CPU_PERCENT, FAKE_MACHINE_MEMORY_BYTES,
    FAKE_MEMORY_USAGE_BYTES, FAKE_SANDBOX_IMAGE, KILLED_EXIT_CODE, STOPPED_EXIT_CODE,
};
pub use fake_exec::{ExecCall, FakeCommand, FakeExec};
pub use runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStats, ContainerStatus, DeviceSpec,
    Health, HealthCheckSpec, ImageInfo, LogEntry, MountSpec, NamespaceMode, NetworkSpec, PortSpec,
    Protocol, PublishedPort, RuntimeEvent, RuntimeEventKind, RuntimeInfo, Stream, VolumeSpec,
};
pub use sandbox::{pause_executable, SANDBOX_REPOSITORY};
