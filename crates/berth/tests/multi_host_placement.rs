//! Placement across several machines: one `berth server` and three `berth agent`s on
//! 127.0.0.11-13 (each with a `rack` attribute and an availability zone), the real
//! Docker engine and the real aws CLI. One cluster serves every check in turn:
//!
//! 1. `binpack` on memory fills one instance before it uses the next: tasks that each
//!    reserve a third of an instance's memory land three and three on two instances,
//!    and the third instance stays empty (spread or random would use all three);
//! 2. `memberOf` puts a service's tasks, and RunTask's, only on matching instances;
//! 3. `distinctInstance` runs one task per instance, and a fourth wanted task stays
//!    unplaced with ECS's service event;
//! 4. a RunTask nothing can take answers with `failures[]` (ECS's reason per instance)
//!    and starts nothing;
//! 5. a fourth machine joining gets the distinctInstance task that had nowhere to go.
//!
//! Timings are printed, never asserted. Everything is removed on drop (see
//! support/cluster.rs), also when the test fails.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{attribute, resource, Cluster};

/// (rack attribute, the address its agent registers, its availability zone).
const HOSTS: [(&str, &str, &str); 3] = [
    ("r1", "127.0.0.11", "zone-a"),
    ("r2", "127.0.0.12", "zone-a"),
    ("r3", "127.0.0.13", "zone-b"),
];

const NO_INSTANCE_MET: &str =
    "was unable to place a task because no container instance met all of its requirements";

fn start_agent(cluster: &mut Cluster, (rack, address, zone): (&str, &str, &str)) {
    cluster.spawn_joined_agent(
        &format!("agent-{rack}"),
        address,
        &[
            "--attribute",
            &format!("rack={rack}"),
            "--availability-zone",
            zone,
        ],
    );
}

/// A one-container definition that sleeps and reserves `memory_reservation` MiB.
fn register(cluster: &Cluster, family: &str, memory_reservation: i64) {
    let containers = serde_json::json!([{
        "name": "main",
        "image": "berth/busybox:latest",
        "memoryReservation": memory_reservation,
        "stopTimeout": 2,
        "command": ["sleep", "3600"],
    }]);
    cluster.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--container-definitions",
        &containers.to_string(),
    ]);
}

fn member_of(expression: &str) -> String {
    serde_json::json!([{"type": "memberOf", "expression": expression}]).to_string()
}

/// The rack of each instance ARN.
fn racks(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster
        .instance_arns("rack")
        .into_iter()
        .map(|(rack, arn)| (arn, rack))
        .collect()
}

/// Tasks per rack, from tasks per instance ARN.
fn per_rack(
    racks: &BTreeMap<String, String>,
    per_instance: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    per_instance
        .iter()
        .map(|(arn, count)| {
            let rack = racks
                .get(arn)
                .unwrap_or_else(|| panic!("a task on an unknown instance {arn}"));
            (rack.clone(), *count)
        })
        .collect()
}

/// Each instance's remaining MEMORY, by rack.
fn remaining_memory(cluster: &Cluster) -> BTreeMap<String, i64> {
    cluster
        .instances()
        .iter()
        .filter_map(|instance| {
            Some((
                attribute(instance, "rack")?,
                resource(instance, "remainingResources", "MEMORY")?,
            ))
        })
        .collect()
}

/// Every task of `family`, whatever its desired status.
fn family_tasks(cluster: &Cluster, family: &str) -> Vec<Value> {
    let mut tasks = cluster.listed_tasks(&["--family", family]);
    tasks.extend(cluster.listed_tasks(&["--family", family, "--desired-status", "STOPPED"]));
    tasks
}

/// `failures[]` of a RunTask answer as (instance ARN, reason).
fn failures(answer: &Value) -> BTreeSet<(String, String)> {
    answer["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("failures in {answer}"))
        .iter()
        .map(|f| {
            (
                f["arn"].as_str().unwrap_or("?").to_string(),
                f["reason"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// The instance ARN of each task a RunTask answer started.
fn started_on(answer: &Value) -> Vec<String> {
    answer["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("tasks in {answer}"))
        .iter()
        .map(|t| {
            t["containerInstanceArn"]
                .as_str()
                .unwrap_or_else(|| panic!("containerInstanceArn in {t}"))
                .to_string()
        })
        .collect()
}

#[test]
fn placement_strategies_and_constraints_across_hosts() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    for host in HOSTS {
        start_agent(&mut cluster, host);
    }
    cluster.wait_connected_instances(3, Duration::from_secs(60));
    let racks = racks(&cluster);
    assert_eq!(racks.len(), 3, "one instance per rack: {racks:?}");
    let arn_of = |rack: &str| -> String {
        racks
            .iter()
            .find(|(_, r)| *r == rack)
            .map(|(arn, _)| arn.clone())
            .unwrap_or_else(|| panic!("no instance with rack {rack}"))
    };
    // Each instance's zone by ARN (two share zone-a, so not keyed by zone).
    let zones: BTreeMap<String, String> = cluster
        .instances()
        .iter()
        .map(|i| {
            (
                i["containerInstanceArn"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
                attribute(i, "ecs.availability-zone").unwrap_or_default(),
            )
        })
        .collect();
    println!("three instances connected: {:.1?}", started.elapsed());

    // 1. binpack by memory. Each agent registers the machine's memory, so all three
    // instances start equal; a task reserving a third of it leaves room for exactly
    // three per instance (what is left after three is less than a third).
    let registered: BTreeSet<i64> = cluster
        .instances()
        .iter()
        .map(|i| resource(i, "registeredResources", "MEMORY").expect("registered MEMORY"))
        .collect();
    assert_eq!(
        registered.len(),
        1,
        "one machine, one memory: {registered:?}"
    );
    let memory = *registered.first().unwrap();
    let third = memory / 3;
    assert!(
        memory - 3 * third < third,
        "three tasks of {third} MiB fill {memory} MiB"
    );
    register(&cluster, "packed", third);
    let step = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "packed",
        "--task-definition",
        "packed",
        "--desired-count",
        "6",
        "--placement-strategy",
        "type=binpack,field=memory",
    ]);
    let packed = per_rack(
        &racks,
        &cluster.wait_service_running("packed", 6, Duration::from_secs(90)),
    );
    println!(
        "binpack: six tasks of {third} MiB (of {memory} MiB) running after {:.1?}: {packed:?}",
        step.elapsed()
    );
    assert_eq!(
        packed.values().copied().collect::<Vec<_>>(),
        vec![3, 3],
        "three tasks on each of two instances, none on the third: {packed:?}"
    );
    let remaining = remaining_memory(&cluster);
    for (rack, left) in &remaining {
        let expected = if packed.contains_key(rack) {
            memory - 3 * third
        } else {
            memory
        };
        assert_eq!(*left, expected, "{rack}'s remaining memory: {remaining:?}");
    }
    // Gone, so its reservations leave the later checks' arithmetic alone.
    cluster.aws_json(&["ecs", "delete-service", "--service", "packed", "--force"]);
    let deleted = Instant::now();
    cluster.wait_for(
        "the packed tasks to stop and give their memory back",
        Duration::from_secs(60),
        || {
            let remaining = remaining_memory(&cluster);
            (remaining.len() == 3 && remaining.values().all(|m| *m == memory)).then_some(())
        },
    );
    println!(
        "binpack service deleted: its memory free again after {:.1?}",
        deleted.elapsed()
    );

    // 2. memberOf: a service kept to zone-a, and a RunTask kept to rack r2.
    register(&cluster, "small", 16);
    let step = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "zoned",
        "--task-definition",
        "small",
        "--desired-count",
        "4",
        "--placement-constraints",
        &member_of("attribute:ecs.availability-zone in [zone-a]"),
        "--placement-strategy",
        "type=spread,field=instanceId",
    ]);
    let zoned_instances = cluster.wait_service_running("zoned", 4, Duration::from_secs(90));
    let zoned = per_rack(&racks, &zoned_instances);
    println!(
        "memberOf zone-a: four tasks running after {:.1?}: {zoned:?}",
        step.elapsed()
    );
    for arn in zoned_instances.keys() {
        assert_eq!(
            zones[arn], "zone-a",
            "a zoned task outside zone-a: {zoned:?}"
        );
    }
    assert_eq!(
        zoned,
        BTreeMap::from([("r1".to_string(), 2), ("r2".to_string(), 2)]),
        "spread over the two zone-a instances only"
    );
    let answer = cluster.aws_json(&[
        "ecs",
        "run-task",
        "--task-definition",
        "small",
        "--count",
        "3",
        "--placement-constraints",
        &member_of("attribute:rack == r2"),
    ]);
    assert_eq!(failures(&answer), BTreeSet::new(), "{answer}");
    let placed = started_on(&answer);
    assert_eq!(
        placed,
        vec![arn_of("r2"); 3],
        "every RunTask task on r2: {answer}"
    );

    // 3. distinctInstance: one task per instance, and nowhere for a fourth.
    let step = Instant::now();
    cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "distinct",
        "--task-definition",
        "small",
        "--desired-count",
        "3",
        "--placement-constraints",
        "type=distinctInstance",
    ]);
    let distinct = per_rack(
        &racks,
        &cluster.wait_service_running("distinct", 3, Duration::from_secs(90)),
    );
    println!(
        "distinctInstance: three tasks running after {:.1?}: {distinct:?}",
        step.elapsed()
    );
    assert_eq!(
        distinct,
        HOSTS
            .iter()
            .map(|(rack, _, _)| (rack.to_string(), 1))
            .collect(),
        "one task on each instance"
    );
    cluster.aws_json(&[
        "ecs",
        "update-service",
        "--service",
        "distinct",
        "--desired-count",
        "4",
    ]);
    let event = cluster.wait_for(
        "the service event saying the fourth task has nowhere to go",
        Duration::from_secs(30),
        || {
            cluster
                .service_events("distinct")
                .into_iter()
                .find(|m| m.contains(NO_INSTANCE_MET))
        },
    );
    println!("distinctInstance, desired 4: event {event:?}");
    assert!(event.starts_with("(service distinct) "), "{event}");
    let service = cluster.service("distinct");
    assert_eq!(service["desiredCount"], 4, "{service}");
    assert_eq!(service["runningCount"], 3, "{service}");
    assert_eq!(
        service["pendingCount"], 0,
        "the fourth task was never placed: {service}"
    );
    let tasks = cluster.service_tasks("distinct");
    assert_eq!(tasks.len(), 3, "still three tasks, one per instance");

    // 4. RunTask nothing can take: ECS's reason for every instance, nothing started.
    register(&cluster, "huge", memory + 1);
    let answer = cluster.aws_json(&["ecs", "run-task", "--task-definition", "huge"]);
    let every_instance = |reason: &str| -> BTreeSet<(String, String)> {
        racks
            .keys()
            .map(|arn| (arn.clone(), reason.to_string()))
            .collect()
    };
    assert_eq!(started_on(&answer), Vec::<String>::new(), "{answer}");
    assert_eq!(
        failures(&answer),
        every_instance("RESOURCE:MEMORY"),
        "{answer}"
    );
    assert!(
        family_tasks(&cluster, "huge").is_empty(),
        "no task of huge exists"
    );
    let small_before = family_tasks(&cluster, "small").len();
    let answer = cluster.aws_json(&[
        "ecs",
        "run-task",
        "--task-definition",
        "small",
        "--count",
        "2",
        "--placement-constraints",
        &member_of("attribute:rack == r9"),
    ]);
    assert_eq!(started_on(&answer), Vec::<String>::new(), "{answer}");
    assert_eq!(
        failures(&answer),
        every_instance("MemberOf placement constraint unsatisfied."),
        "{answer}"
    );
    assert_eq!(
        family_tasks(&cluster, "small").len(),
        small_before,
        "the refused RunTask started no task of small"
    );
    // Partly placeable: what fits starts, the rest comes back as failures.
    let answer = cluster.aws_json(&[
        "ecs",
        "run-task",
        "--task-definition",
        "small",
        "--count",
        "4",
        "--group",
        "once-per-instance",
        "--placement-constraints",
        "type=distinctInstance",
    ]);
    let placed = started_on(&answer);
    assert_eq!(placed.len(), 3, "three of four placed: {answer}");
    assert_eq!(
        placed.into_iter().collect::<BTreeSet<_>>(),
        racks.keys().cloned().collect(),
        "one on each instance: {answer}"
    );
    assert_eq!(
        failures(&answer),
        every_instance("DistinctInstance placement constraint unsatisfied."),
        "{answer}"
    );
    println!("RunTask: failures as ECS words them; what fits nowhere starts nothing");

    // 5. A fourth machine joins: the distinctInstance task that had nowhere to go is
    // placed on it.
    let joined = Instant::now();
    start_agent(&mut cluster, ("r4", "127.0.0.14", "zone-b"));
    cluster.wait_connected_instances(4, Duration::from_secs(60));
    let racks = self::racks(&cluster);
    let distinct = per_rack(
        &racks,
        &cluster.wait_service_running("distinct", 4, Duration::from_secs(90)),
    );
    println!(
        "a fourth instance joined: four distinct tasks running {:.1?} after its agent \
         started: {distinct:?}",
        joined.elapsed()
    );
    assert_eq!(
        distinct,
        ["r1", "r2", "r3", "r4"]
            .iter()
            .map(|rack| (rack.to_string(), 1))
            .collect(),
        "one task on each of the four instances"
    );
    // The scheduler tried again on every pass while nothing fit, and said so once.
    let said = cluster
        .service_events("distinct")
        .iter()
        .filter(|m| m.contains(NO_INSTANCE_MET))
        .count();
    assert_eq!(said, 1, "one event for the whole episode");
    // memberOf still holds: the zone-b newcomer took no zoned task.
    let zoned = per_rack(
        &racks,
        &cluster.wait_service_running("zoned", 4, Duration::from_secs(30)),
    );
    assert!(!zoned.contains_key("r4"), "{zoned:?}");
    println!("placement test: {:.1?} in all", started.elapsed());
}
