//! The load-balancing part of `berth apply`: `loadBalancers`, `targetGroups` and
//! `listeners` in the same file as services. Entries are read in camelCase or ELBv2's
//! PascalCase, checked before anything changes, compared with what berth has, and
//! applied through the ELBv2 API (awsQuery) on the same endpoint as ECS.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{anyhow, bail};
use berth_api::{
    DescribeServicesRequest, DescribeServicesResponse, ListClustersResponse, ListRequest,
    ListServicesRequest, ListServicesResponse, Service,
};
use berth_core::elbv2::model::Scheme;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::plan::{Action, Plan};
use super::{entry, list, object_string, Applier, Manifest};
use crate::client::{is_elbv2_error, XmlElement};

// ---- the file's shapes ----

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(in crate::client::commands) struct LoadBalancerSpec {
    pub name: String,
    /// application (default) | network
    #[serde(default, rename = "type")]
    pub load_balancer_type: Option<String>,
    /// internet-facing (default) | internal
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub ip_address_type: Option<String>,
}

/// A number or a string in the file (`port: 80`, `port: "80"`, `matcher: 200`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(in crate::client::commands) enum Text {
    Number(i64),
    String(String),
}

impl Text {
    fn as_string(&self) -> String {
        match self {
            Text::Number(n) => n.to_string(),
            Text::String(s) => s.clone(),
        }
    }
}

/// `matcher: "200-399"` or ELBv2's `Matcher: {HttpCode: "200-399"}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(in crate::client::commands) enum MatcherSpec {
    Code(Text),
    Object {
        #[serde(rename = "httpCode")]
        http_code: Text,
    },
}

impl MatcherSpec {
    fn code(&self) -> String {
        match self {
            MatcherSpec::Code(code) | MatcherSpec::Object { http_code: code } => code.as_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(in crate::client::commands) struct TargetGroupSpec {
    pub name: String,
    /// HTTP (default) | TCP
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    /// instance (default) | ip
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub health_check_protocol: Option<String>,
    #[serde(default)]
    pub health_check_port: Option<Text>,
    #[serde(default)]
    pub health_check_path: Option<String>,
    #[serde(default)]
    pub health_check_interval_seconds: Option<i64>,
    #[serde(default)]
    pub health_check_timeout_seconds: Option<i64>,
    #[serde(default)]
    pub healthy_threshold_count: Option<i64>,
    #[serde(default)]
    pub unhealthy_threshold_count: Option<i64>,
    #[serde(default)]
    pub matcher: Option<MatcherSpec>,
    /// The target group attribute `deregistration_delay.timeout_seconds` (ELBv2: 300).
    #[serde(default)]
    pub deregistration_delay_seconds: Option<i64>,
}

impl TargetGroupSpec {
    fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("HTTP")
    }

    fn target_type(&self) -> &str {
        self.target_type.as_deref().unwrap_or("instance")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(in crate::client::commands) struct ListenerSpec {
    /// A load balancer's name (of this file or existing) or ARN.
    #[serde(alias = "loadBalancerArn", alias = "loadBalancerName")]
    pub load_balancer: String,
    pub port: i64,
    /// HTTP for application load balancers, TCP for network ones (the default).
    #[serde(default)]
    pub protocol: Option<String>,
    /// The target group the listener forwards to: a name or an ARN.
    #[serde(alias = "targetGroupArn", alias = "targetGroupName")]
    pub target_group: String,
}

// ---- parsing (pure) ----

/// ELBv2's PascalCase member names (`HealthCheckPath`) read as camelCase.
fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut chars = key.chars();
                    let key = match chars.next() {
                        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                        None => key,
                    };
                    (key, camel_case_keys(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

/// Reads `loadBalancers`, `targetGroups` and `listeners` out of the file's top level.
pub(super) fn parse(top: &mut Map<String, Value>, manifest: &mut Manifest) -> anyhow::Result<()> {
    for (index, item) in list(top, "loadBalancers")?.into_iter().enumerate() {
        let item = camel_case_keys(match item {
            Value::String(name) => serde_json::json!({ "name": name }),
            other => other,
        });
        let label = format!(
            "loadBalancers[{index}] (load balancer {})",
            object_string(&item, "name")
        );
        manifest.load_balancers.push(entry(label, item)?);
    }
    for (index, item) in list(top, "targetGroups")?.into_iter().enumerate() {
        let item = camel_case_keys(item);
        let label = format!(
            "targetGroups[{index}] (target group {})",
            object_string(&item, "name")
        );
        manifest.target_groups.push(entry(label, item)?);
    }
    for (index, item) in list(top, "listeners")?.into_iter().enumerate() {
        let item = camel_case_keys(item);
        let port = item
            .get("port")
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".to_string());
        let load_balancer = ["loadBalancer", "loadBalancerName", "loadBalancerArn"]
            .iter()
            .find_map(|k| item.get(k).and_then(Value::as_str))
            .map(|name| super::super::name_from_arn(name).to_string())
            .unwrap_or_else(|| "?".to_string());
        let label = format!("listeners[{index}] (listener {load_balancer}:{port})");
        manifest.listeners.push(entry(label, item)?);
    }
    Ok(())
}

/// A service's `loadBalancers[].targetGroup` (a target group of the file, by name) is
/// kept in `targetGroupArn` until apply resolves it; ARNs start with `arn:`, names
/// cannot.
pub(super) fn fold_target_group_names(service: &mut Value) -> anyhow::Result<()> {
    let Some(Value::Array(items)) = service.get_mut("loadBalancers") else {
        return Ok(());
    };
    for (index, item) in items.iter_mut().enumerate() {
        let Value::Object(object) = item else {
            continue;
        };
        let Some(name) = object.remove("targetGroup") else {
            continue;
        };
        if object.contains_key("targetGroupArn") {
            bail!("loadBalancers[{index}]: give targetGroup or targetGroupArn, not both");
        }
        object.insert("targetGroupArn".to_string(), name);
    }
    Ok(())
}

// ---- checks before any change (pure) ----

fn is_arn(reference: &str) -> bool {
    reference.starts_with("arn:")
}

/// ELBv2's names: 1-32 letters, digits and hyphens, no hyphen at either end.
fn valid_elbv2_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_range(
    label: &str,
    field: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> anyhow::Result<()> {
    match value {
        Some(value) if value < min || value > max => {
            bail!("{label}: {field} {value} is out of range ({min}-{max})")
        }
        _ => Ok(()),
    }
}

/// `200`, `200,204`, `200-399`: HTTP codes 200 to 499, as an ALB takes them.
fn valid_matcher(code: &str) -> bool {
    let valid = |text: &str| {
        text.trim()
            .parse::<u16>()
            .is_ok_and(|c| (200..=499).contains(&c))
    };
    !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((low, high)) => valid(low) && valid(high) && low.trim() <= high.trim(),
            None => valid(part),
        })
}

pub(super) fn validate(manifest: &Manifest) -> anyhow::Result<()> {
    let mut load_balancers = BTreeSet::new();
    for load_balancer in &manifest.load_balancers {
        let (label, spec) = (&load_balancer.label, &load_balancer.body);
        if !valid_elbv2_name(&spec.name) {
            bail!("{label}: name '{}' must be 1-32 letters, digits or hyphens, not starting or ending with a hyphen", spec.name);
        }
        if let Some(kind) = spec
            .load_balancer_type
            .as_deref()
            .filter(|t| !["application", "network"].contains(t))
        {
            bail!("{label}: type '{kind}' must be application or network");
        }
        if let Some(scheme) = spec
            .scheme
            .as_deref()
            .filter(|s| Scheme::from_elbv2(s).is_none())
        {
            bail!("{label}: scheme '{scheme}' must be internet-facing or internal");
        }
        if !load_balancers.insert(spec.name.as_str()) {
            bail!(
                "{label}: load balancer '{}' appears twice in the file",
                spec.name
            );
        }
    }
    let mut target_groups = BTreeSet::new();
    for target_group in &manifest.target_groups {
        let (label, spec) = (&target_group.label, &target_group.body);
        if !valid_elbv2_name(&spec.name) {
            bail!("{label}: name '{}' must be 1-32 letters, digits or hyphens, not starting or ending with a hyphen", spec.name);
        }
        if !["HTTP", "TCP"].contains(&spec.protocol()) {
            bail!(
                "{label}: protocol '{}' must be HTTP or TCP",
                spec.protocol()
            );
        }
        match spec.port {
            None => bail!("{label}: port is missing"),
            Some(port) => check_range(label, "port", Some(port), 1, 65535)?,
        }
        if !["instance", "ip"].contains(&spec.target_type()) {
            bail!(
                "{label}: targetType '{}' must be instance or ip",
                spec.target_type()
            );
        }
        if let Some(path) = spec
            .health_check_path
            .as_deref()
            .filter(|p| !p.starts_with('/'))
        {
            bail!("{label}: healthCheckPath '{path}' must start with '/'");
        }
        check_range(
            label,
            "healthCheckIntervalSeconds",
            spec.health_check_interval_seconds,
            5,
            300,
        )?;
        check_range(
            label,
            "healthCheckTimeoutSeconds",
            spec.health_check_timeout_seconds,
            2,
            120,
        )?;
        check_range(
            label,
            "healthyThresholdCount",
            spec.healthy_threshold_count,
            2,
            10,
        )?;
        check_range(
            label,
            "unhealthyThresholdCount",
            spec.unhealthy_threshold_count,
            2,
            10,
        )?;
        check_range(
            label,
            "deregistrationDelaySeconds",
            spec.deregistration_delay_seconds,
            0,
            3600,
        )?;
        let health = wanted_health_check(spec);
        if health.timeout_seconds >= health.interval_seconds {
            bail!(
                "{label}: healthCheckTimeoutSeconds {} must be less than healthCheckIntervalSeconds {}",
                health.timeout_seconds,
                health.interval_seconds
            );
        }
        if let Some(code) = spec.matcher.as_ref().map(MatcherSpec::code) {
            if !valid_matcher(&code) {
                bail!("{label}: matcher '{code}' must be HTTP codes from 200 to 499 as '200', '200,202' or '200-399'");
            }
        }
        if !target_groups.insert(spec.name.as_str()) {
            bail!(
                "{label}: target group '{}' appears twice in the file",
                spec.name
            );
        }
    }
    let mut ports: BTreeMap<i64, &str> = BTreeMap::new();
    let mut balancer_of_group: BTreeMap<&str, &str> = BTreeMap::new();
    for listener in &manifest.listeners {
        let (label, spec) = (&listener.label, &listener.body);
        check_range(label, "port", Some(spec.port), 1, 65535)?;
        if let Some(protocol) = spec
            .protocol
            .as_deref()
            .filter(|p| !["HTTP", "TCP"].contains(p))
        {
            bail!("{label}: protocol '{protocol}' must be HTTP or TCP");
        }
        for (field, reference) in [
            ("loadBalancer", &spec.load_balancer),
            ("targetGroup", &spec.target_group),
        ] {
            if reference.is_empty() {
                bail!("{label}: {field} is empty");
            }
        }
        if let Some(other) = ports.insert(spec.port, &listener.label) {
            // berth's load balancers share the machine's addresses: one listener a port.
            bail!("{label}: port {} is already taken by {other} (a port serves one listener on this machine)", spec.port);
        }
        if let Some(other) = balancer_of_group.insert(&spec.target_group, &spec.load_balancer) {
            if other != spec.load_balancer {
                bail!(
                    "{label}: target group '{}' is already forwarded to by load balancer '{other}'; a target group belongs to one load balancer",
                    spec.target_group
                );
            }
        }
    }
    for service in &manifest.services {
        for (index, load_balancer) in service.body.load_balancers.iter().enumerate() {
            let label = &service.label;
            if load_balancer
                .target_group_arn
                .as_deref()
                .unwrap_or_default()
                .is_empty()
            {
                bail!("{label}: loadBalancers[{index}]: targetGroup (a target group's name) or targetGroupArn is missing");
            }
            if load_balancer
                .container_name
                .as_deref()
                .unwrap_or_default()
                .is_empty()
            {
                bail!("{label}: loadBalancers[{index}]: containerName is missing");
            }
            match load_balancer.container_port {
                None => bail!("{label}: loadBalancers[{index}]: containerPort is missing"),
                Some(port) => check_range(
                    label,
                    &format!("loadBalancers[{index}].containerPort"),
                    Some(port),
                    1,
                    65535,
                )?,
            }
        }
    }
    Ok(())
}

// ---- comparing with what berth has (pure) ----

/// A target group's health check, every field decided (ELBv2's defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HealthCheck {
    pub protocol: String,
    pub port: String,
    pub path: Option<String>,
    pub interval_seconds: i64,
    pub timeout_seconds: i64,
    pub healthy_threshold_count: i64,
    pub unhealthy_threshold_count: i64,
    pub matcher: Option<String>,
}

/// ELBv2's defaults for a new target group of `protocol`.
fn default_health_check(protocol: &str) -> HealthCheck {
    let http = protocol == "HTTP";
    HealthCheck {
        protocol: protocol.to_string(),
        port: "traffic-port".to_string(),
        path: http.then(|| "/".to_string()),
        interval_seconds: 30,
        timeout_seconds: if http { 5 } else { 10 },
        healthy_threshold_count: 5,
        unhealthy_threshold_count: 2,
        matcher: http.then(|| "200".to_string()),
    }
}

/// The health check the file asks for: what it gives over ELBv2's defaults.
pub(super) fn wanted_health_check(spec: &TargetGroupSpec) -> HealthCheck {
    let mut health = default_health_check(spec.protocol());
    if let Some(protocol) = spec.health_check_protocol.as_deref() {
        if protocol != health.protocol {
            health.protocol = protocol.to_string();
            let http = protocol == "HTTP";
            health.path = http.then(|| "/".to_string());
            health.matcher = http.then(|| "200".to_string());
        }
    }
    if let Some(port) = &spec.health_check_port {
        health.port = port.as_string();
    }
    if let Some(path) = &spec.health_check_path {
        health.path = Some(path.clone());
    }
    if let Some(value) = spec.health_check_interval_seconds {
        health.interval_seconds = value;
    }
    if let Some(value) = spec.health_check_timeout_seconds {
        health.timeout_seconds = value;
    }
    if let Some(value) = spec.healthy_threshold_count {
        health.healthy_threshold_count = value;
    }
    if let Some(value) = spec.unhealthy_threshold_count {
        health.unhealthy_threshold_count = value;
    }
    if let Some(matcher) = &spec.matcher {
        health.matcher = Some(matcher.code());
    }
    health
}

/// What berth has for a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CurrentTargetGroup {
    pub arn: String,
    pub protocol: String,
    pub port: Option<i64>,
    pub target_type: String,
    pub health_check: HealthCheck,
    /// The load balancers that forward to it.
    pub load_balancer_arns: Vec<String>,
}

impl CurrentTargetGroup {
    fn from_xml(member: &XmlElement) -> anyhow::Result<Self> {
        let text = |path: &[&str]| member.text_at(path).map(str::to_string);
        let number = |name: &str| {
            member
                .number_at(&[name])
                .ok_or_else(|| anyhow!("berth's target group has no {name}"))
        };
        Ok(CurrentTargetGroup {
            arn: text(&["TargetGroupArn"])
                .ok_or_else(|| anyhow!("berth's target group has no ARN"))?,
            protocol: text(&["Protocol"]).unwrap_or_default(),
            port: member.number_at(&["Port"]),
            target_type: text(&["TargetType"]).unwrap_or_default(),
            health_check: HealthCheck {
                protocol: text(&["HealthCheckProtocol"]).unwrap_or_default(),
                port: text(&["HealthCheckPort"]).unwrap_or_default(),
                path: text(&["HealthCheckPath"]),
                interval_seconds: number("HealthCheckIntervalSeconds")?,
                timeout_seconds: number("HealthCheckTimeoutSeconds")?,
                healthy_threshold_count: number("HealthyThresholdCount")?,
                unhealthy_threshold_count: number("UnhealthyThresholdCount")?,
                matcher: text(&["Matcher", "HttpCode"]),
            },
            load_balancer_arns: member
                .members(&["LoadBalancerArns"])
                .into_iter()
                .filter_map(|arn| arn.text_at(&[]))
                .map(str::to_string)
                .collect(),
        })
    }
}

/// One ModifyTargetGroup parameter that differs, and the words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HealthCheckChange {
    pub parameter: &'static str,
    pub value: String,
    pub words: String,
}

/// The ModifyTargetGroup parameters that make `current` what the file asks for; an
/// error when the file asks for what ELBv2 cannot change in place.
pub(super) fn target_group_changes(
    spec: &TargetGroupSpec,
    current: &CurrentTargetGroup,
) -> anyhow::Result<Vec<HealthCheckChange>> {
    let mut fixed = Vec::new();
    if spec.protocol() != current.protocol {
        fixed.push(format!(
            "protocol {} -> {}",
            current.protocol,
            spec.protocol()
        ));
    }
    if spec.port != current.port {
        fixed.push(format!(
            "port {} -> {}",
            current.port.map(|p| p.to_string()).unwrap_or_default(),
            spec.port.map(|p| p.to_string()).unwrap_or_default()
        ));
    }
    if spec.target_type() != current.target_type {
        fixed.push(format!(
            "targetType {} -> {}",
            current.target_type,
            spec.target_type()
        ));
    }
    if !fixed.is_empty() {
        bail!(
            "target group '{}' exists with other settings that cannot change in place ({}); delete it first (aws elbv2 delete-target-group) or use another name",
            spec.name,
            fixed.join(", ")
        );
    }
    let wanted = wanted_health_check(spec);
    let have = &current.health_check;
    let mut changes = Vec::new();
    let mut text =
        |parameter: &'static str, field: &str, have: Option<&str>, wanted: Option<&str>| {
            if let Some(wanted) = wanted.filter(|w| Some(*w) != have) {
                changes.push(HealthCheckChange {
                    parameter,
                    value: wanted.to_string(),
                    words: format!("{field} {} -> {wanted}", have.unwrap_or("-")),
                });
            }
        };
    text(
        "HealthCheckProtocol",
        "healthCheckProtocol",
        Some(&have.protocol),
        Some(&wanted.protocol),
    );
    text(
        "HealthCheckPort",
        "healthCheckPort",
        Some(&have.port),
        Some(&wanted.port),
    );
    text(
        "HealthCheckPath",
        "healthCheckPath",
        have.path.as_deref(),
        wanted.path.as_deref(),
    );
    let interval = (
        have.interval_seconds.to_string(),
        wanted.interval_seconds.to_string(),
    );
    text(
        "HealthCheckIntervalSeconds",
        "healthCheckIntervalSeconds",
        Some(&interval.0),
        Some(&interval.1),
    );
    let timeout = (
        have.timeout_seconds.to_string(),
        wanted.timeout_seconds.to_string(),
    );
    text(
        "HealthCheckTimeoutSeconds",
        "healthCheckTimeoutSeconds",
        Some(&timeout.0),
        Some(&timeout.1),
    );
    let healthy = (
        have.healthy_threshold_count.to_string(),
        wanted.healthy_threshold_count.to_string(),
    );
    text(
        "HealthyThresholdCount",
        "healthyThresholdCount",
        Some(&healthy.0),
        Some(&healthy.1),
    );
    let unhealthy = (
        have.unhealthy_threshold_count.to_string(),
        wanted.unhealthy_threshold_count.to_string(),
    );
    text(
        "UnhealthyThresholdCount",
        "unhealthyThresholdCount",
        Some(&unhealthy.0),
        Some(&unhealthy.1),
    );
    text(
        "Matcher.HttpCode",
        "matcher",
        have.matcher.as_deref(),
        wanted.matcher.as_deref(),
    );
    Ok(changes)
}

/// What berth has for a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CurrentListener {
    pub port: i64,
    pub protocol: String,
    pub target_group_arn: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ListenerPlan {
    Unchanged,
    Create,
}

/// Whether the listener the file asks for exists, is to be created, or clashes with one
/// that forwards elsewhere.
pub(super) fn listener_plan(
    spec: &ListenerSpec,
    target_group_arn: &str,
    existing: &[CurrentListener],
) -> anyhow::Result<ListenerPlan> {
    let Some(current) = existing.iter().find(|l| l.port == spec.port) else {
        return Ok(ListenerPlan::Create);
    };
    if current.target_group_arn != target_group_arn {
        bail!(
            "the listener on port {} of load balancer '{}' forwards to target group '{}', not '{}'; delete it first (aws elbv2 delete-listener)",
            spec.port,
            super::super::name_from_arn(&spec.load_balancer),
            target_group_name(&current.target_group_arn),
            target_group_name(target_group_arn)
        );
    }
    if let Some(protocol) = spec.protocol.as_deref().filter(|p| *p != current.protocol) {
        bail!(
            "the listener on port {} of load balancer '{}' speaks {}, not {protocol}; delete it first (aws elbv2 delete-listener)",
            spec.port,
            super::super::name_from_arn(&spec.load_balancer),
            current.protocol
        );
    }
    Ok(ListenerPlan::Unchanged)
}

/// `arn:...:targetgroup/member/0123abcd` -> `member`.
fn target_group_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
}

// ---- planning and applying ----

/// What berth has for a load balancer, with its listeners.
struct CurrentLoadBalancer {
    name: String,
    arn: String,
    load_balancer_type: String,
    scheme: String,
    listeners: Vec<CurrentListener>,
}

fn result_of<'a>(root: &'a XmlElement, action: &str) -> anyhow::Result<&'a XmlElement> {
    root.child(&format!("{action}Result"))
        .ok_or_else(|| anyhow!("berth's answer to {action} has no {action}Result"))
}

/// Names (and ARNs) of load balancers and target groups, resolved to ARNs.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub load_balancers: HashMap<String, String>,
    pub target_groups: HashMap<String, String>,
}

impl Resolved {
    /// The ARN a name of the file (or a name checked to exist) stands for; an ARN as is.
    pub fn load_balancer_arn(&self, reference: &str) -> String {
        self.load_balancers
            .get(reference)
            .cloned()
            .unwrap_or_else(|| reference.to_string())
    }

    pub fn target_group_arn(&self, reference: &str) -> String {
        self.target_groups
            .get(reference)
            .cloned()
            .unwrap_or_else(|| reference.to_string())
    }
}

/// The name of a load balancer berth has, from its ARN (the ARN itself if unknown).
fn load_balancer_name<'a>(existing: &'a [CurrentLoadBalancer], arn: &'a str) -> &'a str {
    existing
        .iter()
        .find(|lb| lb.arn == arn)
        .map_or(arn, |lb| lb.name.as_str())
}

impl Applier<'_> {
    async fn elbv2_xml(
        &self,
        action: &str,
        params: Vec<(String, String)>,
    ) -> anyhow::Result<XmlElement> {
        let text = self.client.elbv2(action, params).await?;
        XmlElement::parse(&text)
            .map_err(|e| anyhow!("berth's answer to {action} is not XML: {e:#}"))
    }

    /// Every load balancer berth has, each with its listeners: a port is taken
    /// machine-wide, so a listener of the file is checked against all of them.
    async fn current_load_balancers(&self) -> anyhow::Result<Vec<CurrentLoadBalancer>> {
        let mut load_balancers = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let params = marker
                .take()
                .map(|m| vec![("Marker".to_string(), m)])
                .unwrap_or_default();
            let root = self.elbv2_xml("DescribeLoadBalancers", params).await?;
            let result = result_of(&root, "DescribeLoadBalancers")?;
            for member in result.members(&["LoadBalancers"]) {
                let text = |name: &str| member.text_at(&[name]).unwrap_or_default().to_string();
                let arn = text("LoadBalancerArn");
                let listeners = self.describe_listeners(&arn).await?;
                load_balancers.push(CurrentLoadBalancer {
                    name: text("LoadBalancerName"),
                    arn,
                    load_balancer_type: text("Type"),
                    scheme: text("Scheme"),
                    listeners,
                });
            }
            match result.text_at(&["NextMarker"]) {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(load_balancers),
            }
        }
    }

    async fn describe_target_group(
        &self,
        reference: &str,
    ) -> anyhow::Result<Option<CurrentTargetGroup>> {
        let key = if is_arn(reference) {
            "TargetGroupArns.member.1"
        } else {
            "Names.member.1"
        };
        let root = match self
            .elbv2_xml(
                "DescribeTargetGroups",
                vec![(key.to_string(), reference.to_string())],
            )
            .await
        {
            Ok(root) => root,
            Err(error) if is_elbv2_error(&error, "TargetGroupNotFound") => return Ok(None),
            Err(error) => return Err(error),
        };
        let result = result_of(&root, "DescribeTargetGroups")?;
        result
            .members(&["TargetGroups"])
            .first()
            .map(|member| CurrentTargetGroup::from_xml(member))
            .transpose()
    }

    async fn deregistration_delay(&self, target_group_arn: &str) -> anyhow::Result<Option<i64>> {
        let root = self
            .elbv2_xml(
                "DescribeTargetGroupAttributes",
                vec![("TargetGroupArn".to_string(), target_group_arn.to_string())],
            )
            .await?;
        let result = result_of(&root, "DescribeTargetGroupAttributes")?;
        Ok(result
            .members(&["Attributes"])
            .into_iter()
            .find(|a| a.text_at(&["Key"]) == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.number_at(&["Value"])))
    }

    async fn set_deregistration_delay(
        &self,
        target_group_arn: &str,
        seconds: i64,
    ) -> anyhow::Result<()> {
        self.elbv2_xml(
            "ModifyTargetGroupAttributes",
            vec![
                ("TargetGroupArn".to_string(), target_group_arn.to_string()),
                (
                    "Attributes.member.1.Key".to_string(),
                    DEREGISTRATION_DELAY.to_string(),
                ),
                ("Attributes.member.1.Value".to_string(), seconds.to_string()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn describe_listeners(
        &self,
        load_balancer_arn: &str,
    ) -> anyhow::Result<Vec<CurrentListener>> {
        let root = self
            .elbv2_xml(
                "DescribeListeners",
                vec![("LoadBalancerArn".to_string(), load_balancer_arn.to_string())],
            )
            .await?;
        Ok(result_of(&root, "DescribeListeners")?
            .members(&["Listeners"])
            .into_iter()
            .map(|member| CurrentListener {
                port: member.number_at(&["Port"]).unwrap_or_default(),
                protocol: member
                    .text_at(&["Protocol"])
                    .unwrap_or_default()
                    .to_string(),
                target_group_arn: member
                    .members(&["DefaultActions"])
                    .first()
                    .and_then(|a| a.text_at(&["TargetGroupArn"]))
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect())
    }

    /// Read-only: the steps for the file's load balancers, target groups and listeners.
    /// Refused here, before any change: a name that resolves to nothing; a load balancer
    /// or target group that exists with settings that cannot change in place; a port
    /// another listener holds; a target group that belongs to a load balancer other
    /// than the one the file forwards to it from (or to one the file does not declare).
    pub(super) async fn plan_load_balancing(
        &self,
        manifest: &Manifest,
        plan: &mut Plan,
    ) -> anyhow::Result<()> {
        let file = &self.file_name;
        let file_target_groups: BTreeSet<&str> = manifest
            .target_groups
            .iter()
            .map(|t| t.body.name.as_str())
            .collect();
        let file_load_balancers: BTreeSet<&str> = manifest
            .load_balancers
            .iter()
            .map(|l| l.body.name.as_str())
            .collect();
        let existing = if manifest.load_balancers.is_empty()
            && manifest.listeners.is_empty()
            && manifest.target_groups.is_empty()
        {
            Vec::new()
        } else {
            self.current_load_balancers().await?
        };
        let find = |reference: &str| {
            existing
                .iter()
                .find(|lb| lb.name == reference || lb.arn == reference)
        };

        // Load balancers: of the file, and those its listeners name outside it.
        let mut load_balancer_steps = Vec::new();
        for load_balancer in &manifest.load_balancers {
            let (label, spec) = (&load_balancer.label, &load_balancer.body);
            match find(&spec.name) {
                Some(current) => {
                    check_load_balancer_kind(spec, current)
                        .map_err(|e| anyhow!("{file}: {label}: {e}"))?;
                    plan.references
                        .load_balancers
                        .insert(spec.name.clone(), current.arn.clone());
                    load_balancer_steps.push((
                        label,
                        format!("load balancer {} unchanged", spec.name),
                        Action::Nothing,
                    ));
                }
                None => load_balancer_steps.push((
                    label,
                    format!("load balancer {} created", spec.name),
                    Action::CreateLoadBalancer(spec.clone()),
                )),
            }
        }
        for listener in &manifest.listeners {
            let reference = listener.body.load_balancer.as_str();
            if file_load_balancers.contains(reference) {
                continue;
            }
            match find(reference) {
                Some(current) => {
                    plan.references
                        .load_balancers
                        .insert(reference.to_string(), current.arn.clone());
                }
                None => bail!(
                    "{file}: {}: load balancer '{reference}' not found (list it under loadBalancers: to create it)",
                    listener.label
                ),
            }
        }

        // Target groups: of the file if berth has them, and those named outside it.
        let mut current_groups: HashMap<&str, CurrentTargetGroup> = HashMap::new();
        for target_group in &manifest.target_groups {
            if let Some(current) = self.describe_target_group(&target_group.body.name).await? {
                current_groups.insert(&target_group.body.name, current);
            }
        }
        let mut named_outside: Vec<(&str, &str)> = manifest
            .listeners
            .iter()
            .map(|l| (l.label.as_str(), l.body.target_group.as_str()))
            .collect();
        for service in &manifest.services {
            for load_balancer in &service.body.load_balancers {
                if let Some(reference) = load_balancer.target_group_arn.as_deref() {
                    named_outside.push((&service.label, reference));
                }
            }
        }
        for (label, reference) in named_outside {
            if file_target_groups.contains(reference) || current_groups.contains_key(reference) {
                continue;
            }
            match self.describe_target_group(reference).await? {
                Some(current) => {
                    current_groups.insert(reference, current);
                }
                None => bail!(
                    "{file}: {label}: target group '{reference}' not found (list it under targetGroups: to create it)"
                ),
            }
        }
        for (reference, current) in &current_groups {
            plan.references
                .target_groups
                .insert(reference.to_string(), current.arn.clone());
            if !current.load_balancer_arns.is_empty() {
                plan.forwarded_target_groups.insert(reference.to_string());
                plan.forwarded_target_groups.insert(current.arn.clone());
            }
        }

        // Listeners: each port is free or already this listener; each target group is
        // forwarded to from one load balancer only.
        let mut listener_steps = Vec::new();
        for listener in &manifest.listeners {
            let (label, spec) = (&listener.label, &listener.body);
            let load_balancer_arn = plan.references.load_balancers.get(&spec.load_balancer);
            let shown = format!(
                "{}:{}",
                super::super::name_from_arn(&spec.load_balancer),
                spec.port
            );
            let refuse = |message: String| anyhow!("{file}: {label}: {message}");
            for other in &existing {
                if Some(&other.arn) == load_balancer_arn {
                    continue;
                }
                if let Some(taken) = other.listeners.iter().find(|l| l.port == spec.port) {
                    return Err(refuse(format!(
                        "port {} is already taken by listener {}:{} of load balancer '{}' (forwarding to target group '{}'), which is not this listener; berth's load balancers share this machine's addresses, so use another port or delete that listener first",
                        spec.port,
                        other.name,
                        taken.port,
                        other.name,
                        target_group_name(&taken.target_group_arn)
                    )));
                }
            }
            if let Some(current) = current_groups.get(spec.target_group.as_str()) {
                if let Some(owner) = current
                    .load_balancer_arns
                    .iter()
                    .find(|owner| Some(*owner) != load_balancer_arn)
                {
                    return Err(refuse(format!(
                        "target group '{}' already belongs to load balancer '{}'; this listener would forward to it from load balancer '{}' too, and a target group belongs to one load balancer (use another target group)",
                        target_group_name(&spec.target_group),
                        load_balancer_name(&existing, owner),
                        super::super::name_from_arn(&spec.load_balancer)
                    )));
                }
            }
            plan.forwarded_target_groups
                .insert(spec.target_group.clone());
            let step = match load_balancer_arn.and_then(|arn| find(arn)) {
                None => ListenerPlan::Create,
                Some(current) => {
                    let mut listeners = current.listeners.clone();
                    // Compared by name, as the file gives it (ARNs carry the name).
                    let wanted = &spec.target_group;
                    for listener in &mut listeners {
                        if !is_arn(wanted)
                            && target_group_name(&listener.target_group_arn) == wanted
                        {
                            listener.target_group_arn = wanted.clone();
                        }
                    }
                    listener_plan(spec, wanted, &listeners).map_err(|e| refuse(e.to_string()))?
                }
            };
            listener_steps.push(match step {
                ListenerPlan::Unchanged => (
                    label,
                    format!("listener {shown} unchanged"),
                    Action::Nothing,
                ),
                ListenerPlan::Create => (
                    label,
                    format!(
                        "listener {shown} created (forward to {})",
                        target_group_name(&spec.target_group)
                    ),
                    Action::CreateListener(spec.clone()),
                ),
            });
        }

        // A target group of the file that berth has: the file must own it, that is
        // declare every load balancer that forwards to it.
        let declared: BTreeSet<&String> = manifest
            .load_balancers
            .iter()
            .filter_map(|l| plan.references.load_balancers.get(&l.body.name))
            .chain(
                manifest
                    .listeners
                    .iter()
                    .filter(|l| file_target_groups.contains(l.body.target_group.as_str()))
                    .filter_map(|l| plan.references.load_balancers.get(&l.body.load_balancer)),
            )
            .collect();
        // Services the file declares, by (cluster, name); every service berth has is
        // read only when a target group of the file would change.
        let declared_services: BTreeSet<(String, String)> = manifest
            .services
            .iter()
            .map(|s| (self.cluster_of(&s.body), s.body.service_name.clone()))
            .collect();
        let mut services: Option<Vec<Service>> = None;
        let mut target_group_steps = Vec::new();
        for target_group in &manifest.target_groups {
            let (label, spec) = (&target_group.label, &target_group.body);
            let Some(current) = current_groups.get(spec.name.as_str()) else {
                target_group_steps.push((
                    label,
                    format!("target group {} created", spec.name),
                    Action::CreateTargetGroup(spec.clone()),
                ));
                continue;
            };
            if let Some(owner) = current
                .load_balancer_arns
                .iter()
                .find(|owner| !declared.contains(owner))
            {
                bail!(
                    "{file}: {label}: target group '{}' already exists and belongs to load balancer '{}', which this file does not declare; apply will not change a target group another load balancer uses (use another name, or declare load balancer '{}' in the file)",
                    spec.name,
                    load_balancer_name(&existing, owner),
                    load_balancer_name(&existing, owner)
                );
            }
            let (words, action) = self
                .plan_target_group_update(spec, current)
                .await
                .map_err(|e| anyhow!("{file}: {label}: {e:#}"))?;
            if !matches!(action, Action::Nothing) {
                if services.is_none() {
                    services = Some(self.every_service().await?);
                }
                let user = services.iter().flatten().find(|service| {
                    let cluster = super::super::name_from_arn(&service.cluster_arn);
                    !declared_services
                        .contains(&(cluster.to_string(), service.service_name.clone()))
                        && service
                            .load_balancers
                            .iter()
                            .any(|lb| lb.target_group_arn.as_deref() == Some(current.arn.as_str()))
                });
                if let Some(user) = user {
                    bail!(
                        "{file}: {label}: target group '{}' is used by service '{}' of cluster '{}', which this file does not declare; apply will not change a target group another service uses (use another name, or declare that service in the file)",
                        spec.name,
                        user.service_name,
                        super::super::name_from_arn(&user.cluster_arn)
                    );
                }
            }
            target_group_steps.push((label, words, action));
        }

        for (label, words, action) in load_balancer_steps
            .into_iter()
            .chain(target_group_steps)
            .chain(listener_steps)
        {
            plan.push(label, words, action);
        }
        Ok(())
    }

    /// Every ACTIVE or DRAINING service berth has, in every cluster.
    async fn every_service(&self) -> anyhow::Result<Vec<Service>> {
        let mut clusters = Vec::new();
        let mut next_token = None;
        loop {
            let request = ListRequest {
                next_token: next_token.take(),
                ..Default::default()
            };
            let response: ListClustersResponse = self.client.ecs("ListClusters", &request).await?;
            clusters.extend(response.cluster_arns);
            match response.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => break,
            }
        }
        let mut services = Vec::new();
        for cluster in clusters {
            let mut arns = Vec::new();
            loop {
                let request = ListServicesRequest {
                    cluster: Some(cluster.clone()),
                    next_token: next_token.take(),
                    ..Default::default()
                };
                let response: ListServicesResponse =
                    self.client.ecs("ListServices", &request).await?;
                arns.extend(response.service_arns);
                match response.next_token {
                    Some(token) if !token.is_empty() => next_token = Some(token),
                    _ => break,
                }
            }
            // DescribeServices takes ten at a time, as in ECS.
            for chunk in arns.chunks(10) {
                let request = DescribeServicesRequest {
                    cluster: Some(cluster.clone()),
                    services: chunk.to_vec(),
                    include: vec![],
                };
                let response: DescribeServicesResponse =
                    self.client.ecs("DescribeServices", &request).await?;
                services.extend(response.services);
            }
        }
        Ok(services)
    }

    /// The step that brings an existing target group's health check and deregistration
    /// delay to what the file says.
    async fn plan_target_group_update(
        &self,
        spec: &TargetGroupSpec,
        current: &CurrentTargetGroup,
    ) -> anyhow::Result<(String, Action)> {
        let changes = target_group_changes(spec, current)?;
        let mut words: Vec<String> = changes.iter().map(|c| c.words.clone()).collect();
        let parameters: Vec<(String, String)> = changes
            .into_iter()
            .map(|c| (c.parameter.to_string(), c.value))
            .collect();
        let wanted_delay = spec
            .deregistration_delay_seconds
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
        let delay = self
            .deregistration_delay(&current.arn)
            .await?
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
        let deregistration_delay = (delay != wanted_delay).then_some(wanted_delay);
        if deregistration_delay.is_some() {
            words.push(format!(
                "deregistrationDelaySeconds {delay} -> {wanted_delay}"
            ));
        }
        if words.is_empty() {
            return Ok((
                format!("target group {} unchanged", spec.name),
                Action::Nothing,
            ));
        }
        Ok((
            format!("target group {} updated ({})", spec.name, words.join(", ")),
            Action::ModifyTargetGroup {
                arn: current.arn.clone(),
                parameters,
                deregistration_delay,
            },
        ))
    }

    pub(super) async fn create_load_balancer(
        &self,
        spec: &LoadBalancerSpec,
    ) -> anyhow::Result<String> {
        let (wanted_type, wanted_scheme) = wanted_kind(spec);
        let mut params = vec![
            ("Name".to_string(), spec.name.clone()),
            ("Type".to_string(), wanted_type.to_string()),
            ("Scheme".to_string(), wanted_scheme.as_elbv2().to_string()),
        ];
        for (index, subnet) in spec.subnets.iter().enumerate() {
            params.push((format!("Subnets.member.{}", index + 1), subnet.clone()));
        }
        for (index, group) in spec.security_groups.iter().enumerate() {
            params.push((
                format!("SecurityGroups.member.{}", index + 1),
                group.clone(),
            ));
        }
        if let Some(kind) = &spec.ip_address_type {
            params.push(("IpAddressType".to_string(), kind.clone()));
        }
        let root = self.elbv2_xml("CreateLoadBalancer", params).await?;
        let arn = result_of(&root, "CreateLoadBalancer")?
            .members(&["LoadBalancers"])
            .first()
            .and_then(|m| m.text_at(&["LoadBalancerArn"]))
            .ok_or_else(|| anyhow!("berth's answer to CreateLoadBalancer has no LoadBalancerArn"))?
            .to_string();
        Ok(arn)
    }

    pub(super) async fn modify_target_group(
        &self,
        arn: &str,
        parameters: Vec<(String, String)>,
        deregistration_delay: Option<i64>,
    ) -> anyhow::Result<()> {
        if !parameters.is_empty() {
            let mut params = vec![("TargetGroupArn".to_string(), arn.to_string())];
            params.extend(parameters);
            self.elbv2_xml("ModifyTargetGroup", params).await?;
        }
        if let Some(seconds) = deregistration_delay {
            self.set_deregistration_delay(arn, seconds).await?;
        }
        Ok(())
    }

    /// Creates the target group as the file says; returns its ARN.
    pub(super) async fn create_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> anyhow::Result<String> {
        let wanted_delay = spec
            .deregistration_delay_seconds
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
        let mut params = vec![
            ("Name".to_string(), spec.name.clone()),
            ("Protocol".to_string(), spec.protocol().to_string()),
            ("TargetType".to_string(), spec.target_type().to_string()),
        ];
        let mut optional = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push((name.to_string(), value));
            }
        };
        optional("Port", spec.port.map(|p| p.to_string()));
        optional("VpcId", spec.vpc_id.clone());
        optional("HealthCheckProtocol", spec.health_check_protocol.clone());
        optional(
            "HealthCheckPort",
            spec.health_check_port.as_ref().map(Text::as_string),
        );
        optional("HealthCheckPath", spec.health_check_path.clone());
        optional(
            "HealthCheckIntervalSeconds",
            spec.health_check_interval_seconds.map(|v| v.to_string()),
        );
        optional(
            "HealthCheckTimeoutSeconds",
            spec.health_check_timeout_seconds.map(|v| v.to_string()),
        );
        optional(
            "HealthyThresholdCount",
            spec.healthy_threshold_count.map(|v| v.to_string()),
        );
        optional(
            "UnhealthyThresholdCount",
            spec.unhealthy_threshold_count.map(|v| v.to_string()),
        );
        optional(
            "Matcher.HttpCode",
            spec.matcher.as_ref().map(MatcherSpec::code),
        );
        let root = self.elbv2_xml("CreateTargetGroup", params).await?;
        let arn = result_of(&root, "CreateTargetGroup")?
            .members(&["TargetGroups"])
            .first()
            .and_then(|m| m.text_at(&["TargetGroupArn"]))
            .ok_or_else(|| anyhow!("berth's answer to CreateTargetGroup has no TargetGroupArn"))?
            .to_string();
        if wanted_delay != DEFAULT_DEREGISTRATION_DELAY {
            self.set_deregistration_delay(&arn, wanted_delay).await?;
        }
        Ok(arn)
    }

    pub(super) async fn create_listener(
        &self,
        spec: &ListenerSpec,
        load_balancer_arn: &str,
        target_group_arn: &str,
    ) -> anyhow::Result<()> {
        let mut params = vec![
            ("LoadBalancerArn".to_string(), load_balancer_arn.to_string()),
            ("Port".to_string(), spec.port.to_string()),
            (
                "DefaultActions.member.1.Type".to_string(),
                "forward".to_string(),
            ),
            (
                "DefaultActions.member.1.TargetGroupArn".to_string(),
                target_group_arn.to_string(),
            ),
        ];
        if let Some(protocol) = &spec.protocol {
            params.push(("Protocol".to_string(), protocol.clone()));
        }
        self.elbv2_xml("CreateListener", params).await?;
        Ok(())
    }
}

/// The type and scheme the file asks for (`validate` refused any other word).
fn wanted_kind(spec: &LoadBalancerSpec) -> (&str, Scheme) {
    let wanted_type = spec.load_balancer_type.as_deref().unwrap_or("application");
    let wanted_scheme = spec
        .scheme
        .as_deref()
        .and_then(Scheme::from_elbv2)
        .unwrap_or_default();
    (wanted_type, wanted_scheme)
}

/// A load balancer berth has must be of the type and scheme the file asks for: neither
/// changes in place.
fn check_load_balancer_kind(
    spec: &LoadBalancerSpec,
    current: &CurrentLoadBalancer,
) -> anyhow::Result<()> {
    let (wanted_type, wanted_scheme) = wanted_kind(spec);
    if current.load_balancer_type != wanted_type
        || Scheme::from_elbv2(&current.scheme) != Some(wanted_scheme)
    {
        bail!(
            "load balancer '{}' exists as {} {}, the file asks for {wanted_type} {}; delete it first (aws elbv2 delete-load-balancer) or use another name",
            spec.name,
            current.scheme,
            current.load_balancer_type,
            wanted_scheme.as_elbv2()
        );
    }
    Ok(())
}

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
const DEFAULT_DEREGISTRATION_DELAY: i64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    fn target_group(yaml: &str) -> TargetGroupSpec {
        serde_json::from_value(camel_case_keys(serde_yaml::from_str(yaml).unwrap())).unwrap()
    }

    fn current(spec: &TargetGroupSpec) -> CurrentTargetGroup {
        CurrentTargetGroup {
            arn: "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/member/1".to_string(),
            protocol: "HTTP".to_string(),
            port: Some(80),
            target_type: "instance".to_string(),
            health_check: wanted_health_check(spec),
            load_balancer_arns: vec![],
        }
    }

    #[test]
    fn pascal_case_and_camel_case_read_alike() {
        let camel = target_group("{name: member, protocol: HTTP, port: 80, healthCheckPath: /, matcher: 200-399, deregistrationDelaySeconds: 5}");
        let pascal = target_group("{Name: member, Protocol: HTTP, Port: 80, HealthCheckPath: /, Matcher: {HttpCode: 200-399}, DeregistrationDelaySeconds: 5}");
        assert_eq!(wanted_health_check(&camel), wanted_health_check(&pascal));
        assert_eq!(
            camel.deregistration_delay_seconds,
            pascal.deregistration_delay_seconds
        );
        assert_eq!(
            wanted_health_check(&camel).matcher.as_deref(),
            Some("200-399")
        );
        assert_eq!(
            target_group("{name: a, port: 80, matcher: 200}")
                .matcher
                .unwrap()
                .code(),
            "200"
        );
    }

    #[test]
    fn defaults_are_elbv2s() {
        let health = wanted_health_check(&target_group("{name: a, port: 80}"));
        assert_eq!(health, default_health_check("HTTP"));
        assert_eq!((health.interval_seconds, health.timeout_seconds), (30, 5));
        let tcp = wanted_health_check(&target_group("{name: a, port: 80, protocol: TCP}"));
        assert_eq!(
            (tcp.path, tcp.matcher, tcp.timeout_seconds),
            (None, None, 10)
        );
    }

    #[test]
    fn only_differing_health_settings_are_modified() {
        let spec = target_group(
            "{name: member, port: 80, healthCheckPath: /, healthCheckIntervalSeconds: 5}",
        );
        assert!(target_group_changes(&spec, &current(&spec))
            .unwrap()
            .is_empty());

        let mut have = current(&spec);
        have.health_check.path = Some("/old".to_string());
        have.health_check.interval_seconds = 30;
        let changes = target_group_changes(&spec, &have).unwrap();
        let parameters: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.parameter, c.value.as_str()))
            .collect();
        assert_eq!(
            parameters,
            [
                ("HealthCheckPath", "/"),
                ("HealthCheckIntervalSeconds", "5")
            ]
        );
        assert_eq!(changes[0].words, "healthCheckPath /old -> /");

        // Leaving a field out asks for ELBv2's default.
        let plain = target_group("{name: member, port: 80}");
        let changes = target_group_changes(&plain, &current(&spec)).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].words, "healthCheckIntervalSeconds 5 -> 30");
    }

    #[test]
    fn what_cannot_change_in_place_is_an_error() {
        let spec = target_group("{name: member, port: 8080}");
        let message =
            target_group_changes(&spec, &current(&target_group("{name: member, port: 80}")))
                .unwrap_err()
                .to_string();
        assert!(message.contains("port 80 -> 8080"), "{message}");
        assert!(message.contains("delete it first"), "{message}");
    }

    fn listener(port: i64, target_group: &str) -> ListenerSpec {
        ListenerSpec {
            load_balancer: "our-project".to_string(),
            port,
            protocol: None,
            target_group: target_group.to_string(),
        }
    }

    #[test]
    fn a_listener_is_kept_created_or_refused() {
        let member = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/member/1";
        let board = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/board/2";
        let existing = vec![CurrentListener {
            port: 8000,
            protocol: "HTTP".to_string(),
            target_group_arn: member.to_string(),
        }];
        assert_eq!(
            listener_plan(&listener(8000, "member"), member, &existing).unwrap(),
            ListenerPlan::Unchanged
        );
        assert_eq!(
            listener_plan(&listener(8001, "board"), board, &existing).unwrap(),
            ListenerPlan::Create
        );
        let message = listener_plan(&listener(8000, "board"), board, &existing)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("port 8000 of load balancer 'our-project' forwards to target group 'member', not 'board'"),
            "{message}"
        );
        let tcp = ListenerSpec {
            protocol: Some("TCP".to_string()),
            ..listener(8000, "member")
        };
        assert!(listener_plan(&tcp, member, &existing).is_err());
    }

    #[test]
    fn target_group_names_of_a_service_are_kept_for_apply() {
        let mut service = serde_json::json!({"serviceName": "member", "loadBalancers": [
            {"targetGroup": "member", "containerName": "nginx", "containerPort": 80},
            {"targetGroupArn": "arn:x", "containerName": "nginx", "containerPort": 80}]});
        fold_target_group_names(&mut service).unwrap();
        assert_eq!(service["loadBalancers"][0]["targetGroupArn"], "member");
        assert_eq!(service["loadBalancers"][1]["targetGroupArn"], "arn:x");
        let mut both =
            serde_json::json!({"loadBalancers": [{"targetGroup": "a", "targetGroupArn": "b"}]});
        assert!(fold_target_group_names(&mut both).is_err());
    }

    #[test]
    fn matchers_are_checked() {
        assert!(valid_matcher("200"));
        assert!(valid_matcher("200,204"));
        assert!(valid_matcher("200-399"));
        assert!(!valid_matcher("100"));
        assert!(!valid_matcher("399-200"));
        assert!(!valid_matcher(""));
        assert_eq!(
            target_group_name("arn:aws:elasticloadbalancing:r:0:targetgroup/member/abc"),
            "member"
        );
    }
}
