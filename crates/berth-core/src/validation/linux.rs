//! The rules for what a container asks of the Linux kernel and the engine:
//! `linuxParameters`, `dockerSecurityOptions`, `pidMode` and `ipcMode`; and the fields
//! berth does not honour, refused by name, since nothing an ECS definition asks for
//! may be silently ignored. Whether a use of privilege is *allowed* is the operator's
//! policy (`crate::policy`); this module only says whether berth can do it at all.

use berth_api::{ContainerDefinition, LinuxParameters, RegisterTaskDefinitionRequest};
use serde::{Deserialize, Serialize};

use super::{container_name, in_container, positive, shown, Result, ValidationError};
use crate::spec::{self, DevicePermission, IpcMode, PidMode};

/// Linux's capabilities as the engine names them (without `CAP_`), plus `ALL`.
const CAPABILITIES: [&str; 42] = [
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// ECS's tmpfs mountOptions; `mode`, `uid`, `gid`, `nr_inodes`, `nr_blocks` and `mpol`
/// take a value (`mode=1777`).
const TMPFS_OPTIONS: [&str; 39] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// ECS's sizes here are 32-bit integers of MiB.
const MAX_MIB: i64 = i32::MAX as i64;

/// What the Linux rules admitted: the task's namespaces and each container's settings,
/// in definition order.
pub(super) struct Linux {
    pub pid_mode: Option<PidMode>,
    pub ipc_mode: Option<IpcMode>,
    pub containers: Vec<ContainerLinux>,
}

pub(super) struct ContainerLinux {
    pub linux_parameters: Option<spec::LinuxParameters>,
    pub docker_security_options: Vec<SecurityOption>,
}

/// Checks the Linux-level fields of the task and of each container, and refuses the
/// fields berth does not honour.
pub(super) fn validate_linux(request: &RegisterTaskDefinitionRequest) -> Result<Linux> {
    let pid_mode = match request.pid_mode.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some("host") => Some(PidMode::Host),
        Some("task") => Some(PidMode::Task),
        Some(other) => {
            return Err(ValidationError::new(format!(
                "Invalid pidMode '{}': expected host or task.",
                shown(other)
            )))
        }
    };
    let ipc_mode = match request.ipc_mode.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some("host") => Some(IpcMode::Host),
        Some("task") => Some(IpcMode::Task),
        Some("none") => Some(IpcMode::None),
        Some(other) => {
            return Err(ValidationError::new(format!(
                "Invalid ipcMode '{}': expected host, task or none.",
                shown(other)
            )))
        }
    };
    validate_unsupported_task_fields(request)?;
    let task_has_memory = request
        .memory
        .as_deref()
        .is_some_and(|memory| !memory.trim().is_empty());
    let mut containers = Vec::with_capacity(request.container_definitions.len());
    for container in &request.container_definitions {
        let name = container_name(container);
        let mut linux_parameters = None;
        if let Some(parameters) = &container.linux_parameters {
            linux_parameters = Some(validate_linux_parameters(name, parameters, ipc_mode)?);
            let has_memory = task_has_memory || container.memory.is_some_and(|m| m > 0);
            if parameters.max_swap.is_some() && !has_memory {
                return Err(in_container(
                    name,
                    "linuxParameters.maxSwap needs a memory limit: set memory on the \
                     container or the task",
                ));
            }
        }
        let mut docker_security_options = Vec::new();
        for option in container.docker_security_options.iter().flatten() {
            docker_security_options.push(
                SecurityOption::parse(option).map_err(|message| in_container(name, message))?,
            );
        }
        validate_unsupported_container_fields(name, container)?;
        containers.push(ContainerLinux {
            linux_parameters,
            docker_security_options,
        });
    }
    Ok(Linux {
        pid_mode,
        ipc_mode,
        containers,
    })
}

fn validate_linux_parameters(
    name: &str,
    parameters: &LinuxParameters,
    ipc_mode: Option<IpcMode>,
) -> Result<spec::LinuxParameters> {
    if let Some(error) = &parameters.malformed {
        return Err(in_container(
            name,
            format!("linuxParameters is not in ECS's shape: {}", shown(error)),
        ));
    }
    if let Some(field) = parameters.unknown.keys().next() {
        return Err(in_container(
            name,
            format!("linuxParameters.{} is not supported by berth", shown(field)),
        ));
    }
    let capabilities = parameters.capabilities.as_ref();
    let mut kernel_capabilities = spec::KernelCapabilities::default();
    for (list, given, parsed) in [
        (
            "add",
            capabilities.and_then(|c| c.add.as_ref()),
            &mut kernel_capabilities.add,
        ),
        (
            "drop",
            capabilities.and_then(|c| c.drop.as_ref()),
            &mut kernel_capabilities.drop,
        ),
    ] {
        for capability in given.into_iter().flatten() {
            let engine_name = capability_name(capability);
            if !CAPABILITIES.contains(&engine_name.as_str()) {
                return Err(in_container(
                    name,
                    format!(
                        "linuxParameters.capabilities.{list} '{}' is not a Linux capability",
                        shown(capability)
                    ),
                ));
            }
            parsed.push(engine_name);
        }
    }
    let mut devices = Vec::new();
    for (index, device) in parameters.devices.iter().flatten().enumerate() {
        if !device.host_path.starts_with('/') {
            return Err(in_container(
                name,
                format!(
                    "linuxParameters.devices[{index}].hostPath must be an absolute path, got '{}'",
                    shown(&device.host_path)
                ),
            ));
        }
        if let Some(path) = device.container_path.as_deref() {
            if !path.starts_with('/') {
                return Err(in_container(
                    name,
                    format!(
                        "linuxParameters.devices[{index}].containerPath must be an absolute \
                         path, got '{}'",
                        shown(path)
                    ),
                ));
            }
        }
        let mut permissions = Vec::new();
        for permission in device.permissions.iter().flatten() {
            let Some(parsed) = DevicePermission::parse(permission) else {
                return Err(in_container(
                    name,
                    format!(
                        "linuxParameters.devices[{index}].permissions '{}' is invalid; \
                         expected read, write or mknod",
                        shown(permission)
                    ),
                ));
            };
            if !permissions.contains(&parsed) {
                permissions.push(parsed);
            }
        }
        if permissions.is_empty() {
            permissions = DevicePermission::ALL.to_vec();
        }
        devices.push(spec::Device {
            host_path: device.host_path.clone(),
            container_path: device
                .container_path
                .clone()
                .unwrap_or_else(|| device.host_path.clone()),
            permissions,
        });
    }
    if let Some(size) = parameters.shared_memory_size {
        if !(1..=MAX_MIB).contains(&size) {
            return Err(in_container(
                name,
                format!(
                    "linuxParameters.sharedMemorySize must be between 1 and {MAX_MIB} MiB, got {size}"
                ),
            ));
        }
        if let Some(mode) = ipc_mode {
            // The shared memory is then the host's, the task's sandbox's, or absent.
            return Err(in_container(
                name,
                format!(
                    "linuxParameters.sharedMemorySize cannot be set when ipcMode is {}",
                    mode.as_ecs()
                ),
            ));
        }
    }
    let mut tmpfs_mounts = Vec::new();
    for (index, tmpfs) in parameters.tmpfs.iter().flatten().enumerate() {
        if !tmpfs.container_path.starts_with('/') {
            return Err(in_container(
                name,
                format!(
                    "linuxParameters.tmpfs[{index}].containerPath must be an absolute path, got '{}'",
                    shown(&tmpfs.container_path)
                ),
            ));
        }
        if !(1..=MAX_MIB).contains(&tmpfs.size) {
            return Err(in_container(
                name,
                format!(
                    "linuxParameters.tmpfs[{index}].size must be between 1 and {MAX_MIB} MiB, got {}",
                    tmpfs.size
                ),
            ));
        }
        for option in tmpfs.mount_options.iter().flatten() {
            let key = option
                .split_once('=')
                .map_or(option.as_str(), |(key, _)| key);
            if !TMPFS_OPTIONS.contains(&key) || option.contains(',') {
                return Err(in_container(
                    name,
                    format!(
                        "linuxParameters.tmpfs[{index}].mountOptions '{}' is not a tmpfs mount option",
                        shown(option)
                    ),
                ));
            }
        }
        tmpfs_mounts.push(spec::Tmpfs {
            container_path: tmpfs.container_path.clone(),
            size: tmpfs.size.unsigned_abs(),
            mount_options: tmpfs.mount_options.clone().unwrap_or_default(),
        });
    }
    if let Some(swap) = parameters
        .max_swap
        .filter(|swap| !(0..=MAX_MIB).contains(swap))
    {
        return Err(in_container(
            name,
            format!("linuxParameters.maxSwap must be between 0 and {MAX_MIB} MiB, got {swap}"),
        ));
    }
    let swappiness = match parameters.swappiness {
        None => None,
        Some(given) => match u8::try_from(given) {
            Ok(swappiness) if swappiness <= 100 => Some(swappiness),
            _ => {
                return Err(in_container(
                    name,
                    format!("linuxParameters.swappiness must be between 0 and 100, got {given}"),
                ))
            }
        },
    };
    Ok(spec::LinuxParameters {
        init_process_enabled: parameters.init_process_enabled.unwrap_or(false),
        capabilities: kernel_capabilities,
        devices,
        // Bounded above: between 1 and MAX_MIB.
        shared_memory_size: positive(parameters.shared_memory_size),
        tmpfs: tmpfs_mounts,
        max_swap: parameters.max_swap.map(i64::unsigned_abs),
        swappiness,
    })
}

/// An ECS dockerSecurityOptions entry berth honours, parsed once for validation, the
/// privilege policy and the agent alike. On the wire it is ECS's string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SecurityOption {
    /// `no-new-privileges` or `no-new-privileges:true`: lowers what the container may do.
    NoNewPrivileges,
    /// `apparmor:PROFILE`.
    AppArmor(String),
    /// `label:VALUE` (SELinux).
    Label(String),
    /// `seccomp:unconfined`.
    SeccompUnconfined,
}

impl SecurityOption {
    /// The option, or why berth cannot pass it on.
    pub fn parse(option: &str) -> std::result::Result<Self, String> {
        if option == "no-new-privileges" || option == "no-new-privileges:true" {
            return Ok(SecurityOption::NoNewPrivileges);
        }
        let (key, value) = option.split_once(':').unwrap_or((option, ""));
        match key {
            "apparmor" if !value.is_empty() => Ok(SecurityOption::AppArmor(value.to_string())),
            "label" if !value.is_empty() => Ok(SecurityOption::Label(value.to_string())),
            // The engine's API takes a seccomp profile's JSON itself, not a path.
            "seccomp" if value == "unconfined" => Ok(SecurityOption::SeccompUnconfined),
            "seccomp" => Err(format!(
                "dockerSecurityOptions '{}' is not supported by berth: only seccomp:unconfined \
                 (the engine's default profile applies otherwise)",
                shown(option)
            )),
            "credentialspec" => Err(format!(
                "dockerSecurityOptions '{}' is not supported by berth: credential specs are for \
                 Windows containers",
                shown(option)
            )),
            _ => Err(format!(
                "dockerSecurityOptions '{}' is not supported by berth; expected \
                 no-new-privileges, apparmor:PROFILE, label:VALUE or seccomp:unconfined",
                shown(option)
            )),
        }
    }

    /// The option as ECS writes it.
    pub fn as_ecs(&self) -> String {
        match self {
            SecurityOption::NoNewPrivileges => "no-new-privileges".to_string(),
            SecurityOption::AppArmor(profile) => format!("apparmor:{profile}"),
            SecurityOption::Label(value) => format!("label:{value}"),
            SecurityOption::SeccompUnconfined => "seccomp:unconfined".to_string(),
        }
    }

    /// The engine's SecurityOpt entry. ECS writes `apparmor:PROFILE`; the engine reads
    /// `apparmor=PROFILE`.
    pub fn engine(&self) -> String {
        match self {
            SecurityOption::NoNewPrivileges => "no-new-privileges".to_string(),
            SecurityOption::AppArmor(profile) => format!("apparmor={profile}"),
            SecurityOption::Label(value) => format!("label={value}"),
            SecurityOption::SeccompUnconfined => "seccomp=unconfined".to_string(),
        }
    }

    /// Whether it replaces a profile the engine confines containers with (a use of
    /// `security-profile`); `no-new-privileges` only takes privilege away.
    pub fn changes_profile(&self) -> bool {
        !matches!(self, SecurityOption::NoNewPrivileges)
    }
}

impl TryFrom<String> for SecurityOption {
    type Error = String;

    fn try_from(option: String) -> std::result::Result<Self, Self::Error> {
        SecurityOption::parse(&option)
    }
}

impl From<SecurityOption> for String {
    fn from(option: SecurityOption) -> String {
        option.as_ecs()
    }
}

/// An ECS dockerSecurityOptions entry as the engine's SecurityOpt, or why berth
/// cannot pass it on.
pub fn engine_security_option(option: &str) -> std::result::Result<String, String> {
    SecurityOption::parse(option).map(|option| option.engine())
}

/// `net_admin`, `CAP_NET_ADMIN` -> `NET_ADMIN`, as the engine reads them.
pub fn capability_name(given: &str) -> String {
    let upper = given.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

fn unsupported(field: &str, why: &str) -> String {
    format!("{field} is not supported by berth: {why}")
}

/// Task-level fields berth cannot honour. Fields that matter only inside AWS
/// (`taskRoleArn`, `executionRoleArn`, `requiresCompatibilities`, `ephemeralStorage`,
/// `enableFaultInjection`, `runtimePlatform.cpuArchitecture`) are kept as metadata.
fn validate_unsupported_task_fields(request: &RegisterTaskDefinitionRequest) -> Result {
    if request.proxy_configuration.as_ref().is_some_and(is_given) {
        return Err(ValidationError::new(unsupported(
            "proxyConfiguration",
            "berth has no App Mesh proxy",
        )));
    }
    if request
        .inference_accelerators
        .as_ref()
        .is_some_and(is_given)
    {
        return Err(ValidationError::new(unsupported(
            "inferenceAccelerators",
            "berth has no Elastic Inference accelerators",
        )));
    }
    let family = request
        .runtime_platform
        .as_ref()
        .and_then(|platform| platform.get("operatingSystemFamily"))
        .and_then(|family| family.as_str());
    if let Some(family) = family.filter(|family| *family != "LINUX") {
        return Err(ValidationError::new(unsupported(
            &format!("runtimePlatform.operatingSystemFamily '{}'", shown(family)),
            "berth runs Linux containers only",
        )));
    }
    for volume in &request.volumes {
        let name = volume.name.as_deref().unwrap_or_default();
        if volume
            .efs_volume_configuration
            .as_ref()
            .is_some_and(is_given)
        {
            return Err(ValidationError::new(format!(
                "Volume '{name}': {}",
                unsupported(
                    "efsVolumeConfiguration",
                    "mount the file system on the host and use host.sourcePath"
                )
            )));
        }
        if volume
            .fsx_windows_file_server_volume_configuration
            .as_ref()
            .is_some_and(is_given)
        {
            return Err(ValidationError::new(format!(
                "Volume '{name}': {}",
                unsupported(
                    "fsxWindowsFileServerVolumeConfiguration",
                    "it is for Windows containers; berth runs Linux containers only"
                )
            )));
        }
        if volume.configured_at_launch == Some(true) {
            return Err(ValidationError::new(format!(
                "Volume '{name}': {}",
                unsupported(
                    "configuredAtLaunch",
                    "berth configures no volumes at launch"
                )
            )));
        }
    }
    Ok(())
}

/// Container fields berth cannot honour. `versionConsistency` and the port mappings'
/// `name` and `appProtocol` (Service Connect) are kept as metadata.
fn validate_unsupported_container_fields(name: &str, container: &ContainerDefinition) -> Result {
    let refuse = |field: &str, why: &str| Err(in_container(name, unsupported(field, why)));
    if container
        .repository_credentials
        .as_ref()
        .is_some_and(is_given)
    {
        return refuse(
            "repositoryCredentials",
            "berth has no secrets store; log the engine in to the registry instead",
        );
    }
    let restart_enabled = container
        .restart_policy
        .as_ref()
        .and_then(|policy| policy.get("enabled"))
        .and_then(|enabled| enabled.as_bool());
    if restart_enabled == Some(true) {
        return refuse(
            "restartPolicy",
            "berth replaces a service's stopped tasks instead of restarting containers",
        );
    }
    if container.disable_networking == Some(true) {
        return refuse("disableNetworking", "use networkMode none");
    }
    if container
        .system_controls
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return refuse("systemControls", "berth sets no sysctls");
    }
    if container
        .resource_requirements
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return refuse(
            "resourceRequirements",
            "berth schedules no GPUs or accelerators",
        );
    }
    if container
        .firelens_configuration
        .as_ref()
        .is_some_and(is_given)
    {
        return refuse(
            "firelensConfiguration",
            "berth has no FireLens log router; containers log to json-file",
        );
    }
    if container
        .credential_specs
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return refuse(
            "credentialSpecs",
            "credential specs are for Windows containers",
        );
    }
    let port_range = container
        .port_mappings
        .iter()
        .flatten()
        .filter_map(|mapping| mapping.container_port_range.as_deref())
        .find(|range| !range.is_empty());
    if let Some(range) = port_range {
        return refuse(
            &format!("portMappings containerPortRange '{}'", shown(range)),
            "map each port with containerPort",
        );
    }
    Ok(())
}

/// JSON `null`, `{}` and `[]` ask for nothing.
fn is_given(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Object(map) => !map.is_empty(),
        serde_json::Value::Array(items) => !items.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests;
