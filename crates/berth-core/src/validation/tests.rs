//! One table row per rule, each with the exact message it must produce, and realistic
//! definitions (Fargate, a console export, a three-container task) that must pass.

use serde_json::{json, Value};

use super::{validate_task_definition, ValidationError};

/// Parses a request the way the server does, from ECS's JSON.
fn request(value: Value) -> berth_api::RegisterTaskDefinitionRequest {
    serde_json::from_value(value).expect("test request must deserialize")
}

fn validate(value: Value) -> Result<(), ValidationError> {
    validate_task_definition(&request(value))
}

/// `base` with the keys of `extra` added or replaced.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// A valid container named `name`, plus `extra`.
fn container(name: &str, extra: Value) -> Value {
    merged(
        json!({"name": name, "image": "nginx:1.27", "memory": 128}),
        extra,
    )
}

/// A task of family `app` with these containers, plus task-level `extra`.
fn task(containers: Vec<Value>, extra: Value) -> Value {
    merged(
        json!({"family": "app", "containerDefinitions": containers}),
        extra,
    )
}

/// A task with the single container `web` carrying `extra`.
fn web(extra: Value) -> Value {
    task(vec![container("web", extra)], json!({}))
}

fn healthy_check() -> Value {
    json!({"command": ["CMD-SHELL", "pg_isready"], "interval": 10})
}

fn assert_cases(cases: Vec<(&str, Value, &str)>) {
    for (rule, definition, expected) in cases {
        let result = validate(definition);
        assert_eq!(
            result,
            Err(ValidationError {
                message: expected.to_string()
            }),
            "rule: {rule}"
        );
    }
}

#[test]
fn family_rules() {
    assert_cases(vec![
        ("family required", json!({"containerDefinitions": [container("web", json!({}))]}), "Family is required."),
        (
            "family charset",
            task(vec![container("web", json!({}))], json!({"family": "my app"})),
            "Invalid family 'my app': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ),
        (
            "family length",
            task(vec![container("web", json!({}))], json!({"family": "a".repeat(256)})),
            &format!(
                "Invalid family '{}...': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
                "a".repeat(64)
            ),
        ),
    ]);
    assert!(validate(task(
        vec![container("web", json!({}))],
        json!({"family": "a".repeat(255)})
    ))
    .is_ok());
}

#[test]
fn container_list_rules() {
    let eleven = (0..11)
        .map(|i| container(&format!("c{i}"), json!({})))
        .collect();
    let ten = (0..10)
        .map(|i| container(&format!("c{i}"), json!({})))
        .collect();
    assert_cases(vec![
        ("empty list", task(vec![], json!({})), "Container list cannot be empty."),
        (
            "too many",
            task(eleven, json!({})),
            "Too many containers: a task definition can have at most 10, got 11.",
        ),
        ("name missing", task(vec![json!({"image": "nginx"})], json!({})), "Container.name should not be null or empty."),
        ("name empty", task(vec![json!({"name": "", "image": "nginx"})], json!({})), "Container.name should not be null or empty."),
        (
            "name charset",
            task(vec![json!({"name": "web/1", "image": "nginx"})], json!({})),
            "Invalid container name 'web/1': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ),
        ("image missing", task(vec![json!({"name": "web"})], json!({})), "Container.image should not be null or empty."),
        ("image blank", task(vec![json!({"name": "web", "image": " "})], json!({})), "Container.image should not be null or empty."),
        (
            "names unique",
            task(vec![container("web", json!({})), container("web", json!({}))], json!({})),
            "Container names must be unique within a Task Definition.",
        ),
        (
            "no essential",
            task(
                vec![container("a", json!({"essential": false})), container("b", json!({"essential": false}))],
                json!({}),
            ),
            "Task definition doesn't have any essential container.",
        ),
    ]);
    assert!(validate(task(ten, json!({}))).is_ok());
    // essential defaults to true
    assert!(validate(task(
        vec![
            container("a", json!({})),
            container("b", json!({"essential": false}))
        ],
        json!({})
    ))
    .is_ok());
}

#[test]
fn dependency_rules() {
    let two = |web_depends_on: Value, db: Value| {
        task(
            vec![
                container("web", json!({"dependsOn": web_depends_on})),
                container("db", db),
            ],
            json!({}),
        )
    };
    assert_cases(vec![
        (
            "condition",
            two(json!([{"containerName": "db", "condition": "READY"}]), json!({})),
            "Container 'web': dependsOn condition 'READY' is invalid; expected START, COMPLETE, SUCCESS or HEALTHY",
        ),
        (
            "condition is case sensitive",
            two(json!([{"containerName": "db", "condition": "start"}]), json!({})),
            "Container 'web': dependsOn condition 'start' is invalid; expected START, COMPLETE, SUCCESS or HEALTHY",
        ),
        (
            "unknown container",
            two(json!([{"containerName": "cache", "condition": "START"}]), json!({})),
            "Container 'web': dependsOn containerName 'cache' is not a container of the task definition",
        ),
        (
            "itself",
            two(json!([{"containerName": "web", "condition": "START"}]), json!({})),
            "Container 'web': dependsOn cannot name the container itself",
        ),
        (
            "empty name",
            two(json!([{"condition": "START"}]), json!({})),
            "Container 'web': dependsOn containerName is required",
        ),
        (
            "SUCCESS on essential",
            two(json!([{"containerName": "db", "condition": "SUCCESS"}]), json!({})),
            "Container 'web': dependsOn 'db' with condition SUCCESS, but a container in a dependency with condition COMPLETE/SUCCESS cannot be essential",
        ),
        (
            "COMPLETE on essential",
            two(json!([{"containerName": "db", "condition": "COMPLETE"}]), json!({"essential": true})),
            "Container 'web': dependsOn 'db' with condition COMPLETE, but a container in a dependency with condition COMPLETE/SUCCESS cannot be essential",
        ),
        (
            "HEALTHY without health check",
            two(json!([{"containerName": "db", "condition": "HEALTHY"}]), json!({})),
            "Container 'web': dependsOn 'db' with condition HEALTHY, but container 'db' has no healthCheck",
        ),
        (
            "HEALTHY on NONE health check",
            two(
                json!([{"containerName": "db", "condition": "HEALTHY"}]),
                json!({"healthCheck": {"command": ["NONE"]}}),
            ),
            "Container 'web': dependsOn 'db' with condition HEALTHY, but container 'db' has no healthCheck",
        ),
        (
            "cycle",
            task(
                vec![
                    container("web", json!({"dependsOn": [{"containerName": "api", "condition": "START"}]})),
                    container("api", json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})),
                    container("db", json!({"dependsOn": [{"containerName": "api", "condition": "START"}]})),
                ],
                json!({}),
            ),
            "Container dependencies form a cycle: api -> db -> api.",
        ),
    ]);
    assert!(validate(two(
        json!([{"containerName": "db", "condition": "SUCCESS"}]),
        json!({"essential": false})
    ))
    .is_ok());
    assert!(validate(two(
        json!([{"containerName": "db", "condition": "HEALTHY"}]),
        json!({"healthCheck": healthy_check()})
    ))
    .is_ok());
}

#[test]
fn network_mode_and_port_rules() {
    let mapping = |mode: &str, mappings: Value| {
        task(
            vec![container("web", json!({"portMappings": mappings}))],
            json!({"networkMode": mode}),
        )
    };
    assert_cases(vec![
        (
            "network mode",
            mapping("nat", json!([])),
            "Invalid networkMode 'nat': expected bridge, host, awsvpc or none.",
        ),
        (
            "awsvpc ports match",
            mapping("awsvpc", json!([{"containerPort": 80, "hostPort": 8080}])),
            "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
        ),
        (
            "host ports match",
            mapping("host", json!([{"containerPort": 80, "hostPort": 8080}])),
            "When networkMode=host, the host ports and container ports in port mappings must match.",
        ),
        (
            "containerPort required",
            mapping("bridge", json!([{"hostPort": 8080}])),
            "Container 'web': portMappings containerPort is required",
        ),
        (
            "containerPort range",
            mapping("bridge", json!([{"containerPort": 0}])),
            "Container 'web': portMappings containerPort must be between 1 and 65535, got 0",
        ),
        (
            "hostPort range",
            mapping("bridge", json!([{"containerPort": 80, "hostPort": 70000}])),
            "Container 'web': portMappings hostPort must be between 0 and 65535, got 70000",
        ),
        (
            "protocol",
            mapping("bridge", json!([{"containerPort": 80, "protocol": "sctp"}])),
            "Container 'web': portMappings protocol must be tcp or udp, got 'sctp'",
        ),
        (
            "same container port twice in one container",
            mapping("bridge", json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}])),
            "Container 'web' maps container port 80/tcp more than once.",
        ),
        (
            "same container port in two containers",
            task(
                vec![
                    container("web", json!({"portMappings": [{"containerPort": 80}]})),
                    container("api", json!({"portMappings": [{"containerPort": 80, "protocol": "tcp"}]})),
                ],
                json!({}),
            ),
            "Containers 'web' and 'api' both use container port 80/tcp; the containers of a task share one network namespace.",
        ),
        (
            "same host port in two containers",
            task(
                vec![
                    container("web", json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]})),
                    container("api", json!({"portMappings": [{"containerPort": 81, "hostPort": 8080}]})),
                ],
                json!({}),
            ),
            "Containers 'web' and 'api' both use host port 8080/tcp; the containers of a task share one network namespace.",
        ),
        (
            "links outside bridge",
            task(
                vec![container("web", json!({"links": ["db"]})), container("db", json!({}))],
                json!({"networkMode": "awsvpc"}),
            ),
            "Container 'web': links are only supported when networkMode=bridge, not awsvpc",
        ),
        (
            "link to unknown container",
            task(vec![container("web", json!({"links": ["cache:redis"]})), container("db", json!({}))], json!({})),
            "Container 'web': link 'cache' is not a container of the task definition",
        ),
        (
            "link to itself",
            task(vec![container("web", json!({"links": ["web"]}))], json!({})),
            "Container 'web': link cannot name the container itself",
        ),
    ]);
    // Same port on tcp and udp, dynamic host ports, awsvpc without hostPort, port ranges.
    assert!(validate(mapping(
        "bridge",
        json!([{"containerPort": 53}, {"containerPort": 53, "protocol": "udp"}])
    ))
    .is_ok());
    assert!(validate(mapping(
        "bridge",
        json!([{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 0}])
    ))
    .is_ok());
    assert!(validate(mapping(
        "awsvpc",
        json!([{"containerPort": 80}, {"containerPort": 81, "hostPort": 81}])
    ))
    .is_ok());
    assert!(validate(task(
        vec![
            container("web", json!({"links": ["db:database"]})),
            container("db", json!({}))
        ],
        json!({})
    ))
    .is_ok());
}

#[test]
fn resource_rules() {
    assert_cases(vec![
        ("memory minimum", web(json!({"memory": 4})), "Container 'web': memory must be at least 6 MiB, got 4"),
        (
            "memoryReservation minimum",
            web(json!({"memoryReservation": 2})),
            "Container 'web': memoryReservation must be at least 6 MiB, got 2",
        ),
        (
            "memory below reservation",
            web(json!({"memory": 128, "memoryReservation": 256})),
            "Container 'web': memory (128) must be greater than or equal to memoryReservation (256)",
        ),
        ("cpu negative", web(json!({"cpu": -1})), "Container 'web': cpu must not be negative, got -1"),
        (
            "task cpu",
            task(vec![container("web", json!({}))], json!({"cpu": "lots"})),
            "Invalid 'cpu' setting for task: expected a positive value such as \"256\" or \"0.25 vCPU\", got 'lots'.",
        ),
        (
            "task cpu zero",
            task(vec![container("web", json!({}))], json!({"cpu": "0"})),
            "Invalid 'cpu' setting for task: expected a positive value such as \"256\" or \"0.25 vCPU\", got '0'.",
        ),
        (
            "task memory",
            task(vec![container("web", json!({}))], json!({"memory": "-512"})),
            "Invalid 'memory' setting for task: expected a positive value such as \"512\" or \"1 GB\", got '-512'.",
        ),
        (
            "container memory above task memory",
            task(vec![container("web", json!({"memory": 1024}))], json!({"memory": "0.5 GB"})),
            "The 'memory' setting for container 'web' is greater than for the task.",
        ),
        (
            "reservations above task memory",
            task(
                vec![
                    container("web", json!({"memory": 512, "memoryReservation": 256})),
                    container("api", json!({"memory": 300})),
                ],
                json!({"memory": "512"}),
            ),
            "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.",
        ),
        (
            "container cpu above task cpu",
            task(
                vec![container("web", json!({"cpu": 512})), container("api", json!({"cpu": 512}))],
                json!({"cpu": "0.5 vCPU"}),
            ),
            "The sum of the containers' cpu (1024) is greater than the task cpu (512).",
        ),
    ]);
    assert!(validate(task(
        vec![container("web", json!({"memory": 1024, "cpu": 1024}))],
        json!({"cpu": "1 vCPU", "memory": "1 GB"})
    ))
    .is_ok());
    assert!(validate(task(
        vec![
            container("web", json!({"memory": 512, "memoryReservation": 256})),
            container("api", json!({"memory": 256})),
        ],
        json!({"memory": "512"})
    ))
    .is_ok());
    assert!(validate(web(json!({"memory": 256, "memoryReservation": 256}))).is_ok());
    assert!(validate(web(json!({"memoryReservation": 0}))).is_ok());
    assert!(validate(task(
        vec![container("web", json!({}))],
        json!({"cpu": "", "memory": ""})
    ))
    .is_ok());
}

#[test]
fn memory_rule() {
    let bare =
        |name: &str, extra: Value| merged(json!({"name": name, "image": "nginx:1.27"}), extra);
    let message = |name: &str| {
        format!("Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified.")
    };
    assert_cases(vec![
        (
            "no memory anywhere",
            task(vec![bare("web", json!({}))], json!({})),
            &message("web"),
        ),
        (
            "EC2 named",
            task(
                vec![bare("web", json!({}))],
                json!({"requiresCompatibilities": ["EC2"]}),
            ),
            &message("web"),
        ),
        (
            "EXTERNAL named",
            task(
                vec![bare("web", json!({}))],
                json!({"requiresCompatibilities": ["EXTERNAL"]}),
            ),
            &message("web"),
        ),
        (
            "the container without it is named",
            task(
                vec![container("web", json!({})), bare("sidecar", json!({}))],
                json!({}),
            ),
            &message("sidecar"),
        ),
        (
            "a zero reservation is not a figure",
            task(
                vec![bare("web", json!({"memoryReservation": 0}))],
                json!({}),
            ),
            &message("web"),
        ),
        (
            "blank task memory is not a figure",
            task(vec![bare("web", json!({}))], json!({"memory": ""})),
            &message("web"),
        ),
    ]);
    for (case, definition) in [
        (
            "container memory",
            task(vec![bare("web", json!({"memory": 64}))], json!({})),
        ),
        (
            "container memoryReservation",
            task(
                vec![bare("web", json!({"memoryReservation": 64}))],
                json!({}),
            ),
        ),
        (
            "task memory",
            task(
                vec![bare("web", json!({})), bare("side", json!({}))],
                json!({"memory": "512"}),
            ),
        ),
    ] {
        assert_eq!(validate(definition), Ok(()), "{case}");
    }
}

#[test]
fn fargate_rules() {
    let bare = json!({"name": "web", "image": "nginx:1.27"});
    let fargate = |extra: Value| {
        task(
            vec![bare.clone()],
            merged(
                json!({"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}),
                extra,
            ),
        )
    };
    assert_cases(vec![
        (
            "compatibility unknown",
            fargate(json!({"requiresCompatibilities": ["FARGATE", "LAMBDA"]})),
            "Invalid requiresCompatibilities value 'LAMBDA': expected EC2, FARGATE, EXTERNAL or MANAGED_INSTANCES.",
        ),
        ("bridge", fargate(json!({"networkMode": "bridge"})), "Fargate only supports network mode \u{2018}awsvpc\u{2019}."),
        ("network mode left out", fargate(json!({"networkMode": null})), "Fargate only supports network mode \u{2018}awsvpc\u{2019}."),
        (
            "EC2 beside FARGATE still checks Fargate",
            fargate(json!({"requiresCompatibilities": ["EC2", "FARGATE"], "networkMode": "host"})),
            "Fargate only supports network mode \u{2018}awsvpc\u{2019}.",
        ),
        ("task cpu", fargate(json!({"cpu": null})), "Fargate requires that 'cpu' be defined at the task level."),
        ("task memory", fargate(json!({"memory": null})), "Fargate requires that 'memory' be defined at the task level."),
        (
            "task size 256/256",
            fargate(json!({"memory": "256"})),
            "No Fargate configuration exists for given values: 256 CPU, 256 memory. See the Amazon ECS documentation for the valid values.",
        ),
        (
            "task size 512/1536",
            fargate(json!({"cpu": "0.5 vCPU", "memory": "1536"})),
            "No Fargate configuration exists for given values: 512 CPU, 1536 memory. See the Amazon ECS documentation for the valid values.",
        ),
        (
            "task size 8192 steps by 4 GB",
            fargate(json!({"cpu": "8192", "memory": "17408"})),
            "No Fargate configuration exists for given values: 8192 CPU, 17408 memory. See the Amazon ECS documentation for the valid values.",
        ),
        (
            "task cpu Fargate has not",
            fargate(json!({"cpu": "128", "memory": "512"})),
            "No Fargate configuration exists for given values: 128 CPU, 512 memory. See the Amazon ECS documentation for the valid values.",
        ),
        (
            "pidMode host",
            fargate(json!({"pidMode": "host"})),
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
        ),
        ("ipcMode host", fargate(json!({"ipcMode": "host"})), "Tasks using the Fargate launch type do not support ipcMode."),
        ("ipcMode task", fargate(json!({"ipcMode": "task"})), "Tasks using the Fargate launch type do not support ipcMode."),
    ]);
    for (cpu, memory) in [
        ("256", "512"),
        ("256", "2 GB"),
        ("512", "4096"),
        ("1 vCPU", "8192"),
        ("2048", "16384"),
        ("4096", "30720"),
        ("8192", "61440"),
        ("16384", "122880"),
    ] {
        assert_eq!(
            validate(fargate(json!({"cpu": cpu, "memory": memory}))),
            Ok(()),
            "{cpu}/{memory}"
        );
    }
    assert_eq!(validate(fargate(json!({"pidMode": "task"}))), Ok(()));
    // Not Fargate: host namespaces and any network mode are berth's to run.
    assert_eq!(
        validate(task(
            vec![container("web", json!({}))],
            json!({"requiresCompatibilities": ["EC2", "EXTERNAL", "MANAGED_INSTANCES"], "pidMode": "host", "ipcMode": "host", "networkMode": "host"})
        )),
        Ok(())
    );
}

#[test]
fn health_check_rules() {
    let check = |extra: Value| {
        web(json!({"healthCheck": merged(json!({"command": ["CMD", "true"]}), extra)}))
    };
    assert_cases(vec![
        ("command empty", check(json!({"command": []})), "Container 'web': healthCheck.command must not be empty"),
        (
            "command kind",
            check(json!({"command": ["curl", "-f", "localhost"]})),
            "Container 'web': healthCheck.command must start with CMD, CMD-SHELL or NONE, got 'curl'",
        ),
        (
            "command after CMD-SHELL",
            check(json!({"command": ["CMD-SHELL"]})),
            "Container 'web': healthCheck.command needs a command after CMD-SHELL",
        ),
        (
            "interval",
            check(json!({"interval": 2})),
            "Container 'web': healthCheck.interval must be between 5 and 300 seconds, got 2",
        ),
        (
            "timeout",
            check(json!({"timeout": 61})),
            "Container 'web': healthCheck.timeout must be between 2 and 60 seconds, got 61",
        ),
        ("retries", check(json!({"retries": 0})), "Container 'web': healthCheck.retries must be between 1 and 10, got 0"),
        (
            "startPeriod",
            check(json!({"startPeriod": 301})),
            "Container 'web': healthCheck.startPeriod must be between 0 and 300 seconds, got 301",
        ),
    ]);
    assert!(validate(check(
        json!({"interval": 5, "timeout": 60, "retries": 10, "startPeriod": 0})
    ))
    .is_ok());
    assert!(validate(check(json!({"command": ["NONE"]}))).is_ok());
}

#[test]
fn volume_and_mount_rules() {
    let with_volumes = |volumes: Value, mounts: Value| {
        task(
            vec![container("web", json!({"mountPoints": mounts}))],
            json!({"volumes": volumes}),
        )
    };
    let data = json!([{"name": "data"}]);
    assert_cases(vec![
        (
            "sourceVolume unknown",
            with_volumes(data.clone(), json!([{"sourceVolume": "logs", "containerPath": "/logs"}])),
            "Container 'web': mountPoints sourceVolume 'logs' is not a volume of the task definition",
        ),
        (
            "sourceVolume missing",
            with_volumes(data.clone(), json!([{"containerPath": "/data"}])),
            "Container 'web': mountPoints sourceVolume is required",
        ),
        (
            "containerPath relative",
            with_volumes(data.clone(), json!([{"sourceVolume": "data", "containerPath": "data"}])),
            "Container 'web': mountPoints containerPath must be an absolute path, got 'data'",
        ),
        (
            "containerPath missing",
            with_volumes(data.clone(), json!([{"sourceVolume": "data"}])),
            "Container 'web': mountPoints containerPath must be an absolute path, got ''",
        ),
        ("volume name missing", with_volumes(json!([{}]), json!([])), "Volume.name should not be null or empty."),
        (
            "volume name charset",
            with_volumes(json!([{"name": "my data"}]), json!([])),
            "Invalid volume name 'my data': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ),
        (
            "volume names unique",
            with_volumes(json!([{"name": "data"}, {"name": "data"}]), json!([])),
            "Volume names must be unique within a Task Definition: 'data' is used twice.",
        ),
        (
            "sourcePath relative",
            with_volumes(json!([{"name": "data", "host": {"sourcePath": "srv/data"}}]), json!([])),
            "Volume 'data': host.sourcePath must be an absolute path, got 'srv/data'",
        ),
        (
            "host and docker volume",
            with_volumes(
                json!([{"name": "data", "host": {"sourcePath": "/srv"}, "dockerVolumeConfiguration": {"scope": "task"}}]),
                json!([]),
            ),
            "Volume 'data': host and dockerVolumeConfiguration cannot both be set",
        ),
        (
            "scope",
            with_volumes(json!([{"name": "data", "dockerVolumeConfiguration": {"scope": "global"}}]), json!([])),
            "Volume 'data': dockerVolumeConfiguration.scope must be task or shared, got 'global'",
        ),
        (
            "autoprovision",
            with_volumes(json!([{"name": "data", "dockerVolumeConfiguration": {"autoprovision": true}}]), json!([])),
            "Volume 'data': dockerVolumeConfiguration.autoprovision can only be true when scope is shared",
        ),
        (
            "volumesFrom unknown",
            task(vec![container("web", json!({"volumesFrom": [{"sourceContainer": "data"}]}))], json!({})),
            "Container 'web': volumesFrom sourceContainer 'data' is not a container of the task definition",
        ),
        (
            "volumesFrom itself",
            task(vec![container("web", json!({"volumesFrom": [{"sourceContainer": "web"}]}))], json!({})),
            "Container 'web': volumesFrom sourceContainer cannot name the container itself",
        ),
        (
            "volumesFrom missing",
            task(vec![container("web", json!({"volumesFrom": [{"readOnly": true}]}))], json!({})),
            "Container 'web': volumesFrom sourceContainer is required",
        ),
    ]);
    assert!(validate(with_volumes(
        json!([
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}},
            {"name": "scratch", "host": {}}
        ]),
        json!([{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}, {"sourceVolume": "cache", "containerPath": "/cache"}]),
    ))
    .is_ok());
}

#[test]
fn container_setting_rules() {
    assert_cases(vec![
        (
            "logDriver",
            web(json!({"logConfiguration": {"options": {"awslogs-group": "/ecs/web"}}})),
            "Container 'web': logConfiguration.logDriver is required",
        ),
        (
            "log secretOptions",
            web(json!({"logConfiguration": {"logDriver": "splunk", "secretOptions": [{"name": "splunk-token"}]}})),
            "Container 'web': logConfiguration.secretOptions[0] needs both name and valueFrom",
        ),
        (
            "environment name",
            web(json!({"environment": [{"name": "A", "value": "1"}, {"value": "hunter2"}]})),
            "Container 'web': environment[1] has no name",
        ),
        (
            "secret name",
            web(json!({"secrets": [{"valueFrom": "arn:aws:ssm:us-east-1:1:parameter/x"}]})),
            "Container 'web': secrets[0] has no name",
        ),
        (
            "secret valueFrom",
            web(json!({"secrets": [{"name": "DB_PASSWORD"}]})),
            "Container 'web': secret 'DB_PASSWORD' has no valueFrom",
        ),
        (
            "stopTimeout",
            web(json!({"stopTimeout": 121})),
            "Container 'web': stopTimeout must be between 0 and 120 seconds, got 121",
        ),
        (
            "startTimeout",
            web(json!({"startTimeout": -1})),
            "Container 'web': startTimeout must be between 0 and 120 seconds, got -1",
        ),
        (
            "ulimit name",
            web(json!({"ulimits": [{"name": "files", "softLimit": 1, "hardLimit": 1}]})),
            "Container 'web': ulimit name 'files' is invalid; expected one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack",
        ),
        (
            "ulimit soft above hard",
            web(json!({"ulimits": [{"name": "nofile", "softLimit": 4096, "hardLimit": 1024}]})),
            "Container 'web': ulimit nofile softLimit (4096) must not be greater than hardLimit (1024)",
        ),
    ]);
    assert!(validate(web(json!({"stopTimeout": 120, "startTimeout": 0, "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]}))).is_ok());
}

#[test]
fn the_error_never_echoes_environment_values() {
    let result = validate(web(json!({"environment": [{"value": "hunter2"}]})));
    assert!(result.is_err_and(|error| !error.message.contains("hunter2")));
}

#[test]
fn fargate_definition_passes() {
    let fargate = json!({
        "family": "web-fargate",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "taskRoleArn": "arn:aws:iam::123456789012:role/web",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "containerDefinitions": [{
            "name": "web",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "essential": true,
            "portMappings": [{"name": "web-80-tcp", "containerPort": 80, "hostPort": 80, "protocol": "tcp", "appProtocol": "http"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}
            },
            "secrets": [{"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key"}]
        }]
    });
    assert_eq!(validate(fargate), Ok(()));
}

#[test]
fn console_export_full_of_empty_arrays_passes() {
    let export = json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/console-app:3",
        "family": "console-app",
        "revision": 3,
        "status": "ACTIVE",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        "placementConstraints": [],
        "volumes": [],
        "cpu": "1024",
        "memory": "3072",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "registeredAt": 1709242525.051,
        "containerDefinitions": [{
            "name": "app",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest",
            "cpu": 0,
            "portMappings": [{"name": "app-8080-tcp", "containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "appProtocol": "http"}],
            "essential": true,
            "environment": [],
            "environmentFiles": [],
            "mountPoints": [],
            "volumesFrom": [],
            "ulimits": [],
            "links": [],
            "dependsOn": [],
            "secrets": [],
            "systemControls": [],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/console-app",
                    "mode": "non-blocking",
                    "awslogs-create-group": "true",
                    "max-buffer-size": "25m",
                    "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "ecs"
                },
                "secretOptions": []
            }
        }]
    });
    assert_eq!(validate(export), Ok(()));
}

#[test]
fn nginx_web_db_task_with_healthy_dependency_passes() {
    let definition = json!({
        "family": "shop",
        "networkMode": "bridge",
        "volumes": [{"name": "pgdata", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}}],
        "containerDefinitions": [
            {
                "name": "nginx",
                "image": "nginx:1.27",
                "memory": 128,
                "portMappings": [{"containerPort": 80, "hostPort": 8080}],
                "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}],
                "logConfiguration": {"logDriver": "json-file"}
            },
            {
                "name": "web",
                "image": "ghcr.io/example/web:2",
                "cpu": 256,
                "memory": 512,
                "memoryReservation": 256,
                "portMappings": [{"containerPort": 8000}],
                "environment": [{"name": "DATABASE_URL", "value": "postgres://db:5432/shop"}],
                "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"], "interval": 10, "timeout": 5, "retries": 3, "startPeriod": 20},
                "dependsOn": [
                    {"containerName": "db", "condition": "HEALTHY"},
                    {"containerName": "migrate", "condition": "SUCCESS"}
                ],
                "stopTimeout": 30
            },
            {
                "name": "migrate",
                "image": "ghcr.io/example/web:2",
                "essential": false,
                "memoryReservation": 128,
                "command": ["./manage.py", "migrate"],
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]
            },
            {
                "name": "db",
                "image": "postgres:16",
                "memory": 1024,
                "portMappings": [{"containerPort": 5432}],
                "mountPoints": [{"sourceVolume": "pgdata", "containerPath": "/var/lib/postgresql/data"}],
                "healthCheck": {"command": ["CMD", "pg_isready", "-U", "postgres"], "interval": 5, "retries": 10},
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
            }
        ]
    });
    assert_eq!(validate(definition), Ok(()));
}

#[test]
fn the_first_error_wins() {
    // Both the family and the container are wrong: the family is reported.
    let definition = task(vec![json!({"name": ""})], json!({"family": ""}));
    assert_eq!(
        validate(definition).map_err(|e| e.message),
        Err("Family is required.".to_string())
    );
}
