//! `berth agent`'s link to `berth server`: the join, then `ControlPlaneLink` over
//! mutually authenticated TLS (reqwest on rustls, JSON; the paths and messages are
//! `berth_proto::remote`'s).
//!
//! A crate of its own: berth-agent stays free of any network stack (its tests drive it
//! through the trait alone), and `berth agent` and the fleet benchmark (`bench/fleet`)
//! send the same thing.
//!
//! Join: the agent makes its own key (kept in `<data dir>/pki/agent-key.pem`, 0600) and
//! sends a certificate request with the token. Before the token leaves the machine, the
//! TLS handshake must show a server certificate that chains to a CA certificate whose
//! SHA-256 is the one the token pins ([`PinnedCaVerifier`]): no trust on first use. The
//! certificate it gets and the CA's are kept beside the key; from then on every call
//! presents that certificate and trusts that CA only, so a restart needs no token.
//!
//! Every call leaves from the agent's `--address` when this machine has that address
//! ([`source_address`]): on a machine with several addresses the server then hears the
//! node from the address it publishes its tasks' ports at, and a network cut between
//! those two addresses cuts the agent off as it cuts the load balancer off.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use berth_proto::remote::{
    paths, AssignmentsRequest, BalancerConfigRequest, JoinRequest, JoinResponse, Refusal,
    RegisterRequest, ReportRequest, ServiceEndpointsRequest, TaskAnswer, TaskRequest, TaskRequests,
    TaskRequestsPoll,
};
use berth_proto::{
    Assignments, BalancerConfig, ControlPlaneLink, LinkError, NodeRegistration, ServiceEndpoints,
    TaskReport, PROTOCOL_VERSION,
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
use tokio::sync::Notify;

/// How long a call other than the long-poll may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a heartbeat may take. A server answers one at once; one that takes longer
/// is stuck on a connection that no longer delivers (a network cut drops packets
/// without a word, and TCP retries them ever more slowly). Giving up drops that
/// connection, so the next heartbeat opens a fresh one and the agent hears the server
/// soon after the network heals.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

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
    source: Option<IpAddr>,
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
    let client = http_client(config, source)?;
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

/// The address the agent's calls leave from: `address` (its `--address`) if this
/// machine has it. An address others reach the machine at but that is not its own (a
/// NAT's, a floating one) cannot be bound, so the calls then leave from whichever
/// address the route picks, as they do when no `--address` is given.
pub fn source_address(address: IpAddr) -> Option<IpAddr> {
    match std::net::UdpSocket::bind((address, 0)) {
        Ok(_) => Some(address),
        Err(error) => {
            tracing::info!(%address, %error, "--address is not one of this machine's; calls to the server leave from the routed address");
            None
        }
    }
}

fn http_client(
    config: rustls::ClientConfig,
    source: Option<IpAddr>,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .local_address(source)
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
    /// The last heartbeat failed.
    heartbeats_failing: AtomicBool,
    /// Told when a heartbeat gets through after failures: see [`RemoteLink::heartbeat`].
    heartbeats_back: Notify,
}

impl RemoteLink {
    /// Calls leave from `source` when given (see [`source_address`]).
    pub fn new(
        server: &reqwest::Url,
        identity: &Identity,
        source: Option<IpAddr>,
    ) -> anyhow::Result<RemoteLink> {
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
        Ok(RemoteLink::with_client(
            http_client(config, source)?,
            server,
        ))
    }

    fn with_client(client: reqwest::Client, server: &reqwest::Url) -> RemoteLink {
        RemoteLink {
            client,
            server: server.clone(),
            heartbeats_failing: AtomicBool::new(false),
            heartbeats_back: Notify::new(),
        }
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

    /// The requests about this node's tasks (their output, their figures), as they
    /// come (the server holds the answer up to `timeout`, which it caps).
    pub async fn task_requests(&self, timeout: Duration) -> Result<Vec<TaskRequest>, LinkError> {
        let poll = TaskRequestsPoll {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let wait = timeout.min(berth_server::MAX_LONG_POLL) + CALL_TIMEOUT;
        self.call::<TaskRequests>(paths::TASK_REQUESTS, &poll, wait)
            .await
            .map(|answer| answer.requests)
    }

    /// Sends the answer to one task request.
    pub async fn task_answer(&self, answer: &TaskAnswer) -> Result<(), LinkError> {
        self.call::<serde_json::Value>(paths::TASK_ANSWER, answer, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Tells the server this agent is alive.
    /// When one gets through after failures, the long-poll in flight is asked anew: it
    /// went out before the failures and may sit on a connection a network cut killed,
    /// waiting out its timeout, while the server has news for this node (after a
    /// partition: that its tasks were given up, whose containers still run here).
    pub async fn heartbeat(&self) -> Result<(), LinkError> {
        let result = self
            .call::<serde_json::Value>(paths::HEARTBEAT, &serde_json::json!({}), HEARTBEAT_TIMEOUT)
            .await
            .map(|_| ());
        let was_failing = self
            .heartbeats_failing
            .swap(result.is_err(), Ordering::SeqCst);
        if was_failing && result.is_ok() {
            self.heartbeats_back.notify_waiters();
        }
        result
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
        tokio::select! {
            answer = self.call(paths::ASSIGNMENTS, &request, wait) => answer,
            () = self.heartbeats_back.notified() => Err(LinkError::Unavailable(
                "the server is reachable again; asking for assignments anew".to_string(),
            )),
        }
    }

    async fn report(&self, reports: Vec<TaskReport>) -> Result<(), LinkError> {
        self.call::<serde_json::Value>(paths::REPORT, &ReportRequest { reports }, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn service_endpoints(
        &self,
        node_id: &str,
        have: Option<&str>,
        timeout: Duration,
    ) -> Result<ServiceEndpoints, LinkError> {
        let request = ServiceEndpointsRequest {
            node_id: node_id.to_string(),
            have: have.map(str::to_string),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let wait = timeout.min(berth_server::MAX_LONG_POLL) + CALL_TIMEOUT;
        self.call(paths::SERVICE_ENDPOINTS, &request, wait).await
    }
}

/// One heartbeat every `interval` until `shutdown`; a run of failures is said once.
pub async fn send_heartbeats(
    link: Arc<RemoteLink>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        match link.heartbeat().await {
            Ok(()) => {
                if failing {
                    tracing::info!("heartbeats reach the server again");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "heartbeat failed; retrying");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod source_address_tests {
    use super::*;

    fn plain_config() -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    }

    #[test]
    fn only_an_address_of_this_machine_is_a_source() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(source_address(loopback), Some(loopback));
        // TEST-NET-1 (RFC 5737) is no machine's own address.
        let elsewhere: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(source_address(elsewhere), None);
    }

    #[tokio::test]
    async fn calls_leave_from_the_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // Linux answers on all of 127.0.0.0/8, so 127.0.0.7 stands for a second address.
        let source: IpAddr = "127.0.0.7".parse().unwrap();
        let client = http_client(plain_config(), Some(source)).unwrap();
        let call = tokio::spawn(async move { client.get(url).send().await });
        let (_connection, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), source);
        call.abort();
    }
}

#[cfg(test)]
mod heartbeat_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers heartbeats and never answers a long-poll, as a connection
    /// a network cut killed: the long-poll's request is read, and nothing comes back.
    async fn serve(listener: tokio::net::TcpListener) {
        loop {
            let Ok((mut connection, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    match connection.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    if head.starts_with(&format!("POST {}", paths::HEARTBEAT)) {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        let _ = connection.write_all(answer.as_bytes()).await;
                        request.clear();
                    } else {
                        // A long-poll: hold it, never answer.
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    }

    #[tokio::test]
    async fn a_heartbeat_back_after_failures_asks_for_assignments_anew() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server =
            reqwest::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(serve(listener));
        let link = Arc::new(RemoteLink::with_client(
            reqwest::Client::builder().http1_only().build().unwrap(),
            &server,
        ));

        // Heartbeats that get through while none failed leave the long-poll alone.
        let poll = {
            let link = link.clone();
            tokio::spawn(
                async move { link.assignments("node-1", 0, Duration::from_secs(30)).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        link.heartbeat().await.expect("a heartbeat");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!poll.is_finished(), "the long-poll is still waiting");

        // After a failure, the first heartbeat that gets through ends it.
        link.heartbeats_failing.store(true, Ordering::SeqCst);
        link.heartbeat().await.expect("a heartbeat");
        let answer = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("the long-poll ended")
            .expect("the long-poll task");
        assert!(
            matches!(answer, Err(LinkError::Unavailable(_))),
            "{answer:?}"
        );
    }
}
