//! The parts of the shared AWS `config` and `credentials` files that point a client at
//! berth: a profile's `endpoint_url`, its `services` section's `ecs` endpoint,
//! `ignore_configured_endpoint_urls`, `region`, and its key pair. Read as the AWS SDKs
//! and CLIs read them, so one profile serves `aws`, boto3 and `berth` alike.
//!
//! The format: `[default]` / `[profile NAME]` sections in `config`, `[NAME]` in
//! `credentials`, `[services NAME]` sections whose keys (`ecs = `) open indented
//! sub-settings, `#` and `;` comments on lines of their own.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What one profile says, after both files are read.
#[derive(Debug, Default, PartialEq)]
pub struct Profile {
    /// The profile's own `endpoint_url`: every service's.
    pub endpoint_url: Option<String>,
    /// `endpoint_url` under `ecs` in the `services` section the profile names.
    pub ecs_endpoint_url: Option<String>,
    pub ignore_configured_endpoint_urls: bool,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Profile {
    /// The endpoint the profile gives ECS: its services section's, else its own.
    pub fn endpoint(&self) -> Option<&str> {
        self.ecs_endpoint_url
            .as_deref()
            .or(self.endpoint_url.as_deref())
    }
}

/// A section's keys; a key with no value on its own line holds the indented
/// `key = value` lines under it.
#[derive(Debug, Default)]
struct Section {
    values: BTreeMap<String, String>,
    nested: BTreeMap<String, BTreeMap<String, String>>,
}

fn parse(text: &str) -> BTreeMap<String, Section> {
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut open_key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            open_key = None;
            continue;
        }
        let Some(section) = current.as_ref().and_then(|name| sections.get_mut(name)) else {
            continue;
        };
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        let indented = line.starts_with([' ', '\t']);
        match (&open_key, indented) {
            (Some(parent), true) => {
                section
                    .nested
                    .entry(parent.clone())
                    .or_default()
                    .insert(key, value);
            }
            _ if value.is_empty() => {
                section.nested.entry(key.clone()).or_default();
                open_key = Some(key);
            }
            _ => {
                section.values.insert(key, value);
                open_key = None;
            }
        }
    }
    sections
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

/// Profile `name` from the texts of the `config` and `credentials` files.
pub fn profile(config: &str, credentials: &str, name: &str) -> Profile {
    let config = parse(config);
    let credentials = parse(credentials);
    let section = config
        .get(&format!("profile {name}"))
        .or_else(|| (name == "default").then(|| config.get("default")).flatten());
    let keys = credentials.get(name);
    let value = |key: &str| {
        keys.and_then(|s| non_empty(s.values.get(key)))
            .or_else(|| section.and_then(|s| non_empty(s.values.get(key))))
    };
    let ecs_endpoint_url = section
        .and_then(|s| s.values.get("services"))
        .and_then(|services| config.get(&format!("services {services}")))
        .and_then(|services| services.nested.get("ecs"))
        .and_then(|ecs| non_empty(ecs.get("endpoint_url")));
    Profile {
        endpoint_url: section.and_then(|s| non_empty(s.values.get("endpoint_url"))),
        ecs_endpoint_url,
        ignore_configured_endpoint_urls: section
            .and_then(|s| s.values.get("ignore_configured_endpoint_urls"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        region: section.and_then(|s| non_empty(s.values.get("region"))),
        access_key_id: value("aws_access_key_id"),
        secret_access_key: value("aws_secret_access_key"),
    }
}

/// The profile named by `name` (else `AWS_PROFILE`, else `default`), read from
/// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/`. Files that are not
/// there read as empty.
pub fn load(name: Option<&str>, env: impl Fn(&[&str]) -> Option<String>) -> Profile {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = |var: &str, file: &str| {
        env(&[var])
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(file)))
    };
    let read = |path: Option<PathBuf>| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let name = name
        .map(str::to_string)
        .or_else(|| env(&["AWS_PROFILE"]))
        .unwrap_or_else(|| "default".to_string());
    profile(
        &read(path("AWS_CONFIG_FILE", "config")),
        &read(path("AWS_SHARED_CREDENTIALS_FILE", "credentials")),
        &name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# a comment
[default]
region = eu-west-1

[profile berth]
region = us-east-1
endpoint_url = http://10.0.0.5:9650
services = local-berth
aws_access_key_id = CONFIGKEY
aws_secret_access_key = config-secret

[services local-berth]
ecs =
  endpoint_url = http://10.0.0.6:9650
elastic_load_balancing_v2 =
  endpoint_url = http://10.0.0.7:9650

[profile plain]
endpoint_url = http://10.0.0.8:9650
ignore_configured_endpoint_urls = true
";

    const CREDENTIALS: &str = "\
[berth]
aws_access_key_id = CREDKEY
aws_secret_access_key = cred-secret
";

    #[test]
    fn a_services_section_gives_ecs_its_own_endpoint() {
        let berth = profile(CONFIG, CREDENTIALS, "berth");
        assert_eq!(
            berth.ecs_endpoint_url.as_deref(),
            Some("http://10.0.0.6:9650")
        );
        assert_eq!(berth.endpoint_url.as_deref(), Some("http://10.0.0.5:9650"));
        assert_eq!(berth.endpoint(), Some("http://10.0.0.6:9650"));
        assert_eq!(berth.region.as_deref(), Some("us-east-1"));
        assert!(!berth.ignore_configured_endpoint_urls);
    }

    #[test]
    fn the_credentials_file_beats_keys_in_the_config_file() {
        let berth = profile(CONFIG, CREDENTIALS, "berth");
        assert_eq!(berth.access_key_id.as_deref(), Some("CREDKEY"));
        assert_eq!(berth.secret_access_key.as_deref(), Some("cred-secret"));
        let config_only = profile(CONFIG, "", "berth");
        assert_eq!(config_only.access_key_id.as_deref(), Some("CONFIGKEY"));
    }

    #[test]
    fn profiles_are_looked_up_as_the_aws_cli_does() {
        let default = profile(CONFIG, CREDENTIALS, "default");
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.endpoint(), None);
        let plain = profile(CONFIG, "", "plain");
        assert_eq!(plain.endpoint(), Some("http://10.0.0.8:9650"));
        assert!(plain.ignore_configured_endpoint_urls);
        // `[plain]` is a credentials-file heading; in config a profile needs `profile `.
        let bare = profile("[plain]\nendpoint_url = http://x:1\n", "", "plain");
        assert_eq!(bare, Profile::default());
        assert_eq!(profile(CONFIG, CREDENTIALS, "missing"), Profile::default());
    }
}
