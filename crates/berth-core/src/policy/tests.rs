use std::net::IpAddr;

use berth_api::RegisterTaskDefinitionRequest;
use serde_json::json;

use super::*;

fn definition(value: serde_json::Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(value).expect("a valid request")
}

fn web(container: serde_json::Value) -> RegisterTaskDefinitionRequest {
    let mut container = container;
    container["name"] = json!("web");
    container["image"] = json!("nginx");
    definition(json!({"family": "f", "containerDefinitions": [container]}))
}

fn kinds(definition: &RegisterTaskDefinitionRequest) -> Vec<PrivilegeKind> {
    task_definition_privileges(definition)
        .into_iter()
        .map(|used| used.kind)
        .collect()
}

#[test]
fn an_ordinary_definition_uses_no_privilege() {
    let plain = web(json!({
        "readonlyRootFilesystem": true,
        "dockerSecurityOptions": ["no-new-privileges"],
        "linuxParameters": {
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "cap_chown"]},
            "initProcessEnabled": true,
            "tmpfs": [{"containerPath": "/tmp", "size": 16}]
        }
    }));
    assert_eq!(kinds(&plain), vec![]);
    assert_eq!(
        PrivilegePolicy::deny_all().check_task_definition(&plain),
        Ok(())
    );
}

#[test]
fn each_kind_is_found_with_its_field() {
    let cases = [
        (
            web(json!({"privileged": true})),
            PrivilegeKind::Privileged,
            "container 'web': privileged",
        ),
        (
            web(json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}})),
            PrivilegeKind::Devices,
            "container 'web': linuxParameters.devices '/dev/fuse'",
        ),
        (
            web(json!({"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}})),
            PrivilegeKind::Capabilities,
            "container 'web': linuxParameters.capabilities.add 'SYS_ADMIN'",
        ),
        (
            web(json!({"dockerSecurityOptions": ["apparmor:unconfined"]})),
            PrivilegeKind::SecurityProfile,
            "container 'web': dockerSecurityOptions 'apparmor:unconfined'",
        ),
        (
            definition(json!({"family": "f", "networkMode": "host", "containerDefinitions": []})),
            PrivilegeKind::HostNetwork,
            "networkMode host",
        ),
        (
            definition(json!({"family": "f", "pidMode": "host", "containerDefinitions": []})),
            PrivilegeKind::HostPid,
            "pidMode host",
        ),
        (
            definition(json!({"family": "f", "ipcMode": "host", "containerDefinitions": []})),
            PrivilegeKind::HostIpc,
            "ipcMode host",
        ),
        (
            definition(json!({"family": "f", "containerDefinitions": [],
                "volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}]})),
            PrivilegeKind::HostPath,
            "volume 'data': host.sourcePath '/srv/data'",
        ),
        (
            definition(json!({"family": "f", "containerDefinitions": [],
                "volumes": [{"name": "data", "dockerVolumeConfiguration": {
                    "scope": "task", "driver": "local",
                    "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]})),
            PrivilegeKind::HostPath,
            "volume 'data': dockerVolumeConfiguration.driverOpts device '/etc'",
        ),
    ];
    for (definition, kind, field) in cases {
        let uses = task_definition_privileges(&definition);
        assert_eq!(
            uses,
            vec![PrivilegeUse {
                kind,
                field: field.to_string()
            }],
            "{field}"
        );
        let refused =
            PrivilegePolicy::allowing(PrivilegeKind::ALL.into_iter().filter(|k| *k != kind))
                .check_task_definition(&definition)
                .expect_err(field);
        assert_eq!(refused.code, crate::ErrorCode::ClientException);
        assert_eq!(
            refused.message,
            format!(
                "{field} is refused by this server's privilege policy; the operator allows it \
                 by starting berth with --allow-privileged {kind}"
            )
        );
        assert_eq!(
            PrivilegePolicy::allowing([kind]).check_task_definition(&definition),
            Ok(())
        );
    }
}

#[test]
fn a_bind_of_the_docker_socket_or_a_directory_above_it_needs_its_own_kind() {
    for path in [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/var/",
        "/",
        "/srv/../run",
        "/proc",
        "/proc/1",
        "/proc/1/root",
        "/proc/self/root/var/run/docker.sock",
        "/proc/1/task/1/root/run",
        "/proc/4242/cwd",
        "/proc/4242/fd/3",
        "/run/user/1000/docker.sock",
        "/run/user/1000",
        "/run/user",
        "/run/containerd/containerd.sock",
        "/var/run/containerd",
        "/run/docker/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/run/user/1000/podman",
        "/srv/engine/podman.sock",
        "/home/ci/.docker/run/docker.sock",
    ] {
        let definition = definition(json!({"family": "f", "containerDefinitions": [],
            "volumes": [{"name": "sock", "host": {"sourcePath": path}}]}));
        assert_eq!(
            kinds(&definition),
            vec![PrivilegeKind::HostPath, PrivilegeKind::DockerSocket],
            "{path}"
        );
        let refused = PrivilegePolicy::allowing([PrivilegeKind::HostPath])
            .check_task_definition(&definition)
            .expect_err(path);
        assert!(
            refused.message.contains("--allow-privileged docker-socket"),
            "{refused:?}"
        );
    }
    for path in [
        "/var/lib/data",
        "/runner",
        "/var/run-data",
        "/run/secrets",
        "/run/lock",
        "/proc/sys/net",
        "/proc/1/environ",
        "/proc/1/root/srv/data",
        "/srv/docker.sock.d",
    ] {
        let definition = definition(json!({"family": "f", "containerDefinitions": [],
            "volumes": [{"name": "data", "host": {"sourcePath": path}}]}));
        assert_eq!(kinds(&definition), vec![PrivilegeKind::HostPath], "{path}");
    }
}

#[test]
fn docker_managed_volumes_and_other_drivers_are_no_host_path() {
    let definition = definition(
        json!({"family": "f", "containerDefinitions": [], "volumes": [
            {"name": "empty", "host": {}},
            {"name": "managed", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "nfs", "dockerVolumeConfiguration": {"scope": "task", "driver": "local",
                "driverOpts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}}},
        ]}),
    );
    assert_eq!(kinds(&definition), vec![]);
}

/// The local driver mounts a `device` that is a host path (a block device, an image
/// file) with any `type`: the host's storage, counted as `host-path`.
#[test]
fn a_local_volume_mounting_a_host_device_is_a_host_path() {
    for options in [
        json!({"type": "ext4", "device": "/dev/sda1"}),
        json!({"type": "xfs", "device": "/dev/mapper/vg-data", "o": "ro"}),
        json!({"device": "/dev/nvme0n1p2"}),
        json!({"type": "nfs", "o": "addr=10.0.0.1,bind", "device": ":/export"}),
    ] {
        let definition = definition(json!({"family": "f", "containerDefinitions": [],
            "volumes": [{"name": "disk", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local", "driverOpts": options}}]}));
        assert_eq!(
            kinds(&definition),
            vec![PrivilegeKind::HostPath],
            "{options}"
        );
        let refused = PrivilegePolicy::deny_all()
            .check_task_definition(&definition)
            .expect_err("a host device is refused");
        assert!(
            refused
                .message
                .starts_with("volume 'disk': dockerVolumeConfiguration.driverOpts device"),
            "{refused:?}"
        );
    }
    for options in [
        json!({"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}),
        json!({"type": "cifs", "device": "//files.internal/share", "o": "username=u"}),
    ] {
        let definition = definition(json!({"family": "f", "containerDefinitions": [],
            "volumes": [{"name": "remote", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local", "driverOpts": options}}]}));
        assert_eq!(kinds(&definition), vec![], "{options}");
    }
}

/// `no-new-privileges` only takes privilege away, in either of the forms validation
/// admits and the agent applies.
#[test]
fn no_new_privileges_in_either_form_needs_no_privilege() {
    for option in ["no-new-privileges", "no-new-privileges:true"] {
        let definition = web(json!({"dockerSecurityOptions": [option]}));
        assert_eq!(kinds(&definition), vec![], "{option}");
        assert_eq!(
            PrivilegePolicy::deny_all().check_task_definition(&definition),
            Ok(())
        );
    }
    for option in [
        "no-new-privileges:false",
        "apparmor:unconfined",
        "seccomp:unconfined",
    ] {
        let definition = web(json!({"dockerSecurityOptions": [option]}));
        assert_eq!(
            kinds(&definition),
            vec![PrivilegeKind::SecurityProfile],
            "{option}"
        );
    }
}

#[test]
fn the_default_follows_the_listen_address() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let everywhere: IpAddr = "0.0.0.0".parse().unwrap();
    assert_eq!(
        PrivilegePolicy::default_for_listen_address(loopback),
        PrivilegePolicy::allow_all()
    );
    assert_eq!(
        PrivilegePolicy::default_for_listen_address("::1".parse().unwrap()),
        PrivilegePolicy::allow_all()
    );
    assert_eq!(
        PrivilegePolicy::default_for_listen_address(everywhere),
        PrivilegePolicy::deny_all()
    );
}

#[test]
fn kinds_parse_from_their_names() {
    for kind in PrivilegeKind::ALL {
        assert_eq!(kind.as_str().parse::<PrivilegeKind>(), Ok(kind));
    }
    let error = "root".parse::<PrivilegeKind>().unwrap_err();
    assert!(
        error.starts_with("unknown privilege kind 'root': expected one of privileged, host-path"),
        "{error}"
    );
}

#[test]
fn local_ip_targets_need_local_targets() {
    for address in [
        "127.0.0.1",
        "127.9.9.9",
        "169.254.169.254",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "::ffff:127.0.0.1",
    ] {
        let address: IpAddr = address.parse().unwrap();
        assert!(is_local_address(address), "{address}");
        let error = PrivilegePolicy::deny_all()
            .check_ip_target(address)
            .unwrap_err();
        assert_eq!(
            error,
            format!(
                "the ip target {address} (a loopback, link-local or unspecified address) is \
                 refused by this server's privilege policy; the operator allows it by starting \
                 berth with --allow-privileged local-targets"
            )
        );
        assert_eq!(
            PrivilegePolicy::allowing([PrivilegeKind::LocalTargets]).check_ip_target(address),
            Ok(())
        );
    }
    for address in ["10.0.0.5", "172.17.0.2", "192.168.1.1", "fd00::1"] {
        let address: IpAddr = address.parse().unwrap();
        assert!(!is_local_address(address), "{address}");
        assert_eq!(PrivilegePolicy::deny_all().check_ip_target(address), Ok(()));
    }
}

#[test]
fn a_long_value_is_cut_short_in_the_field() {
    let long = format!("/srv/{}", "a".repeat(500));
    let definition = definition(json!({"family": "f", "containerDefinitions": [],
        "volumes": [{"name": "data", "host": {"sourcePath": long}}]}));
    let uses = task_definition_privileges(&definition);
    assert_eq!(
        uses[0].field,
        format!(
            "volume 'data': host.sourcePath '/srv/{}...'",
            "a".repeat(59)
        )
    );
}
