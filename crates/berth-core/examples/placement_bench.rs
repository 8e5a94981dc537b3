//! How fast placement decides: 1,000,000 task placements over 10,000 container
//! instances with spread(attribute:ecs.availability-zone) + binpack(memory) and a
//! memberOf constraint, in one placer, on one thread.
//!
//!     cargo run --release -p berth-core --example placement_bench [-- RUNS]
//!
//! Prints each run and the median (3 runs unless told), then what building one placer
//! costs over the same cluster with 100,000 tasks running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use berth_core::api;
use berth_core::ecs::{new_task, Context, TaskOrigin};
use berth_core::model::{ContainerInstance, TaskDefinitionRecord};
use berth_core::placement::{Demand, PlacementSpec, Placer, Scheduler};
use berth_core::{ArnScope, PrivilegePolicy, SequentialIds, State, Timestamp};

const INSTANCES: usize = 10_000;
const PLACEMENTS: u64 = 1_000_000;
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

fn cluster() -> State {
    let mut state = State::default();
    for i in 0..INSTANCES {
        let id = format!("{i:032x}");
        // One in ten is a dev instance that the constraint keeps out.
        let stack = if i.is_multiple_of(10) { "dev" } else { "prod" };
        let attributes = [
            ("ecs.availability-zone", ZONES[i % ZONES.len()]),
            ("ecs.os-type", "linux"),
            ("ecs.cpu-architecture", "x86_64"),
            ("stack", stack),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        state.container_instances.insert(
            id.clone(),
            Arc::new(ContainerInstance {
                id,
                cluster: "default".to_string(),
                node_id: format!("node-{i}"),
                hostname: format!("host-{i}"),
                status: berth_core::model::ContainerInstanceStatus::Active,
                agent_connected: true,
                registered_cpu: 8192,
                registered_memory: 16384,
                agent_version: "1.0.0".to_string(),
                docker_version: "27.0.0".to_string(),
                attributes,
                registered_at: Timestamp(0),
                version: 1,
                tags: vec![],
                auto_joined: false,
                capacity_provider_name: None,
            }),
        );
    }
    state
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let state = cluster();
    let strategies = [
        api::PlacementStrategy {
            strategy_type: Some("spread".to_string()),
            field: Some("attribute:ecs.availability-zone".to_string()),
        },
        api::PlacementStrategy {
            strategy_type: Some("binpack".to_string()),
            field: Some("memory".to_string()),
        },
    ];
    let constraints = [api::PlacementConstraint {
        constraint_type: Some("memberOf".to_string()),
        expression: Some("attribute:stack == prod and attribute:ecs.os-type exists".to_string()),
    }];
    let spec = PlacementSpec::parse(&[], &constraints, &strategies, Scheduler::Service)
        .expect("the benchmark's spec parses");
    // 128 MiB each: 9,000 prod instances of 16 GiB hold 1,152,000 of them.
    let demand = Demand {
        cpu: 8,
        memory: 128,
        host_ports: Default::default(),
        group: "service:bench".to_string(),
        capacity_provider: None,
    };
    let zone_of: BTreeMap<&str, &str> = state
        .container_instances
        .values()
        .map(|i| {
            (
                i.id.as_str(),
                i.attributes["ecs.availability-zone"].as_str(),
            )
        })
        .collect();

    println!(
        "{PLACEMENTS} placements over {INSTANCES} instances: spread(attribute:ecs.availability-zone) + binpack(memory), memberOf"
    );
    let mut totals = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let mut placer = Placer::new(&state, "default", &spec, &demand);
        let built = started.elapsed();
        let mut draw: u64 = 0x9e37_79b9_7f4a_7c15 ^ run as u64;
        let mut placed: Vec<&str> = Vec::with_capacity(PLACEMENTS as usize);
        for _ in 0..PLACEMENTS {
            draw = draw
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            placed.push(placer.place(draw >> 11).expect("capacity for every task"));
        }
        let total = started.elapsed();
        // Where they went, counted outside the measured time.
        let mut per_zone: BTreeMap<&str, u64> = BTreeMap::new();
        let mut per_instance: BTreeMap<&str, u64> = BTreeMap::new();
        for id in placed {
            *per_zone.entry(zone_of[id]).or_default() += 1;
            *per_instance.entry(id).or_default() += 1;
        }
        let full = per_instance.values().filter(|&&n| n == 128).count();
        println!(
            "run {run}: {:.3} s ({:.2} us per placement; Placer::new {:.1} ms); per zone {:?}; {} instances used, {full} full",
            total.as_secs_f64(),
            total.as_secs_f64() * 1e6 / PLACEMENTS as f64,
            built.as_secs_f64() * 1e3,
            per_zone.values().collect::<Vec<_>>(),
            per_instance.len(),
        );
        totals.push(total.as_secs_f64());
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "median of {runs}: {:.3} s for {PLACEMENTS} placements",
        totals[totals.len() / 2]
    );

    // What one decision pays before it places anything: the placer reads every live
    // task's reservation (and its group) from the state.
    let mut busy = state.clone();
    add_tasks(&mut busy, &spec, &demand, RUNNING_TASKS);
    let mut builds = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let placer = Placer::new(&busy, "default", &spec, &demand);
        builds.push(started.elapsed().as_secs_f64());
        drop(placer);
    }
    builds.sort_by(f64::total_cmp);
    println!(
        "Placer::new with {RUNNING_TASKS} tasks running: median of {runs} {:.1} ms",
        builds[builds.len() / 2] * 1e3
    );
}

const RUNNING_TASKS: u64 = 100_000;

/// `count` tasks of the benchmark's service, placed where the placer puts them.
fn add_tasks(state: &mut State, spec: &PlacementSpec, demand: &Demand, count: u64) {
    let definition = TaskDefinitionRecord {
        family: "bench".to_string(),
        revision: 1,
        status: berth_core::model::TaskDefinitionStatus::Active,
        spec: serde_json::from_value(serde_json::json!({
            "family": "bench",
            "containerDefinitions": [{ "name": "app", "image": "app:1", "cpu": 8, "memory": 128 }]
        }))
        .expect("a task definition"),
        registered_at: Timestamp(0),
        deregistered_at: None,
        parsed: Default::default(),
    };
    let chosen: Vec<String> = {
        let mut placer = Placer::new(state, "default", spec, demand);
        (0..count)
            .map(|draw| placer.place(draw).expect("room").to_string())
            .collect()
    };
    let scope = ArnScope {
        region: "us-east-1".to_string(),
        account_id: "000000000000".to_string(),
    };
    let mut ids = SequentialIds::default();
    let policy = PrivilegePolicy::allow_all();
    let mut ctx = Context {
        now: Timestamp(0),
        scope: &scope,
        ids: &mut ids,
        policy: &policy,
    };
    for instance in chosen {
        let origin = TaskOrigin {
            service: Some("bench".to_string()),
            ..Default::default()
        };
        let task = new_task(
            &definition,
            "default",
            &instance,
            Default::default(),
            origin,
            &mut ctx,
        );
        state.tasks.insert(task.id.clone(), Arc::new(task));
    }
    state
        .task_definitions
        .insert(definition.key(), std::sync::Arc::new(definition));
}
