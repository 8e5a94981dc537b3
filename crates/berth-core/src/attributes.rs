//! Container instance attributes: ECS's rules for a name and a value, the attributes an
//! agent reports about its machine (`ecs.os-type`, `ecs.cpu-architecture`,
//! `ecs.availability-zone`), and the operator's own (`berth agent --attribute K=V`).

use std::collections::BTreeMap;

/// The attribute ECS's agent reports for the operating system; berth's nodes are Linux.
pub const OS_TYPE: &str = "ecs.os-type";
/// The machine's CPU architecture in ECS's words (`x86_64`, `arm64`).
pub const CPU_ARCHITECTURE: &str = "ecs.cpu-architecture";
/// The availability zone the operator says the machine is in.
pub const AVAILABILITY_ZONE: &str = "ecs.availability-zone";
/// Names under this prefix are the agent's own: an operator's attribute may not use it.
pub const RESERVED_PREFIX: &str = "ecs.";

const MAX_LENGTH: usize = 128;

/// Why an attribute is refused; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("attribute name '{0}': must be 1 to 128 letters, digits, '-', '_', '/', '\\' or '.'")]
    BadName(String),
    #[error("attribute '{name}': its value must be 1 to 128 letters, digits, '-', '_', '.', '@', '/', '\\', ':' or spaces, not starting or ending with a space")]
    BadValue { name: String },
    #[error("attribute '{0}' is given twice")]
    Duplicate(String),
    #[error("attribute '{0}': names starting with 'ecs.' are set by the agent")]
    Reserved(String),
    #[error("attribute '{0}': expected NAME=VALUE")]
    NoValue(String),
}

/// ECS's rule for an attribute name.
pub fn check_name(name: &str) -> Result<(), AttributeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '\\' | '.');
    if name.is_empty() || name.len() > MAX_LENGTH || !name.chars().all(allowed) {
        return Err(AttributeError::BadName(name.to_string()));
    }
    Ok(())
}

/// ECS's rule for an attribute value.
pub fn check_value(name: &str, value: &str) -> Result<(), AttributeError> {
    let allowed = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '/' | '\\' | ':' | ' ')
    };
    if value.is_empty()
        || value.len() > MAX_LENGTH
        || !value.chars().all(allowed)
        || value.starts_with(' ')
        || value.ends_with(' ')
    {
        return Err(AttributeError::BadValue {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Every attribute of a map, by ECS's rules.
pub fn check_all(attributes: &BTreeMap<String, String>) -> Result<(), AttributeError> {
    for (name, value) in attributes {
        check_name(name)?;
        check_value(name, value)?;
    }
    Ok(())
}

/// The operator's `NAME=VALUE` attributes: each by ECS's rules, none twice, none under
/// the agent's `ecs.` prefix.
pub fn parse_operator_attributes(
    given: &[String],
) -> Result<BTreeMap<String, String>, AttributeError> {
    let mut attributes = BTreeMap::new();
    for entry in given {
        let Some((name, value)) = entry.split_once('=') else {
            return Err(AttributeError::NoValue(entry.clone()));
        };
        check_name(name)?;
        check_value(name, value)?;
        if name.starts_with(RESERVED_PREFIX) {
            return Err(AttributeError::Reserved(name.to_string()));
        }
        if attributes
            .insert(name.to_string(), value.to_string())
            .is_some()
        {
            return Err(AttributeError::Duplicate(name.to_string()));
        }
    }
    Ok(attributes)
}

/// ECS's name for a CPU architecture as Rust names it (`std::env::consts::ARCH`).
pub fn ecs_cpu_architecture(rust_arch: &str) -> &str {
    match rust_arch {
        "aarch64" => "arm64",
        other => other,
    }
}

/// What an agent reports about its machine: the `ecs.*` attributes, then the
/// operator's (already checked by [`parse_operator_attributes`]).
pub fn node_attributes(
    rust_arch: &str,
    availability_zone: Option<&str>,
    operator: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, AttributeError> {
    let mut attributes = BTreeMap::new();
    attributes.insert(OS_TYPE.to_string(), "linux".to_string());
    attributes.insert(
        CPU_ARCHITECTURE.to_string(),
        ecs_cpu_architecture(rust_arch).to_string(),
    );
    if let Some(zone) = availability_zone {
        check_value(AVAILABILITY_ZONE, zone)?;
        attributes.insert(AVAILABILITY_ZONE.to_string(), zone.to_string());
    }
    for (name, value) in operator {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(AttributeError::Reserved(name.clone()));
        }
        attributes.insert(name.clone(), value.clone());
    }
    check_all(&attributes)?;
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_and_values_follow_ecs_rules() {
        assert!(check_name("rack/row-1_a.b\\c").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"n".repeat(129)).is_err());
        assert!(check_name(&"n".repeat(128)).is_ok());
        assert!(check_name("has space").is_err());
        assert!(check_name("colon:").is_err());
        assert!(check_value("n", "a b@c:d/e\\f.g-h_i").is_ok());
        assert!(check_value("n", "").is_err());
        assert!(check_value("n", " lead").is_err());
        assert!(check_value("n", "trail ").is_err());
        assert!(check_value("n", "semi;colon").is_err());
        assert!(check_value("n", &"v".repeat(129)).is_err());
    }

    #[test]
    fn operator_attributes_are_checked_and_unique() {
        let parsed = parse_operator_attributes(&strings(&["rack=r1", "gpu=none"])).unwrap();
        assert_eq!(parsed.get("rack").map(String::as_str), Some("r1"));
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parse_operator_attributes(&strings(&["rack=r1", "rack=r2"])),
            Err(AttributeError::Duplicate("rack".into()))
        );
        assert_eq!(
            parse_operator_attributes(&strings(&["ecs.os-type=windows"])),
            Err(AttributeError::Reserved("ecs.os-type".into()))
        );
        assert_eq!(
            parse_operator_attributes(&strings(&["rack"])),
            Err(AttributeError::NoValue("rack".into()))
        );
        let error = parse_operator_attributes(&strings(&["bad name=x"])).unwrap_err();
        assert!(error.to_string().contains("bad name"), "{error}");
        // A value may hold '=': only the first one splits.
        let parsed = parse_operator_attributes(&strings(&["k=a=b"]));
        assert!(parsed.is_err(), "'=' is not an ECS value character");
    }

    #[test]
    fn the_agent_reports_its_machine_in_ecs_words() {
        let operator = parse_operator_attributes(&strings(&["rack=r1"])).unwrap();
        let attributes = node_attributes("aarch64", Some("eu-west-1a"), &operator).unwrap();
        assert_eq!(attributes[OS_TYPE], "linux");
        assert_eq!(attributes[CPU_ARCHITECTURE], "arm64");
        assert_eq!(attributes[AVAILABILITY_ZONE], "eu-west-1a");
        assert_eq!(attributes["rack"], "r1");
        let attributes = node_attributes("x86_64", None, &BTreeMap::new()).unwrap();
        assert_eq!(attributes[CPU_ARCHITECTURE], "x86_64");
        assert!(!attributes.contains_key(AVAILABILITY_ZONE));
        assert!(node_attributes("x86_64", Some(" zone"), &BTreeMap::new()).is_err());
    }
}
