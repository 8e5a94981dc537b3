//! A SigV4-signed client of berth's API: ECS (JSON) and ELBv2 (awsQuery form in, XML out)
//! on the same endpoint.

use anyhow::{anyhow, bail, Context};
use berth_auth::{sign_headers, Credentials};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

impl ApiClient {
    pub fn from_flags(flags: &Endpoint) -> anyhow::Result<Self> {
        let data_dir = paths::data_dir(flags.data_dir.as_deref());
        let file = paths::read_connection(&data_dir).ok();
        let endpoint = flags
            .endpoint
            .clone()
            .or_else(|| env(&["AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL"]))
            .or_else(|| file.as_ref().map(|f| f.endpoint.clone()))
            .unwrap_or_else(|| "http://127.0.0.1:9650".to_string());
        let access_key_id = flags
            .access_key_id
            .clone()
            .or_else(|| env(&["BERTH_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]))
            .or_else(|| file.as_ref().map(|f| f.access_key_id.clone()));
        let secret_access_key = flags
            .secret_access_key
            .clone()
            .or_else(|| env(&["BERTH_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]))
            .or_else(|| file.as_ref().map(|f| f.secret_access_key.clone()));
        let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key)
        else {
            bail!(
                "no credentials: pass --access-key-id and --secret-access-key, set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or run `berth dev` (it writes {})",
                paths::connection_file(&data_dir).display()
            );
        };
        let region = flags
            .region
            .clone()
            .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .or_else(|| file.as_ref().map(|f| f.region.clone()))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = endpoint.trim_end_matches('/').to_string();
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
            http: reqwest::Client::new(),
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

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_escape("Targets.member.1.Id"), "Targets.member.1.Id");
        assert_eq!(form_escape("a b/c:d=e&f"), "a%20b%2Fc%3Ad%3De%26f");
        assert_eq!(form_escape("é"), "%C3%A9");
    }
}
