use berth_core::model::{DesiredStatus, TaskStatus};
use berth_proto::AssignedTask as Task;
use berth_runtime::{MountSpec, NetworkSpec, PortSpec, Protocol, PublishedPort};
use serde_json::json;

use super::*;

/// A task definition through validation's one parse, as the control plane sends it.
fn definition(value: serde_json::Value) -> TaskSpec {
    let request: berth_api::RegisterTaskDefinitionRequest = serde_json::from_value(value).unwrap();
    berth_core::task_spec(&request).expect("test definition must validate")
}

fn task(spec: &TaskSpec) -> Task {
    Task {
        id: "0123456789abcdef0123456789abcdef".into(),
        cluster: "default".into(),
        family: spec.family.clone(),
        revision: 3,
        service: Some("web".into()),
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        drain_ms: None,
        stopped_ms_ago: None,
    }
}

#[test]
fn maps_a_container_definition_with_overrides() {
    let definition = definition(json!({
        "family": "web",
        "memory": "512",
        "volumes": [
            {"name": "data"},
            {"name": "conf", "host": {"sourcePath": "/etc/web"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}}
        ],
        "containerDefinitions": [{
            "name": "app", "image": "app:1", "cpu": 1, "memoryReservation": 64,
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "command": ["serve"], "entryPoint": ["/bin/app"], "workingDirectory": "/srv", "user": "1000",
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10},
            "readonlyRootFilesystem": true, "privileged": false,
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            "dockerLabels": {"team": "blue", "berth.task": "forged"},
            "stopTimeout": 7,
            "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data"},
                {"sourceVolume": "conf", "containerPath": "/conf", "readOnly": true},
                {"sourceVolume": "cache", "containerPath": "/cache"}
            ],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}
        }, {
            "name": "side", "image": "side:1", "memory": 128,
            "volumesFrom": [{"sourceContainer": "app", "readOnly": true}],
            "logConfiguration": {"logDriver": "syslog", "options": {"tag": "x"}}
        }]
    }));
    let task = task(&definition);
    let overrides = berth_api::TaskOverride {
        container_overrides: vec![berth_api::ContainerOverride {
            name: Some("app".into()),
            command: Some(vec!["migrate".into()]),
            environment: Some(vec![berth_api::KeyValuePair {
                name: Some("B".into()),
                value: Some("3".into()),
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    // berth-core applies the overrides; the agent maps what it is sent.
    let definition = berth_core::apply_overrides(&definition, "web", 3, &overrides).unwrap();
    let app = container_spec("node-1", &task, &definition, 0, "sandbox-id").unwrap();
    assert_eq!(app.name, "berth-web-0123456789ab-app");
    assert_eq!(
        app.env,
        vec![("A".into(), "1".into()), ("B".into(), "3".into())]
    );
    assert_eq!(app.command, Some(vec!["migrate".to_string()]));
    assert_eq!(app.entrypoint, Some(vec!["/bin/app".to_string()]));
    assert_eq!(app.working_dir.as_deref(), Some("/srv"));
    assert_eq!(app.user.as_deref(), Some("1000"));
    assert_eq!(app.network, NetworkSpec::Container("sandbox-id".into()));
    assert_eq!(app.cpu_shares, Some(2), "Docker's minimum");
    assert_eq!(
        app.memory_bytes,
        Some(512 * 1024 * 1024),
        "the task's memory"
    );
    assert_eq!(app.memory_reservation_bytes, Some(64 * 1024 * 1024));
    let check = app.health_check.clone().unwrap();
    assert_eq!(check.interval, Duration::from_secs(10));
    assert_eq!(
        (check.timeout, check.retries, check.start_period),
        (Duration::from_secs(5), 3, Duration::ZERO)
    );
    assert!(app.readonly_rootfs);
    assert_eq!(app.ulimits, vec![("nofile".to_string(), 1024, 4096)]);
    assert_eq!(app.stop_timeout_secs, Some(7));
    assert_eq!(app.log_driver, None, "awslogs is never handed to Docker");
    assert_eq!(app.labels["team"], "blue");
    assert_eq!(app.labels["berth.task"], task.id, "berth's labels win");
    assert_eq!(app.labels["berth.container"], "app");
    assert_eq!(app.labels["berth.service"], "web");
    assert_eq!(app.labels["berth.revision"], "3");
    assert_eq!(
        app.mounts,
        vec![
            MountSpec::Volume {
                name: format!("berth-{}-data", task.id),
                target: "/data".into(),
                read_only: false
            },
            MountSpec::Bind {
                source: "/etc/web".into(),
                target: "/conf".into(),
                read_only: true
            },
            MountSpec::Volume {
                name: "cache".into(),
                target: "/cache".into(),
                read_only: false
            },
        ]
    );

    let side = container_spec("node-1", &task, &definition, 1, "sandbox-id").unwrap();
    assert_eq!(side.memory_bytes, Some(128 * 1024 * 1024));
    assert_eq!(side.cpu_shares, None);
    assert_eq!(side.stop_timeout_secs, Some(30));
    assert_eq!(
        side.log_driver,
        Some((
            "syslog".to_string(),
            [("tag".to_string(), "x".to_string())].into()
        ))
    );
    assert_eq!(side.mounts.len(), 3);
    assert!(side.mounts.iter().all(|m| matches!(
        m,
        MountSpec::Volume {
            read_only: true,
            ..
        } | MountSpec::Bind {
            read_only: true,
            ..
        }
    )));

    let volumes = task_volumes("node-1", &task, &definition);
    let names: Vec<(&str, bool)> = volumes
        .iter()
        .map(|(v, scoped)| (v.name.as_str(), *scoped))
        .collect();
    let data = format!("berth-{}-data", task.id);
    assert_eq!(names, vec![(data.as_str(), true), ("cache", false)]);
    assert_eq!(volumes[0].0.labels["berth.task"], task.id);
    assert!(!volumes[1].0.labels.contains_key("berth.task"));
    assert_eq!(task_scoped_volume_names(&task.id, &definition), vec![data]);
}

#[test]
fn sandbox_publishes_every_port_and_owns_hosts_and_dns() {
    let definition = definition(json!({
        "family": "web",
        "containerDefinitions": [
            {"name": "nginx", "image": "nginx", "memory": 64, "portMappings": [{"containerPort": 80}],
             "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.2"}], "hostname": "web"},
            {"name": "app", "image": "app", "memory": 64, "portMappings": [{"containerPort": 8080, "hostPort": 8080}, {"containerPort": 53, "protocol": "udp"}],
             "dnsServers": ["1.1.1.1"]}
        ]
    }));
    let task = task(&definition);
    let sandbox = sandbox_spec("node-1", &task, &definition, "berth/sandbox:x");
    assert_eq!(sandbox.name, "berth-web-0123456789ab-sandbox");
    assert_eq!(sandbox.labels["berth.container"], "~sandbox");
    assert_eq!(
        sandbox.network,
        NetworkSpec::Bridge {
            network: Some("berth-default-node-1".to_string()),
            ports: vec![
                PortSpec {
                    container_port: 80,
                    host_port: 0,
                    protocol: Protocol::Tcp
                },
                PortSpec {
                    container_port: 8080,
                    host_port: 8080,
                    protocol: Protocol::Tcp
                },
                PortSpec {
                    container_port: 53,
                    host_port: 0,
                    protocol: Protocol::Udp
                },
            ]
        }
    );
    assert_eq!(
        sandbox.extra_hosts,
        vec![("db".to_string(), "10.0.0.2".to_string())]
    );
    assert_eq!(sandbox.dns_servers, vec!["1.1.1.1".to_string()]);
    assert_eq!(sandbox.hostname.as_deref(), Some("web"));

    let published = [
        PublishedPort {
            container_port: 80,
            host_ip: "::".into(),
            host_port: 32769,
            protocol: Protocol::Tcp,
        },
        PublishedPort {
            container_port: 80,
            host_ip: "0.0.0.0".into(),
            host_port: 32768,
            protocol: Protocol::Tcp,
        },
    ];
    let bindings = network_bindings(
        NetworkMode::Bridge,
        &definition.container_definitions[0],
        &published,
    );
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].host_port, Some(32768));
    assert_eq!(bindings[0].bind_ip.as_deref(), Some("0.0.0.0"));
    let host = network_bindings(NetworkMode::Host, &definition.container_definitions[1], &[]);
    assert_eq!(
        host.iter()
            .map(|b| b.host_port.unwrap())
            .collect::<Vec<_>>(),
        vec![8080, 53]
    );
    assert_eq!(host[1].protocol.as_deref(), Some("udp"));
    assert!(network_bindings(
        NetworkMode::Awsvpc,
        &definition.container_definitions[1],
        &[]
    )
    .is_empty());
}

#[test]
fn network_modes_shape_the_sandbox() {
    for (mode, expected) in [("host", NetworkSpec::Host), ("none", NetworkSpec::None)] {
        let definition = definition(json!({"family": "f", "networkMode": mode,
            "containerDefinitions": [{"name": "a", "image": "a", "memory": 64, "portMappings": [{"containerPort": 80}]}]}));
        let sandbox = sandbox_spec("n", &task(&definition), &definition, "s");
        assert_eq!(sandbox.network, expected);
    }
    let definition = definition(json!({"family": "f", "networkMode": "awsvpc",
        "containerDefinitions": [{"name": "a", "image": "a", "memory": 64, "portMappings": [{"containerPort": 80}]}]}));
    let sandbox = sandbox_spec("n", &task(&definition), &definition, "s");
    assert_eq!(
        sandbox.network,
        NetworkSpec::Bridge {
            network: Some("berth-default-n".to_string()),
            ports: vec![]
        }
    );
}

#[test]
fn secrets_and_environment_files_cannot_be_resolved() {
    let with_secret = definition(json!({"family": "f", "containerDefinitions": [
        {"name": "a", "image": "a", "memory": 64},
        {"name": "b", "image": "b", "memory": 64, "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}]}
    ]}));
    let reason = unresolvable_secret(&with_secret).unwrap();
    assert!(
        reason.contains("DB_PASSWORD") && reason.contains("arn:aws:ssm:us-east-1:1:parameter/db"),
        "{reason}"
    );
    assert!(reason.contains("container b"), "{reason}");

    let with_file = definition(json!({"family": "f", "containerDefinitions": [
        {"name": "a", "image": "a", "memory": 64, "environmentFiles": [{"value": "arn:aws:s3:::bucket/env", "type": "s3"}]}
    ]}));
    let reason = unresolvable_secret(&with_file).unwrap();
    assert!(reason.contains("arn:aws:s3:::bucket/env"), "{reason}");

    let plain = definition(json!({"family": "f", "containerDefinitions": [
        {"name": "a", "image": "a", "memory": 64, "secrets": [], "environmentFiles": []}
    ]}));
    assert_eq!(unresolvable_secret(&plain), None);

    // An environment file given in RunTask's overrides is in the spec the agent is sent.
    let overrides: berth_api::TaskOverride = serde_json::from_value(json!({
        "containerOverrides": [{"name": "a", "environmentFiles": [{"value": "arn:aws:s3:::bucket/run.env", "type": "s3"}]}]
    }))
    .unwrap();
    let overridden = berth_core::apply_overrides(&plain, "f", 1, &overrides).unwrap();
    let reason = unresolvable_secret(&overridden).unwrap();
    assert!(reason.contains("arn:aws:s3:::bucket/run.env"), "{reason}");
}

/// A mount point of a volume the definition does not declare never reaches the agent:
/// the one parse refuses it, naming it, and every mount the agent sees has its source.
#[test]
fn unknown_source_volume_is_refused_before_any_spec_exists() {
    let request: berth_api::RegisterTaskDefinitionRequest =
        serde_json::from_value(json!({"family": "f", "containerDefinitions": [
            {"name": "a", "image": "a", "memory": 64, "mountPoints": [{"sourceVolume": "nope", "containerPath": "/x"}]}
        ]}))
        .unwrap();
    let error = berth_core::task_spec(&request).unwrap_err().message;
    assert_eq!(
        error,
        "Container 'a': mountPoints sourceVolume 'nope' is not a volume of the task definition"
    );
}

#[test]
fn linux_parameters_and_security_options_reach_the_spec() {
    let definition = definition(json!({
        "family": "locked",
        "memory": "512",
        "containerDefinitions": [{
            "name": "app", "image": "app:1", "memory": 256,
            "readonlyRootFilesystem": true,
            "interactive": true, "pseudoTerminal": true,
            "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default"],
            "linuxParameters": {
                "capabilities": {"add": ["net_admin", "CAP_SYS_TIME"], "drop": ["ALL"]},
                "devices": [
                    {"hostPath": "/dev/fuse", "permissions": ["read", "write"]},
                    {"hostPath": "/dev/null", "containerPath": "/dev/nothing"}
                ],
                "initProcessEnabled": true,
                "sharedMemorySize": 128,
                "tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec", "mode=1777"]}],
                "maxSwap": 32,
                "swappiness": 5
            }
        }]
    }));
    let spec = container_spec("node", &task(&definition), &definition, 0, "sandbox1").unwrap();
    assert!(spec.init);
    assert!(spec.readonly_rootfs);
    assert!(spec.open_stdin && spec.tty);
    assert_eq!(
        spec.cap_add,
        vec!["NET_ADMIN".to_string(), "SYS_TIME".to_string()]
    );
    assert_eq!(spec.cap_drop, vec!["ALL".to_string()]);
    assert_eq!(
        spec.devices,
        vec![
            DeviceSpec {
                host_path: "/dev/fuse".into(),
                container_path: "/dev/fuse".into(),
                permissions: "rw".into()
            },
            DeviceSpec {
                host_path: "/dev/null".into(),
                container_path: "/dev/nothing".into(),
                permissions: "rwm".into()
            },
        ]
    );
    assert_eq!(spec.shm_size_bytes, Some(128 * MIB));
    assert_eq!(
        spec.tmpfs,
        vec![(
            "/scratch".to_string(),
            "size=64m,noexec,mode=1777".to_string()
        )]
    );
    assert_eq!(spec.memory_bytes, Some(256 * MIB));
    assert_eq!(spec.memory_swap_bytes, Some((256 + 32) * MIB));
    assert_eq!(spec.memory_swappiness, Some(5));
    assert_eq!(
        spec.security_options,
        vec![
            "no-new-privileges".to_string(),
            "apparmor=docker-default".to_string()
        ]
    );
    assert_eq!((spec.pid_mode, spec.ipc_mode), (None, None));

    let plain = definition_with_modes(None, None);
    let spec = container_spec("node", &task(&plain), &plain, 0, "sandbox1").unwrap();
    assert!(!spec.init && !spec.open_stdin && !spec.tty);
    assert!(spec.cap_add.is_empty() && spec.cap_drop.is_empty() && spec.devices.is_empty());
    assert_eq!((spec.shm_size_bytes, spec.memory_swap_bytes), (None, None));
    assert!(spec.tmpfs.is_empty() && spec.security_options.is_empty());
}

/// Two containers (so a sandbox holds the task's namespaces) with these task modes.
fn definition_with_modes(pid_mode: Option<&str>, ipc_mode: Option<&str>) -> TaskSpec {
    let mut value = json!({
        "family": "modes",
        "containerDefinitions": [
            {"name": "a", "image": "app:1", "memory": 64},
            {"name": "b", "image": "app:1", "memory": 64}
        ]
    });
    if let Some(mode) = pid_mode {
        value["pidMode"] = json!(mode);
    }
    if let Some(mode) = ipc_mode {
        value["ipcMode"] = json!(mode);
    }
    definition(value)
}

#[test]
fn pid_and_ipc_modes_map_to_the_host_or_the_sandbox() {
    let cases = [
        (
            Some("host"),
            Some("host"),
            Some(NamespaceMode::Host),
            Some(NamespaceMode::Host),
            None,
        ),
        (
            Some("task"),
            Some("task"),
            Some(NamespaceMode::Container("sandbox1".into())),
            Some(NamespaceMode::Container("sandbox1".into())),
            Some(NamespaceMode::Shareable),
        ),
        (None, Some("none"), None, Some(NamespaceMode::None), None),
        (None, None, None, None, None),
    ];
    for (pid_mode, ipc_mode, container_pid, container_ipc, sandbox_ipc) in cases {
        let definition = definition_with_modes(pid_mode, ipc_mode);
        let task = task(&definition);
        for index in 0..2 {
            let spec = container_spec("node", &task, &definition, index, "sandbox1").unwrap();
            assert_eq!(spec.pid_mode, container_pid, "{pid_mode:?}");
            assert_eq!(spec.ipc_mode, container_ipc, "{ipc_mode:?}");
        }
        let sandbox = sandbox_spec("node", &task, &definition, "berth/sandbox:x");
        assert_eq!(sandbox.ipc_mode, sandbox_ipc, "{ipc_mode:?}");
        assert_eq!(sandbox.pid_mode, None);
    }
}

#[test]
fn a_single_container_task_shares_no_namespace_but_keeps_the_hosts() {
    for (mode, pid, ipc) in [
        ("task", None, None),
        ("host", Some(NamespaceMode::Host), Some(NamespaceMode::Host)),
    ] {
        let definition = definition(json!({
            "family": "one", "pidMode": mode, "ipcMode": mode,
            "containerDefinitions": [{"name": "a", "image": "app:1", "memory": 64}]
        }));
        let spec =
            standalone_container_spec("node", &task(&definition), &definition, "berth/sandbox:x")
                .unwrap();
        assert_eq!((spec.pid_mode, spec.ipc_mode), (pid, ipc), "{mode}");
    }
    let definition = definition(json!({
        "family": "one", "ipcMode": "none",
        "containerDefinitions": [{"name": "a", "image": "app:1", "memory": 64}]
    }));
    let spec =
        standalone_container_spec("node", &task(&definition), &definition, "berth/sandbox:x")
            .unwrap();
    assert_eq!(spec.ipc_mode, Some(NamespaceMode::None));
}

#[test]
fn links_resolve_to_the_shared_loopback() {
    let definition = definition(json!({
        "family": "linked",
        "containerDefinitions": [
            {"name": "web", "image": "app:1", "memory": 64, "links": ["db:database", "cache"]},
            {"name": "db", "image": "db:1", "memory": 64},
            {"name": "cache", "image": "cache:1", "memory": 64}
        ]
    }));
    let sandbox = sandbox_spec("node", &task(&definition), &definition, "berth/sandbox:x");
    let loopback = |name: &str| (name.to_string(), "127.0.0.1".to_string());
    assert_eq!(
        sandbox.extra_hosts,
        vec![loopback("db"), loopback("database"), loopback("cache")]
    );
}

/// Task-level memory is read by berth-core's one parser: a fractional size validation
/// admits becomes the container's limit, not no limit at all.
#[test]
fn task_level_memory_in_any_admitted_form_limits_the_container() {
    for (memory, mib) in [
        ("512", 512),
        ("1 GB", 1024),
        ("0.5 GB", 512),
        ("1.5GB", 1536),
    ] {
        let definition = definition(json!({
            "family": "web",
            "memory": memory,
            "containerDefinitions": [{"name": "app", "image": "nginx:1.27"}]
        }));
        let task = task(&definition);
        let spec = container_spec("node-1", &task, &definition, 0, "sandbox-id").unwrap();
        assert_eq!(spec.memory_bytes, Some(mib * MIB), "{memory}");
    }
}

#[test]
fn a_service_task_carries_its_name_only_where_no_endpoint_serves_it() {
    let mapped = definition(json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16,
            "portMappings": [{"containerPort": 8080}]}]
    }));
    let unmapped = definition(json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16}]
    }));
    let host = definition(json!({
        "family": "web", "networkMode": "host",
        "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 16}]
    }));
    // The endpoint holds the name of a service that maps a port.
    assert!(service_aliases(&task(&mapped), &mapped, true).is_empty());
    // Without a port to listen on, or without endpoints, the tasks hold it.
    assert_eq!(service_aliases(&task(&unmapped), &unmapped, true), ["web"]);
    assert_eq!(service_aliases(&task(&mapped), &mapped, false), ["web"]);
    // Not on the cluster network, or of no service: no name to carry.
    assert!(service_aliases(&task(&host), &host, false).is_empty());
    let mut standalone = task(&unmapped);
    standalone.service = None;
    assert!(service_aliases(&standalone, &unmapped, false).is_empty());
}
