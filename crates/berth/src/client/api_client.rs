//! A SigV4-signed client of berth's ECS API.

use anyhow::{anyhow, bail, Context};
use berth_auth::{sign_headers, Credentials};
use serde::de::DeserializeOwned;
use serde::Serialize;

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
