//! The one parse (`validation::task_spec`) and the overrides (`apply_overrides`), seen
//! through the spec they produce.

use serde_json::{json, Value};

use super::*;
use crate::error::ErrorCode;
use crate::validation::{apply_overrides, task_spec};

fn parse(value: Value) -> Result<TaskSpec, ValidationError> {
    task_spec(&serde_json::from_value(value).expect("test request must deserialize"))
}

fn spec(value: Value) -> TaskSpec {
    parse(value).expect("test definition must validate")
}

fn one_container(extra: Value, task: Value) -> TaskSpec {
    let mut container = json!({"name": "app", "image": "app:1", "memory": 128});
    container
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let mut definition = json!({"family": "web", "containerDefinitions": [container]});
    definition
        .as_object_mut()
        .unwrap()
        .extend(task.as_object().unwrap().clone());
    spec(definition)
}

#[test]
fn every_network_mode_parses_and_bridge_is_the_default() {
    for (given, mode) in [
        (json!("bridge"), NetworkMode::Bridge),
        (json!("host"), NetworkMode::Host),
        (json!("awsvpc"), NetworkMode::Awsvpc),
        (json!("none"), NetworkMode::None),
        (Value::Null, NetworkMode::Bridge),
    ] {
        let task = if given.is_null() {
            json!({})
        } else {
            json!({"networkMode": given})
        };
        assert_eq!(one_container(json!({}), task).network_mode, mode, "{given}");
        assert_eq!(NetworkMode::parse(mode.as_ecs()), Some(mode));
    }
    let refused = parse(json!({"family": "web", "networkMode": "Bridge",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 128}]}));
    assert_eq!(
        refused.unwrap_err().message,
        "Invalid networkMode 'Bridge': expected bridge, host, awsvpc or none."
    );
}

#[test]
fn ports_are_numbers_with_a_protocol_and_no_host_port_for_zero() {
    let spec = one_container(
        json!({"portMappings": [
            {"containerPort": 80},
            {"containerPort": 8080, "hostPort": 9090, "protocol": "tcp"},
            {"containerPort": 53, "hostPort": 0, "protocol": "udp"}
        ]}),
        json!({}),
    );
    assert_eq!(
        spec.container_definitions[0].port_mappings,
        vec![
            PortMapping {
                container_port: 80,
                host_port: None,
                protocol: Protocol::Tcp
            },
            PortMapping {
                container_port: 8080,
                host_port: Some(9090),
                protocol: Protocol::Tcp
            },
            PortMapping {
                container_port: 53,
                host_port: None,
                protocol: Protocol::Udp
            },
        ]
    );
    // ECS's words exactly: no guessing at `UDP` or `sctp`.
    for protocol in ["UDP", "sctp"] {
        let refused = parse(json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": "app:1", "memory": 128, "portMappings": [{"containerPort": 53, "protocol": protocol}]}
        ]}));
        assert_eq!(
            refused.unwrap_err().message,
            format!("Container 'app': portMappings protocol must be tcp or udp, got '{protocol}'")
        );
    }
}

#[test]
fn every_dependency_condition_parses_and_a_bad_one_is_refused_by_name() {
    let definition = |condition: &str| {
        json!({"family": "job", "containerDefinitions": [
            {"name": "main", "image": "app:1", "memory": 128,
             "dependsOn": [{"containerName": "init", "condition": condition}]},
            {"name": "init", "image": "app:1", "essential": false, "memory": 64,
             "healthCheck": {"command": ["CMD", "true"]}}
        ]})
    };
    for condition in DependsOnCondition::ALL {
        let spec = spec(definition(condition.as_ecs()));
        assert_eq!(
            spec.container_definitions[0].depends_on,
            vec![Dependency {
                container_name: "init".into(),
                condition
            }]
        );
        assert_eq!(
            DependsOnCondition::parse(condition.as_ecs()),
            Some(condition)
        );
    }
    for bad in ["start", "RUNNING", ""] {
        assert_eq!(
            parse(definition(bad)).unwrap_err().message,
            format!(
                "Container 'main': dependsOn condition '{bad}' is invalid; expected START, \
                 COMPLETE, SUCCESS or HEALTHY"
            ),
        );
    }
}

#[test]
fn defaults_are_resolved_once_here() {
    let spec = one_container(
        json!({"healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10}}),
        json!({}),
    );
    let app = &spec.container_definitions[0];
    assert_eq!(
        app.health_check,
        Some(HealthCheck {
            command: vec!["CMD-SHELL".into(), "true".into()],
            interval: 10,
            timeout: DEFAULT_HEALTH_CHECK_TIMEOUT_SECS,
            retries: DEFAULT_HEALTH_CHECK_RETRIES,
            start_period: 0,
        })
    );
    assert!(app.essential);
    assert_eq!(
        (app.start_timeout, app.stop_timeout),
        (DEFAULT_START_TIMEOUT_SECS, DEFAULT_STOP_TIMEOUT_SECS)
    );
    let timed = one_container(json!({"startTimeout": 0, "stopTimeout": 0}), json!({}));
    let timed = &timed.container_definitions[0];
    assert_eq!(
        (timed.start_timeout, timed.stop_timeout),
        (DEFAULT_START_TIMEOUT_SECS, 0),
        "startTimeout 0 is the default; stopTimeout 0 is an immediate SIGKILL"
    );
    let timed = one_container(json!({"startTimeout": 60, "stopTimeout": 7}), json!({}));
    let timed = &timed.container_definitions[0];
    assert_eq!((timed.start_timeout, timed.stop_timeout), (60, 7));
}

#[test]
fn task_figures_and_namespaces_are_typed() {
    let spec = one_container(
        json!({"cpu": 0, "memoryReservation": 0}),
        json!({"cpu": "0.5 vCPU", "memory": "1 GB", "pidMode": "task", "ipcMode": "none"}),
    );
    assert_eq!((spec.cpu, spec.memory), (Some(512), Some(1024)));
    assert_eq!(
        (spec.pid_mode, spec.ipc_mode),
        (Some(PidMode::Task), Some(IpcMode::None))
    );
    let app = &spec.container_definitions[0];
    assert_eq!((app.cpu, app.memory_reservation), (None, None), "0 is none");
    for (pid, ipc, pid_mode, ipc_mode) in [
        ("host", "host", PidMode::Host, IpcMode::Host),
        ("task", "task", PidMode::Task, IpcMode::Task),
    ] {
        let spec = one_container(json!({}), json!({"pidMode": pid, "ipcMode": ipc}));
        assert_eq!(
            (spec.pid_mode, spec.ipc_mode),
            (Some(pid_mode), Some(ipc_mode))
        );
    }
    let plain = one_container(json!({}), json!({"pidMode": "", "ipcMode": ""}));
    assert_eq!((plain.pid_mode, plain.ipc_mode), (None, None));
}

#[test]
fn mounts_carry_their_volume_and_volumes_from_is_resolved() {
    let spec = spec(json!({
        "family": "web",
        "volumes": [
            {"name": "data"},
            {"name": "empty-host", "host": {"sourcePath": ""}},
            {"name": "conf", "host": {"sourcePath": "/etc/web"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local", "labels": {"a": "b"}}}
        ],
        "containerDefinitions": [
            {"name": "app", "image": "app:1", "memory": 128, "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data"},
                {"sourceVolume": "conf", "containerPath": "/conf", "readOnly": true}
            ]},
            {"name": "side", "image": "side:1", "memory": 64,
             "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache"}],
             "volumesFrom": [{"sourceContainer": "app", "readOnly": true}]}
        ]
    }));
    let task_volume = VolumeSource::Docker(DockerVolumeConfiguration::default());
    assert_eq!(spec.volumes[0].source, task_volume);
    assert_eq!(
        spec.volumes[1].source, task_volume,
        "an empty sourcePath is a volume of the engine, as in ECS"
    );
    assert_eq!(
        spec.volumes[2].source,
        VolumeSource::Host {
            source_path: "/etc/web".into()
        }
    );
    let VolumeSource::Docker(cache) = &spec.volumes[3].source else {
        panic!("cache is an engine volume")
    };
    assert_eq!(
        (cache.scope, cache.autoprovision, cache.driver.as_deref()),
        (VolumeScope::Shared, true, Some("local"))
    );
    let scoped: Vec<&str> = spec
        .volumes
        .iter()
        .filter(|v| v.is_task_scoped())
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(scoped, ["data", "empty-host"]);

    let side = &spec.container_definitions[1];
    let mounts: Vec<(&str, &str, bool)> = side
        .mount_points
        .iter()
        .map(|m| {
            (
                m.source_volume.as_str(),
                m.container_path.as_str(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("cache", "/cache", false),
            ("data", "/data", true),
            ("conf", "/conf", true)
        ]
    );
    assert_eq!(side.mount_points[2].source, spec.volumes[2].source);
}

#[test]
fn linux_parameters_links_and_security_options_are_typed() {
    let spec = spec(json!({
        "family": "web",
        "containerDefinitions": [
            {"name": "app", "image": "app:1", "memory": 64, "links": ["db:database", "cache"],
             "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default"],
             "linuxParameters": {
                "capabilities": {"add": ["net_admin", "CAP_SYS_TIME"], "drop": ["ALL"]},
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["write", "read"]},
                            {"hostPath": "/dev/null", "containerPath": "/dev/nothing"}],
                "initProcessEnabled": true, "sharedMemorySize": 128,
                "tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec"]}],
                "maxSwap": 0, "swappiness": 5
             }},
            {"name": "db", "image": "db:1", "memory": 128},
            {"name": "cache", "image": "cache:1", "memory": 64}
        ]
    }));
    let app = &spec.container_definitions[0];
    assert_eq!(
        app.links,
        vec![
            Link {
                container_name: "db".into(),
                alias: Some("database".into())
            },
            Link {
                container_name: "cache".into(),
                alias: None
            }
        ]
    );
    assert_eq!(
        app.docker_security_options,
        vec![
            SecurityOption::NoNewPrivileges,
            SecurityOption::AppArmor("docker-default".into())
        ]
    );
    let linux = app.linux_parameters.clone().unwrap();
    assert!(linux.init_process_enabled);
    assert_eq!(linux.capabilities.add, ["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(linux.capabilities.drop, ["ALL"]);
    assert_eq!(
        linux.devices,
        vec![
            Device {
                host_path: "/dev/fuse".into(),
                container_path: "/dev/fuse".into(),
                permissions: vec![DevicePermission::Write, DevicePermission::Read]
            },
            Device {
                host_path: "/dev/null".into(),
                container_path: "/dev/nothing".into(),
                permissions: DevicePermission::ALL.to_vec()
            }
        ]
    );
    assert_eq!(
        (linux.shared_memory_size, linux.max_swap, linux.swappiness),
        (Some(128), Some(0), Some(5))
    );
    assert_eq!(linux.tmpfs[0].size, 64);
    // The wire carries ECS's own strings.
    let wire = serde_json::to_value(app).unwrap();
    assert_eq!(
        wire["dockerSecurityOptions"],
        json!(["no-new-privileges", "apparmor:docker-default"])
    );
    assert_eq!(
        wire["linuxParameters"]["devices"][1]["permissions"],
        json!(["read", "write", "mknod"])
    );
}

#[test]
fn environment_keeps_the_first_place_and_the_last_value() {
    let spec = one_container(
        json!({"environment": [
            {"name": "A", "value": "1"}, {"name": "B"}, {"name": "A", "value": "3"}
        ]}),
        json!({}),
    );
    assert_eq!(
        spec.container_definitions[0].environment,
        vec![
            EnvironmentVariable {
                name: "A".into(),
                value: "3".into()
            },
            EnvironmentVariable {
                name: "B".into(),
                value: String::new()
            }
        ]
    );
}

fn overrides(value: Value) -> berth_api::TaskOverride {
    serde_json::from_value(value).unwrap()
}

fn two_containers() -> TaskSpec {
    spec(json!({
        "family": "web", "cpu": "1024", "memory": "2048",
        "containerDefinitions": [
            {"name": "app", "image": "app:1", "cpu": 128, "memory": 512, "memoryReservation": 256,
             "command": ["serve"], "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "side:1"}
        ]
    }))
}

#[test]
fn overrides_are_applied_to_the_named_container_and_the_task() {
    let base = two_containers();
    let overridden = apply_overrides(
        &base,
        "web",
        3,
        &overrides(json!({
            "cpu": "0.5 vCPU", "memory": "1 GB",
            "containerOverrides": [{
                "name": "app", "command": ["migrate"], "cpu": 0, "memory": 1024,
                "memoryReservation": 0,
                "environment": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                "environmentFiles": [{"value": "arn:aws:s3:::bucket/env", "type": "s3"}]
            }]
        })),
    )
    .unwrap();
    assert_eq!((overridden.cpu, overridden.memory), (Some(512), Some(1024)));
    let app = &overridden.container_definitions[0];
    assert_eq!(app.command, Some(vec!["migrate".to_string()]));
    assert_eq!(
        (app.cpu, app.memory, app.memory_reservation),
        (None, Some(1024), None),
        "cpu and memoryReservation 0 are none"
    );
    let environment: Vec<(&str, &str)> = app
        .environment
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(environment, [("A", "1"), ("B", "3"), ("C", "4")]);
    assert_eq!(app.environment_files[0].value, "arn:aws:s3:::bucket/env");
    assert_eq!(
        overridden.container_definitions[1], base.container_definitions[1],
        "the other container is as defined"
    );
    assert_eq!(
        apply_overrides(&base, "web", 3, &Default::default()).unwrap(),
        base,
        "no overrides: the definition's spec"
    );
}

#[test]
fn bad_overrides_are_refused_naming_the_override() {
    let base = two_containers();
    for (given, message) in [
        (
            json!({"containerOverrides": [{"command": ["x"]}]}),
            "overrides.containerOverrides[0].name is required",
        ),
        (
            json!({"containerOverrides": [{"name": "nope"}]}),
            "overrides.containerOverrides[0].name 'nope' names no container of task definition web:3",
        ),
        (
            json!({"containerOverrides": [{"name": "app", "memory": 128, "memoryReservation": 200}]}),
            "overrides.containerOverrides[0] (app): memory 128 MiB is less than memoryReservation 200 MiB",
        ),
        (
            json!({"containerOverrides": [{"name": "app", "memory": 100}]}),
            "overrides.containerOverrides[0] (app): memory 100 MiB is less than memoryReservation 256 MiB",
        ),
        (
            json!({"containerOverrides": [{"name": "app", "environment": [{"value": "x"}]}]}),
            "overrides.containerOverrides[0].environment[0] has no name",
        ),
        (
            json!({"containerOverrides": [{"name": "app", "environmentFiles": "s3://x"}]}),
            "overrides.containerOverrides[0].environmentFiles must be a list of {\"value\", \"type\"} objects",
        ),
        (json!({"memory": "lots"}), "overrides.memory 'lots' is not a number"),
    ] {
        let refused = apply_overrides(&base, "web", 3, &overrides(given)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidParameterException);
        assert_eq!(refused.message, message);
    }
}

#[test]
fn a_spec_round_trips_on_the_wire() {
    let spec = two_containers();
    let wire = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<TaskSpec>(&wire).unwrap(), spec);
}

#[test]
fn a_bad_security_option_does_not_load() {
    let read = serde_json::from_value::<SecurityOption>(json!("seccomp:/etc/profile.json"));
    assert!(read
        .unwrap_err()
        .to_string()
        .contains("only seccomp:unconfined"));
}
