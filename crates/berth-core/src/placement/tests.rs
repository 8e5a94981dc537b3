use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use berth_api as api;

use super::*;
use crate::ecs::{new_task, Context, TaskOrigin};
use crate::ids::{ArnScope, SequentialIds};
use crate::model::{ContainerInstanceStatus, TaskDefinitionRecord, TaskDefinitionStatus};
use crate::policy::PrivilegePolicy;
use crate::Timestamp;

const CLUSTER: &str = "default";

fn instance(id: &str, attributes: &[(&str, &str)]) -> ContainerInstance {
    ContainerInstance {
        id: id.to_string(),
        cluster: CLUSTER.to_string(),
        node_id: format!("node-{id}"),
        hostname: format!("host-{id}"),
        status: ContainerInstanceStatus::Active,
        agent_connected: true,
        registered_cpu: 4096,
        registered_memory: 4096,
        agent_version: "1.0.0".to_string(),
        docker_version: "27.0.0".to_string(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        registered_at: Timestamp(0),
        version: 1,
        tags: vec![],
        auto_joined: false,
        capacity_provider_name: None,
    }
}

fn state_of(instances: Vec<ContainerInstance>) -> State {
    let mut state = State::default();
    for i in instances {
        state.container_instances.insert(i.id.clone(), Arc::new(i));
    }
    state
}

fn strategy(kind: &str, field: Option<&str>) -> api::PlacementStrategy {
    api::PlacementStrategy {
        strategy_type: Some(kind.to_string()),
        field: field.map(str::to_string),
    }
}

fn member_of(expression: &str) -> api::PlacementConstraint {
    api::PlacementConstraint {
        constraint_type: Some("memberOf".to_string()),
        expression: Some(expression.to_string()),
    }
}

fn distinct() -> api::PlacementConstraint {
    api::PlacementConstraint {
        constraint_type: Some("distinctInstance".to_string()),
        expression: None,
    }
}

fn spec(
    constraints: &[api::PlacementConstraint],
    strategies: &[api::PlacementStrategy],
    scheduler: Scheduler,
) -> PlacementSpec {
    PlacementSpec::parse(&[], constraints, strategies, scheduler).expect("a valid spec")
}

fn demand(cpu: u64, memory: u64) -> Demand {
    Demand {
        cpu,
        memory,
        host_ports: BTreeSet::new(),
        group: "service:svc".to_string(),
        capacity_provider: None,
    }
}

/// Places `count` tasks with draws 0, 1, 2 ... and counts them per instance.
fn place_many(placer: &mut Placer, count: u64) -> BTreeMap<String, usize> {
    let mut per_instance = BTreeMap::new();
    for draw in 0..count {
        let id = placer.place(draw * 7919).expect("placed");
        *per_instance.entry(id.to_string()).or_insert(0) += 1;
    }
    per_instance
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn six_tasks_spread_by_instance_id_land_two_on_each_of_three_instances() {
    let state = state_of(vec![
        instance("a", &[]),
        instance("b", &[]),
        instance("c", &[]),
    ]);
    let spec = spec(
        &[],
        &[strategy("spread", Some("instanceId"))],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 10));
    let per_instance = place_many(&mut placer, 6);
    assert_eq!(
        per_instance.values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
}

#[test]
fn spread_by_zone_balances_zones_not_instances() {
    let zone = |z| [("ecs.availability-zone", z)];
    let state = state_of(vec![
        instance("a1", &zone("zone-a")),
        instance("a2", &zone("zone-a")),
        instance("a3", &zone("zone-a")),
        instance("b1", &zone("zone-b")),
    ]);
    let spec = spec(
        &[],
        &[strategy("spread", Some("attribute:ecs.availability-zone"))],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 10));
    let per_instance = place_many(&mut placer, 8);
    let zone_a: usize = ["a1", "a2", "a3"]
        .iter()
        .map(|i| per_instance.get(*i).copied().unwrap_or(0))
        .sum();
    assert_eq!(zone_a, 4, "{per_instance:?}");
    assert_eq!(per_instance.get("b1"), Some(&4), "{per_instance:?}");
}

#[test]
fn the_service_default_spreads_over_zones_then_instances() {
    let zone = |z| [("ecs.availability-zone", z)];
    let state = state_of(vec![
        instance("a1", &zone("zone-a")),
        instance("a2", &zone("zone-a")),
        instance("b1", &zone("zone-b")),
    ]);
    let spec = spec(&[], &[], Scheduler::Service);
    assert_eq!(spec.strategies, Scheduler::Service.default_strategies());
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 10));
    let per_instance = place_many(&mut placer, 4);
    assert_eq!(per_instance.get("b1"), Some(&2), "{per_instance:?}");
    assert_eq!(per_instance.get("a1"), Some(&1), "{per_instance:?}");
    assert_eq!(per_instance.get("a2"), Some(&1), "{per_instance:?}");
    // RunTask's default is random.
    assert_eq!(
        PlacementSpec::parse(&[], &[], &[], Scheduler::RunTask)
            .unwrap()
            .strategies,
        [PlacementStrategy::Random]
    );
}

#[test]
fn binpack_fills_one_instance_before_the_next() {
    let state = state_of(vec![
        instance("a", &[]),
        instance("b", &[]),
        instance("c", &[]),
    ]);
    let spec = spec(
        &[],
        &[strategy("binpack", Some("memory"))],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 1024));
    let mut order = Vec::new();
    for draw in 0..12 {
        order.push(placer.place(draw * 31).unwrap().to_string());
    }
    // Four tasks fill an instance's 4096 MiB; then the next instance fills.
    for chunk in order.chunks(4) {
        assert!(chunk.iter().all(|i| *i == chunk[0]), "{order:?}");
    }
    let used: BTreeSet<&String> = order.iter().collect();
    assert_eq!(used.len(), 3, "{order:?}");
    assert!(matches!(
        placer.place(0),
        Err(PlacementFailure::Insufficient(_))
    ));
}

#[test]
fn binpack_picks_the_least_free_instance_that_still_fits() {
    let mut small = instance("small", &[]);
    small.registered_memory = 600;
    let mut tight = instance("tight", &[]);
    tight.registered_memory = 400;
    let state = state_of(vec![instance("big", &[]), small, tight]);
    let spec = spec(
        &[],
        &[strategy("binpack", Some("memory"))],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 500));
    // "tight" has the least memory but too little for 500 MiB.
    assert_eq!(placer.place(0).unwrap(), "small");
    assert_eq!(placer.place(1).unwrap(), "big");
    // binpack by cpu looks at cpu only.
    let spec = PlacementSpec::parse(
        &[],
        &[],
        &[strategy("binpack", Some("cpu"))],
        Scheduler::Service,
    )
    .unwrap();
    let mut state = state_of(vec![instance("x", &[]), instance("y", &[])]);
    Arc::make_mut(state.container_instances.get_mut("y").unwrap()).registered_cpu = 1024;
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(512, 10));
    assert_eq!(placer.place(0).unwrap(), "y");
    assert_eq!(placer.place(1).unwrap(), "y");
    assert_eq!(placer.place(2).unwrap(), "x");
}

#[test]
fn member_of_evaluates_each_operator() {
    let prod_a = attrs(&[("stack", "prod"), ("ecs.availability-zone", "us-east-1a")]);
    let dev_b = attrs(&[("stack", "dev"), ("ecs.availability-zone", "us-east-1b")]);
    let bare = attrs(&[]);
    let cases: &[(&str, [bool; 3])] = &[
        ("attribute:stack == prod", [true, false, false]),
        ("attribute:stack equals 'prod'", [true, false, false]),
        ("attribute:stack != prod", [false, true, false]),
        ("attribute:stack not_equals prod", [false, true, false]),
        ("attribute:stack exists", [true, true, false]),
        ("attribute:stack !exists", [false, false, true]),
        ("attribute:stack not_exists", [false, false, true]),
        (
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1c]",
            [true, false, false],
        ),
        (
            "attribute:ecs.availability-zone not in [us-east-1a]",
            [false, true, false],
        ),
        (
            "attribute:ecs.availability-zone not_in ['us-east-1a']",
            [false, true, false],
        ),
        (
            "attribute:ecs.availability-zone !in [\"us-east-1a\"]",
            [false, true, false],
        ),
        (
            "attribute:stack == prod and attribute:ecs.availability-zone == us-east-1a",
            [true, false, false],
        ),
        (
            "attribute:stack == prod && attribute:ecs.availability-zone == us-east-1b",
            [false, false, false],
        ),
        ("attribute:stack == prod or attribute:stack == dev", [true, true, false]),
        ("attribute:stack == prod || attribute:stack !exists", [true, false, true]),
        ("not(attribute:stack == prod)", [false, true, true]),
        ("!(attribute:stack == prod)", [false, true, true]),
        // `and` binds tighter than `or`; parentheses change it.
        (
            "attribute:stack == dev or attribute:stack == prod and attribute:stack !exists",
            [false, true, false],
        ),
        (
            "(attribute:stack == dev or attribute:stack == prod) and attribute:ecs.availability-zone == us-east-1b",
            [false, true, false],
        ),
        ("attribute:stack == prod OR attribute:stack EXISTS", [true, true, false]),
    ];
    for (text, expected) in cases {
        let expression = Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got = [
            expression.matches(&prod_a),
            expression.matches(&dev_b),
            expression.matches(&bare),
        ];
        assert_eq!(got, *expected, "{text}");
    }
}

#[test]
fn member_of_keeps_tasks_off_instances_that_are_not_members() {
    let state = state_of(vec![
        instance("prod-1", &[("stack", "prod")]),
        instance("dev-1", &[("stack", "dev")]),
        instance("bare", &[]),
    ]);
    let spec = spec(
        &[member_of("attribute:stack == prod")],
        &[],
        Scheduler::RunTask,
    );
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 1000));
    let per_instance = place_many(&mut placer, 4);
    assert_eq!(per_instance.keys().collect::<Vec<_>>(), ["prod-1"]);
    let Err(PlacementFailure::Insufficient(reasons)) = placer.place(0) else {
        panic!("a fifth task of 1000 MiB fits nowhere");
    };
    assert_eq!(
        reasons,
        [
            ("bare".to_string(), FailureReason::MemberOf),
            ("dev-1".to_string(), FailureReason::MemberOf),
            ("prod-1".to_string(), FailureReason::Memory),
        ]
    );
}

#[test]
fn distinct_instance_allows_one_task_of_the_group_per_instance() {
    let state = state_of(vec![instance("a", &[]), instance("b", &[])]);
    let spec = spec(&[distinct()], &[], Scheduler::Service);
    let mut placer = Placer::new(&state, CLUSTER, &spec, &demand(10, 10));
    let first = placer.place(0).unwrap();
    let second = placer.place(0).unwrap();
    assert_ne!(first, second);
    let Err(PlacementFailure::Insufficient(reasons)) = placer.place(0) else {
        panic!("a third task has no distinct instance");
    };
    assert_eq!(
        reasons,
        [
            ("a".to_string(), FailureReason::DistinctInstance),
            ("b".to_string(), FailureReason::DistinctInstance),
        ]
    );
    assert_eq!(
        FailureReason::DistinctInstance.as_ecs(),
        "DistinctInstance placement constraint unsatisfied."
    );
}

/// A task of `definition` already on `instance`, as RunTask would have made it.
fn existing_task(
    state: &mut State,
    definition: &TaskDefinitionRecord,
    instance: &str,
    group: &str,
) {
    let scope = ArnScope {
        region: "us-east-1".to_string(),
        account_id: "000000000000".to_string(),
    };
    // Fresh ids past those of the tasks already there.
    let mut ids = SequentialIds::default();
    for _ in 0..state.tasks.len() * 10 {
        crate::ids::IdSource::deployment_digits(&mut ids);
    }
    let cluster = state.container_instances[instance].cluster.clone();
    let policy = PrivilegePolicy::allow_all();
    let mut ctx = Context {
        now: Timestamp(0),
        scope: &scope,
        ids: &mut ids,
        policy: &policy,
    };
    let origin = TaskOrigin {
        group: Some(group.to_string()),
        ..Default::default()
    };
    let task = new_task(
        definition,
        &cluster,
        instance,
        Default::default(),
        origin,
        &mut ctx,
    );
    state.tasks.insert(task.id.clone(), Arc::new(task));
}

fn definition(body: serde_json::Value) -> TaskDefinitionRecord {
    let spec: api::RegisterTaskDefinitionRequest = serde_json::from_value(body).unwrap();
    TaskDefinitionRecord {
        family: spec.family.clone(),
        revision: 1,
        status: TaskDefinitionStatus::Active,
        spec,
        registered_at: Timestamp(0),
        deregistered_at: None,
        parsed: Default::default(),
    }
}

#[test]
fn an_unplaceable_task_reports_each_instances_reason() {
    let mut disconnected = instance("1-agent", &[]);
    disconnected.agent_connected = false;
    let mut low_cpu = instance("2-cpu", &[]);
    low_cpu.registered_cpu = 100;
    let mut low_memory = instance("3-memory", &[]);
    low_memory.registered_memory = 100;
    let mut draining = instance("6-draining", &[]);
    draining.status = ContainerInstanceStatus::Draining;
    let mut state = state_of(vec![
        disconnected,
        low_cpu,
        low_memory,
        instance("4-ports", &[("stack", "prod")]),
        instance("5-member", &[]),
        draining,
    ]);
    let web = definition(serde_json::json!({
        "family": "web",
        "containerDefinitions": [{
            "name": "app", "image": "app:1", "memory": 200, "cpu": 200,
            "portMappings": [{ "containerPort": 80, "hostPort": 8080 }]
        }]
    }));
    state
        .task_definitions
        .insert(web.key(), std::sync::Arc::new(web.clone()));
    // Resources and ports are the node's: a task on another cluster's instance of the
    // same node holds them too.
    let mut other = instance("other", &[]);
    other.cluster = "other".to_string();
    other.node_id = "node-4-ports".to_string();
    state
        .container_instances
        .insert(other.id.clone(), Arc::new(other));
    existing_task(&mut state, &web, "other", "family:web");

    let placement = PlacementSpec::parse(
        &[member_of("attribute:stack exists")],
        &[],
        &[],
        Scheduler::RunTask,
    )
    .unwrap();
    let demand = crate::ecs::demand_of(&web, &Default::default(), "family:web".to_string());
    assert_eq!(
        demand.host_ports,
        BTreeSet::from([("tcp".to_string(), 8080)])
    );
    let mut placer = Placer::new(&state, CLUSTER, &placement, &demand);
    let Err(PlacementFailure::Insufficient(reasons)) = placer.place(0) else {
        panic!("nothing fits");
    };
    let reasons: Vec<(&str, &str)> = reasons
        .iter()
        .map(|(id, reason)| (id.as_str(), reason.as_ecs()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("1-agent", "AGENT"),
            ("2-cpu", "RESOURCE:CPU"),
            ("3-memory", "RESOURCE:MEMORY"),
            ("4-ports", "RESOURCE:PORTS"),
            ("5-member", "MemberOf placement constraint unsatisfied."),
        ],
        "a DRAINING instance takes no tasks and is no failure"
    );

    // A cluster without ACTIVE instances has none to report.
    let empty = state_of(vec![]);
    let mut placer = Placer::new(&empty, CLUSTER, &placement, &demand);
    assert_eq!(placer.place(0), Err(PlacementFailure::NoInstances));
}

#[test]
fn tasks_already_running_count_for_spread_and_resources() {
    let zone = |z| [("ecs.availability-zone", z)];
    let mut state = state_of(vec![
        instance("a1", &zone("zone-a")),
        instance("b1", &zone("zone-b")),
        instance("b2", &zone("zone-b")),
    ]);
    let mut drained = instance("b3", &zone("zone-b"));
    drained.status = ContainerInstanceStatus::Draining;
    state
        .container_instances
        .insert(drained.id.clone(), Arc::new(drained));
    let web = definition(serde_json::json!({
        "family": "web",
        "containerDefinitions": [{ "name": "app", "image": "app:1", "memory": 1024 }]
    }));
    // Zone b has two tasks of the group (one on a DRAINING instance), zone a none.
    existing_task(&mut state, &web, "b1", "batch");
    existing_task(&mut state, &web, "b3", "batch");
    // A task of another group counts for resources only.
    existing_task(&mut state, &web, "a1", "other");
    let placement = spec(
        &[],
        &[
            strategy("spread", Some("attribute:ecs.availability-zone")),
            strategy("spread", Some("instanceId")),
        ],
        Scheduler::RunTask,
    );
    let mut batch = demand(0, 1024);
    batch.group = "batch".to_string();
    let mut placer = Placer::new(&state, CLUSTER, &placement, &batch);
    assert_eq!(placer.place(0).unwrap(), "a1");
    assert_eq!(placer.place(0).unwrap(), "a1", "zone a still has fewer");
    // The zones tie at 2 : 2; over both, b2 has the fewest tasks of the group.
    assert_eq!(placer.place(0).unwrap(), "b2");
    assert_eq!(placer.place(0).unwrap(), "a1", "zone a has fewer again");
    // a1 also holds the other group's 1024 MiB: after three more tasks it is full.
    for draw in 0..3 {
        let next = placer.place(draw).unwrap();
        assert!(next == "b1" || next == "b2", "{next}");
    }
}

#[test]
fn chained_strategies_decide_in_order() {
    let mut a1 = instance("a1", &[("ecs.availability-zone", "zone-a")]);
    a1.registered_memory = 1000;
    let mut a2 = instance("a2", &[("ecs.availability-zone", "zone-a")]);
    a2.registered_memory = 500;
    let mut b1 = instance("b1", &[("ecs.availability-zone", "zone-b")]);
    b1.registered_memory = 800;
    let state = state_of(vec![a1, a2, b1]);
    let placement = spec(
        &[],
        &[
            strategy("spread", Some("attribute:ecs.availability-zone")),
            strategy("binpack", Some("memory")),
        ],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &placement, &demand(0, 100));
    let order: Vec<&str> = (0..5).map(|d| placer.place(d).unwrap()).collect();
    // Zones tie at 0: binpack picks the least free of both (a2); then zone b has fewer;
    // then the tie again (a2 has 400 left, b1 700); then zone b; then a2 (300 left).
    assert_eq!(order, ["a2", "b1", "a2", "b1", "a2"]);

    // The other order: binpack first, spread only among instances tied on memory.
    let placement = spec(
        &[],
        &[
            strategy("binpack", Some("memory")),
            strategy("spread", Some("attribute:ecs.availability-zone")),
        ],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &placement, &demand(0, 100));
    let order: Vec<&str> = (0..6).map(|d| placer.place(d).unwrap()).collect();
    assert_eq!(order, ["a2", "a2", "a2", "a2", "a2", "b1"]);

    // spread(instanceId) then binpack: among the instances with fewest tasks, the fullest.
    let placement = spec(
        &[],
        &[
            strategy("spread", Some("host")),
            strategy("binpack", Some("memory")),
        ],
        Scheduler::Service,
    );
    let mut placer = Placer::new(&state, CLUSTER, &placement, &demand(0, 100));
    let order: Vec<&str> = (0..4).map(|d| placer.place(d).unwrap()).collect();
    assert_eq!(order, ["a2", "b1", "a1", "a2"]);
}

#[test]
fn random_goes_by_the_draw() {
    let state = state_of((0..8).map(|i| instance(&format!("i{i}"), &[])).collect());
    let placement = spec(&[], &[strategy("random", None)], Scheduler::RunTask);
    let mut placer = Placer::new(&state, CLUSTER, &placement, &demand(1, 1));
    let chosen: BTreeSet<&str> = (0..8).map(|d| placer.place(d).unwrap()).collect();
    assert_eq!(
        chosen.len(),
        8,
        "each draw picks another instance: {chosen:?}"
    );
    assert_eq!(placer.place(3).unwrap(), "i3");
    assert_eq!(placer.place(8 + 5).unwrap(), "i5");
}

/// A small deterministic generator for the property test below.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
}

/// What the placer must choose, by brute force over every candidate.
fn brute_force(placer: &Placer, random: u64) -> Option<u32> {
    let n = placer.candidates.len();
    let fitting: Vec<u32> = (0..n as u32)
        .filter(|&p| placer.unfit(&placer.candidates[p as usize]).is_none())
        .collect();
    let best = *fitting
        .iter()
        .min_by(|&&a, &&b| placer.compare(a, b).then(a.cmp(&b)))?;
    let start = (random % n as u64) as u32;
    let tied = |p: &&u32| placer.compare(**p, best) == Ordering::Equal;
    fitting
        .iter()
        .filter(tied)
        .find(|&&p| p >= start)
        .or_else(|| fitting.iter().find(tied))
        .copied()
}

#[test]
fn the_tree_chooses_what_a_full_scan_would() {
    let mut rng = Lcg(7);
    let strategy_sets: Vec<Vec<api::PlacementStrategy>> = vec![
        vec![
            strategy("spread", Some("attribute:zone")),
            strategy("binpack", Some("memory")),
        ],
        vec![
            strategy("spread", Some("attribute:zone")),
            strategy("spread", Some("attribute:rack")),
            strategy("spread", Some("instanceId")),
        ],
        vec![
            strategy("binpack", Some("cpu")),
            strategy("spread", Some("attribute:zone")),
            strategy("binpack", Some("memory")),
        ],
        vec![
            strategy("spread", Some("attribute:rack")),
            strategy("random", None),
        ],
        vec![],
    ];
    for strategies in &strategy_sets {
        let instances: Vec<ContainerInstance> = (0..37)
            .map(|i| {
                let zone = format!("z{}", rng.next() % 3);
                let rack = format!("r{}", rng.next() % 4);
                let mut pairs = vec![("zone", zone.as_str())];
                if !rng.next().is_multiple_of(5) {
                    pairs.push(("rack", rack.as_str()));
                }
                let mut instance = instance(&format!("i{i:02}"), &pairs);
                instance.registered_cpu = 256 * (1 + rng.next() % 8);
                instance.registered_memory = 512 * (1 + rng.next() % 8);
                instance.agent_connected = !rng.next().is_multiple_of(10);
                instance
            })
            .collect();
        let state = state_of(instances);
        let placement = spec(
            &[member_of("attribute:zone != z2 or attribute:rack exists")],
            strategies,
            Scheduler::Service,
        );
        let mut placer = Placer::new(&state, CLUSTER, &placement, &demand(64, 128));
        let mut placed = 0;
        for _ in 0..400 {
            let random = rng.next();
            let expected = brute_force(&placer, random);
            match placer.place(random) {
                Ok(id) => {
                    let expected = expected.expect("the scan finds none");
                    assert_eq!(
                        id, placer.candidates[expected as usize].instance.id,
                        "{strategies:?}"
                    );
                    placed += 1;
                }
                Err(_) => {
                    assert_eq!(expected, None, "{strategies:?}");
                    break;
                }
            }
        }
        assert!(placed > 100, "{placed} placements for {strategies:?}");
    }
}

#[test]
fn expressions_that_do_not_parse_name_the_place() {
    let cases: &[(&str, &str)] = &[
        ("", "the expression is empty at character 1"),
        (
            "attribute:stack ==",
            "expected a value after '==', found the end of the expression at character 19",
        ),
        (
            "attribute:stack = prod",
            "'=' is not an operator (use '==') at character 17",
        ),
        (
            "stack == prod",
            "expected a subject such as 'attribute:NAME', found 'stack' at character 1",
        ),
        (
            "task:group == databases",
            "the subject 'task:group' is not supported by berth: use attribute:NAME at character 1",
        ),
        (
            "attribute:ecs.instance-type =~ t2.*",
            "the operator '=~' is not supported by berth at character 29",
        ),
        (
            "attribute:zone in [a, b",
            "expected ',' or ']', found the end of the expression at character 24",
        ),
        (
            "attribute:zone in a",
            "expected a list such as '[a, b]', found 'a' at character 19",
        ),
        (
            "(attribute:zone exists",
            "expected ')', found the end of the expression at character 23",
        ),
        (
            "attribute:zone exists attribute:rack exists",
            "unexpected 'attribute:rack' after a complete expression at character 23",
        ),
        (
            "attribute:zone exists and",
            "expected a test such as 'attribute:NAME == VALUE', found the end of the expression at character 26",
        ),
        (
            "attribute:zone == 'a",
            "the quoted value starting here has no closing ' at character 19",
        ),
        (
            "attribute:zone & attribute:rack",
            "'&' is not an operator (use '&&') at character 16",
        ),
        (
            "attribute: == a",
            "'attribute:' needs an attribute name at character 1",
        ),
        (
            "attribute:zone before a",
            "expected an operator (==, !=, exists, !exists, in, not_in) after 'attribute:zone', found 'before' at character 16",
        ),
    ];
    for (text, message) in cases {
        let error = Expression::parse(text).expect_err(text);
        assert_eq!(error.to_string(), *message, "{text}");
    }
    let deep = format!("{}attribute:a exists{}", "(".repeat(40), ")".repeat(40));
    assert!(Expression::parse(&deep)
        .unwrap_err()
        .message
        .contains("nests deeper"));
    let long = format!("attribute:a in [{}]", vec!["v"; 1100].join(","));
    assert!(Expression::parse(&long)
        .unwrap_err()
        .message
        .contains("more than the 2000 allowed"));
}

#[test]
fn bad_specs_are_refused_naming_the_field() {
    let parse = |constraints: &[api::PlacementConstraint],
                 strategies: &[api::PlacementStrategy]| {
        PlacementSpec::parse(&[], constraints, strategies, Scheduler::Service)
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        parse(&[distinct(), member_of("attribute:stack ==")], &[]),
        "placementConstraints[1].expression 'attribute:stack ==' is invalid: expected a value after '==', found the end of the expression at character 19"
    );
    let with_expression = api::PlacementConstraint {
        constraint_type: Some("distinctInstance".to_string()),
        expression: Some("attribute:a exists".to_string()),
    };
    assert_eq!(
        parse(&[with_expression], &[]),
        "placementConstraints[0].expression 'attribute:a exists' cannot be given for type distinctInstance"
    );
    let bare_member = api::PlacementConstraint {
        constraint_type: Some("memberOf".to_string()),
        expression: None,
    };
    assert_eq!(
        parse(&[bare_member], &[]),
        "placementConstraints[0].expression is required for type memberOf"
    );
    let same_rack = api::PlacementConstraint {
        constraint_type: Some("sameRack".to_string()),
        expression: None,
    };
    assert_eq!(
        parse(&[same_rack], &[]),
        "placementConstraints[0].type 'sameRack' is invalid: use distinctInstance or memberOf"
    );
    assert!(parse(&vec![distinct(); 11], &[]).starts_with("placementConstraints has 11 entries"));
    assert_eq!(
        parse(
            &[],
            &[strategy("random", None), strategy("binpack", Some("disk"))]
        ),
        "placementStrategy[1].field 'disk' is invalid for type binpack: use cpu or memory"
    );
    assert_eq!(
        parse(&[], &[strategy("spread", None)]),
        "placementStrategy[0].field is required for type spread: use instanceId, host or attribute:NAME"
    );
    assert_eq!(
        parse(&[], &[strategy("spread", Some("zone"))]),
        "placementStrategy[0].field 'zone' is invalid for type spread: use instanceId, host or attribute:NAME"
    );
    assert_eq!(
        parse(&[], &[strategy("random", Some("cpu"))]),
        "placementStrategy[0].field 'cpu' cannot be given for type random"
    );
    assert_eq!(
        parse(&[], &[strategy("pack", None)]),
        "placementStrategy[0].type 'pack' is invalid: use random, spread or binpack"
    );
    assert!(parse(&[], &vec![strategy("random", None); 6])
        .starts_with("placementStrategy has 6 entries, more than the 5 allowed"));

    // The definition's constraints count toward the 10.
    let definition = vec![member_of("attribute:a exists"); 6];
    let error = PlacementSpec::parse(&definition, &vec![distinct(); 5], &[], Scheduler::Service)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("at most 10 placement constraints"),
        "{error}"
    );
    let error = parse_definition_constraints(&[distinct()], "placementConstraints")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "placementConstraints[0].type 'distinctInstance' cannot be used in a task definition"
        ),
        "{error}"
    );

    // What parses comes out typed.
    let parsed = PlacementSpec::parse(
        &[member_of("attribute:a exists")],
        &[distinct()],
        &[
            strategy("spread", Some("attribute:ecs.availability-zone")),
            strategy("spread", Some("instanceId")),
            strategy("binpack", Some("CPU")),
        ],
        Scheduler::Service,
    )
    .unwrap();
    assert_eq!(
        parsed.strategies,
        [
            PlacementStrategy::Spread(SpreadField::Attribute("ecs.availability-zone".to_string())),
            PlacementStrategy::Spread(SpreadField::InstanceId),
            PlacementStrategy::Binpack(Resource::Cpu),
        ]
    );
    assert_eq!(parsed.constraints.len(), 2);
    assert_eq!(parsed.constraints[1], PlacementConstraint::DistinctInstance);
}
