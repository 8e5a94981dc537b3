//! Target group stickiness (`stickiness.*`): ELBv2's keys, defaults and rules in one
//! place. An HTTP group takes `lb_cookie` (the default) or `app_cookie` with their
//! cookie durations and the application's cookie name; a TCP group takes `source_ip`.
//! Every value is kept and echoed, also while stickiness is off, as ELBv2 does.

use super::attributes::{bool_value, seconds_value};
use super::model::{Protocol, Stickiness, StickinessType, DEFAULT_STICKINESS_COOKIE_SECONDS};
use super::Elbv2Error;

pub const ENABLED: &str = "stickiness.enabled";
pub const TYPE: &str = "stickiness.type";
pub const LB_COOKIE_DURATION: &str = "stickiness.lb_cookie.duration_seconds";
pub const APP_COOKIE_NAME: &str = "stickiness.app_cookie.cookie_name";
pub const APP_COOKIE_DURATION: &str = "stickiness.app_cookie.duration_seconds";

/// A stickiness cookie lasts from one second to one week.
const COOKIE_SECONDS: (u32, u32) = (1, 604_800);

/// The balancer's own cookies start with it (`AWSALB`, `AWSALBAPP-0`, `AWSALBTG`), so an
/// application's cookie may not.
const RESERVED_COOKIE_PREFIX: &str = "AWSALB";

/// Every `stickiness.type` ELBv2 knows, for the enum constraint.
const ELBV2_TYPES: &str =
    "[lb_cookie, app_cookie, source_ip, source_ip_dest_ip, source_ip_dest_ip_proto]";

/// The stickiness keys of a target group of `protocol`.
fn keys(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Http => &[
            ENABLED,
            TYPE,
            LB_COOKIE_DURATION,
            APP_COOKIE_NAME,
            APP_COOKIE_DURATION,
        ],
        Protocol::Tcp => &[ENABLED, TYPE],
    }
}

/// Whether `key` belongs to stickiness (on some kind of target group).
pub(super) fn is_stickiness_key(key: &str) -> bool {
    keys(Protocol::Http).contains(&key)
}

/// Sets one stickiness attribute of a group of `protocol`; the error names the key.
pub(super) fn apply(
    stickiness: &mut Stickiness,
    protocol: Protocol,
    key: &str,
    value: &str,
) -> Result<(), Elbv2Error> {
    if !keys(protocol).contains(&key) {
        return Err(Elbv2Error::invalid_configuration(format!(
            "Target group attribute key '{key}' is not supported on target groups with protocol '{}'",
            protocol.as_elbv2()
        )));
    }
    let value = value.trim();
    let (min, max) = COOKIE_SECONDS;
    match key {
        ENABLED => stickiness.enabled = bool_value(ENABLED, value)?,
        TYPE => stickiness.stickiness_type = Some(stickiness_type(protocol, value)?),
        LB_COOKIE_DURATION => {
            stickiness.lb_cookie_duration_seconds =
                Some(seconds_value(LB_COOKIE_DURATION, value, min, max)?)
        }
        APP_COOKIE_DURATION => {
            stickiness.app_cookie_duration_seconds =
                Some(seconds_value(APP_COOKIE_DURATION, value, min, max)?)
        }
        APP_COOKIE_NAME => {
            check_cookie_name(value)?;
            stickiness.app_cookie_name = Some(value.to_string());
        }
        _ => unreachable!("keys() lists only the keys matched here"),
    }
    Ok(())
}

fn stickiness_type(protocol: Protocol, value: &str) -> Result<StickinessType, Elbv2Error> {
    let allowed = StickinessType::for_protocol(protocol);
    if let Some(chosen) = allowed.iter().find(|kind| kind.as_elbv2() == value) {
        return Ok(*chosen);
    }
    match value {
        "lb_cookie" | "app_cookie" | "source_ip" => {
            Err(Elbv2Error::invalid_configuration(format!(
                "Stickiness type '{value}' is not supported for target groups with protocol '{}'; use {}",
                protocol.as_elbv2(),
                allowed
                    .iter()
                    .map(|kind| format!("'{}'", kind.as_elbv2()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
        "source_ip_dest_ip" | "source_ip_dest_ip_proto" => {
            Err(Elbv2Error::invalid_configuration(format!(
                "Stickiness type '{value}' is not supported: it is for gateway load balancers, which berth has not"
            )))
        }
        other => Err(Elbv2Error::constraint(
            TYPE,
            other,
            &format!("Member must satisfy enum value set: {ELBV2_TYPES}"),
        )),
    }
}

/// Empty (no cookie named yet), or an RFC 6265 cookie name not starting with `AWSALB`.
fn check_cookie_name(name: &str) -> Result<(), Elbv2Error> {
    let token = |byte: u8| byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte);
    if !name.bytes().all(token) {
        return Err(Elbv2Error::constraint(
            APP_COOKIE_NAME,
            name,
            "Member must be a cookie name: letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    if name.starts_with(RESERVED_COOKIE_PREFIX) {
        return Err(Elbv2Error::invalid_configuration(format!(
            "Cookie name '{name}' is reserved: the prefixes AWSALB, AWSALBAPP and AWSALBTG are the load balancer's"
        )));
    }
    Ok(())
}

/// The rules between keys, checked once every given key is applied.
pub(super) fn check(stickiness: &Stickiness, protocol: Protocol) -> Result<(), Elbv2Error> {
    let app_cookie = stickiness.stickiness_type(protocol) == StickinessType::AppCookie;
    let unnamed = stickiness
        .app_cookie_name
        .as_deref()
        .unwrap_or_default()
        .is_empty();
    if stickiness.enabled && app_cookie && unnamed {
        return Err(Elbv2Error::invalid_configuration(format!(
            "'{APP_COOKIE_NAME}' must be specified when '{TYPE}' is 'app_cookie'"
        )));
    }
    Ok(())
}

/// Every stickiness key of a group of `protocol` with its value, set or default.
pub(super) fn pairs(stickiness: &Stickiness, protocol: Protocol) -> Vec<(&'static str, String)> {
    let seconds = |set: Option<u32>| set.unwrap_or(DEFAULT_STICKINESS_COOKIE_SECONDS).to_string();
    keys(protocol)
        .iter()
        .map(|&key| {
            let value = match key {
                ENABLED => stickiness.enabled.to_string(),
                TYPE => stickiness.stickiness_type(protocol).as_elbv2().to_string(),
                LB_COOKIE_DURATION => seconds(stickiness.lb_cookie_duration_seconds),
                APP_COOKIE_DURATION => seconds(stickiness.app_cookie_duration_seconds),
                APP_COOKIE_NAME => stickiness.app_cookie_name.clone().unwrap_or_default(),
                _ => unreachable!("keys() lists only the keys matched here"),
            };
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elbv2::model::StickinessPolicy;
    use crate::elbv2::Elbv2ErrorCode;

    fn applied(protocol: Protocol, given: &[(&str, &str)]) -> Result<Stickiness, Elbv2Error> {
        let mut stickiness = Stickiness::default();
        for (key, value) in given {
            apply(&mut stickiness, protocol, key, value)?;
        }
        check(&stickiness, protocol)?;
        Ok(stickiness)
    }

    fn refused(protocol: Protocol, given: &[(&str, &str)]) -> Elbv2Error {
        applied(protocol, given).expect_err("refused")
    }

    #[test]
    fn defaults_are_elbv2s_for_each_protocol() {
        let off = Stickiness::default();
        let http: Vec<(&str, String)> = pairs(&off, Protocol::Http);
        assert_eq!(
            http,
            vec![
                (ENABLED, "false".to_string()),
                (TYPE, "lb_cookie".to_string()),
                (LB_COOKIE_DURATION, "86400".to_string()),
                (APP_COOKIE_NAME, String::new()),
                (APP_COOKIE_DURATION, "86400".to_string()),
            ]
        );
        assert_eq!(
            pairs(&off, Protocol::Tcp),
            vec![
                (ENABLED, "false".to_string()),
                (TYPE, "source_ip".to_string())
            ]
        );
        assert_eq!(off.policy(Protocol::Http), None);
        assert_eq!(off.policy(Protocol::Tcp), None);
    }

    #[test]
    fn lb_cookie_app_cookie_and_source_ip_become_policies() {
        let lb_cookie = applied(
            Protocol::Http,
            &[(ENABLED, "true"), (LB_COOKIE_DURATION, "120")],
        )
        .unwrap();
        assert_eq!(
            lb_cookie.policy(Protocol::Http),
            Some(StickinessPolicy::LbCookie {
                duration_seconds: 120
            })
        );
        let app_cookie = applied(
            Protocol::Http,
            &[
                (ENABLED, "true"),
                (TYPE, "app_cookie"),
                (APP_COOKIE_NAME, "session"),
            ],
        )
        .unwrap();
        assert_eq!(
            app_cookie.policy(Protocol::Http),
            Some(StickinessPolicy::AppCookie {
                cookie_name: "session".to_string(),
                duration_seconds: 86_400
            })
        );
        let source_ip = applied(Protocol::Tcp, &[(ENABLED, "true")]).unwrap();
        assert_eq!(
            source_ip.policy(Protocol::Tcp),
            Some(StickinessPolicy::SourceIp)
        );
        // Values set while off are kept and echoed.
        let kept = applied(
            Protocol::Http,
            &[(APP_COOKIE_DURATION, "60"), (TYPE, "app_cookie")],
        )
        .unwrap();
        assert_eq!(kept.policy(Protocol::Http), None);
        assert!(pairs(&kept, Protocol::Http).contains(&(APP_COOKIE_DURATION, "60".to_string())));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (given, code, words) in [
            (
                vec![(ENABLED, "yes")],
                Elbv2ErrorCode::ValidationError,
                ENABLED,
            ),
            (
                vec![(LB_COOKIE_DURATION, "0")],
                Elbv2ErrorCode::ValidationError,
                "integer from 1 to 604800",
            ),
            (
                vec![(APP_COOKIE_DURATION, "604801")],
                Elbv2ErrorCode::ValidationError,
                APP_COOKIE_DURATION,
            ),
            (
                vec![(TYPE, "cookie")],
                Elbv2ErrorCode::ValidationError,
                "enum value set",
            ),
            (
                vec![(TYPE, "source_ip")],
                Elbv2ErrorCode::InvalidConfigurationRequest,
                "protocol 'HTTP'",
            ),
            (
                vec![(TYPE, "source_ip_dest_ip")],
                Elbv2ErrorCode::InvalidConfigurationRequest,
                "gateway load balancers",
            ),
            (
                vec![(APP_COOKIE_NAME, "AWSALBAPP-1")],
                Elbv2ErrorCode::InvalidConfigurationRequest,
                "reserved",
            ),
            (
                vec![(APP_COOKIE_NAME, "my session")],
                Elbv2ErrorCode::ValidationError,
                APP_COOKIE_NAME,
            ),
            (
                vec![(ENABLED, "true"), (TYPE, "app_cookie")],
                Elbv2ErrorCode::InvalidConfigurationRequest,
                "must be specified",
            ),
        ] {
            let error = refused(Protocol::Http, &given);
            assert_eq!(error.code, code, "{given:?}: {error}");
            assert!(error.message.contains(words), "{given:?}: {error}");
        }
        for (given, words) in [
            (vec![(TYPE, "lb_cookie")], "protocol 'TCP'"),
            (
                vec![(LB_COOKIE_DURATION, "60")],
                "not supported on target groups with protocol 'TCP'",
            ),
        ] {
            let error = refused(Protocol::Tcp, &given);
            assert_eq!(error.code, Elbv2ErrorCode::InvalidConfigurationRequest);
            assert!(error.message.contains(words), "{given:?}: {error}");
        }
    }
}
