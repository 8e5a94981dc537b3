//! Load balancer and listener attributes: ELBv2's keys, defaults and ranges for each
//! kind of load balancer and listener, in one table each. A record keeps only the
//! values a user set; Describe shows every key of its kind, set or default.
//!
//! berth acts on `idle_timeout.timeout_seconds` (an application load balancer's client
//! idle timeout), `tcp.idle_timeout.seconds` (a TCP listener's) and
//! `deletion_protection.enabled`; the others are kept and echoed, as ELBv2 shows them.

use std::collections::BTreeMap;

use berth_api::elbv2 as wire;

use super::model::{ListenerRecord, LoadBalancerRecord, LoadBalancerType, Protocol, Scheme};
use super::{listener_by_arn, load_balancer_by_arn, Elbv2Error, Elbv2ErrorCode, Elbv2Result};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Seconds {
        min: u32,
        max: u32,
    },
    OneOf(&'static [&'static str]),
    /// Any text (a bucket name, a prefix, a header value).
    Text,
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    key: &'static str,
    default: &'static str,
    kind: Kind,
}

const fn spec(key: &'static str, default: &'static str, kind: Kind) -> Spec {
    Spec { key, default, kind }
}

pub const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
pub const DELETION_PROTECTION: &str = "deletion_protection.enabled";
pub const TCP_IDLE_TIMEOUT: &str = "tcp.idle_timeout.seconds";
const IPV6_DENY_ALL_IGW_TRAFFIC: &str = "ipv6.deny_all_igw_traffic";

/// ELBv2's application load balancer attributes (API_LoadBalancerAttribute).
const APPLICATION: &[Spec] = &[
    spec("access_logs.s3.enabled", "false", Kind::Bool),
    spec("access_logs.s3.bucket", "", Kind::Text),
    spec("access_logs.s3.prefix", "", Kind::Text),
    spec(
        "client_keep_alive.seconds",
        "3600",
        Kind::Seconds {
            min: 60,
            max: 604_800,
        },
    ),
    spec("connection_logs.s3.enabled", "false", Kind::Bool),
    spec("connection_logs.s3.bucket", "", Kind::Text),
    spec("connection_logs.s3.prefix", "", Kind::Text),
    spec(DELETION_PROTECTION, "false", Kind::Bool),
    spec(IDLE_TIMEOUT, "60", Kind::Seconds { min: 1, max: 4000 }),
    spec(IPV6_DENY_ALL_IGW_TRAFFIC, "false", Kind::Bool),
    // Always on for application load balancers.
    spec(
        "load_balancing.cross_zone.enabled",
        "true",
        Kind::OneOf(&["true"]),
    ),
    spec(
        "routing.http.desync_mitigation_mode",
        "defensive",
        Kind::OneOf(&["monitor", "defensive", "strictest"]),
    ),
    spec(
        "routing.http.drop_invalid_header_fields.enabled",
        "false",
        Kind::Bool,
    ),
    spec(
        "routing.http.preserve_host_header.enabled",
        "false",
        Kind::Bool,
    ),
    spec(
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
        Kind::Bool,
    ),
    spec("routing.http.xff_client_port.enabled", "false", Kind::Bool),
    spec(
        "routing.http.xff_header_processing.mode",
        "append",
        Kind::OneOf(&["append", "preserve", "remove"]),
    ),
    spec("routing.http2.enabled", "true", Kind::Bool),
    spec("waf.fail_open.enabled", "false", Kind::Bool),
    spec("zonal_shift.config.enabled", "false", Kind::Bool),
];

/// ELBv2's network load balancer attributes.
const NETWORK: &[Spec] = &[
    spec("access_logs.s3.enabled", "false", Kind::Bool),
    spec("access_logs.s3.bucket", "", Kind::Text),
    spec("access_logs.s3.prefix", "", Kind::Text),
    spec(DELETION_PROTECTION, "false", Kind::Bool),
    spec(
        "dns_record.client_routing_policy",
        "any_availability_zone",
        Kind::OneOf(&[
            "availability_zone_affinity",
            "partial_availability_zone_affinity",
            "any_availability_zone",
        ]),
    ),
    spec(IPV6_DENY_ALL_IGW_TRAFFIC, "false", Kind::Bool),
    spec("load_balancing.cross_zone.enabled", "false", Kind::Bool),
    spec("zonal_shift.config.enabled", "false", Kind::Bool),
];

/// ELBv2's attributes of an HTTP listener (API_ListenerAttribute): the response
/// headers an application load balancer adds. The mTLS and TLS request headers are
/// for HTTPS listeners, which berth has not.
const HTTP_LISTENER: &[Spec] = &[
    spec(
        "routing.http.response.access_control_allow_credentials.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.access_control_allow_headers.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.access_control_allow_methods.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.access_control_allow_origin.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.access_control_expose_headers.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.access_control_max_age.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.content_security_policy.header_value",
        "",
        Kind::Text,
    ),
    spec("routing.http.response.server.enabled", "true", Kind::Bool),
    spec(
        "routing.http.response.strict_transport_security.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.x_content_type_options.header_value",
        "",
        Kind::Text,
    ),
    spec(
        "routing.http.response.x_frame_options.header_value",
        "",
        Kind::Text,
    ),
];

/// ELBv2's attributes of a TCP listener of a network load balancer.
const TCP_LISTENER: &[Spec] = &[spec(
    TCP_IDLE_TIMEOUT,
    "350",
    Kind::Seconds { min: 60, max: 6000 },
)];

fn load_balancer_specs(load_balancer_type: LoadBalancerType) -> &'static [Spec] {
    match load_balancer_type {
        LoadBalancerType::Application => APPLICATION,
        LoadBalancerType::Network => NETWORK,
    }
}

fn listener_specs(protocol: Protocol) -> &'static [Spec] {
    match protocol {
        Protocol::Http => HTTP_LISTENER,
        Protocol::Tcp => TCP_LISTENER,
    }
}

/// The default of `spec` for this load balancer: internal ones deny IPv6 internet
/// gateway traffic, as in ELBv2.
fn load_balancer_default(load_balancer: &LoadBalancerRecord, spec: &Spec) -> &'static str {
    if spec.key == IPV6_DENY_ALL_IGW_TRAFFIC && load_balancer.scheme == Scheme::Internal {
        "true"
    } else {
        spec.default
    }
}

fn find<'t>(table: &'t [Spec], key: &str) -> Option<&'t Spec> {
    table.iter().find(|spec| spec.key == key)
}

/// Checks one value against its key's kind; the error names the key.
fn check(spec: &Spec, value: &str) -> Result<String, Elbv2Error> {
    let refuse = |constraint: String| Elbv2Error::constraint(spec.key, value, &constraint);
    match spec.kind {
        Kind::Bool => match value {
            "true" | "false" => Ok(value.to_string()),
            _ => Err(refuse("Member must be 'true' or 'false'".to_string())),
        },
        Kind::Seconds { min, max } => match value.parse::<u32>() {
            Ok(seconds) if (min..=max).contains(&seconds) => Ok(seconds.to_string()),
            _ => Err(refuse(format!(
                "Member must be an integer from {min} to {max}"
            ))),
        },
        Kind::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(value.to_string())
            } else {
                Err(refuse(format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                )))
            }
        }
        Kind::Text => Ok(value.to_string()),
    }
}

/// A `true`/`false` value of `key`, checked as every boolean attribute is.
pub(super) fn bool_value(key: &'static str, value: &str) -> Result<bool, Elbv2Error> {
    let spec = spec(key, "", Kind::Bool);
    Ok(check(&spec, value.trim())? == "true")
}

/// A whole number of seconds of `key` within `min..=max`, checked as every seconds
/// attribute is.
pub(super) fn seconds_value(
    key: &'static str,
    value: &str,
    min: u32,
    max: u32,
) -> Result<u32, Elbv2Error> {
    let spec = spec(key, "", Kind::Seconds { min, max });
    check(&spec, value.trim())?
        .parse()
        .map_err(|_| Elbv2Error::constraint(key, value, "Member must be an integer"))
}

/// Applies `given` to `current` (the values set so far), every key checked first: one
/// bad key or value and nothing is applied.
fn modify(
    table: &[Spec],
    current: &BTreeMap<String, String>,
    given: &[wire::Attribute],
    not_found: impl Fn(&str) -> Elbv2Error,
) -> Result<BTreeMap<String, String>, Elbv2Error> {
    let mut next = current.clone();
    for attribute in given {
        let spec = find(table, &attribute.key).ok_or_else(|| not_found(&attribute.key))?;
        next.insert(spec.key.to_string(), check(spec, attribute.value.trim())?);
    }
    Ok(next)
}

fn pairs(
    table: &[Spec],
    set: &BTreeMap<String, String>,
    default: impl Fn(&Spec) -> &'static str,
) -> wire::AttributesResult {
    wire::AttributesResult {
        attributes: table
            .iter()
            .map(|spec| wire::Attribute {
                key: spec.key.to_string(),
                value: set
                    .get(spec.key)
                    .cloned()
                    .unwrap_or_else(|| default(spec).to_string()),
            })
            .collect(),
    }
}

fn load_balancer_attributes(load_balancer: &LoadBalancerRecord) -> wire::AttributesResult {
    pairs(
        load_balancer_specs(load_balancer.load_balancer_type),
        &load_balancer.attributes,
        |spec| load_balancer_default(load_balancer, spec),
    )
}

fn listener_attributes(listener: &ListenerRecord) -> wire::AttributesResult {
    pairs(
        listener_specs(listener.protocol),
        &listener.attributes,
        |spec| spec.default,
    )
}

/// A seconds-valued attribute as set, or its default.
fn seconds(table: &[Spec], set: &BTreeMap<String, String>, key: &str) -> Option<u32> {
    let spec = find(table, key)?;
    set.get(key)
        .map(String::as_str)
        .unwrap_or(spec.default)
        .parse()
        .ok()
}

impl LoadBalancerRecord {
    /// `deletion_protection.enabled`.
    pub fn deletion_protection(&self) -> bool {
        self.attributes
            .get(DELETION_PROTECTION)
            .is_some_and(|value| value == "true")
    }
}

/// How long a client connection to `listener` may sit idle before the balancer closes
/// it, in seconds: an HTTP listener's comes from its application load balancer's
/// `idle_timeout.timeout_seconds`, a TCP listener's from its own
/// `tcp.idle_timeout.seconds`.
pub fn client_idle_timeout_seconds(state: &State, listener: &ListenerRecord) -> Option<u32> {
    match listener.protocol {
        Protocol::Tcp => seconds(TCP_LISTENER, &listener.attributes, TCP_IDLE_TIMEOUT),
        Protocol::Http => {
            let load_balancer = state.load_balancers.get(&listener.load_balancer)?;
            seconds(
                load_balancer_specs(load_balancer.load_balancer_type),
                &load_balancer.attributes,
                IDLE_TIMEOUT,
            )
        }
    }
}

pub fn describe_load_balancer_attributes(
    state: &State,
    request: wire::LoadBalancerArnRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let load_balancer = load_balancer_by_arn(state, &request.load_balancer_arn)?;
    Ok(Outcome::read_only(load_balancer_attributes(load_balancer)))
}

pub fn modify_load_balancer_attributes(
    state: &State,
    request: wire::ModifyLoadBalancerAttributesRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let existing = load_balancer_by_arn(state, &request.load_balancer_arn)?;
    if request.attributes.is_empty() {
        return Err(Elbv2Error::missing("attributes"));
    }
    let kind = existing.load_balancer_type;
    let attributes = modify(
        load_balancer_specs(kind),
        &existing.attributes,
        &request.attributes,
        |key| {
            let other = match kind {
                LoadBalancerType::Application => LoadBalancerType::Network,
                LoadBalancerType::Network => LoadBalancerType::Application,
            };
            if find(load_balancer_specs(other), key).is_some() {
                Elbv2Error::invalid_configuration(format!(
                    "Load balancer attribute key '{key}' is not supported on load balancers with type '{}'",
                    kind.as_elbv2()
                ))
            } else {
                Elbv2Error::validation(format!(
                    "Load balancer attribute key '{key}' is not recognized"
                ))
            }
        },
    )?;
    let access_logs = attributes.get("access_logs.s3.enabled").map(String::as_str);
    let bucket = attributes.get("access_logs.s3.bucket").map(String::as_str);
    if access_logs == Some("true") && bucket.unwrap_or_default().is_empty() {
        return Err(Elbv2Error::invalid_configuration(
            "The value of 'access_logs.s3.bucket' cannot be empty when 'access_logs.s3.enabled' is 'true'",
        ));
    }
    let mut record = existing.clone();
    record.attributes = attributes;
    let response = load_balancer_attributes(&record);
    let commands = if &record == existing {
        vec![]
    } else {
        vec![Command::PutLoadBalancer(Box::new(record))]
    };
    Ok(Outcome { commands, response })
}

pub fn describe_listener_attributes(
    state: &State,
    request: wire::ListenerArnRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let listener = listener_by_arn(state, &request.listener_arn)?;
    Ok(Outcome::read_only(listener_attributes(listener)))
}

pub fn modify_listener_attributes(
    state: &State,
    request: wire::ModifyListenerAttributesRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::AttributesResult> {
    let existing = listener_by_arn(state, &request.listener_arn)?;
    if request.attributes.is_empty() {
        return Err(Elbv2Error::missing("attributes"));
    }
    let protocol = existing.protocol;
    let attributes = modify(
        listener_specs(protocol),
        &existing.attributes,
        &request.attributes,
        |key| {
            let other = match protocol {
                Protocol::Http => Protocol::Tcp,
                Protocol::Tcp => Protocol::Http,
            };
            if find(listener_specs(other), key).is_some() {
                Elbv2Error::invalid_configuration(format!(
                    "Listener attribute key '{key}' is not supported on listeners with protocol '{}'",
                    protocol.as_elbv2()
                ))
            } else {
                Elbv2Error::validation(format!("Listener attribute key '{key}' is not recognized"))
            }
        },
    )?;
    let mut record = existing.clone();
    record.attributes = attributes;
    let response = listener_attributes(&record);
    let commands = if &record == existing {
        vec![]
    } else {
        vec![Command::PutListener(Box::new(record))]
    };
    Ok(Outcome { commands, response })
}

/// Refuses to delete a load balancer with deletion protection on, as ELBv2 does.
pub(crate) fn check_deletable(
    scope: &crate::ids::ArnScope,
    load_balancer: &LoadBalancerRecord,
) -> Result<(), Elbv2Error> {
    if load_balancer.deletion_protection() {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::OperationNotPermitted,
            format!(
                "Load balancer '{}' cannot be deleted because deletion protection is enabled",
                super::arns::load_balancer_arn(scope, load_balancer)
            ),
        ));
    }
    Ok(())
}
