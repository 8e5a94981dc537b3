//! One row per rule with the exact message, and the shapes that must pass.

use serde_json::{json, Value};

use super::super::{validate_task_definition, ValidationError};
use super::engine_security_option;

fn validate(value: Value) -> Result<(), ValidationError> {
    let request = serde_json::from_value(value).expect("test request must deserialize");
    validate_task_definition(&request)
}

/// A task of one container `web` with `container` merged in, plus task-level `task`.
fn web_with(container: Value, task: Value) -> Value {
    let mut web = json!({"name": "web", "image": "nginx:1.27", "memory": 128});
    web.as_object_mut()
        .unwrap()
        .extend(container.as_object().unwrap().clone());
    let mut definition = json!({"family": "app", "containerDefinitions": [web]});
    definition
        .as_object_mut()
        .unwrap()
        .extend(task.as_object().unwrap().clone());
    definition
}

fn web(container: Value) -> Value {
    web_with(container, json!({}))
}

fn linux(parameters: Value) -> Value {
    web(json!({"linuxParameters": parameters}))
}

#[test]
fn each_rule_has_its_message() {
    let cases = [
        (
            web_with(json!({}), json!({"pidMode": "container"})),
            "Invalid pidMode 'container': expected host or task.",
        ),
        (
            web_with(json!({}), json!({"ipcMode": "shareable"})),
            "Invalid ipcMode 'shareable': expected host, task or none.",
        ),
        (
            linux(json!({"capabilities": {"add": ["SYS_WIZARD"]}})),
            "Container 'web': linuxParameters.capabilities.add 'SYS_WIZARD' is not a Linux capability",
        ),
        (
            linux(json!({"capabilities": {"drop": ["all-of-them"]}})),
            "Container 'web': linuxParameters.capabilities.drop 'all-of-them' is not a Linux capability",
        ),
        (
            linux(json!({"devices": [{"hostPath": "dev/fuse"}]})),
            "Container 'web': linuxParameters.devices[0].hostPath must be an absolute path, got 'dev/fuse'",
        ),
        (
            linux(json!({"devices": [{"hostPath": "/dev/fuse", "containerPath": "fuse"}]})),
            "Container 'web': linuxParameters.devices[0].containerPath must be an absolute path, got 'fuse'",
        ),
        (
            linux(json!({"devices": [{"hostPath": "/dev/fuse", "permissions": ["execute"]}]})),
            "Container 'web': linuxParameters.devices[0].permissions 'execute' is invalid; expected read, write or mknod",
        ),
        (
            linux(json!({"sharedMemorySize": 0})),
            "Container 'web': linuxParameters.sharedMemorySize must be between 1 and 2147483647 MiB, got 0",
        ),
        (
            web_with(json!({"linuxParameters": {"sharedMemorySize": 64}}), json!({"ipcMode": "task"})),
            "Container 'web': linuxParameters.sharedMemorySize cannot be set when ipcMode is task",
        ),
        (
            linux(json!({"tmpfs": [{"containerPath": "tmp", "size": 16}]})),
            "Container 'web': linuxParameters.tmpfs[0].containerPath must be an absolute path, got 'tmp'",
        ),
        (
            linux(json!({"tmpfs": [{"containerPath": "/tmp"}]})),
            "Container 'web': linuxParameters.tmpfs[0].size must be between 1 and 2147483647 MiB, got 0",
        ),
        (
            linux(json!({"tmpfs": [{"containerPath": "/tmp", "size": 16, "mountOptions": ["noexec,size=1g"]}]})),
            "Container 'web': linuxParameters.tmpfs[0].mountOptions 'noexec,size=1g' is not a tmpfs mount option",
        ),
        (
            linux(json!({"tmpfs": [{"containerPath": "/tmp", "size": 16, "mountOptions": ["huge"]}]})),
            "Container 'web': linuxParameters.tmpfs[0].mountOptions 'huge' is not a tmpfs mount option",
        ),
        (
            web(json!({"memory": 128, "linuxParameters": {"maxSwap": -1}})),
            "Container 'web': linuxParameters.maxSwap must be between 0 and 2147483647 MiB, got -1",
        ),
        (
            linux(json!({"sharedMemorySize": 2147483648_i64})),
            "Container 'web': linuxParameters.sharedMemorySize must be between 1 and 2147483647 MiB, got 2147483648",
        ),
        (
            linux(json!({"tmpfs": [{"containerPath": "/tmp", "size": i64::MAX}]})),
            "Container 'web': linuxParameters.tmpfs[0].size must be between 1 and 2147483647 MiB, got 9223372036854775807",
        ),
        (
            web(json!({"memory": 128, "linuxParameters": {"maxSwap": i64::MAX}})),
            "Container 'web': linuxParameters.maxSwap must be between 0 and 2147483647 MiB, got 9223372036854775807",
        ),
        (
            web(json!({"memory": null, "memoryReservation": 64, "linuxParameters": {"maxSwap": 256}})),
            "Container 'web': linuxParameters.maxSwap needs a memory limit: set memory on the container or the task",
        ),
        (
            linux(json!({"swappiness": 101})),
            "Container 'web': linuxParameters.swappiness must be between 0 and 100, got 101",
        ),
        (
            linux(json!({"sharedMemorySize": "64"})),
            "Container 'web': linuxParameters is not in ECS's shape: invalid type: string \"64\", expected i64",
        ),
        (
            linux(json!({"hugePages": 2})),
            "Container 'web': linuxParameters.hugePages is not supported by berth",
        ),
        (
            web(json!({"dockerSecurityOptions": ["seccomp:/etc/profile.json"]})),
            "Container 'web': dockerSecurityOptions 'seccomp:/etc/profile.json' is not supported by berth: only seccomp:unconfined (the engine's default profile applies otherwise)",
        ),
        (
            web(json!({"dockerSecurityOptions": ["credentialspec:file://gmsa.json"]})),
            "Container 'web': dockerSecurityOptions 'credentialspec:file://gmsa.json' is not supported by berth: credential specs are for Windows containers",
        ),
        (
            web(json!({"dockerSecurityOptions": ["systempaths=unconfined"]})),
            "Container 'web': dockerSecurityOptions 'systempaths=unconfined' is not supported by berth; expected no-new-privileges, apparmor:PROFILE, label:VALUE or seccomp:unconfined",
        ),
    ];
    for (definition, expected) in cases {
        assert_eq!(
            validate(definition),
            Err(ValidationError {
                message: expected.to_string()
            }),
            "{expected}"
        );
    }
}

#[test]
fn fields_berth_does_not_honour_are_refused_by_name() {
    let cases = [
        (web(json!({"repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:x"}})),
            "Container 'web': repositoryCredentials is not supported by berth: berth has no secrets store; log the engine in to the registry instead"),
        (web(json!({"restartPolicy": {"enabled": true}})),
            "Container 'web': restartPolicy is not supported by berth: berth replaces a service's stopped tasks instead of restarting containers"),
        (web(json!({"disableNetworking": true})),
            "Container 'web': disableNetworking is not supported by berth: use networkMode none"),
        (web(json!({"systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}]})),
            "Container 'web': systemControls is not supported by berth: berth sets no sysctls"),
        (web(json!({"resourceRequirements": [{"type": "GPU", "value": "1"}]})),
            "Container 'web': resourceRequirements is not supported by berth: berth schedules no GPUs or accelerators"),
        (web(json!({"firelensConfiguration": {"type": "fluentbit"}})),
            "Container 'web': firelensConfiguration is not supported by berth: berth has no FireLens log router; containers log to json-file"),
        (web(json!({"credentialSpecs": ["credentialspecdomainless:arn"]})),
            "Container 'web': credentialSpecs is not supported by berth: credential specs are for Windows containers"),
        (web(json!({"portMappings": [{"containerPortRange": "9000-9099"}]})),
            "Container 'web': portMappings containerPortRange '9000-9099' is not supported by berth: map each port with containerPort"),
        (web_with(json!({}), json!({"proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"}})),
            "proxyConfiguration is not supported by berth: berth has no App Mesh proxy"),
        (web_with(json!({}), json!({"inferenceAccelerators": [{"deviceName": "d", "deviceType": "eia2.medium"}]})),
            "inferenceAccelerators is not supported by berth: berth has no Elastic Inference accelerators"),
        (web_with(json!({}), json!({"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}})),
            "runtimePlatform.operatingSystemFamily 'WINDOWS_SERVER_2022_CORE' is not supported by berth: berth runs Linux containers only"),
        (web_with(json!({}), json!({"volumes": [{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]})),
            "Volume 'efs': efsVolumeConfiguration is not supported by berth: mount the file system on the host and use host.sourcePath"),
        (web_with(json!({}), json!({"volumes": [{"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "share"}}]})),
            "Volume 'fsx': fsxWindowsFileServerVolumeConfiguration is not supported by berth: it is for Windows containers; berth runs Linux containers only"),
        (web_with(json!({}), json!({"volumes": [{"name": "ebs", "configuredAtLaunch": true}]})),
            "Volume 'ebs': configuredAtLaunch is not supported by berth: berth configures no volumes at launch"),
    ];
    for (definition, expected) in cases {
        assert_eq!(
            validate(definition),
            Err(ValidationError {
                message: expected.to_string()
            }),
            "{expected}"
        );
    }
}

#[test]
fn what_berth_honours_or_keeps_as_metadata_passes() {
    let definition = web_with(
        json!({
            "memory": 256,
            "readonlyRootFilesystem": true,
            "interactive": true,
            "pseudoTerminal": true,
            "versionConsistency": "disabled",
            "restartPolicy": {"enabled": false},
            "disableNetworking": false,
            "systemControls": [],
            "resourceRequirements": [],
            "credentialSpecs": [],
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default", "label:type:container_t", "seccomp:unconfined"],
            "linuxParameters": {
                "capabilities": {"add": ["NET_ADMIN", "cap_sys_time"], "drop": ["ALL"]},
                "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write", "mknod"]}],
                "initProcessEnabled": true,
                "sharedMemorySize": 128,
                "tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec", "mode=1777", "uid=1000"]}],
                "maxSwap": 0,
                "swappiness": 0
            }
        }),
        json!({
            "pidMode": "task",
            "taskRoleArn": "arn:aws:iam::123456789012:role/web",
            "ephemeralStorage": {"sizeInGiB": 30},
            "enableFaultInjection": false,
            "proxyConfiguration": null,
            "inferenceAccelerators": [],
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
            "volumes": [{"name": "data", "configuredAtLaunch": false}]
        }),
    );
    assert_eq!(validate(definition), Ok(()));
    for mode in ["host", "task", "none"] {
        assert_eq!(
            validate(web_with(json!({}), json!({"ipcMode": mode}))),
            Ok(()),
            "{mode}"
        );
    }
    // The task's memory is a limit too.
    assert_eq!(
        validate(web_with(
            json!({"linuxParameters": {"maxSwap": 64}}),
            json!({"memory": "512"})
        )),
        Ok(())
    );
}

#[test]
fn security_options_are_written_the_engines_way() {
    assert_eq!(
        engine_security_option("no-new-privileges"),
        Ok("no-new-privileges".to_string())
    );
    assert_eq!(
        engine_security_option("no-new-privileges:true"),
        Ok("no-new-privileges".to_string())
    );
    assert_eq!(
        engine_security_option("apparmor:unconfined"),
        Ok("apparmor=unconfined".to_string())
    );
    assert_eq!(
        engine_security_option("label:level:s0:c100"),
        Ok("label=level:s0:c100".to_string())
    );
    assert_eq!(
        engine_security_option("seccomp:unconfined"),
        Ok("seccomp=unconfined".to_string())
    );
    assert!(engine_security_option("apparmor:").is_err());
}
