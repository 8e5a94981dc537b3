//! Sticky sessions: the tokens that name a target in a cookie, reading and writing the
//! balancer's cookies, and the source-address hash of `Stickiness::SourceIp`.
//!
//! A token is a hash of the group id, the target id and its address: opaque to clients,
//! the same on every balancer node given the same targets (so a client may move between
//! nodes), and only ever looked up among the group's healthy targets, so a forged or
//! stale cookie falls back to normal selection instead of reaching another address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};

use crate::config::Stickiness;
use crate::upstream::Target;

/// The balancer's cookie of `lb_cookie` stickiness, as ELBv2's.
pub(crate) const LB_COOKIE: &str = "AWSALB";
/// Its twin for cross-origin requests, which browsers send only with `SameSite=None`.
pub(crate) const LB_COOKIE_CORS: &str = "AWSALBCORS";
/// The balancer's cookie of `app_cookie` stickiness (ELBv2 numbers one per group of a
/// forward; berth's stickiness is per group, so there is one).
pub(crate) const APP_COOKIE: &str = "AWSALBAPP-0";

/// 64-bit FNV-1a, then a finalizer so nearby inputs spread over all bits. Stable across
/// builds and machines, unlike std's hasher.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            state ^= u64::from(*byte);
            state = state.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        state ^= 0xff;
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state ^= state >> 30;
    state = state.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    state ^= state >> 27;
    state = state.wrapping_mul(0x94d0_49bb_1331_11eb);
    state ^ (state >> 31)
}

/// The token a cookie carries for target `target_id` at `addr` of group `group_id`.
pub(crate) fn target_token(group_id: &str, target_id: &str, addr: SocketAddr) -> String {
    let addr = addr.to_string();
    format!(
        "{:016x}",
        hash(&[group_id.as_bytes(), target_id.as_bytes(), addr.as_bytes()])
    )
}

/// The cookie whose token picks the target, if the stickiness has one.
pub(crate) fn cookie_name(stickiness: &Stickiness) -> Option<&'static str> {
    match stickiness {
        Stickiness::LbCookie { .. } => Some(LB_COOKIE),
        Stickiness::AppCookie { .. } => Some(APP_COOKIE),
        Stickiness::Off | Stickiness::SourceIp => None,
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub(crate) fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// Whether the response sets cookie `name` (a `Set-Cookie: name=...`).
fn response_sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|text| text.split_once('='))
        .any(|(key, _)| key.trim() == name)
}

/// The `Set-Cookie` values binding the client to the target of `token`, if this response
/// needs them: every response under `lb_cookie` (each renews the duration); under
/// `app_cookie`, one that sets the application's cookie, or one whose request named
/// another target (moved from a target that left, or a forged cookie).
pub(crate) fn set_cookies(
    stickiness: &Stickiness,
    token: &str,
    requested: Option<&str>,
    response: &HeaderMap,
) -> Vec<HeaderValue> {
    let cookie = |name: &str, duration: &Duration, extra: &str| {
        HeaderValue::from_str(&format!(
            "{name}={token}; Max-Age={}; Path=/{extra}",
            duration.as_secs().max(1)
        ))
        .ok()
    };
    match stickiness {
        Stickiness::LbCookie { duration } => [
            cookie(LB_COOKIE, duration, ""),
            cookie(LB_COOKIE_CORS, duration, "; SameSite=None; Secure"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Stickiness::AppCookie {
            cookie_name,
            duration,
        } => {
            let moved = requested.is_some_and(|requested| requested != token);
            if moved || response_sets_cookie(response, cookie_name) {
                cookie(APP_COOKIE, duration, "").into_iter().collect()
            } else {
                Vec::new()
            }
        }
        Stickiness::Off | Stickiness::SourceIp => Vec::new(),
    }
}

/// The target for `client` among `targets` by rendezvous hashing: each client address
/// ranks every target, and takes its best. A target leaving moves only its own clients.
pub(crate) fn by_source<'a>(
    targets: &'a [Arc<Target>],
    client: IpAddr,
    exclude: Option<&Arc<Target>>,
) -> Option<&'a Arc<Target>> {
    let address: Vec<u8> = match client {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(ip) => ip.octets().to_vec(),
            None => ip.octets().to_vec(),
        },
    };
    targets
        .iter()
        .filter(|target| exclude.is_none_or(|excluded| !Arc::ptr_eq(excluded, target)))
        .max_by_key(|target| hash(&[target.sticky_token.as_bytes(), &address]))
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;

    fn target(index: usize) -> Arc<Target> {
        Arc::new(Target::new(
            "tg",
            format!("t{index}"),
            format!("127.0.0.1:{}", 1000 + index).parse().unwrap(),
            false,
            CancellationToken::new(),
        ))
    }

    #[test]
    fn tokens_are_opaque_stable_and_distinct() {
        let addr: SocketAddr = "10.0.0.5:80".parse().unwrap();
        let token = target_token("tg", "i-1:80", addr);
        assert_eq!(token.len(), 16);
        assert!(!token.contains("10.0.0.5"));
        assert_eq!(token, target_token("tg", "i-1:80", addr));
        assert_ne!(token, target_token("other", "i-1:80", addr));
        assert_ne!(token, target_token("tg", "i-2:80", addr));
        assert_ne!(
            token,
            target_token("tg", "i-1:80", "10.0.0.6:80".parse().unwrap())
        );
    }

    #[test]
    fn request_cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("AWSALBCORS=x; session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("AWSALB=\"tok\""));
        assert_eq!(request_cookie(&headers, LB_COOKIE), Some("tok"));
        assert_eq!(request_cookie(&headers, "session"), Some("abc"));
        assert_eq!(request_cookie(&headers, APP_COOKIE), None);
    }

    #[test]
    fn lb_cookies_renew_on_every_response_and_app_cookies_follow_the_application() {
        let lb = Stickiness::LbCookie {
            duration: Duration::from_secs(60),
        };
        let none = HeaderMap::new();
        let cookies = set_cookies(&lb, "abc", Some("abc"), &none);
        assert_eq!(cookies[0], "AWSALB=abc; Max-Age=60; Path=/");
        assert_eq!(
            cookies[1],
            "AWSALBCORS=abc; Max-Age=60; Path=/; SameSite=None; Secure"
        );

        let app = Stickiness::AppCookie {
            cookie_name: "session".to_string(),
            duration: Duration::from_secs(30),
        };
        assert!(set_cookies(&app, "abc", None, &none).is_empty());
        assert!(set_cookies(&app, "abc", Some("abc"), &none).is_empty());
        let mut sets = HeaderMap::new();
        sets.append(
            header::SET_COOKIE,
            HeaderValue::from_static("session=1; Path=/"),
        );
        assert_eq!(
            set_cookies(&app, "abc", None, &sets),
            vec![HeaderValue::from_static(
                "AWSALBAPP-0=abc; Max-Age=30; Path=/"
            )]
        );
        // Moved to another target: the cookie is set anew.
        assert_eq!(set_cookies(&app, "abc", Some("forged"), &none).len(), 1);
        assert!(set_cookies(&Stickiness::SourceIp, "abc", None, &sets).is_empty());
    }

    #[test]
    fn source_addresses_spread_and_only_a_leaving_targets_clients_move() {
        let targets: Vec<Arc<Target>> = (0..3).map(target).collect();
        let clients: Vec<IpAddr> = (0..300u32)
            .map(|n| IpAddr::from([10, 0, (n >> 8) as u8, n as u8]))
            .collect();
        let picks: Vec<String> = clients
            .iter()
            .map(|ip| by_source(&targets, *ip, None).unwrap().id.clone())
            .collect();
        for index in 0..3 {
            let count = picks
                .iter()
                .filter(|id| **id == format!("t{index}"))
                .count();
            assert!(count > 50, "t{index} got {count} of 300 clients");
        }
        // The same address always lands on the same target.
        for (ip, pick) in clients.iter().zip(&picks) {
            assert_eq!(&by_source(&targets, *ip, None).unwrap().id, pick);
        }
        // Without t1, t1's clients move and nobody else's do.
        let without: Vec<Arc<Target>> = vec![targets[0].clone(), targets[2].clone()];
        for (ip, pick) in clients.iter().zip(&picks) {
            let now = &by_source(&without, *ip, None).unwrap().id;
            if pick != "t1" {
                assert_eq!(now, pick);
            } else {
                assert_ne!(now, "t1");
            }
        }
        assert_eq!(
            by_source(&targets[..1], clients[0], Some(&targets[0])).map(|t| t.id.clone()),
            None
        );
    }
}
