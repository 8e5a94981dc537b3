//! Placement: which container instance a new task goes to, in ECS's vocabulary.
//!
//! `spec` parses `placementStrategy` and `placementConstraints` once into types, `query`
//! is the cluster query language of `memberOf`, and `Placer` decides, following ECS's
//! order: the instances with the CPU, memory and host ports the task needs, then those
//! that satisfy every constraint, then the strategies in order, each deciding among the
//! instances the ones before it left tied; what is still tied goes by the caller's
//! random draw. An instance without the attribute a `spread` names counts as one more
//! value of it (so instances without `ecs.availability-zone` are one zone).
//!
//! A `Placer` is built once per decision (one RunTask, one service's launches in a
//! reconcile pass) in O(tasks + instances x constraints), and each placement costs
//! O(log instances): the candidates sit in a tournament tree ordered by the strategies'
//! keys, sorted so that the instances of one attribute value are contiguous; placing a
//! task changes one instance's own keys and one value count per attribute strategy, so
//! only the tree paths at that instance and at the edges of those values' ranges are
//! recomputed.

pub mod query;
pub mod spec;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

pub use query::{Expression, ParseError};
pub use spec::{
    parse_constraints, parse_definition_constraints, parse_strategies, PlacementConstraint,
    PlacementSpec, PlacementStrategy, Resource, Scheduler, SpecError, SpreadField, MAX_CONSTRAINTS,
    MAX_STRATEGIES,
};

use crate::model::{ContainerInstance, ContainerInstanceStatus, Task};
use crate::resources::FixedHostPorts;
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
    /// The capacity provider whose container instances alone may take the task (one
    /// the user made; FARGATE and FARGATE_SPOT tasks go on any instance).
    pub capacity_provider: Option<String>,
}

/// Why one container instance cannot take the task, as ECS's `failures[].reason` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// Its agent is disconnected.
    Agent,
    Cpu,
    Memory,
    Ports,
    MemberOf,
    DistinctInstance,
}

impl FailureReason {
    pub fn as_ecs(self) -> &'static str {
        match self {
            FailureReason::Agent => "AGENT",
            FailureReason::Cpu => "RESOURCE:CPU",
            FailureReason::Memory => "RESOURCE:MEMORY",
            FailureReason::Ports => "RESOURCE:PORTS",
            FailureReason::MemberOf => "MemberOf placement constraint unsatisfied.",
            FailureReason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
        }
    }
}

/// Why no instance could take a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementFailure {
    /// The cluster has no ACTIVE container instance.
    NoInstances,
    /// Each ACTIVE instance (by id) with the first reason it cannot take the task.
    Insufficient(Vec<(String, FailureReason)>),
}

/// The group name `spread` and `distinctInstance` use for a new task.
pub fn group_for(service: Option<&str>, group: Option<&str>, family: &str) -> String {
    match (service, group) {
        (Some(service), _) => format!("service:{service}"),
        (None, Some(group)) => group.to_string(),
        (None, None) => format!("family:{family}"),
    }
}

/// Whether `task` is in `group` (as `group_for` names it), without building the name.
fn in_group(task: &Task, group: &str) -> bool {
    match (&task.service, &task.group) {
        (Some(service), _) => group.strip_prefix("service:") == Some(service.as_str()),
        (None, Some(own)) => own == group,
        (None, None) => group.strip_prefix("family:") == Some(task.family.as_str()),
    }
}

/// How one strategy orders the candidates: lower keys are preferred.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Tasks of the group on the instance (`spread` by instanceId or host).
    GroupTasks,
    /// Tasks of the group on the instances sharing this attribute value, and the values
    /// of the attribute strategies before it (`spread` by attribute); the index is the
    /// attribute strategy's slot.
    Partition(usize),
    FreeCpu,
    FreeMemory,
}

/// One container instance as `Placer::new` reads the tasks on it.
struct Seen {
    /// Index of its node (resources are the node's).
    node: usize,
    in_cluster: bool,
    /// Its position among the candidates, if it is one.
    position: Option<usize>,
    /// The partitions its attribute values fall in, per attribute strategy.
    partitions: Vec<u32>,
}

/// No candidate (an empty subtree, or an instance that cannot take the task).
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Candidate<'s> {
    instance: &'s ContainerInstance,
    member: bool,
    free_cpu: u64,
    free_memory: u64,
    /// A host port the task needs is already published on the instance's node.
    ports_taken: bool,
    group_tasks: u64,
    /// Per attribute strategy slot, the partition (index into `Placer::counts`).
    partitions: [u32; MAX_STRATEGIES],
}

/// The ACTIVE instances of one cluster, their free resources and the group's tasks,
/// kept up to date as tasks are placed in one decision.
pub struct Placer<'s> {
    demand: Demand,
    distinct: bool,
    keys: Vec<Key>,
    /// Sorted by attribute values (strategy order), then id: a partition is a range.
    candidates: Vec<Candidate<'s>>,
    /// Tasks of the group per partition.
    counts: Vec<u64>,
    /// Each partition's positions in `candidates`, [start, end).
    ranges: Vec<(u32, u32)>,
    /// Attribute strategy slots in use.
    attribute_levels: usize,
    /// Tournament tree: node -> the best position in its range (NONE if none fits);
    /// leaves at `size + position`.
    tree: Vec<u32>,
    size: usize,
}

impl<'s> Placer<'s> {
    /// A placer for tasks with `demand` under `spec` in `cluster`: its ACTIVE instances,
    /// with what the live tasks on their nodes use (a node may serve several clusters).
    pub fn new(state: &'s State, cluster: &str, spec: &PlacementSpec, demand: &Demand) -> Self {
        // The strategies' keys; nothing after `random` matters.
        let mut keys = Vec::new();
        let mut attributes: Vec<&str> = Vec::new();
        for strategy in &spec.strategies {
            match strategy {
                PlacementStrategy::Random => break,
                PlacementStrategy::Spread(SpreadField::InstanceId | SpreadField::Host) => {
                    keys.push(Key::GroupTasks)
                }
                PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                    keys.push(Key::Partition(attributes.len()));
                    attributes.push(name);
                }
                PlacementStrategy::Binpack(Resource::Cpu) => keys.push(Key::FreeCpu),
                PlacementStrategy::Binpack(Resource::Memory) => keys.push(Key::FreeMemory),
            }
        }
        let distinct = spec
            .constraints
            .contains(&PlacementConstraint::DistinctInstance);
        // Each distinct expression once.
        let mut expressions: Vec<&Expression> = Vec::new();
        for constraint in &spec.constraints {
            if let PlacementConstraint::MemberOf(e) = constraint {
                if !expressions.contains(&e) {
                    expressions.push(e);
                }
            }
        }
        let path = |instance: &'s ContainerInstance| -> Vec<Option<&'s str>> {
            attributes
                .iter()
                .map(|name| instance.attributes.get(*name).map(String::as_str))
                .collect()
        };

        let mut active: Vec<(Vec<Option<&'s str>>, &'s ContainerInstance)> = state
            .container_instances
            .values()
            .filter(|i| i.cluster == cluster && i.status == ContainerInstanceStatus::Active)
            .filter(|i| {
                demand.capacity_provider.is_none()
                    || i.capacity_provider_name == demand.capacity_provider
            })
            .map(|i| (path(i), &**i))
            .collect();
        active.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));

        // Partitions: one per distinct prefix of attribute values, contiguous by the sort.
        let mut prefixes: HashMap<Vec<Option<&'s str>>, u32> = HashMap::new();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut candidates = Vec::with_capacity(active.len());
        for (position, (values, instance)) in active.iter().enumerate() {
            let mut partitions = [0u32; MAX_STRATEGIES];
            for (level, slot) in partitions.iter_mut().enumerate().take(values.len()) {
                let prefix = values[..=level].to_vec();
                let id = *prefixes.entry(prefix).or_insert_with(|| {
                    ranges.push((position as u32, position as u32));
                    (ranges.len() - 1) as u32
                });
                ranges[id as usize].1 = position as u32 + 1;
                *slot = id;
            }
            let member = expressions.iter().all(|e| e.matches(&instance.attributes));
            candidates.push(Candidate {
                instance,
                member,
                free_cpu: instance.registered_cpu,
                free_memory: instance.registered_memory,
                ports_taken: false,
                group_tasks: 0,
                partitions,
            });
        }
        let mut counts = vec![0u64; ranges.len()];

        // Every instance of the state once: its node, and in this cluster its position
        // and partitions (a DRAINING instance's tasks still count for its values).
        let positions: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(p, c)| (c.instance.id.as_str(), p))
            .collect();
        let mut nodes: HashMap<&str, usize> = HashMap::new();
        let mut seen: HashMap<&str, Seen> = HashMap::with_capacity(state.container_instances.len());
        for instance in state.container_instances.values() {
            let next = nodes.len();
            let node = *nodes.entry(instance.node_id.as_str()).or_insert(next);
            let mut partitions = Vec::new();
            if instance.cluster == cluster {
                let values = path(instance);
                for level in 0..values.len() {
                    match prefixes.get(&values[..=level]) {
                        Some(&id) => partitions.push(id),
                        None => break,
                    }
                }
            }
            seen.insert(
                instance.id.as_str(),
                Seen {
                    node,
                    in_cluster: instance.cluster == cluster,
                    position: positions.get(instance.id.as_str()).copied(),
                    partitions,
                },
            );
        }
        // What the live tasks use, per node; the group's tasks per instance and value.
        let mut used = vec![(0u64, 0u64); nodes.len()];
        let mut ports_taken = vec![false; nodes.len()];
        for task in state.tasks.values().filter(|t| !t.is_stopped()) {
            let Some(at) = task
                .container_instance_id
                .as_deref()
                .and_then(|id| seen.get(id))
            else {
                continue;
            };
            let entry = &mut used[at.node];
            entry.0 = entry.0.saturating_add(task.reserved_cpu);
            entry.1 = entry.1.saturating_add(task.reserved_memory);
            if !demand.host_ports.is_empty() && !ports_taken[at.node] {
                ports_taken[at.node] = state
                    .definition(&task.family, task.revision)
                    .map(|d| d.spec.fixed_host_ports())
                    .unwrap_or_default()
                    .iter()
                    .any(|p| demand.host_ports.contains(p));
            }
            if !at.in_cluster || !in_group(task, &demand.group) {
                continue;
            }
            if let Some(p) = at.position {
                candidates[p].group_tasks += 1;
            }
            for &id in &at.partitions {
                counts[id as usize] += 1;
            }
        }
        for candidate in &mut candidates {
            let node = nodes[candidate.instance.node_id.as_str()];
            let (cpu, memory) = used[node];
            candidate.free_cpu = candidate.free_cpu.saturating_sub(cpu);
            candidate.free_memory = candidate.free_memory.saturating_sub(memory);
            candidate.ports_taken = ports_taken[node];
        }

        let size = candidates.len().next_power_of_two().max(1);
        let mut placer = Placer {
            demand: demand.clone(),
            distinct,
            keys,
            candidates,
            counts,
            ranges,
            attribute_levels: attributes.len(),
            tree: vec![NONE; 2 * size],
            size,
        };
        for p in 0..placer.candidates.len() {
            placer.tree[size + p] = placer.leaf(p);
        }
        for node in (1..size).rev() {
            placer.tree[node] = placer.better(placer.tree[2 * node], placer.tree[2 * node + 1]);
        }
        placer
    }

    /// Picks an instance for one task and books the task's resources there. `random`
    /// decides among the instances the strategies leave tied.
    pub fn place(&mut self, random: u64) -> Result<&'s str, PlacementFailure> {
        if self.candidates.is_empty() {
            return Err(PlacementFailure::NoInstances);
        }
        let best = self.tree[1];
        if best == NONE {
            return Err(PlacementFailure::Insufficient(self.reasons()));
        }
        let start = (random % self.candidates.len() as u64) as usize;
        let chosen = if start == 0 {
            best
        } else {
            self.first_tied_from(1, 0, self.size, start, best)
                .unwrap_or(best)
        };
        self.book(chosen as usize);
        Ok(self.candidates[chosen as usize].instance.id.as_str())
    }

    /// The first reason each ACTIVE instance cannot take the task, by instance id.
    fn reasons(&self) -> Vec<(String, FailureReason)> {
        let mut reasons: Vec<(String, FailureReason)> = self
            .candidates
            .iter()
            .filter_map(|c| Some((c.instance.id.clone(), self.unfit(c)?)))
            .collect();
        reasons.sort_by(|a, b| a.0.cmp(&b.0));
        reasons
    }

    fn unfit(&self, c: &Candidate) -> Option<FailureReason> {
        if !c.instance.agent_connected {
            Some(FailureReason::Agent)
        } else if self.demand.cpu > c.free_cpu {
            Some(FailureReason::Cpu)
        } else if self.demand.memory > c.free_memory {
            Some(FailureReason::Memory)
        } else if c.ports_taken {
            Some(FailureReason::Ports)
        } else if !c.member {
            Some(FailureReason::MemberOf)
        } else if self.distinct && c.group_tasks > 0 {
            Some(FailureReason::DistinctInstance)
        } else {
            None
        }
    }

    fn leaf(&self, position: usize) -> u32 {
        if self.unfit(&self.candidates[position]).is_none() {
            position as u32
        } else {
            NONE
        }
    }

    fn key(&self, c: &Candidate, key: Key) -> u64 {
        match key {
            Key::GroupTasks => c.group_tasks,
            Key::Partition(slot) => self.counts[c.partitions[slot] as usize],
            Key::FreeCpu => c.free_cpu,
            Key::FreeMemory => c.free_memory,
        }
    }

    fn compare(&self, a: u32, b: u32) -> Ordering {
        let (a, b) = (&self.candidates[a as usize], &self.candidates[b as usize]);
        for &key in &self.keys {
            match self.key(a, key).cmp(&self.key(b, key)) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        Ordering::Equal
    }

    /// The preferred of two positions, `a` left of `b`: on a tie, the leftmost.
    fn better(&self, a: u32, b: u32) -> u32 {
        if a == NONE {
            return b;
        }
        if b == NONE || self.compare(a, b) != Ordering::Greater {
            return a;
        }
        b
    }

    /// The leftmost position at or after `start` in `node`'s range [lo, hi) that ties
    /// with `best`, the overall best.
    fn first_tied_from(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        start: usize,
        best: u32,
    ) -> Option<u32> {
        if hi <= start {
            return None;
        }
        let top = self.tree[node];
        if top == NONE || self.compare(top, best) != Ordering::Equal {
            return None;
        }
        // `top` is the leftmost best of this range.
        if top as usize >= start {
            return Some(top);
        }
        if hi - lo == 1 {
            return None;
        }
        let mid = (lo + hi) / 2;
        self.first_tied_from(2 * node, lo, mid, start, best)
            .or_else(|| self.first_tied_from(2 * node + 1, mid, hi, start, best))
    }

    fn book(&mut self, position: usize) {
        let demand_ports = !self.demand.host_ports.is_empty();
        let c = &mut self.candidates[position];
        c.free_cpu = c.free_cpu.saturating_sub(self.demand.cpu);
        c.free_memory = c.free_memory.saturating_sub(self.demand.memory);
        c.ports_taken |= demand_ports;
        c.group_tasks += 1;
        let partitions = c.partitions;
        // The instance's own keys changed, and so did one count per attribute strategy,
        // which moves that value's whole range: the tree changes only on the paths at the
        // instance and at the range's two ends (inside a range the order stays).
        let mut nodes: Vec<usize> = Vec::with_capacity(1 + 2 * self.attribute_levels);
        nodes.push(self.size + position);
        for &partition in partitions.iter().take(self.attribute_levels) {
            self.counts[partition as usize] += 1;
            let (start, end) = self.ranges[partition as usize];
            nodes.push(self.size + start as usize);
            nodes.push(self.size + end as usize - 1);
        }
        self.tree[self.size + position] = self.leaf(position);
        nodes.sort_unstable();
        nodes.dedup();
        while nodes[0] > 1 {
            for node in &mut nodes {
                *node /= 2;
            }
            nodes.dedup();
            for &node in &nodes {
                self.tree[node] = self.better(self.tree[2 * node], self.tree[2 * node + 1]);
            }
        }
    }
}
