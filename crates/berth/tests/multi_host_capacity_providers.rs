//! Capacity providers across machines: one `berth server` and three `berth agent`s on
//! 127.0.0.71-73, two of them serving a capacity provider each (`--capacity-provider`),
//! the real Docker engine and the real aws CLI v2. Each container instance shows its
//! provider as `capacityProviderName`; a service with the cluster's default strategy,
//! and a RunTask with a strategy, place their tasks only on the instances of the
//! provider each task was given, and the third machine (no provider) takes none.
//!
//! Timings are printed, never asserted. Everything is removed on drop (see
//! support/cluster.rs), also when the test fails.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{attribute, Cluster};

/// (rack attribute, address, capacity provider).
const HOSTS: [(&str, &str, Option<&str>); 3] = [
    ("blue", "127.0.0.71", Some("blue")),
    ("green", "127.0.0.72", Some("green")),
    ("plain", "127.0.0.73", None),
];

/// The provider each instance ARN shows.
fn providers_of_instances(cluster: &Cluster) -> BTreeMap<String, Option<String>> {
    cluster
        .instances()
        .iter()
        .map(|i| {
            (
                i["containerInstanceArn"].as_str().unwrap().to_string(),
                i["capacityProviderName"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Every task placed on an instance of its own provider; the tasks per provider.
fn check_placed(
    tasks: &[Value],
    instances: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, usize> {
    let mut per_provider = BTreeMap::new();
    for task in tasks {
        let provider = task["capacityProviderName"]
            .as_str()
            .unwrap_or_else(|| panic!("capacityProviderName in {task}"));
        let instance = task["containerInstanceArn"].as_str().unwrap();
        assert_eq!(
            instances[instance].as_deref(),
            Some(provider),
            "task {} of provider {provider} runs on {instance}",
            task["taskArn"]
        );
        assert_eq!(task["launchType"], "EC2", "{task}");
        *per_provider.entry(provider.to_string()).or_insert(0) += 1;
    }
    per_provider
}

#[test]
fn tasks_run_only_on_the_machines_of_their_capacity_provider() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    for (rack, address, provider) in HOSTS {
        let mut flags = vec!["--attribute".to_string(), format!("rack={rack}")];
        if let Some(provider) = provider {
            flags.extend(["--capacity-provider".to_string(), provider.to_string()]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        cluster.spawn_joined_agent(&format!("agent-{rack}"), address, &flags);
    }
    cluster.wait_connected_instances(3, Duration::from_secs(60));
    println!("three instances connected: {:.1?}", started.elapsed());
    let instances = providers_of_instances(&cluster);
    for instance in cluster.instances() {
        let rack = attribute(&instance, "rack").unwrap();
        let expected = HOSTS.iter().find(|h| h.0 == rack).unwrap().2;
        assert_eq!(
            instance["capacityProviderName"].as_str(),
            expected,
            "{instance}"
        );
    }

    for provider in ["blue", "green"] {
        cluster.aws_json(&[
            "ecs",
            "create-capacity-provider",
            "--name",
            provider,
            "--auto-scaling-group-provider",
            &format!("autoScalingGroupArn=group-{provider}"),
        ]);
    }
    cluster.aws_json(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        "default",
        "--capacity-providers",
        "blue",
        "green",
        "--default-capacity-provider-strategy",
        "capacityProvider=blue,weight=1,base=1",
        "capacityProvider=green,weight=1",
    ]);
    let containers = serde_json::json!([{
        "name": "main",
        "image": "berth/busybox:latest",
        "memory": 32,
        "stopTimeout": 2,
        "command": ["sleep", "3600"],
    }]);
    cluster.aws_json(&[
        "ecs",
        "register-task-definition",
        "--family",
        "sleeper",
        "--container-definitions",
        &containers.to_string(),
    ]);

    // A service with neither launch type nor strategy: the cluster's default.
    let created = cluster.aws_json(&[
        "ecs",
        "create-service",
        "--service-name",
        "spread",
        "--task-definition",
        "sleeper",
        "--desired-count",
        "4",
    ]);
    assert_eq!(
        created["service"]["capacityProviderStrategy"][0]["capacityProvider"],
        "blue"
    );
    cluster.wait_service_running("spread", 4, Duration::from_secs(120));
    println!("service running: {:.1?}", started.elapsed());
    let per_provider = check_placed(&cluster.service_tasks("spread"), &instances);
    assert!(
        per_provider.get("blue").copied().unwrap_or(0) >= 1,
        "the base: {per_provider:?}"
    );
    assert!(
        per_provider.get("green").copied().unwrap_or(0) >= 1,
        "weights: {per_provider:?}"
    );
    assert_eq!(per_provider.values().sum::<usize>(), 4);

    // RunTask with a strategy of green alone: green's machine only.
    let run = cluster.aws_json(&[
        "ecs",
        "run-task",
        "--task-definition",
        "sleeper",
        "--count",
        "3",
        "--started-by",
        "green-run",
        "--capacity-provider-strategy",
        "capacityProvider=green,weight=1",
    ]);
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "{run}");
    assert_eq!(
        check_placed(tasks, &instances),
        BTreeMap::from([("green".to_string(), 3)])
    );

    // The machine of no provider took nothing.
    let plain = instances
        .iter()
        .find(|(_, p)| p.is_none())
        .map(|(arn, _)| arn.clone())
        .unwrap();
    let on_plain = cluster.listed_tasks(&["--container-instance", &plain]);
    assert!(on_plain.is_empty(), "{on_plain:?}");
    println!("done: {:.1?}", started.elapsed());
}
