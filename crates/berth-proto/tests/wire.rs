//! Pins the JSON shape of every message. A change here is a change of the protocol:
//! bump `PROTOCOL_VERSION`, and keep an older agent's messages readable.

use berth_proto::*;
use serde_json::{json, Value};

/// A definition that uses every kind of field the spec types, through the one parse.
fn spec() -> berth_core::spec::TaskSpec {
    let definition = serde_json::from_value(json!({
        "family": "web",
        "networkMode": "bridge",
        "memory": "512",
        "pidMode": "task",
        "volumes": [
            {"name": "data"},
            {"name": "conf", "host": {"sourcePath": "/etc/web"}}
        ],
        "containerDefinitions": [
            {"name": "app", "image": "app:1", "cpu": 256, "memoryReservation": 128,
             "command": ["serve"], "environment": [{"name": "MODE", "value": "prod"}],
             "portMappings": [{"containerPort": 8080, "hostPort": 8080}, {"containerPort": 53, "protocol": "udp"}],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
             "healthCheck": {"command": ["CMD", "true"], "interval": 10},
             "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"},
                             {"sourceVolume": "conf", "containerPath": "/conf", "readOnly": true}],
             "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
             "linuxParameters": {"initProcessEnabled": true,
                                 "capabilities": {"drop": ["ALL"]},
                                 "devices": [{"hostPath": "/dev/fuse", "permissions": ["read"]}]},
             "dockerSecurityOptions": ["no-new-privileges"]},
            {"name": "init", "image": "init:1", "essential": false, "stopTimeout": 5,
             "links": ["app:backend"]}
        ]
    }))
    .unwrap();
    berth_core::task_spec(&definition).unwrap()
}

fn assignment() -> Assignments {
    Assignments {
        revision: 42,
        assignments: vec![Assignment {
            task: AssignedTask {
                id: "t1".into(),
                cluster: "default".into(),
                family: "web".into(),
                revision: 3,
                service: Some("web".into()),
                desired_status: DesiredStatus::Stopped,
                last_status: TaskStatus::Running,
                drain_ms: Some(5000),
                stopped_ms_ago: None,
            },
            spec: spec(),
        }],
    }
}

fn assignments_json() -> Value {
    json!({
        "revision": 42,
        "assignments": [{
            "task": {
                "id": "t1", "cluster": "default", "family": "web", "revision": 3,
                "service": "web", "desiredStatus": "Stopped", "lastStatus": "Running",
                "drainMs": 5000
            },
            "spec": {
                "family": "web", "networkMode": "bridge", "pidMode": "task", "memory": 512,
                "volumes": [
                    {"name": "data", "source": {"docker": {"scope": "task", "autoprovision": false}}},
                    {"name": "conf", "source": {"host": {"sourcePath": "/etc/web"}}}
                ],
                "containerDefinitions": [{
                    "name": "app", "image": "app:1", "essential": true,
                    "cpu": 256, "memoryReservation": 128, "command": ["serve"],
                    "environment": [{"name": "MODE", "value": "prod"}],
                    "portMappings": [
                        {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"},
                        {"containerPort": 53, "protocol": "udp"}
                    ],
                    "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                    "startTimeout": 180, "stopTimeout": 30,
                    "healthCheck": {
                        "command": ["CMD", "true"], "interval": 10, "timeout": 5,
                        "retries": 3, "startPeriod": 0
                    },
                    "mountPoints": [
                        {"sourceVolume": "data", "containerPath": "/data", "readOnly": false,
                         "source": {"docker": {"scope": "task", "autoprovision": false}}},
                        {"sourceVolume": "conf", "containerPath": "/conf", "readOnly": true,
                         "source": {"host": {"sourcePath": "/etc/web"}}}
                    ],
                    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                    "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
                    "linuxParameters": {
                        "initProcessEnabled": true,
                        "capabilities": {"drop": ["ALL"]},
                        "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read"]}]
                    },
                    "dockerSecurityOptions": ["no-new-privileges"],
                    "readonlyRootFilesystem": false, "privileged": false,
                    "interactive": false, "pseudoTerminal": false
                }, {
                    "name": "init", "image": "init:1", "essential": false,
                    "links": [{"containerName": "app", "alias": "backend"}],
                    "startTimeout": 180, "stopTimeout": 5,
                    "readonlyRootFilesystem": false, "privileged": false,
                    "interactive": false, "pseudoTerminal": false
                }],
                "privileges": [
                    {"kind": "host-path", "field": "volume 'conf': host.sourcePath '/etc/web'"},
                    {"kind": "devices", "field": "container 'app': linuxParameters.devices '/dev/fuse'"}
                ]
            }
        }]
    })
}

#[test]
fn assignments_keep_their_shape() {
    assert_eq!(
        serde_json::to_value(assignment()).unwrap(),
        assignments_json()
    );
    let read: Assignments = serde_json::from_value(assignments_json()).unwrap();
    assert_eq!(read, assignment());
}

#[test]
fn a_registration_keeps_its_shape() {
    let registration = NodeRegistration {
        node_id: "n1".into(),
        hostname: "host-1".into(),
        cpu: 2048,
        memory: 4096,
        agent_version: "0.1.0".into(),
        docker_version: "26.1.5".into(),
        cluster: "default".into(),
        joins_every_cluster: false,
        address: None,
        attributes: Default::default(),
        capacity_provider: None,
    };
    // Without an address or attributes (as `berth dev` and agents before them sent it).
    let pinned = json!({
        "node_id": "n1", "hostname": "host-1", "cpu": 2048, "memory": 4096,
        "agent_version": "0.1.0", "docker_version": "26.1.5", "cluster": "default",
        "joins_every_cluster": false
    });
    assert_eq!(serde_json::to_value(&registration).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<NodeRegistration>(pinned.clone()).unwrap(),
        registration
    );

    let mut with_both = registration;
    with_both.address = Some("192.0.2.7".into());
    with_both
        .attributes
        .insert("ecs.os-type".into(), "linux".into());
    let mut pinned = pinned;
    pinned["address"] = json!("192.0.2.7");
    pinned["attributes"] = json!({"ecs.os-type": "linux"});
    assert_eq!(serde_json::to_value(&with_both).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<NodeRegistration>(pinned).unwrap(),
        with_both
    );
}

#[test]
fn the_network_transport_keeps_its_shapes() {
    use berth_proto::remote::*;
    let join = JoinRequest {
        protocol_version: PROTOCOL_VERSION,
        token: "berth1.abc.def.0123".into(),
        node_id: "n1".into(),
        certificate_request: "-----BEGIN CERTIFICATE REQUEST-----".into(),
    };
    let pinned = json!({
        "protocolVersion": 1, "token": "berth1.abc.def.0123", "nodeId": "n1",
        "certificateRequest": "-----BEGIN CERTIFICATE REQUEST-----"
    });
    assert_eq!(serde_json::to_value(&join).unwrap(), pinned);
    assert_eq!(serde_json::from_value::<JoinRequest>(pinned).unwrap(), join);
    assert!(
        !format!("{join:?}").contains("def"),
        "a join request's Debug shows its token"
    );

    let answer = JoinResponse {
        certificate: "C".into(),
        ca_certificate: "CA".into(),
    };
    let pinned = json!({"certificate": "C", "caCertificate": "CA"});
    assert_eq!(serde_json::to_value(&answer).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<JoinResponse>(pinned).unwrap(),
        answer
    );

    let poll = AssignmentsRequest {
        node_id: "n1".into(),
        since: 7,
        timeout_ms: 30_000,
    };
    let pinned = json!({"nodeId": "n1", "since": 7, "timeoutMs": 30000});
    assert_eq!(serde_json::to_value(&poll).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<AssignmentsRequest>(pinned).unwrap(),
        poll
    );

    let register = serde_json::to_value(RegisterRequest {
        protocol_version: 1,
        registration: serde_json::from_value(json!({
            "node_id": "n1", "hostname": "h", "cpu": 1024, "memory": 512,
            "agent_version": "0.1.0", "docker_version": "27", "cluster": "default",
            "joins_every_cluster": false
        }))
        .unwrap(),
    })
    .unwrap();
    assert_eq!(register["protocolVersion"], 1);
    assert_eq!(register["registration"]["node_id"], "n1");

    let report = serde_json::to_value(ReportRequest { reports: vec![] }).unwrap();
    assert_eq!(report, json!({"reports": []}));

    let refusal = Refusal {
        code: RefusalCode::InvalidToken,
        message: "m".into(),
    };
    let pinned = json!({"code": "InvalidToken", "message": "m"});
    assert_eq!(serde_json::to_value(&refusal).unwrap(), pinned);
    assert_eq!(serde_json::from_value::<Refusal>(pinned).unwrap(), refusal);
    assert_eq!(paths::JOIN, "/v1/join");
    assert_eq!(paths::ASSIGNMENTS, "/v1/assignments");
}

#[test]
fn a_task_report_keeps_its_shape() {
    let mut report = TaskReport::status("t1", TaskStatus::Stopped);
    report.stop_code = Some(StopCode::EssentialContainerExited);
    report.stopped_reason = Some("Essential container in task exited".into());
    report.containers.push(ContainerReport {
        name: "app".into(),
        runtime_id: Some("abc".into()),
        image_digest: None,
        last_status: ContainerStatus::Stopped,
        exit_code: Some(1),
        reason: None,
        network_bindings: vec![],
        health_status: HealthStatus::Unknown,
    });
    let pinned = json!({
        "task_id": "t1", "last_status": "Stopped",
        "containers": [{
            "name": "app", "runtime_id": "abc", "image_digest": null,
            "last_status": "Stopped", "exit_code": 1, "reason": null,
            "network_bindings": [], "health_status": "Unknown"
        }],
        "pull_started_at": null, "pull_stopped_at": null, "started_at": null,
        "execution_stopped_at": null, "stop_code": "EssentialContainerExited",
        "stopped_reason": "Essential container in task exited",
        "private_ipv4_address": null
    });
    assert_eq!(serde_json::to_value(&report).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<TaskReport>(pinned).unwrap(),
        report
    );
}

#[test]
fn a_load_balancer_config_keeps_its_shape() {
    use berth_core::elbv2::model::{LoadBalancingAlgorithm, Protocol};
    use berth_proto::remote::{paths, BalancerConfigRequest};
    let config = BalancerConfig {
        version: "v1".into(),
        listeners: vec![BalancerListener {
            id: "l1".into(),
            port: 8080,
            protocol: Protocol::Http,
            target_group_id: "tg1".into(),
            idle_timeout_ms: None,
            default_action: None,
            rules: Vec::new(),
        }],
        target_groups: vec![BalancerTargetGroup {
            id: "tg1".into(),
            protocol: Protocol::Tcp,
            algorithm: LoadBalancingAlgorithm::LeastOutstandingRequests,
            deregistration_delay_ms: 2000,
            stickiness: None,
            targets: vec![BalancerTarget {
                id: "ci-1:32768".into(),
                addr: "10.0.0.7:32768".parse().unwrap(),
            }],
        }],
    };
    let pinned = json!({
        "version": "v1",
        "listeners": [{"id": "l1", "port": 8080, "protocol": "Http", "targetGroupId": "tg1"}],
        "targetGroups": [{
            "id": "tg1", "protocol": "Tcp", "algorithm": "LeastOutstandingRequests",
            "deregistrationDelayMs": 2000,
            "targets": [{"id": "ci-1:32768", "addr": "10.0.0.7:32768"}]
        }]
    });
    assert_eq!(serde_json::to_value(&config).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<BalancerConfig>(pinned).unwrap(),
        config
    );

    // A listener's own idle timeout travels as milliseconds.
    let listener = json!({"id": "l2", "port": 9000, "protocol": "Tcp", "targetGroupId": "tg1",
        "idleTimeoutMs": 120000});
    let decoded: BalancerListener = serde_json::from_value(listener.clone()).unwrap();
    assert_eq!(decoded.idle_timeout_ms, Some(120_000));
    assert_eq!(serde_json::to_value(&decoded).unwrap(), listener);

    // A group's stickiness travels tagged by its type.
    use berth_core::elbv2::model::StickinessPolicy;
    for (policy, shape) in [
        (
            StickinessPolicy::LbCookie {
                duration_seconds: 60,
            },
            json!({"type": "lbCookie", "durationSeconds": 60}),
        ),
        (
            StickinessPolicy::AppCookie {
                cookie_name: "session".into(),
                duration_seconds: 30,
            },
            json!({"type": "appCookie", "cookieName": "session", "durationSeconds": 30}),
        ),
        (StickinessPolicy::SourceIp, json!({"type": "sourceIp"})),
    ] {
        let group = json!({"id": "tg1", "protocol": "Http", "algorithm": "RoundRobin",
            "deregistrationDelayMs": 0, "stickiness": shape, "targets": []});
        let decoded: BalancerTargetGroup = serde_json::from_value(group.clone()).unwrap();
        assert_eq!(decoded.stickiness, Some(policy));
        assert_eq!(serde_json::to_value(&decoded).unwrap(), group);
    }
    // Rules and a default action travel with the listener; peers older than them
    // read `targetGroupId` and ignore the rest.
    let listener = json!({"id": "l3", "port": 8000, "protocol": "Http", "targetGroupId": "",
        "defaultAction": {"order": 1, "kind": {"fixed_response": {
            "status_code": 404, "content_type": "text/plain", "message_body": "none"}}},
        "rules": [{"priority": 5,
            "conditions": [{"matches": {"path_pattern": ["/api/*"]}, "given_as_values": false}],
            "action": {"order": null, "kind": {"forward": {
                "target_groups": [{"target_group": "tg1", "weight": 2}],
                "stickiness_duration_seconds": null}}}}]});
    let decoded: BalancerListener = serde_json::from_value(listener.clone()).unwrap();
    assert_eq!(decoded.rules[0].priority, 5);
    assert!(decoded.default_action.is_some());
    assert_eq!(serde_json::to_value(&decoded).unwrap(), listener);

    let poll = BalancerConfigRequest {
        have: Some("v1".into()),
        timeout_ms: 30_000,
    };
    let pinned = json!({"have": "v1", "timeoutMs": 30000});
    assert_eq!(serde_json::to_value(&poll).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<BalancerConfigRequest>(pinned).unwrap(),
        poll
    );
    let first = json!({"timeoutMs": 0});
    assert_eq!(
        serde_json::from_value::<BalancerConfigRequest>(first).unwrap(),
        BalancerConfigRequest {
            have: None,
            timeout_ms: 0
        }
    );
    assert_eq!(paths::LOAD_BALANCER, "/v1/load-balancer");
}

#[test]
fn service_endpoints_keep_their_shape() {
    use berth_proto::remote::{paths, ServiceEndpointsRequest};
    let endpoints = ServiceEndpoints {
        version: "v2".into(),
        services: vec![DiscoveredService {
            cluster: "default".into(),
            name: "api".into(),
            drain_ms: 30_000,
            ports: vec![DiscoveredPort {
                container_port: 8080,
                endpoints: vec![Endpoint {
                    task_id: "t1".into(),
                    addr: "10.0.0.7:32768".parse().unwrap(),
                }],
            }],
        }],
    };
    let pinned = json!({
        "version": "v2",
        "services": [{
            "cluster": "default", "name": "api", "drainMs": 30000,
            "ports": [{"containerPort": 8080,
                       "endpoints": [{"taskId": "t1", "addr": "10.0.0.7:32768"}]}]
        }]
    });
    assert_eq!(serde_json::to_value(&endpoints).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<ServiceEndpoints>(pinned).unwrap(),
        endpoints
    );
    let poll = ServiceEndpointsRequest {
        node_id: "n1".into(),
        have: None,
        timeout_ms: 30_000,
    };
    let pinned = json!({"nodeId": "n1", "timeoutMs": 30000});
    assert_eq!(serde_json::to_value(&poll).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<ServiceEndpointsRequest>(pinned).unwrap(),
        poll
    );
    assert_eq!(paths::SERVICE_ENDPOINTS, "/v1/service-endpoints");
}

#[test]
fn log_requests_and_answers_keep_their_shapes() {
    use berth_proto::remote::*;
    let requests = TaskRequests {
        requests: vec![TaskRequest {
            id: 3,
            ..TaskRequest::logs("t1", Some("web"), Some(1.5), Some(10))
        }],
    };
    // A log request names no kind, as before there were other kinds.
    let pinned = json!({"requests": [
        {"id": 3, "taskId": "t1", "containerName": "web", "since": 1.5, "tail": 10}
    ]});
    assert_eq!(serde_json::to_value(&requests).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<TaskRequests>(pinned).unwrap(),
        requests
    );

    let answer = TaskAnswer {
        id: 3,
        lines: vec![TaskLogLine {
            container_name: "web".into(),
            timestamp: 2.25,
            stream: "stdout".into(),
            message: "GET /".into(),
        }],
        stats: vec![],
        error: None,
    };
    let pinned = json!({"id": 3, "lines": [
        {"containerName": "web", "timestamp": 2.25, "stream": "stdout", "message": "GET /"}
    ]});
    assert_eq!(serde_json::to_value(&answer).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<TaskAnswer>(pinned).unwrap(),
        answer
    );
    let failed = json!({"id": 4, "error": "no such container"});
    assert_eq!(
        serde_json::from_value::<TaskAnswer>(failed).unwrap(),
        TaskAnswer::failed(4, "no such container".into())
    );
    let poll = TaskRequestsPoll { timeout_ms: 100 };
    assert_eq!(
        serde_json::to_value(&poll).unwrap(),
        json!({"timeoutMs": 100})
    );
    assert_eq!(paths::TASK_REQUESTS, "/v1/log-requests");
    assert_eq!(paths::TASK_ANSWER, "/v1/log-answer");
}

#[test]
fn stats_requests_and_answers_keep_their_shapes() {
    use berth_proto::remote::*;
    let request = TaskRequest {
        id: 5,
        ..TaskRequest::stats("t1")
    };
    let pinned = json!({"id": 5, "taskId": "t1", "kind": "stats"});
    assert_eq!(serde_json::to_value(&request).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<TaskRequest>(pinned).unwrap(),
        request
    );

    let answer = TaskAnswer {
        id: 5,
        lines: vec![],
        stats: vec![TaskContainerStats {
            container_name: "web".into(),
            cpu_percent: 12.5,
            memory_usage_bytes: 4096,
            memory_limit_bytes: 16_777_216,
            network_rx_bytes: 100,
            network_tx_bytes: 200,
            block_read_bytes: 300,
            block_write_bytes: 400,
            pids: 2,
        }],
        error: None,
    };
    let pinned = json!({"id": 5, "lines": [], "stats": [{
        "containerName": "web", "cpuPercent": 12.5, "memoryUsageBytes": 4096,
        "memoryLimitBytes": 16777216, "networkRxBytes": 100, "networkTxBytes": 200,
        "blockReadBytes": 300, "blockWriteBytes": 400, "pids": 2
    }]});
    assert_eq!(serde_json::to_value(&answer).unwrap(), pinned);
    assert_eq!(
        serde_json::from_value::<TaskAnswer>(pinned).unwrap(),
        answer
    );
}
