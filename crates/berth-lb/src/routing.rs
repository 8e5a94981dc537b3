//! Listener rules, as ELBv2 evaluates them: each rule's conditions (`path-pattern`,
//! `host-header`, `http-header`, `query-string`, `http-request-method`, `source-ip`)
//! must all match; rules are tried by priority, the default action last. An action
//! forwards (to one target group, or several by weight), answers with a fixed
//! response, or redirects, reusing the request's parts through `#{protocol}`,
//! `#{host}`, `#{port}`, `#{path}` and `#{query}`.
//!
//! Plain data and pure functions: the HTTP proxy calls [`Routes::route`] once per
//! request head.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::header::HeaderMap;

/// A pattern of ELB's: `*` matches any run of characters (also none), `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub String);

impl Pattern {
    /// Whether `text` matches, byte by byte, ASCII case folded when `fold_case`.
    pub fn matches(&self, text: &str, fold_case: bool) -> bool {
        wildcard_match(self.0.as_bytes(), text.as_bytes(), fold_case)
    }
}

/// Iterative wildcard match with one backtrack point: linear in practice, and never
/// exponential for a hostile pattern.
fn wildcard_match(pattern: &[u8], text: &[u8], fold_case: bool) -> bool {
    let same = |a: u8, b: u8| {
        if fold_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (pattern[p] == b'?' || (pattern[p] != b'*' && same(pattern[p], text[t])))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// One condition of a rule; each holds alternatives, any one of which matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The path, case-sensitive, without the query.
    PathPattern(Vec<Pattern>),
    /// The Host header without its port, case-insensitive.
    HostHeader(Vec<Pattern>),
    /// Any value of the named header (the name compared case-insensitively),
    /// case-insensitive.
    HttpHeader { name: String, values: Vec<Pattern> },
    /// Any `key=value` pair of the query string; a pair with no key matches any key's
    /// value. Case-insensitive, compared as sent (still percent-encoded).
    QueryString(Vec<(Option<Pattern>, Pattern)>),
    /// The method, exactly (case-sensitive, as ELB compares it).
    HttpRequestMethod(Vec<String>),
    /// The client's address.
    SourceIp(Vec<Cidr>),
}

/// What a rule, or the default, does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// To one target group, or split over several by weight (weight 0: none).
    Forward(Vec<WeightedGroup>),
    FixedResponse(FixedResponse),
    Redirect(Redirect),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedGroup {
    pub target_group_id: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Each part is a template; ELB's defaults are `#{protocol}`, `#{host}`, `#{port}`,
/// `/#{path}`, `#{query}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    /// 301 or 302.
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// The parts of a request head the conditions and redirects read.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'r> {
    /// `http` or `https`, as the listener speaks.
    pub protocol: &'r str,
    pub method: &'r str,
    /// The Host header as sent (maybe with a port).
    pub host: Option<&'r str>,
    pub path: &'r str,
    pub query: Option<&'r str>,
    pub headers: &'r HeaderMap,
    pub client: IpAddr,
    /// The listener's port, for `#{port}`.
    pub listener_port: u16,
}

impl RequestView<'_> {
    fn host_name(&self) -> Option<&str> {
        let host = self.host?;
        // `[v6]:port`, `[v6]`, `name:port`, `name`.
        if let Some(rest) = host.strip_prefix('[') {
            return rest.split(']').next();
        }
        Some(host.rsplit_once(':').map_or(host, |(name, _)| name))
    }

    fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }
}

impl Condition {
    pub fn matches(&self, request: &RequestView) -> bool {
        match self {
            Condition::PathPattern(patterns) => {
                patterns.iter().any(|p| p.matches(request.path, false))
            }
            Condition::HostHeader(patterns) => request
                .host_name()
                .is_some_and(|host| patterns.iter().any(|p| p.matches(host, true))),
            Condition::HttpHeader { name, values } => request
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|value| values.iter().any(|p| p.matches(value, true))),
            Condition::QueryString(pairs) => request.query_pairs().any(|(key, value)| {
                pairs.iter().any(|(want_key, want_value)| {
                    want_key.as_ref().is_none_or(|k| k.matches(key, true))
                        && want_value.matches(value, true)
                })
            }),
            Condition::HttpRequestMethod(methods) => {
                methods.iter().any(|method| method == request.method)
            }
            Condition::SourceIp(networks) => networks
                .iter()
                .any(|network| network.contains(request.client)),
        }
    }
}

impl Redirect {
    /// The `Location` for `request`: each template with its placeholders filled.
    pub fn location(&self, request: &RequestView) -> String {
        let fill = |template: &str| {
            template
                .replace("#{protocol}", request.protocol)
                .replace("#{host}", request.host_name().unwrap_or_default())
                .replace("#{port}", &request.listener_port.to_string())
                .replace(
                    "#{path}",
                    request.path.strip_prefix('/').unwrap_or(request.path),
                )
                .replace("#{query}", request.query.unwrap_or_default())
        };
        let protocol = fill(&self.protocol).to_ascii_lowercase();
        let port = fill(&self.port);
        let default_port = matches!(
            (protocol.as_str(), port.as_str()),
            ("http", "80") | ("https", "443")
        );
        let mut location = format!("{protocol}://{}", fill(&self.host));
        if !default_port {
            location.push(':');
            location.push_str(&port);
        }
        location.push_str(&fill(&self.path));
        let query = fill(&self.query);
        if !query.is_empty() {
            location.push('?');
            location.push_str(&query);
        }
        location
    }
}

/// A listener's rules, sorted by priority, and its default action.
#[derive(Debug)]
pub struct Routes {
    rules: Vec<Rule>,
    default: Action,
    /// Counts weighted forwards, for a smooth split with no randomness.
    forwarded: AtomicU64,
}

impl PartialEq for Routes {
    fn eq(&self, other: &Routes) -> bool {
        self.rules == other.rules && self.default == other.default
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Forward(&'a str),
    FixedResponse(&'a FixedResponse),
    Redirect(&'a Redirect),
    /// A weighted forward whose weights are all 0: ELB answers 503.
    NoTargetGroup,
}

impl Routes {
    pub fn new(mut rules: Vec<Rule>, default: Action) -> Routes {
        rules.sort_by_key(|rule| rule.priority);
        Routes {
            rules,
            default,
            forwarded: AtomicU64::new(0),
        }
    }

    /// Whether any rule comes before the default action.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The action of the first rule whose conditions all match, else the default.
    pub fn route(&self, request: &RequestView) -> Route<'_> {
        let action = self
            .rules
            .iter()
            .find(|rule| rule.conditions.iter().all(|c| c.matches(request)))
            .map_or(&self.default, |rule| &rule.action);
        self.resolve(action)
    }

    /// The default action, for a listener with no rules (nothing to look at).
    pub fn route_default(&self) -> Route<'_> {
        self.resolve(&self.default)
    }

    fn resolve<'a>(&'a self, action: &'a Action) -> Route<'a> {
        match action {
            Action::FixedResponse(response) => Route::FixedResponse(response),
            Action::Redirect(redirect) => Route::Redirect(redirect),
            Action::Forward(groups) => {
                let total: u64 = groups.iter().map(|g| u64::from(g.weight)).sum();
                match groups.as_slice() {
                    [only] => Route::Forward(&only.target_group_id),
                    _ if total == 0 => Route::NoTargetGroup,
                    _ => {
                        // The n-th weighted forward lands in the slot n mod total: each
                        // group gets exactly its share of every `total` requests.
                        let slot = self.forwarded.fetch_add(1, Ordering::Relaxed) % total;
                        let mut upto = 0;
                        groups
                            .iter()
                            .find(|g| {
                                upto += u64::from(g.weight);
                                slot < upto
                            })
                            .map_or(Route::NoTargetGroup, |g| Route::Forward(&g.target_group_id))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, hyper::header::HeaderValue::from_static(value));
        }
        map
    }

    fn request<'r>(path: &'r str, headers: &'r HeaderMap) -> RequestView<'r> {
        RequestView {
            protocol: "http",
            method: "GET",
            host: Some("api.example.com:8080"),
            path,
            query: None,
            headers,
            client: "10.1.2.3".parse().unwrap(),
            listener_port: 8080,
        }
    }

    fn p(text: &str) -> Pattern {
        Pattern(text.to_string())
    }

    fn forward(id: &str) -> Action {
        Action::Forward(vec![WeightedGroup {
            target_group_id: id.to_string(),
            weight: 1,
        }])
    }

    #[test]
    fn wildcards_match_as_elb_documents() {
        assert!(p("/api/*").matches("/api/users/7", false));
        assert!(p("/api/*").matches("/api/", false));
        assert!(!p("/api/*").matches("/api", false));
        assert!(p("/img/??.png").matches("/img/ab.png", false));
        assert!(!p("/img/??.png").matches("/img/abc.png", false));
        assert!(p("*.example.com").matches("API.Example.com", true));
        assert!(
            !p("/API").matches("/api", false),
            "paths are case-sensitive"
        );
        assert!(p("*a*b*c*").matches("xxaxxbxxcxx", false));
        // A hostile pattern stays fast: this would take ages with naive backtracking.
        let long = "a".repeat(4000);
        assert!(p(&"*a".repeat(60)).matches(&long, false));
        assert!(!p("*a*a*a*a*a*a*a*a*b").matches(&long, false));
    }

    #[test]
    fn each_condition_reads_its_part_of_the_request() {
        let headers = headers(&[("user-agent", "curl/8.0"), ("x-canary", "Yes")]);
        let mut r = request("/api/users", &headers);
        r.query = Some("version=2&debug");
        assert!(Condition::PathPattern(vec![p("/web/*"), p("/api/*")]).matches(&r));
        assert!(
            Condition::HostHeader(vec![p("API.example.com")]).matches(&r),
            "port and case ignored"
        );
        assert!(!Condition::HostHeader(vec![p("example.com")]).matches(&r));
        assert!(Condition::HttpHeader {
            name: "x-canary".into(),
            values: vec![p("yes")]
        }
        .matches(&r));
        assert!(!Condition::HttpHeader {
            name: "x-other".into(),
            values: vec![p("*")]
        }
        .matches(&r));
        assert!(Condition::QueryString(vec![(Some(p("version")), p("2"))]).matches(&r));
        assert!(
            Condition::QueryString(vec![(None, p("2"))]).matches(&r),
            "any key"
        );
        assert!(Condition::QueryString(vec![(Some(p("debug")), p(""))]).matches(&r));
        assert!(!Condition::QueryString(vec![(Some(p("version")), p("3"))]).matches(&r));
        assert!(Condition::HttpRequestMethod(vec!["GET".into()]).matches(&r));
        assert!(!Condition::HttpRequestMethod(vec!["get".into()]).matches(&r));
        let net = |s: &str| {
            let (ip, prefix) = s.split_once('/').unwrap();
            Cidr {
                network: ip.parse().unwrap(),
                prefix: prefix.parse().unwrap(),
            }
        };
        assert!(Condition::SourceIp(vec![net("10.0.0.0/8")]).matches(&r));
        assert!(!Condition::SourceIp(vec![net("10.1.3.0/24")]).matches(&r));
        assert!(Condition::SourceIp(vec![net("0.0.0.0/0")]).matches(&r));
        r.client = "::ffff:10.1.2.3".parse().unwrap();
        assert!(
            Condition::SourceIp(vec![net("10.1.2.3/32")]).matches(&r),
            "v4-mapped"
        );
        r.client = "2001:db8::1".parse().unwrap();
        assert!(Condition::SourceIp(vec![net("2001:db8::/32")]).matches(&r));
        assert!(!Condition::SourceIp(vec![net("10.0.0.0/8")]).matches(&r));
    }

    #[test]
    fn the_first_rule_by_priority_whose_conditions_all_match_wins() {
        let routes = Routes::new(
            vec![
                Rule {
                    priority: 20,
                    conditions: vec![Condition::PathPattern(vec![p("/api/*")])],
                    action: forward("api"),
                },
                Rule {
                    priority: 10,
                    conditions: vec![
                        Condition::PathPattern(vec![p("/api/*")]),
                        Condition::HttpHeader {
                            name: "x-canary".into(),
                            values: vec![p("yes")],
                        },
                    ],
                    action: forward("canary"),
                },
            ],
            forward("web"),
        );
        let canary = headers(&[("x-canary", "yes")]);
        assert_eq!(
            routes.route(&request("/api/x", &canary)),
            Route::Forward("canary")
        );
        let none = HeaderMap::new();
        assert_eq!(
            routes.route(&request("/api/x", &none)),
            Route::Forward("api")
        );
        assert_eq!(routes.route(&request("/", &canary)), Route::Forward("web"));
    }

    #[test]
    fn weights_split_every_round_exactly() {
        let routes = Routes::new(
            vec![],
            Action::Forward(vec![
                WeightedGroup {
                    target_group_id: "blue".into(),
                    weight: 3,
                },
                WeightedGroup {
                    target_group_id: "green".into(),
                    weight: 1,
                },
                WeightedGroup {
                    target_group_id: "off".into(),
                    weight: 0,
                },
            ]),
        );
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..400 {
            let Route::Forward(group) = routes.route(&request("/", &HeaderMap::new())) else {
                panic!("a forward");
            };
            *counts.entry(group.to_string()).or_insert(0) += 1;
        }
        assert_eq!(counts.get("blue"), Some(&300));
        assert_eq!(counts.get("green"), Some(&100));
        assert_eq!(counts.get("off"), None);
        let none = Routes::new(
            vec![],
            Action::Forward(vec![
                WeightedGroup {
                    target_group_id: "a".into(),
                    weight: 0,
                },
                WeightedGroup {
                    target_group_id: "b".into(),
                    weight: 0,
                },
            ]),
        );
        assert_eq!(
            none.route(&request("/", &HeaderMap::new())),
            Route::NoTargetGroup
        );
    }

    #[test]
    fn redirects_fill_their_placeholders() {
        let none = HeaderMap::new();
        let mut r = request("/old/page", &none);
        r.query = Some("a=1");
        let to_https = Redirect {
            protocol: "HTTPS".into(),
            host: "#{host}".into(),
            port: "443".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status: 301,
        };
        assert_eq!(
            to_https.location(&r),
            "https://api.example.com/old/page?a=1"
        );
        let moved = Redirect {
            protocol: "#{protocol}".into(),
            host: "new.example.com".into(),
            port: "#{port}".into(),
            path: "/v2/#{path}".into(),
            query: "".into(),
            status: 302,
        };
        assert_eq!(
            moved.location(&r),
            "http://new.example.com:8080/v2/old/page"
        );
    }
}
