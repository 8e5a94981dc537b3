//! What an API caller may make the host do. A task definition can ask for more than
//! an ordinary container gets (`privileged`, host paths, the host's namespaces,
//! devices, capabilities, another security profile), and a load-balancer target (an
//! `ip` one at a loopback address, an `instance` one at a port no task published) can
//! point the network-facing balancer at this machine's own loopback services.
//! Each such use has a [`PrivilegeKind`]; the operator's [`PrivilegePolicy`] says which
//! kinds are allowed. The control plane checks it when a definition is registered and
//! again when tasks are placed (the policy may have changed since), and refuses a use
//! it does not allow with a message naming the field and how to allow it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use berth_api::{ContainerDefinition, RegisterTaskDefinitionRequest, Volume};

use crate::error::EcsError;
use crate::validation::{capability_name, SecurityOption};

/// One way a task (or a target) reaches past its container into the host. On the wire
/// it is the name operators write (`host-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivilegeKind {
    /// `privileged: true`: every capability and device, no confinement.
    Privileged,
    /// A bind of a host path: `host.sourcePath`, or a `local` volume driver told to bind
    /// one or to mount a host device (`device: /dev/sda1`).
    HostPath,
    /// A bind that reaches a container engine's socket (Docker's, containerd's,
    /// podman's; a directory above one; a process's root under `/proc`): control of the
    /// engine.
    DockerSocket,
    /// `networkMode: host`.
    HostNetwork,
    /// `pidMode: host`.
    HostPid,
    /// `ipcMode: host`.
    HostIpc,
    /// `linuxParameters.devices`.
    Devices,
    /// `linuxParameters.capabilities.add` beyond the engine's default set.
    Capabilities,
    /// `dockerSecurityOptions` other than `no-new-privileges` (or `no-new-privileges:true`):
    /// another AppArmor, seccomp or SELinux profile than the engine's default, or none.
    SecurityProfile,
    /// A load-balancer target the data plane would reach on this machine's own
    /// addresses without a task having published it: an `ip` target at a loopback,
    /// link-local or unspecified address, or an `instance` target at a host port no task
    /// running on that container instance has published.
    LocalTargets,
}

impl PrivilegeKind {
    pub const ALL: [PrivilegeKind; 10] = [
        PrivilegeKind::Privileged,
        PrivilegeKind::HostPath,
        PrivilegeKind::DockerSocket,
        PrivilegeKind::HostNetwork,
        PrivilegeKind::HostPid,
        PrivilegeKind::HostIpc,
        PrivilegeKind::Devices,
        PrivilegeKind::Capabilities,
        PrivilegeKind::SecurityProfile,
        PrivilegeKind::LocalTargets,
    ];

    /// The name operators write (`--allow-privileged host-path`).
    pub fn as_str(self) -> &'static str {
        match self {
            PrivilegeKind::Privileged => "privileged",
            PrivilegeKind::HostPath => "host-path",
            PrivilegeKind::DockerSocket => "docker-socket",
            PrivilegeKind::HostNetwork => "host-network",
            PrivilegeKind::HostPid => "host-pid",
            PrivilegeKind::HostIpc => "host-ipc",
            PrivilegeKind::Devices => "devices",
            PrivilegeKind::Capabilities => "capabilities",
            PrivilegeKind::SecurityProfile => "security-profile",
            PrivilegeKind::LocalTargets => "local-targets",
        }
    }
}

impl fmt::Display for PrivilegeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrivilegeKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PrivilegeKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = PrivilegeKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown privilege kind '{text}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The kinds of privilege this server lets API callers use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivilegePolicy {
    allowed: BTreeSet<PrivilegeKind>,
}

impl PrivilegePolicy {
    pub fn allow_all() -> Self {
        Self::allowing(PrivilegeKind::ALL)
    }

    pub fn deny_all() -> Self {
        Self::default()
    }

    pub fn allowing(kinds: impl IntoIterator<Item = PrivilegeKind>) -> Self {
        PrivilegePolicy {
            allowed: kinds.into_iter().collect(),
        }
    }

    /// The default for a server whose API listens on `address`: on loopback only this
    /// machine's users reach it (`berth dev`, a developer's own engine), so everything
    /// is allowed; beyond loopback nothing is, until the operator says so.
    pub fn default_for_listen_address(address: IpAddr) -> Self {
        if address.is_loopback() {
            Self::allow_all()
        } else {
            Self::deny_all()
        }
    }

    pub fn allows(&self, kind: PrivilegeKind) -> bool {
        self.allowed.contains(&kind)
    }

    pub fn allowed(&self) -> impl Iterator<Item = PrivilegeKind> + '_ {
        self.allowed.iter().copied()
    }

    /// Every use of privilege in `definition` is allowed; else the first refused one.
    pub fn check_task_definition(
        &self,
        definition: &RegisterTaskDefinitionRequest,
    ) -> Result<(), EcsError> {
        match task_definition_privileges(definition)
            .into_iter()
            .find(|used| !self.allows(used.kind))
        {
            None => Ok(()),
            Some(refused) => Err(EcsError::client(refusal(&refused.field, refused.kind))),
        }
    }

    /// An `ip` target at this machine's own addresses needs [`PrivilegeKind::LocalTargets`]:
    /// the balancer's listeners are open to the network, so such a target would publish
    /// what listens on loopback only (berth's own API among it). The error is the message.
    pub fn check_ip_target(&self, address: IpAddr) -> Result<(), String> {
        if !is_local_address(address) || self.allows(PrivilegeKind::LocalTargets) {
            return Ok(());
        }
        Err(refusal(
            &format!("the ip target {address} (a loopback, link-local or unspecified address)"),
            PrivilegeKind::LocalTargets,
        ))
    }

    /// An `instance` target is served at `127.0.0.1:port` (its host ports are published
    /// on this machine), so a port that no task running on the instance has published
    /// (`published` false) would reach whatever listens there on loopback: that needs
    /// [`PrivilegeKind::LocalTargets`]. The error is the message.
    pub fn check_instance_target(
        &self,
        instance: &str,
        port: u16,
        published: bool,
    ) -> Result<(), String> {
        if published || self.allows(PrivilegeKind::LocalTargets) {
            return Ok(());
        }
        Err(refusal(
            &format!(
                "the instance target '{}' port {port} (not a host port a task running on that \
                 container instance has published)",
                shown(instance)
            ),
            PrivilegeKind::LocalTargets,
        ))
    }
}

fn refusal(field: &str, kind: PrivilegeKind) -> String {
    format!(
        "{field} is refused by this server's privilege policy; the operator allows it by \
         starting berth with --allow-privileged {kind}"
    )
}

/// Loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10) or unspecified
/// (0.0.0.0, ::), also as an IPv4-mapped IPv6 address.
pub fn is_local_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local_address(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments().first().copied().unwrap_or_default() & 0xffc0) == 0xfe80
            }
        },
    }
}

/// One use of privilege: its kind and the field that asks for it, worded for messages
/// and logs (`container 'web': privileged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeUse {
    pub kind: PrivilegeKind,
    pub field: String,
}

/// Capabilities the engine gives every container; adding one of these back (after
/// `drop: ["ALL"]`, say) raises nothing.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Where container engines keep their sockets, with `/var/run` read as `/run` (it links
/// there); `*` is any one component (a user's id, for rootless engines). A bind of one,
/// or of a directory above one, hands the container that engine.
const ENGINE_SOCKETS: [&str; 7] = [
    "/run/docker.sock",
    "/run/docker/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/user/*/docker.sock",
    "/run/user/*/podman/podman.sock",
    "/run/user/*/containerd/containerd.sock",
];

/// An engine's socket wherever it was put.
const ENGINE_SOCKET_NAMES: [&str; 3] = ["docker.sock", "containerd.sock", "podman.sock"];

/// Every use of privilege a task definition asks for, in definition order.
pub fn task_definition_privileges(definition: &RegisterTaskDefinitionRequest) -> Vec<PrivilegeUse> {
    let mut uses = Vec::new();
    let mut task_level = |kind, field: &str, value: Option<&str>| {
        if value == Some("host") {
            uses.push(PrivilegeUse {
                kind,
                field: format!("{field} host"),
            });
        }
    };
    task_level(
        PrivilegeKind::HostNetwork,
        "networkMode",
        definition.network_mode.as_deref(),
    );
    task_level(
        PrivilegeKind::HostPid,
        "pidMode",
        definition.pid_mode.as_deref(),
    );
    task_level(
        PrivilegeKind::HostIpc,
        "ipcMode",
        definition.ipc_mode.as_deref(),
    );
    for volume in &definition.volumes {
        volume_privileges(volume, &mut uses);
    }
    for container in &definition.container_definitions {
        container_privileges(container, &mut uses);
    }
    uses
}

fn volume_privileges(volume: &Volume, uses: &mut Vec<PrivilegeUse>) {
    let name = volume.name.as_deref().unwrap_or_default();
    let mut host_path = |field: &str, path: &str| {
        uses.push(PrivilegeUse {
            kind: PrivilegeKind::HostPath,
            field: format!("volume '{}': {field} '{}'", shown(name), shown(path)),
        });
        if reaches_docker_socket(path) {
            uses.push(PrivilegeUse {
                kind: PrivilegeKind::DockerSocket,
                field: format!(
                    "volume '{}': {field} '{}' (a container engine's socket)",
                    shown(name),
                    shown(path)
                ),
            });
        }
    };
    if let Some(path) = volume
        .host
        .as_ref()
        .and_then(|host| host.source_path.as_deref())
        .filter(|path| !path.is_empty())
    {
        host_path("host.sourcePath", path);
    }
    let Some(docker) = &volume.docker_volume_configuration else {
        return;
    };
    let is_local = docker
        .driver
        .as_deref()
        .is_none_or(|driver| driver.is_empty() || driver == "local");
    let options = docker.driver_opts.clone().unwrap_or_default();
    let device = options.get("device").map(String::as_str).unwrap_or("");
    // The local driver runs mount(8) with these: `type=none` or a `bind` option makes
    // `device` a host path mounted into the container; any other type with a `device`
    // that is a host path (a block device such as /dev/sda1, an image file) mounts the
    // host's storage, which is `host-path` too. `//server/share` (cifs) and
    // `server:/export` (nfs) are remote file systems.
    let binds = options.get("type").is_some_and(|kind| kind == "none")
        || options
            .get("o")
            .is_some_and(|o| o.split(',').any(|option| option.trim().ends_with("bind")));
    let host_device = device.starts_with('/') && !device.starts_with("//");
    if is_local && (binds || host_device) {
        host_path("dockerVolumeConfiguration.driverOpts device", device);
    }
}

fn container_privileges(container: &ContainerDefinition, uses: &mut Vec<PrivilegeUse>) {
    let name = container.name.as_deref().unwrap_or_default();
    let mut push = |kind, field: String| {
        uses.push(PrivilegeUse {
            kind,
            field: format!("container '{}': {field}", shown(name)),
        })
    };
    if container.privileged == Some(true) {
        push(PrivilegeKind::Privileged, "privileged".to_string());
    }
    if let Some(parameters) = &container.linux_parameters {
        for device in parameters.devices.iter().flatten() {
            push(
                PrivilegeKind::Devices,
                format!("linuxParameters.devices '{}'", shown(&device.host_path)),
            );
        }
        let added = parameters
            .capabilities
            .as_ref()
            .and_then(|capabilities| capabilities.add.as_ref());
        for capability in added.into_iter().flatten() {
            if !DEFAULT_CAPABILITIES.contains(&capability_name(capability).as_str()) {
                push(
                    PrivilegeKind::Capabilities,
                    format!("linuxParameters.capabilities.add '{}'", shown(capability)),
                );
            }
        }
    }
    for option in container.docker_security_options.iter().flatten() {
        // An option validation refuses counts as a profile: the policy never exempts what
        // it cannot read.
        if SecurityOption::parse(option).map_or(true, |parsed| parsed.changes_profile()) {
            push(
                PrivilegeKind::SecurityProfile,
                format!("dockerSecurityOptions '{}'", shown(option)),
            );
        }
    }
}

/// `path` (made absolute and normalized by its text: symlinks are the engine's
/// business) reaches a container engine's socket: it is one (by its name or where
/// engines keep them), a directory above one, or a way to one through `/proc` (a
/// process's root, working directory or open files).
fn reaches_docker_socket(path: &str) -> bool {
    let normalized = normalize(path);
    let components: Vec<&str> = normalized.split('/').filter(|c| !c.is_empty()).collect();
    reaches_socket(&components)
}

fn reaches_socket(components: &[&str]) -> bool {
    if components
        .last()
        .is_some_and(|name| ENGINE_SOCKET_NAMES.contains(name))
    {
        return true;
    }
    match components {
        ["var"] => true,
        ["var", "run", rest @ ..] => reaches_socket(&[&["run"], rest].concat()),
        ["proc"] => true,
        ["proc", process, rest @ ..] if is_process(process) => match rest {
            [] => true,
            ["task", _thread, rest @ ..] => reaches_socket(&[&["proc", "self"], rest].concat()),
            ["root", rest @ ..] => reaches_socket(rest),
            ["cwd" | "fd" | "map_files", ..] => true,
            _ => false,
        },
        _ => ENGINE_SOCKETS.iter().any(|socket| {
            let socket: Vec<&str> = socket.split('/').filter(|c| !c.is_empty()).collect();
            components.len() <= socket.len()
                && components
                    .iter()
                    .zip(&socket)
                    .all(|(given, known)| *known == "*" || given == known)
        }),
    }
}

/// A `/proc` entry for a process (or thread): its id, `self` or `thread-self`.
fn is_process(name: &str) -> bool {
    name == "self" || name == "thread-self" || name.bytes().all(|b| b.is_ascii_digit())
}

/// A user's value for a message or a log line, cut short so a hostile one cannot bloat
/// either.
fn shown(value: &str) -> String {
    const LIMIT: usize = 64;
    if value.chars().count() <= LIMIT {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(LIMIT).collect::<String>())
    }
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests;
