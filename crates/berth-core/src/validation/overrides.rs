//! A task's overrides (RunTask's `overrides`): checked and applied to its definition's
//! spec in one place, so RunTask refuses what the task could not run with, and what the
//! agent is sent is the spec the task runs.

use berth_api::{ContainerOverride, EnvironmentFile, TaskOverride};

use super::set_variable;
use crate::error::EcsError;
use crate::resources::{parse_cpu_units, parse_memory_mib, MAX_CPU_UNITS, MAX_MEMORY_MIB};
use crate::spec::TaskSpec;

/// `spec` (of task definition `family:revision`) with `overrides` applied; the error
/// names the override at fault, as an `InvalidParameterException`.
pub fn apply_overrides(
    spec: &TaskSpec,
    family: &str,
    revision: u32,
    overrides: &TaskOverride,
) -> Result<TaskSpec, EcsError> {
    let mut spec = spec.clone();
    for (i, o) in overrides.container_overrides.iter().enumerate() {
        let Some(name) = o.name.as_deref() else {
            return Err(EcsError::invalid_parameter(format!(
                "overrides.containerOverrides[{i}].name is required"
            )));
        };
        let Some(container) = spec
            .container_definitions
            .iter_mut()
            .find(|c| c.name == name)
        else {
            return Err(EcsError::invalid_parameter(format!(
                "overrides.containerOverrides[{i}].name '{name}' names no container of task definition {family}:{revision}"
            )));
        };
        check_container_figures(i, o)?;
        // The limits the container ends up with: overridden or as defined.
        let memory = o.memory.map(i64::unsigned_abs).or(container.memory);
        let reservation = match o.memory_reservation {
            Some(given) => Some(given.unsigned_abs()),
            None => container.memory_reservation,
        };
        if let (Some(memory), Some(reservation)) = (memory, reservation) {
            if memory < reservation {
                return Err(EcsError::invalid_parameter(format!(
                    "overrides.containerOverrides[{i}] ({name}): memory {memory} MiB is less than memoryReservation {reservation} MiB"
                )));
            }
        }
        container.memory = memory;
        // 0 is "none", as in a definition.
        container.memory_reservation = reservation.filter(|r| *r > 0);
        if let Some(cpu) = o.cpu {
            container.cpu = Some(cpu.unsigned_abs()).filter(|c| *c > 0);
        }
        if let Some(command) = &o.command {
            container.command = Some(command.clone());
        }
        for (j, variable) in o.environment.iter().flatten().enumerate() {
            let Some(key) = variable.name.as_deref().filter(|key| !key.is_empty()) else {
                return Err(EcsError::invalid_parameter(format!(
                    "overrides.containerOverrides[{i}].environment[{j}] has no name"
                )));
            };
            set_variable(
                &mut container.environment,
                key,
                variable.value.clone().unwrap_or_default(),
            );
        }
        if let Some(files) = o.environment_files.as_ref().filter(|f| !f.is_null()) {
            let files: Vec<EnvironmentFile> = serde_json::from_value(files.clone())
                .map_err(|_| {
                    EcsError::invalid_parameter(format!(
                        "overrides.containerOverrides[{i}].environmentFiles must be a list of {{\"value\", \"type\"}} objects"
                    ))
                })?;
            container.environment_files.extend(files);
        }
    }
    if let Some(cpu) = task_figure(
        "overrides.cpu",
        &overrides.cpu,
        parse_cpu_units,
        MAX_CPU_UNITS,
    )? {
        spec.cpu = Some(cpu).filter(|c| *c > 0);
    }
    if let Some(memory) = task_figure(
        "overrides.memory",
        &overrides.memory,
        parse_memory_mib,
        MAX_MEMORY_MIB,
    )? {
        spec.memory = Some(memory).filter(|m| *m > 0);
    }
    Ok(spec)
}

/// A container override's own figures.
fn check_container_figures(i: usize, o: &ContainerOverride) -> Result<(), EcsError> {
    if o.memory.is_some_and(|m| m < 6) {
        return Err(EcsError::invalid_parameter(format!(
            "overrides.containerOverrides[{i}].memory must be at least 6 MiB"
        )));
    }
    if o.memory_reservation.is_some_and(|m| m < 0) {
        return Err(EcsError::invalid_parameter(format!(
            "overrides.containerOverrides[{i}].memoryReservation must not be negative"
        )));
    }
    if o.cpu.is_some_and(|c| c < 0) {
        return Err(EcsError::invalid_parameter(format!(
            "overrides.containerOverrides[{i}].cpu must not be negative"
        )));
    }
    for (field, value, max) in [
        ("cpu", o.cpu, MAX_CPU_UNITS),
        ("memory", o.memory, MAX_MEMORY_MIB),
        ("memoryReservation", o.memory_reservation, MAX_MEMORY_MIB),
    ] {
        if let Some(value) = value.filter(|v| *v > 0 && *v as u64 > max) {
            return Err(EcsError::invalid_parameter(format!(
                "overrides.containerOverrides[{i}].{field} must be at most {max}, got {value}"
            )));
        }
    }
    Ok(())
}

/// The task-level `overrides.cpu` or `overrides.memory`, parsed, when given.
fn task_figure(
    field: &str,
    value: &Option<String>,
    parse: fn(&str) -> Option<u64>,
    max: u64,
) -> Result<Option<u64>, EcsError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match parse(text) {
        None => Err(EcsError::invalid_parameter(format!(
            "{field} '{text}' is not a number"
        ))),
        Some(parsed) if parsed > max => Err(EcsError::invalid_parameter(format!(
            "{field} must be at most {max}, got '{text}'"
        ))),
        Some(parsed) => Ok(Some(parsed)),
    }
}
