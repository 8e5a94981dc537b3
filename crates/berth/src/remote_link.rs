//! `berth agent`'s link to `berth server`: the join, then `ControlPlaneLink` over
//! mutually authenticated TLS (reqwest on rustls, JSON; the paths and messages are
//! `berth_proto::remote`'s).
//!
//! Here rather than in berth-agent, so the agent crate stays free of any network stack
//! and its tests drive it through the trait alone; the binary already carries reqwest
//! and rustls for the client commands.
//!
//! Join: the agent makes its own key (kept in `<data dir>/pki/agent-key.pem`, 0600) and
//! sends a certificate request with the token. Before the token leaves the machine, the
//! TLS handshake must show a server certificate that chains to a CA certificate whose
//! SHA-256 is the one the token pins ([`PinnedCaVerifier`]): no trust on first use. The
//! certificate it gets and the CA's are kept beside the key; from then on every call
//! presents that certificate and trusts that CA only, so a restart needs no token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use berth_proto::remote::{
    paths, AssignmentsRequest, BalancerConfigRequest, JoinRequest, JoinResponse, LogAnswer,
    LogRequest, LogRequests, LogRequestsPoll, Refusal, RegisterRequest, ReportRequest,
};
use berth_proto::{
    Assignments, BalancerConfig, ControlPlaneLink, LinkError, NodeRegistration, TaskReport,
    PROTOCOL_VERSION,
};
use berth_server::cluster_ca::fingerprint;
use berth_server::join_token::JoinToken;
use berth_server::private_files::{create_private_dir, write_private};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long a call other than the long-poll may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What an agent that joined keeps: its key, its certificate and the cluster's CA.
pub struct Identity {
    key: PrivateKeyDer<'static>,
    certificate: CertificateDer<'static>,
    ca: CertificateDer<'static>,
}

impl Identity {
    fn paths(pki_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        (
            pki_dir.join("agent-key.pem"),
            pki_dir.join("agent.pem"),
            pki_dir.join("ca.pem"),
        )
    }

    /// The identity kept in `pki_dir`, if the agent joined before.
    pub fn load(pki_dir: &Path) -> anyhow::Result<Option<Identity>> {
        let (key_path, certificate_path, ca_path) = Identity::paths(pki_dir);
        if !certificate_path.exists() || !ca_path.exists() {
            return Ok(None);
        }
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .with_context(|| format!("reading the agent's key {}", key_path.display()))?;
        let certificate = CertificateDer::from_pem_file(&certificate_path).with_context(|| {
            format!(
                "reading the agent's certificate {}",
                certificate_path.display()
            )
        })?;
        let ca = CertificateDer::from_pem_file(&ca_path)
            .with_context(|| format!("reading the cluster CA {}", ca_path.display()))?;
        Ok(Some(Identity {
            key,
            certificate,
            ca,
        }))
    }
}

/// Joins the cluster of `server` with `token` as `node_id`; keeps the identity it gets
/// in `pki_dir`.
pub async fn join(
    server: &reqwest::Url,
    token: &str,
    node_id: &str,
    pki_dir: &Path,
) -> anyhow::Result<Identity> {
    let token = JoinToken::parse(token)?;
    create_private_dir(pki_dir).with_context(|| format!("creating {}", pki_dir.display()))?;
    let (key_path, certificate_path, ca_path) = Identity::paths(pki_dir);
    // The key is made once and kept: a join that fails half-way asks again for it.
    let key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem)
            .with_context(|| format!("reading the agent's key {}", key_path.display()))?,
        Err(_) => {
            let key = rcgen::KeyPair::generate().context("making the agent's key")?;
            write_private(&key_path, key.serialize_pem().as_bytes())
                .with_context(|| format!("writing {}", key_path.display()))?;
            key
        }
    };
    let certificate_request = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|params| params.serialize_request(&key))
        .and_then(|request| request.pem())
        .context("making the certificate request")?;

    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier {
            fingerprint: token.ca_fingerprint().to_string(),
            provider: provider(),
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = http_client(config)?;
    let request = JoinRequest {
        protocol_version: PROTOCOL_VERSION,
        token: token.reveal(),
        node_id: node_id.to_string(),
        certificate_request,
    };
    let url = server.join(paths::JOIN).context("the server URL")?;
    let response = client
        .post(url)
        .json(&request)
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot join the cluster at {server}: {}",
                error_chain(&error)
            )
        })?;
    let status = response.status();
    let body = response.bytes().await.context("reading the join answer")?;
    if !status.is_success() {
        let reason = serde_json::from_slice::<Refusal>(&body)
            .map(|refusal| refusal.message)
            .unwrap_or_else(|_| format!("status {status}"));
        bail!("berth server refused the join: {reason}");
    }
    let answer: JoinResponse =
        serde_json::from_slice(&body).context("the join answer is not what berth sends")?;
    let ca = CertificateDer::from_pem_slice(answer.ca_certificate.as_bytes())
        .context("the join answer's CA certificate")?;
    if fingerprint(&ca) != token.ca_fingerprint() {
        bail!("the server answered with a CA certificate other than the one the token pins");
    }
    let certificate = CertificateDer::from_pem_slice(answer.certificate.as_bytes())
        .context("the join answer's certificate")?;
    write_private(&ca_path, answer.ca_certificate.as_bytes())
        .with_context(|| format!("writing {}", ca_path.display()))?;
    write_private(&certificate_path, answer.certificate.as_bytes())
        .with_context(|| format!("writing {}", certificate_path.display()))?;
    Ok(Identity {
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        certificate,
        ca,
    })
}

/// An error and its sources, one line: reqwest's own message says little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn http_client(config: rustls::ClientConfig) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .http1_only()
        // Below the agent listener's idle timeout: a pooled connection is not reused
        // just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("setting up the HTTP client")
}

/// Trusts a server certificate only if its chain holds a CA certificate with the
/// pinned SHA-256, and the certificate verifies against that CA for the server's name.
#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|certificate| fingerprint(certificate) == self.fingerprint)
        else {
            return Err(rustls::Error::General(
                "the server is not of the cluster the join token names: no CA certificate with the token's SHA-256 in its chain".to_string(),
            ));
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|error| rustls::Error::General(format!("the pinned CA: {error}")))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|error| rustls::Error::General(format!("the pinned CA: {error}")))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The agent's calls to `berth server`, as the node its certificate names.
pub struct RemoteLink {
    client: reqwest::Client,
    server: reqwest::Url,
}

impl RemoteLink {
    pub fn new(server: &reqwest::Url, identity: &Identity) -> anyhow::Result<RemoteLink> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(identity.ca.clone())
            .context("the cluster CA kept in the agent's data dir")?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![identity.certificate.clone()], identity.key.clone_key())
            .context("the agent's key does not fit its certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(RemoteLink {
            client: http_client(config)?,
            server: server.clone(),
        })
    }

    async fn call<R: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<R, LinkError> {
        let url = self
            .server
            .join(path)
            .map_err(|error| LinkError::Refused(format!("the server URL: {error}")))?;
        let response = self
            .client
            .post(url)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| LinkError::Unavailable(error_chain(&error)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| LinkError::Unavailable(error_chain(&error)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                LinkError::Unavailable(format!("the server's answer to {path}: {error}"))
            });
        }
        match serde_json::from_slice::<Refusal>(&bytes) {
            Ok(refusal) if !refusal.code.is_retryable() => Err(LinkError::Refused(refusal.message)),
            Ok(refusal) => Err(LinkError::Unavailable(refusal.message)),
            Err(_) if status.is_server_error() => {
                Err(LinkError::Unavailable(format!("status {status}")))
            }
            Err(_) => Err(LinkError::Refused(format!("status {status}"))),
        }
    }

    /// The load balancer's config for this node to serve, once it differs from the
    /// `have` version (the server holds the answer up to `timeout`, which it caps).
    pub async fn balancer_config(
        &self,
        have: Option<&str>,
        timeout: Duration,
    ) -> Result<BalancerConfig, LinkError> {
        let request = BalancerConfigRequest {
            have: have.map(str::to_string),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let wait = timeout.min(berth_server::MAX_LONG_POLL) + CALL_TIMEOUT;
        self.call(paths::LOAD_BALANCER, &request, wait).await
    }

    /// The log requests for this node's tasks, as they come (the server holds the
    /// answer up to `timeout`, which it caps).
    pub async fn log_requests(&self, timeout: Duration) -> Result<Vec<LogRequest>, LinkError> {
        let poll = LogRequestsPoll {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let wait = timeout.min(berth_server::MAX_LONG_POLL) + CALL_TIMEOUT;
        self.call::<LogRequests>(paths::LOG_REQUESTS, &poll, wait)
            .await
            .map(|answer| answer.requests)
    }

    /// Sends the answer to one log request.
    pub async fn log_answer(&self, answer: &LogAnswer) -> Result<(), LinkError> {
        self.call::<serde_json::Value>(paths::LOG_ANSWER, answer, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Tells the server this agent is alive.
    pub async fn heartbeat(&self) -> Result<(), LinkError> {
        self.call::<serde_json::Value>(paths::HEARTBEAT, &serde_json::json!({}), CALL_TIMEOUT)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl ControlPlaneLink for RemoteLink {
    async fn register(&self, registration: NodeRegistration) -> Result<(), LinkError> {
        let request = RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            registration,
        };
        self.call::<serde_json::Value>(paths::REGISTER, &request, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn assignments(
        &self,
        node_id: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<Assignments, LinkError> {
        let request = AssignmentsRequest {
            node_id: node_id.to_string(),
            since,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        // The server holds the answer up to `timeout` (it caps it): wait past that.
        let wait = timeout.min(berth_server::MAX_LONG_POLL) + CALL_TIMEOUT;
        self.call(paths::ASSIGNMENTS, &request, wait).await
    }

    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError> {
        self.call::<serde_json::Value>(paths::REPORT, &ReportRequest { reports }, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }
}
