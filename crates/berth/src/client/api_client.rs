//! A SigV4-signed client of berth's API: ECS (JSON) and ELBv2 (awsQuery form in, XML out)
//! on the same endpoint.

use anyhow::{anyhow, bail, Context};
use berth_auth::{sign_headers, Credentials};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::aws_config;
use super::query_xml::XmlElement;
use super::Endpoint;
use crate::paths;

pub struct ApiClient {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    credentials: Credentials,
    pub cluster: String,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Where the client connects and the key pair it signs with, before any network use.
#[derive(Debug, PartialEq)]
struct Resolved {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    region: String,
    ca_bundle: Option<std::path::PathBuf>,
}

/// Picks the endpoint as the AWS SDKs do (the flag, then `AWS_ENDPOINT_URL_ECS`,
/// `AWS_ENDPOINT_URL`, the profile's `services` section's `ecs` endpoint, the profile's
/// `endpoint_url`; all but the flag skipped under `ignore_configured_endpoint_urls`),
/// then the `berth dev` connection file, then `http://127.0.0.1:9650`.
///
/// Then a key pair from one source only, so a key id and a secret from different
/// places never meet: the flags, then `BERTH_ACCESS_KEY_ID`/`BERTH_SECRET_ACCESS_KEY`,
/// then the `berth dev` connection file, then the profile (each only when talking to
/// the endpoint it names), then `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. Those
/// come last because they are often a user's real AWS keys, which berth does not know.
fn resolve(
    flags: &Endpoint,
    env: impl Fn(&[&str]) -> Option<String>,
    file: Option<&paths::Connection>,
    profile: &aws_config::Profile,
    connection_file: &std::path::Path,
) -> anyhow::Result<Resolved> {
    let ignore_configured = match env(&["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]) {
        Some(value) => value.eq_ignore_ascii_case("true"),
        None => profile.ignore_configured_endpoint_urls,
    };
    let configured = || {
        env(&["AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL"])
            .or_else(|| profile.endpoint().map(str::to_string))
    };
    let endpoint = flags
        .endpoint
        .clone()
        .or_else(|| (!ignore_configured).then(configured).flatten())
        .or_else(|| file.map(|f| f.endpoint.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:9650".to_string())
        .trim_end_matches('/')
        .to_string();
    let file = file.filter(|f| f.endpoint.trim_end_matches('/') == endpoint);
    let profile = Some(profile)
        .filter(|p| p.endpoint().map(|e| e.trim_end_matches('/')) == Some(endpoint.as_str()));
    let pair = match (&flags.access_key_id, &flags.secret_access_key) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (Some(_), None) => bail!("--access-key-id needs --secret-access-key too"),
        (None, Some(_)) => bail!("--secret-access-key needs --access-key-id too"),
        (None, None) => None,
    };
    let from_env = |id: &str, secret: &str| -> anyhow::Result<Option<(String, String)>> {
        match (env(&[id]), env(&[secret])) {
            (Some(id), Some(secret)) => Ok(Some((id, secret))),
            (None, None) => Ok(None),
            (Some(_), None) => bail!("{id} is set but {secret} is not"),
            (None, Some(_)) => bail!("{secret} is set but {id} is not"),
        }
    };
    let pair = match pair {
        Some(pair) => Some(pair),
        None => from_env("BERTH_ACCESS_KEY_ID", "BERTH_SECRET_ACCESS_KEY")?,
    };
    let pair =
        pair.or_else(|| file.map(|f| (f.access_key_id.clone(), f.secret_access_key.clone())));
    let pair = match (pair, profile) {
        (Some(pair), _) => Some(pair),
        (None, Some(p)) => match (&p.access_key_id, &p.secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            (None, None) => None,
            _ => bail!(
                "the AWS profile for {endpoint} has only one of aws_access_key_id and aws_secret_access_key"
            ),
        },
        (None, None) => None,
    };
    let pair = match pair {
        Some(pair) => pair,
        None => from_env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")?.ok_or_else(|| {
            anyhow!(
                "no credentials for {endpoint}: pass --access-key-id and --secret-access-key, set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or run `berth dev` (it writes {})",
                connection_file.display()
            )
        })?,
    };
    let region = flags
        .region
        .clone()
        .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
        .or_else(|| profile.and_then(|p| p.region.clone()))
        .or_else(|| file.map(|f| f.region.clone()))
        .unwrap_or_else(|| "us-east-1".to_string());
    // Only https has certificates to trust; a bundle set for other uses is ignored
    // for plain HTTP, as the aws CLI does.
    let ca_bundle = flags
        .ca_bundle
        .clone()
        .or_else(|| env(&["AWS_CA_BUNDLE"]).map(Into::into))
        .or_else(|| file.and_then(|f| f.ca_bundle.clone()))
        .filter(|_| endpoint.starts_with("https://"));
    Ok(Resolved {
        endpoint,
        access_key_id: pair.0,
        secret_access_key: pair.1,
        region,
        ca_bundle,
    })
}

impl ApiClient {
    pub fn from_flags(flags: &Endpoint) -> anyhow::Result<Self> {
        let data_dir = paths::data_dir(flags.data_dir.as_deref());
        let file = paths::read_connection(&data_dir).ok();
        let profile = aws_config::load(flags.profile.as_deref(), env);
        let Resolved {
            endpoint,
            access_key_id,
            secret_access_key,
            region,
            ca_bundle,
        } = resolve(
            flags,
            env,
            file.as_ref(),
            &profile,
            &paths::connection_file(&data_dir),
        )?;
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&endpoint)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if host.is_empty() {
            bail!("endpoint '{endpoint}' has no host");
        }
        Ok(ApiClient {
            http: http_client(ca_bundle.as_deref())?,
            endpoint,
            host,
            region,
            credentials: Credentials::new(access_key_id, secret_access_key),
            cluster: flags
                .cluster
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        })
    }

    /// Calls an ECS action (`ListClusters`, ...).
    pub async fn ecs<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        action: &str,
        request: &Req,
    ) -> anyhow::Result<Resp> {
        self.call(
            &format!("{}.{action}", berth_api::ECS_TARGET_PREFIX),
            request,
        )
        .await
    }

    /// Calls one of berth's own actions (`GetTaskLogs`).
    pub async fn berth<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        action: &str,
        request: &Req,
    ) -> anyhow::Result<Resp> {
        self.call(
            &format!("{}.{action}", berth_api::BERTH_TARGET_PREFIX),
            request,
        )
        .await
    }

    /// Calls an ELBv2 action with its awsQuery parameters (`Names.member.1`, ...) and
    /// returns the XML document berth answers. An `<ErrorResponse>` becomes an
    /// [`Elbv2Error`] (downcast it to tell `LoadBalancerNotFound` from other failures).
    pub async fn elbv2(
        &self,
        action: &str,
        params: Vec<(String, String)>,
    ) -> anyhow::Result<String> {
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            (
                "Version".to_string(),
                berth_api::elbv2::ELBV2_VERSION.to_string(),
            ),
        ];
        form.extend(params);
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", form_escape(name), form_escape(value)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        let headers = sign_headers(
            &self.credentials,
            &self.region,
            "elasticloadbalancing",
            time::OffsetDateTime::now_utc(),
            "POST",
            &self.host,
            "/",
            vec![(
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )],
            &body,
        );
        let (status, bytes) = self.send(headers, body).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let error = XmlElement::parse(&text).ok().and_then(|root| {
                Some(Elbv2Error {
                    code: root.text_at(&["Error", "Code"])?.to_string(),
                    message: root
                        .text_at(&["Error", "Message"])
                        .unwrap_or_default()
                        .to_string(),
                })
            });
            return Err(match error {
                Some(error) => error.into(),
                None => anyhow!("berth answered {status} to {action}: {text}"),
            });
        }
        Ok(text)
    }

    async fn send(
        &self,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let mut builder = self.http.post(format!("{}/", self.endpoint)).body(body);
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("host") {
                continue; // reqwest sets the same Host from the URL
            }
            builder = builder.header(name, value);
        }
        let response = builder.send().await.with_context(|| {
            format!(
                "cannot reach berth at {} (is `berth dev` running?)",
                self.endpoint
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading berth's answer")?;
        Ok((status, bytes.to_vec()))
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: &str,
        request: &Req,
    ) -> anyhow::Result<Resp> {
        let body = serde_json::to_vec(request)?;
        let headers = sign_headers(
            &self.credentials,
            &self.region,
            "ecs",
            time::OffsetDateTime::now_utc(),
            "POST",
            &self.host,
            "/",
            vec![
                (
                    "content-type".to_string(),
                    berth_api::AWS_JSON_CONTENT_TYPE.to_string(),
                ),
                ("x-amz-target".to_string(), target.to_string()),
            ],
            &body,
        );
        let (status, bytes) = self.send(headers, body).await?;
        if !status.is_success() {
            let error: Option<berth_api::ErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(match error {
                Some(e) => anyhow!("{}: {}", e.error_type, e.message),
                None => anyhow!(
                    "berth answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            });
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("berth's answer to {target} is not what berth sends"))
    }
}

/// The HTTP client, trusting the certificates in `ca_bundle` as well as the usual
/// roots (a `berth dev` beyond loopback serves a self-signed certificate).
fn http_client(ca_bundle: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the CA bundle {}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing the CA bundle {}", path.display()))?;
        if certificates.is_empty() {
            bail!("the CA bundle {} holds no certificate", path.display());
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().context("setting up the HTTP client")
}

/// An ELBv2 error answer: `<Error><Code>TargetGroupNotFound</Code><Message>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elbv2Error {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Elbv2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Elbv2Error {}

/// Whether `error` is the ELBv2 error `code`.
pub fn is_elbv2_error(error: &anyhow::Error, code: &str) -> bool {
    error
        .downcast_ref::<Elbv2Error>()
        .is_some_and(|e| e.code == code)
}

/// `application/x-www-form-urlencoded` as botocore writes it: unreserved characters as
/// they are, everything else percent-encoded (space as `%20`).
fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> paths::Connection {
        paths::Connection {
            endpoint: "http://127.0.0.1:9650".to_string(),
            region: "us-east-1".to_string(),
            access_key_id: "FILEKEY".to_string(),
            secret_access_key: "file-secret".to_string(),
            ca_bundle: Some("/data/tls/cert.pem".into()),
        }
    }

    fn flags() -> Endpoint {
        Endpoint {
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            region: None,
            data_dir: None,
            cluster: None,
            ca_bundle: None,
            profile: None,
        }
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&[&str]) -> Option<String> {
        move |names| {
            names.iter().find_map(|n| {
                vars.iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.to_string())
            })
        }
    }

    fn pair(resolved: &Resolved) -> (&str, &str) {
        (&resolved.access_key_id, &resolved.secret_access_key)
    }

    const NO_FILE: &str = "/nonexistent/connection.json";
    const NO_PROFILE: aws_config::Profile = aws_config::Profile {
        endpoint_url: None,
        ecs_endpoint_url: None,
        ignore_configured_endpoint_urls: false,
        region: None,
        access_key_id: None,
        secret_access_key: None,
    };

    #[test]
    fn the_dev_connection_file_beats_real_aws_keys_in_the_environment() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIAREAL"),
            ("AWS_SECRET_ACCESS_KEY", "real"),
        ]);
        let file = connection();
        let resolved = resolve(&flags(), &env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(pair(&resolved), ("FILEKEY", "file-secret"));
        assert_eq!(resolved.endpoint, "http://127.0.0.1:9650");
    }

    #[test]
    fn a_key_pair_comes_from_one_source() {
        // A flag key id never meets the file's secret.
        let mut only_id = flags();
        only_id.access_key_id = Some("FLAGKEY".to_string());
        let file = connection();
        let error = resolve(
            &only_id,
            env_of(&[]),
            Some(&file),
            &NO_PROFILE,
            NO_FILE.as_ref(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("--secret-access-key"), "{error}");
        // BERTH_* beat the file; half a BERTH_* pair is an error naming the missing one.
        let env = env_of(&[
            ("BERTH_ACCESS_KEY_ID", "ENVKEY"),
            ("BERTH_SECRET_ACCESS_KEY", "env-secret"),
        ]);
        let resolved = resolve(&flags(), env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(pair(&resolved), ("ENVKEY", "env-secret"));
        let env = env_of(&[("BERTH_ACCESS_KEY_ID", "ENVKEY")]);
        let error = resolve(&flags(), env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap_err();
        assert!(
            error.to_string().contains("BERTH_SECRET_ACCESS_KEY"),
            "{error}"
        );
    }

    #[test]
    fn the_file_is_used_only_for_its_own_endpoint() {
        let file = connection();
        let mut other = flags();
        other.endpoint = Some("http://10.0.0.5:9650/".to_string());
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "OTHERKEY"),
            ("AWS_SECRET_ACCESS_KEY", "other"),
        ]);
        let resolved = resolve(&other, env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://10.0.0.5:9650");
        assert_eq!(pair(&resolved), ("OTHERKEY", "other"));
        let error = resolve(
            &other,
            env_of(&[]),
            Some(&file),
            &NO_PROFILE,
            NO_FILE.as_ref(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no credentials for http://10.0.0.5:9650"),
            "{error}"
        );
    }

    #[test]
    fn the_ca_bundle_comes_from_the_flag_then_aws_ca_bundle_then_the_file() {
        let mut file = connection();
        file.endpoint = "https://127.0.0.1:9650".to_string();
        let resolved = resolve(
            &flags(),
            env_of(&[]),
            Some(&file),
            &NO_PROFILE,
            NO_FILE.as_ref(),
        )
        .unwrap();
        assert_eq!(resolved.ca_bundle, Some("/data/tls/cert.pem".into()));
        let env = env_of(&[("AWS_CA_BUNDLE", "/env/ca.pem")]);
        let resolved = resolve(&flags(), env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.ca_bundle, Some("/env/ca.pem".into()));
        let mut with_flag = flags();
        with_flag.ca_bundle = Some("/flag/ca.pem".into());
        let env = env_of(&[("AWS_CA_BUNDLE", "/env/ca.pem")]);
        let resolved =
            resolve(&with_flag, env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.ca_bundle, Some("/flag/ca.pem".into()));
        // Another endpoint's file does not lend its certificate.
        let mut other = flags();
        other.endpoint = Some("https://10.0.0.5:9650".to_string());
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "K"), ("AWS_SECRET_ACCESS_KEY", "S")]);
        let resolved = resolve(&other, env, Some(&file), &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.ca_bundle, None);
        // Plain HTTP trusts nothing, whatever AWS_CA_BUNDLE says.
        let mut plain = flags();
        plain.endpoint = Some("http://127.0.0.1:9651".to_string());
        let env = env_of(&[
            ("AWS_CA_BUNDLE", "/env/ca.pem"),
            ("AWS_ACCESS_KEY_ID", "K"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
        ]);
        let resolved = resolve(&plain, env, None, &NO_PROFILE, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.ca_bundle, None);
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_escape("Targets.member.1.Id"), "Targets.member.1.Id");
        assert_eq!(form_escape("a b/c:d=e&f"), "a%20b%2Fc%3Ad%3De%26f");
        assert_eq!(form_escape("é"), "%C3%A9");
    }

    fn berth_profile() -> aws_config::Profile {
        aws_config::Profile {
            endpoint_url: Some("http://10.0.0.5:9650".to_string()),
            ecs_endpoint_url: Some("http://10.0.0.6:9650/".to_string()),
            ignore_configured_endpoint_urls: false,
            region: Some("eu-west-1".to_string()),
            access_key_id: Some("PROFILEKEY".to_string()),
            secret_access_key: Some("profile-secret".to_string()),
        }
    }

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_environment_then_the_profile() {
        let file = connection();
        let profile = berth_profile();
        // The profile's services section names ECS's endpoint; its keys and region go
        // with it, and the dev file (for another endpoint) lends nothing.
        let resolved = resolve(
            &flags(),
            env_of(&[]),
            Some(&file),
            &profile,
            NO_FILE.as_ref(),
        )
        .unwrap();
        assert_eq!(resolved.endpoint, "http://10.0.0.6:9650");
        assert_eq!(pair(&resolved), ("PROFILEKEY", "profile-secret"));
        assert_eq!(resolved.region, "eu-west-1");
        // AWS_ENDPOINT_URL beats the profile; AWS_ENDPOINT_URL_ECS beats both.
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9650")]);
        let resolved = resolve(&flags(), env, Some(&file), &profile, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://127.0.0.1:9650");
        assert_eq!(
            pair(&resolved),
            ("FILEKEY", "file-secret"),
            "the dev file's endpoint"
        );
        assert_eq!(resolved.region, "us-east-1");
        let env = env_of(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9650"),
            ("AWS_ENDPOINT_URL_ECS", "http://10.0.0.9:9650"),
            ("AWS_ACCESS_KEY_ID", "K"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
        ]);
        let resolved = resolve(&flags(), env, Some(&file), &profile, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://10.0.0.9:9650");
        assert_eq!(pair(&resolved), ("K", "S"));
        // The flag beats everything.
        let mut flag = flags();
        flag.endpoint = Some("http://10.0.0.1:9650".to_string());
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_ECS", "http://10.0.0.9:9650"),
            ("AWS_ACCESS_KEY_ID", "K"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
        ]);
        let resolved = resolve(&flag, env, Some(&file), &profile, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://10.0.0.1:9650");
    }

    #[test]
    fn ignore_configured_endpoint_urls_leaves_the_flag_and_the_dev_file() {
        let file = connection();
        let mut profile = berth_profile();
        profile.ignore_configured_endpoint_urls = true;
        let env = env_of(&[("AWS_ENDPOINT_URL", "http://10.0.0.9:9650")]);
        let resolved = resolve(&flags(), env, Some(&file), &profile, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://127.0.0.1:9650");
        // The variable overrides the profile's setting, either way.
        let env = env_of(&[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")]);
        let resolved = resolve(&flags(), env, Some(&file), &profile, NO_FILE.as_ref()).unwrap();
        assert_eq!(resolved.endpoint, "http://10.0.0.6:9650");
        let env = env_of(&[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]);
        let resolved = resolve(
            &flags(),
            env,
            Some(&file),
            &berth_profile(),
            NO_FILE.as_ref(),
        )
        .unwrap();
        assert_eq!(resolved.endpoint, "http://127.0.0.1:9650");
    }

    #[test]
    fn half_a_key_pair_in_the_profile_is_an_error() {
        let mut profile = berth_profile();
        profile.secret_access_key = None;
        let error = resolve(&flags(), env_of(&[]), None, &profile, NO_FILE.as_ref()).unwrap_err();
        assert!(
            error.to_string().contains("aws_secret_access_key"),
            "{error}"
        );
    }
}
