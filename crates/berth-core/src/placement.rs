//! Placement: which container instance a new task goes to.
//!
//! Pure and linear in the number of instances per task: the candidates are filtered by
//! status, resources, host ports and constraints, then ordered by the strategy.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::{PlacementConstraint, PlacementStrategy};

use crate::resources::FixedHostPorts;

use crate::model::ContainerInstance;
use crate::state::State;

/// What one task needs from an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Demand {
    pub cpu: u64,
    pub memory: u64,
    /// Fixed host ports (protocol, port) the task publishes.
    pub host_ports: BTreeSet<(String, u16)>,
    /// The service or group whose tasks `spread` and `distinctInstance` look at.
    pub group: String,
}

/// Why no instance could take a task, in ECS's failure reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementFailure {
    NoInstances,
    /// (instance id, `RESOURCE:CPU` / `RESOURCE:MEMORY` / `RESOURCE:PORTS` / `MemberOf`...)
    Insufficient(Vec<(String, String)>),
}

/// An instance's free resources and who already runs there, kept up to date as tasks
/// are placed in one call.
#[derive(Debug, Clone)]
struct Candidate<'s> {
    instance: &'s ContainerInstance,
    free_cpu: u64,
    free_memory: u64,
    used_ports: BTreeSet<(String, u16)>,
    groups: BTreeMap<String, usize>,
    tasks: usize,
}

pub struct Placer<'s> {
    candidates: Vec<Candidate<'s>>,
}

impl<'s> Placer<'s> {
    /// The ACTIVE, connected instances of `cluster` with what their live tasks use.
    pub fn new(state: &'s State, cluster: &str) -> Self {
        let mut candidates: Vec<Candidate<'s>> = state
            .container_instances
            .values()
            .filter(|i| {
                i.cluster == cluster
                    && i.status == crate::model::ContainerInstanceStatus::Active
                    && i.agent_connected
            })
            .map(|instance| Candidate {
                instance,
                free_cpu: instance.registered_cpu,
                free_memory: instance.registered_memory,
                used_ports: BTreeSet::new(),
                groups: BTreeMap::new(),
                tasks: 0,
            })
            .collect();
        let index: BTreeMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.instance.id.as_str(), i))
            .collect();
        // Resources are per node: a node in several clusters shares them.
        let node_of: BTreeMap<&str, &str> = state
            .container_instances
            .values()
            .map(|i| (i.id.as_str(), i.node_id.as_str()))
            .collect();
        for task in state.tasks.values().filter(|t| !t.is_stopped()) {
            let Some(instance_id) = task.container_instance_id.as_deref() else {
                continue;
            };
            let Some(node) = node_of.get(instance_id) else {
                continue;
            };
            for candidate in candidates
                .iter_mut()
                .filter(|c| c.instance.node_id == *node)
            {
                candidate.free_cpu = candidate.free_cpu.saturating_sub(task.reserved_cpu);
                candidate.free_memory = candidate.free_memory.saturating_sub(task.reserved_memory);
                candidate.used_ports.extend(task_host_ports(state, task));
            }
            if let Some(&i) = index.get(instance_id) {
                if let Some(c) = candidates.get_mut(i) {
                    c.tasks += 1;
                    *c.groups.entry(task_group(task)).or_default() += 1;
                }
            }
        }
        Placer { candidates }
    }

    /// Picks an instance for one task and books its resources there.
    pub fn place(
        &mut self,
        demand: &Demand,
        strategies: &[PlacementStrategy],
        constraints: &[PlacementConstraint],
        random: u64,
    ) -> Result<String, PlacementFailure> {
        if self.candidates.is_empty() {
            return Err(PlacementFailure::NoInstances);
        }
        let mut reasons = Vec::new();
        let mut fitting: Vec<usize> = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            match fits(c, demand, constraints) {
                Ok(()) => fitting.push(i),
                Err(reason) => reasons.push((c.instance.id.clone(), reason)),
            }
        }
        if fitting.is_empty() {
            return Err(PlacementFailure::Insufficient(reasons));
        }
        let chosen = self.choose(&fitting, demand, strategies, random);
        let c = &mut self.candidates[chosen];
        c.free_cpu = c.free_cpu.saturating_sub(demand.cpu);
        c.free_memory = c.free_memory.saturating_sub(demand.memory);
        c.used_ports.extend(demand.host_ports.iter().cloned());
        c.tasks += 1;
        *c.groups.entry(demand.group.clone()).or_default() += 1;
        Ok(c.instance.id.clone())
    }

    fn choose(
        &self,
        fitting: &[usize],
        demand: &Demand,
        strategies: &[PlacementStrategy],
        random: u64,
    ) -> usize {
        let default_spread = [PlacementStrategy {
            strategy_type: Some("spread".to_string()),
            field: Some("instanceId".to_string()),
        }];
        let strategies = if strategies.is_empty() {
            &default_spread[..]
        } else {
            strategies
        };
        let key = |i: usize| -> Vec<u64> {
            let c = &self.candidates[i];
            strategies
                .iter()
                .map(|s| match (s.strategy_type.as_deref(), s.field.as_deref()) {
                    (Some("binpack"), Some(f)) if f.eq_ignore_ascii_case("cpu") => c.free_cpu,
                    (Some("binpack"), _) => c.free_memory,
                    (Some("spread"), _) => c.groups.get(&demand.group).copied().unwrap_or(0) as u64,
                    _ => 0,
                })
                .collect()
        };
        let n = fitting.len() as u64;
        // Ties (and `random`) are broken by the caller's random draw, never by position
        // alone, so equal instances share the load.
        let offset = (random % n) as usize;
        let rotated = fitting.iter().cycle().skip(offset).take(fitting.len());
        let mut best: Option<(Vec<u64>, usize)> = None;
        for &i in rotated {
            let k = key(i);
            if best.as_ref().is_none_or(|(bk, _)| k < *bk) {
                best = Some((k, i));
            }
        }
        best.map(|(_, i)| i).unwrap_or(fitting[0])
    }
}

fn fits(c: &Candidate, demand: &Demand, constraints: &[PlacementConstraint]) -> Result<(), String> {
    if demand.cpu > c.free_cpu {
        return Err("RESOURCE:CPU".to_string());
    }
    if demand.memory > c.free_memory {
        return Err("RESOURCE:MEMORY".to_string());
    }
    if demand.host_ports.iter().any(|p| c.used_ports.contains(p)) {
        return Err("RESOURCE:PORTS".to_string());
    }
    for constraint in constraints {
        match constraint.constraint_type.as_deref() {
            Some("distinctInstance") if c.groups.get(&demand.group).copied().unwrap_or(0) > 0 => {
                return Err("DistinctInstance placement constraint unsatisfied.".to_string())
            }
            Some("memberOf") => {
                let expression = constraint.expression.as_deref().unwrap_or_default();
                if !member_of(c.instance, expression) {
                    return Err("MemberOf placement constraint unsatisfied.".to_string());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `memberOf` expressions berth understands: `attribute:NAME == VALUE`,
/// `attribute:NAME != VALUE`, joined by `and`.
pub fn parse_member_of(expression: &str) -> Result<Vec<(String, bool, String)>, String> {
    expression
        .split(" and ")
        .map(|clause| {
            let clause = clause.trim();
            let (left, equal, right) = if let Some((l, r)) = clause.split_once("==") {
                (l, true, r)
            } else if let Some((l, r)) = clause.split_once("!=") {
                (l, false, r)
            } else {
                return Err(format!(
                    "memberOf expression '{clause}' is not supported: use attribute:NAME == VALUE or !="
                ));
            };
            let name = left.trim().strip_prefix("attribute:").ok_or_else(|| {
                format!("memberOf expression '{clause}' must start with attribute:")
            })?;
            Ok((name.to_string(), equal, right.trim().trim_matches('\'').to_string()))
        })
        .collect()
}

fn member_of(instance: &ContainerInstance, expression: &str) -> bool {
    match parse_member_of(expression) {
        Ok(clauses) => clauses.iter().all(|(name, equal, value)| {
            let actual = instance.attributes.get(name);
            (actual == Some(value)) == *equal
        }),
        Err(_) => false,
    }
}

fn task_group(task: &crate::model::Task) -> String {
    match (&task.service, &task.group) {
        (Some(service), _) => format!("service:{service}"),
        (None, Some(group)) => group.clone(),
        (None, None) => format!("family:{}", task.family),
    }
}

/// The group name `spread` and `distinctInstance` use for a new task.
pub fn group_for(service: Option<&str>, group: Option<&str>, family: &str) -> String {
    match (service, group) {
        (Some(service), _) => format!("service:{service}"),
        (None, Some(group)) => group.to_string(),
        (None, None) => format!("family:{family}"),
    }
}

fn task_host_ports(state: &State, task: &crate::model::Task) -> Vec<(String, u16)> {
    state
        .definition(&task.family, task.revision)
        .map(|d| d.spec.fixed_host_ports())
        .unwrap_or_default()
}
