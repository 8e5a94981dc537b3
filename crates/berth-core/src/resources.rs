//! What a task needs: CPU units, MiB of memory and fixed host ports, read from its definition.

use berth_api::RegisterTaskDefinitionRequest;

/// The most CPU units berth takes for one container or task (1024 vCPU): far above any
/// machine it runs on, and small enough that no sum of a task's figures can overflow.
pub const MAX_CPU_UNITS: u64 = 1 << 20;
/// The most MiB of memory berth takes for one container or task (16 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 24;

/// Task-level `cpu`: "256" or "0.25 vCPU" -> CPU units (1 vCPU = 1024).
pub fn parse_cpu_units(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(vcpu) = text
        .strip_suffix("vCPU")
        .or_else(|| text.strip_suffix("vcpu"))
    {
        let value: f64 = vcpu.trim().parse().ok()?;
        return (value >= 0.0).then(|| (value * 1024.0).round() as u64);
    }
    text.parse().ok()
}

/// Task-level `memory`: "512" (MiB) or "1 GB" -> MiB.
pub fn parse_memory_mib(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(gb) = text.strip_suffix("GB").or_else(|| text.strip_suffix("gb")) {
        let value: f64 = gb.trim().parse().ok()?;
        return (value >= 0.0).then(|| (value * 1024.0).round() as u64);
    }
    text.parse().ok()
}

pub trait FixedHostPorts {
    /// (protocol, host port) pairs this task pins on its machine.
    fn fixed_host_ports(&self) -> Vec<(String, u16)>;
}

impl FixedHostPorts for RegisterTaskDefinitionRequest {
    fn fixed_host_ports(&self) -> Vec<(String, u16)> {
        let mode = self.network_mode.as_deref().unwrap_or("bridge");
        if matches!(mode, "awsvpc" | "none") {
            // awsvpc tasks have an address of their own: nothing is published on the host.
            return Vec::new();
        }
        self.container_definitions
            .iter()
            .flat_map(|c| c.port_mappings.iter().flatten())
            .filter_map(|m| {
                let port = if mode == "host" {
                    m.host_port.or(m.container_port)
                } else {
                    m.host_port
                };
                let port = u16::try_from(port?).ok().filter(|p| *p != 0)?;
                Some((
                    m.protocol.clone().unwrap_or_else(|| "tcp".to_string()),
                    port,
                ))
            })
            .collect()
    }
}

/// CPU units and MiB a task of this definition reserves on its instance.
pub fn reservation(
    definition: &RegisterTaskDefinitionRequest,
    overrides: &berth_api::TaskOverride,
) -> (u64, u64) {
    let task_cpu = overrides
        .cpu
        .as_deref()
        .or(definition.cpu.as_deref())
        .and_then(parse_cpu_units);
    let task_memory = overrides
        .memory
        .as_deref()
        .or(definition.memory.as_deref())
        .and_then(parse_memory_mib);
    let override_of = |name: &Option<String>| {
        overrides
            .container_overrides
            .iter()
            .find(|o| o.name.is_some() && o.name == *name)
    };
    let cpu = task_cpu.unwrap_or_else(|| {
        definition
            .container_definitions
            .iter()
            .map(|c| {
                override_of(&c.name)
                    .and_then(|o| o.cpu)
                    .or(c.cpu)
                    .unwrap_or(0)
                    .max(0) as u64
            })
            .fold(0, u64::saturating_add)
    });
    let memory = task_memory.unwrap_or_else(|| {
        definition
            .container_definitions
            .iter()
            .map(|c| {
                let o = override_of(&c.name);
                o.and_then(|o| o.memory_reservation.or(o.memory))
                    .or(c.memory_reservation)
                    .or(c.memory)
                    .unwrap_or(0)
                    .max(0) as u64
            })
            .fold(0, u64::saturating_add)
    });
    // Validation bounds every figure, so these sums stay small; should one not, a
    // saturated demand fits nowhere rather than wrapping around to fit everywhere.
    (cpu, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_saturates_instead_of_wrapping() {
        // Validation refuses such figures; the sum must not wrap to 0 even so.
        let container = |name: &str| berth_api::ContainerDefinition {
            name: Some(name.to_string()),
            cpu: Some(1 << 62),
            memory: Some(i64::MAX),
            ..Default::default()
        };
        let definition = RegisterTaskDefinitionRequest {
            container_definitions: vec![
                container("a"),
                container("b"),
                container("c"),
                container("d"),
            ],
            ..Default::default()
        };
        let (cpu, memory) = reservation(&definition, &Default::default());
        assert_eq!((cpu, memory), (u64::MAX, u64::MAX));
    }
}
