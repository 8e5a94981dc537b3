//! The rules ECS applies to a task definition that requires FARGATE compatibility
//! (`requiresCompatibilities` names FARGATE, even beside EC2): awsvpc networking, a task
//! size Fargate offers, and no host namespaces. berth runs such a task on its own
//! machines like any other; it keeps the rules so that a definition it accepts is one
//! ECS accepts too, and a mistake shows here rather than on the way to AWS.

use berth_api::RegisterTaskDefinitionRequest;

use super::{shown, Result, ValidationError};
use crate::spec::{IpcMode, NetworkMode, PidMode};

/// ECS's `Compatibility` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compatibility {
    Ec2,
    Fargate,
    External,
    ManagedInstances,
}

impl Compatibility {
    const ALL: [Compatibility; 4] = [
        Compatibility::Ec2,
        Compatibility::Fargate,
        Compatibility::External,
        Compatibility::ManagedInstances,
    ];

    fn as_ecs(self) -> &'static str {
        match self {
            Compatibility::Ec2 => "EC2",
            Compatibility::Fargate => "FARGATE",
            Compatibility::External => "EXTERNAL",
            Compatibility::ManagedInstances => "MANAGED_INSTANCES",
        }
    }

    fn parse(given: &str) -> Option<Compatibility> {
        Self::ALL.into_iter().find(|known| known.as_ecs() == given)
    }
}

/// Whether the definition asks to be validated for Fargate; an unknown
/// `requiresCompatibilities` value is refused by name.
pub(super) fn requires_fargate(request: &RegisterTaskDefinitionRequest) -> Result<bool> {
    let mut fargate = false;
    for given in request.requires_compatibilities.iter().flatten() {
        match Compatibility::parse(given) {
            Some(compatibility) => fargate |= compatibility == Compatibility::Fargate,
            None => {
                return Err(ValidationError::new(format!(
                    "Invalid requiresCompatibilities value '{}': expected EC2, FARGATE, \
                     EXTERNAL or MANAGED_INSTANCES.",
                    shown(given)
                )))
            }
        }
    }
    Ok(fargate)
}

/// What a Fargate task definition must be, with ECS's messages. `cpu` and `memory` are
/// the task's figures as parsed (CPU units, MiB).
pub(super) fn validate_fargate(
    network_mode: NetworkMode,
    cpu: Option<u64>,
    memory: Option<u64>,
    pid_mode: Option<PidMode>,
    ipc_mode: Option<IpcMode>,
) -> Result {
    if network_mode != NetworkMode::Awsvpc {
        return Err(ValidationError::new(
            "Fargate only supports network mode \u{2018}awsvpc\u{2019}.",
        ));
    }
    let Some(cpu) = cpu else {
        return Err(ValidationError::new(
            "Fargate requires that 'cpu' be defined at the task level.",
        ));
    };
    let Some(memory) = memory else {
        return Err(ValidationError::new(
            "Fargate requires that 'memory' be defined at the task level.",
        ));
    };
    if !is_fargate_task_size(cpu, memory) {
        return Err(ValidationError::new(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. \
             See the Amazon ECS documentation for the valid values."
        )));
    }
    if pid_mode == Some(PidMode::Host) {
        return Err(ValidationError::new(
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported \
             value for pidMode is 'task'.",
        ));
    }
    if ipc_mode.is_some() {
        return Err(ValidationError::new(
            "Tasks using the Fargate launch type do not support ipcMode.",
        ));
    }
    Ok(())
}

/// Fargate's task sizes (Linux): for each task cpu (units), the memory (MiB) it can have.
fn is_fargate_task_size(cpu: u64, memory: u64) -> bool {
    let (lowest, highest, step) = match cpu {
        256 => return [512, 1024, 2048].contains(&memory),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return false,
    };
    (lowest..=highest).step_by(step).any(|size| size == memory)
}
