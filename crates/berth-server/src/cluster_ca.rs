//! The cluster's own certificate authority: it signs the agent listener's server
//! certificate and each node's client certificate, and nothing else trusts it.
//!
//! Made on the first start of `berth server` in `<data dir>/pki/` (`ca.pem`,
//! `ca-key.pem` mode 0600, the directory 0700) and reloaded after. A join token pins the
//! SHA-256 of the CA certificate's DER, so an agent knows the server before it sends
//! its token. The server certificate is made anew at every start (its key lives in
//! memory only) for the names the server is reached by. A node's certificate names its
//! node id as the URI `berth-node:ID`, is for client authentication only (so no node
//! can pose as the server), and is signed from the agent's certificate request: the
//! private key never leaves the agent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::private_files::{create_private_dir, write_private};

/// The URI scheme of the name a node's certificate carries: `berth-node:ID`.
pub const NODE_URI_PREFIX: &str = "berth-node:";

const CA_YEARS: i64 = 10;
/// A node certificate lasts as long as the CA; berth does not renew them yet.
const NODE_YEARS: i64 = 10;
const SERVER_DAYS: i64 = 365;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {reason}")]
    Unreadable {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{0} exists without {1}: restore it, or move both away to make a new cluster CA")]
    HalfAPair(PathBuf, PathBuf),
    #[error("the certificate request is not valid: {0}")]
    BadRequest(String),
    #[error("making a certificate: {0}")]
    Generate(String),
}

fn generate(error: impl std::fmt::Display) -> PkiError {
    PkiError::Generate(error.to_string())
}

/// The hex SHA-256 of a certificate's DER: what a join token pins.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The node id a (verified) node certificate names, if it names one.
pub fn node_id_of(certificate: &CertificateDer<'_>) -> Option<String> {
    let params = CertificateParams::from_ca_cert_der(certificate).ok()?;
    params.subject_alt_names.iter().find_map(|name| match name {
        SanType::URI(uri) => uri
            .as_str()
            .strip_prefix(NODE_URI_PREFIX)
            .map(str::to_string),
        _ => None,
    })
}

pub struct ClusterCa {
    certificate: CertificateDer<'static>,
    certificate_pem: String,
    /// The CA as rcgen signs with it: its subject and key identifier as in the file.
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// The CA in `dir` (`ca.pem`, `ca-key.pem`), made there first if neither exists;
    /// `true` when it was made now.
    pub fn open_or_create(dir: &Path, now: OffsetDateTime) -> Result<(ClusterCa, bool), PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io {
                action,
                path,
                source,
            }
        };
        create_private_dir(dir).map_err(io("creating", dir))?;
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let pem = std::fs::read_to_string(&cert_path).map_err(io("reading", &cert_path))?;
                let key = std::fs::read_to_string(&key_path).map_err(io("reading", &key_path))?;
                Ok((
                    ClusterCa::from_pem(&pem, &key, &cert_path, &key_path)?,
                    false,
                ))
            }
            (false, false) => {
                let (pem, key) = new_ca(now)?;
                write_private(&key_path, key.as_bytes()).map_err(io("writing", &key_path))?;
                write_private(&cert_path, pem.as_bytes()).map_err(io("writing", &cert_path))?;
                Ok((
                    ClusterCa::from_pem(&pem, &key, &cert_path, &key_path)?,
                    true,
                ))
            }
            (true, false) => Err(PkiError::HalfAPair(cert_path, key_path)),
            (false, true) => Err(PkiError::HalfAPair(key_path, cert_path)),
        }
    }

    fn from_pem(
        certificate_pem: &str,
        key_pem: &str,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<ClusterCa, PkiError> {
        let unreadable = |path: &Path, what, reason: String| PkiError::Unreadable {
            path: path.to_path_buf(),
            what,
            reason,
        };
        let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| unreadable(cert_path, "CA certificate", e.to_string()))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| unreadable(key_path, "CA key", e.to_string()))?;
        let params = CertificateParams::from_ca_cert_der(&certificate)
            .map_err(|e| unreadable(cert_path, "CA certificate", e.to_string()))?;
        // rcgen signs with the issuer's subject, key identifier and key: rebuilt from the
        // file's certificate, so what it issues chains to that very certificate.
        let issuer = params
            .self_signed(&key)
            .map_err(|e| unreadable(key_path, "CA key", e.to_string()))?;
        Ok(ClusterCa {
            certificate_pem: certificate_pem.to_string(),
            certificate,
            issuer,
            key,
        })
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The SHA-256 of the CA certificate: what join tokens pin.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.certificate)
    }

    /// A certificate for the agent listener naming `names` (IP addresses become IP
    /// names), for server authentication only, with its key; the chain ends with the CA.
    pub fn server_certificate(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        for name in names {
            params.subject_alt_names.push(san_for(name)?);
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "berth server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(SERVER_DAYS);
        let key = KeyPair::generate().map_err(generate)?;
        let certificate = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(generate)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((
            vec![certificate.der().clone(), self.certificate.clone()],
            key,
        ))
    }

    /// Signs a certificate for `node_id` over the key of `request` (a PEM certificate
    /// request, whose signature proves the requester holds that key). Only the key is
    /// taken from the request: names, usages and validity are the CA's choice.
    pub fn issue_node_certificate(
        &self,
        node_id: &str,
        request: &str,
        now: OffsetDateTime,
    ) -> Result<String, PkiError> {
        let request = CertificateSigningRequestParams::from_pem(request)
            .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params.subject_alt_names = vec![SanType::URI(
            format!("{NODE_URI_PREFIX}{node_id}")
                .try_into()
                .map_err(|_| PkiError::BadRequest(format!("node id '{node_id}'")))?,
        )];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("berth node {node_id}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365 * NODE_YEARS);
        let certificate = params
            .signed_by(&request.public_key, &self.issuer, &self.key)
            .map_err(generate)?;
        Ok(certificate.pem())
    }

    /// The agent listener's TLS: this server's certificate for `names`, and client
    /// certificates verified against the CA. A client without one completes the
    /// handshake (it may only join); the listener refuses it everything else.
    pub fn agent_listener_config(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).map_err(generate)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(generate)?;
        let (chain, key) = self.server_certificate(names, now)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(generate)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(generate)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// An IP address name for an address, a DNS name otherwise.
fn san_for(name: &str) -> Result<SanType, PkiError> {
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(name.to_string().try_into().map_err(
            |_| PkiError::Generate(format!("'{name}' is not a DNS name")),
        )?)),
    }
}

/// A new CA certificate and key, PEM.
fn new_ca(now: OffsetDateTime) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    // The subject carries part of the key's hash: two clusters' CAs never share one.
    let tag: String = fingerprint(&key.public_key_der())
        .chars()
        .take(12)
        .collect();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("berth cluster CA {tag}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "berth");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * CA_YEARS);
    let certificate = params.self_signed(&key).map_err(generate)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-ca-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn request_for(key: &KeyPair) -> String {
        // It asks for a DNS name of its own choosing: the CA takes only the key.
        let params = CertificateParams::new(vec!["server.example".to_string()]).unwrap();
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn client_verifier(
        ca: &CertificateDer<'static>,
    ) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap()
    }

    fn server_verifier(ca: &CertificateDer<'static>) -> Arc<rustls::client::WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap()
    }

    #[test]
    fn the_ca_is_made_once_privately_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("reload");
        let (ca, created) = ClusterCa::open_or_create(&dir, now()).unwrap();
        assert!(created);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca-key.pem")), 0o600);
        assert_eq!(mode(&dir.join("ca.pem")), 0o600);
        let (again, created) = ClusterCa::open_or_create(&dir, now()).unwrap();
        assert!(!created);
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert_eq!(ca.fingerprint().len(), 64);

        // What the reloaded CA issues chains to the certificate on disk.
        let agent_key = KeyPair::generate().unwrap();
        let pem = again
            .issue_node_certificate("node-7", &request_for(&agent_key), now())
            .unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        client_verifier(ca.certificate())
            .verify_client_cert(&der, &[], UnixTime::now())
            .expect("a node certificate of the reloaded CA verifies against the first");
        assert_eq!(node_id_of(&der).as_deref(), Some("node-7"));

        // Half a pair is refused, not replaced.
        std::fs::remove_file(dir.join("ca-key.pem")).unwrap();
        let error = ClusterCa::open_or_create(&dir, now()).unwrap_err();
        assert!(matches!(error, PkiError::HalfAPair(..)), "{error}");
        assert!(dir.join("ca.pem").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_node_certificate_is_for_clients_only_and_takes_only_the_key_from_the_request() {
        let dir = temp_dir("node");
        let (ca, _) = ClusterCa::open_or_create(&dir, now()).unwrap();
        let agent_key = KeyPair::generate().unwrap();
        let pem = ca
            .issue_node_certificate("n1", &request_for(&agent_key), now())
            .unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let params = CertificateParams::from_ca_cert_der(&der).unwrap();
        assert!(
            !matches!(params.is_ca, IsCa::Ca(_)),
            "a node certificate is a CA"
        );
        assert!(!params
            .subject_alt_names
            .iter()
            .any(|n| matches!(n, SanType::DnsName(_))));
        assert_eq!(
            params.extended_key_usages,
            [ExtendedKeyUsagePurpose::ClientAuth]
        );
        // The certificate holds the agent's own key.
        let agent_private =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(agent_key.serialize_der()));
        rustls::sign::CertifiedKey::from_der(vec![der.clone()], agent_private, &provider())
            .expect("the certificate holds the agent's key");
        let other = KeyPair::generate().unwrap();
        let other = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(other.serialize_der()));
        assert!(
            rustls::sign::CertifiedKey::from_der(vec![der.clone()], other, &provider()).is_err()
        );
        // It cannot pose as the server: no server-auth usage.
        let error = server_verifier(ca.certificate()).verify_server_cert(
            &der,
            &[],
            &ServerName::try_from("n1").unwrap(),
            &[],
            UnixTime::now(),
        );
        assert!(error.is_err(), "a node certificate verified as a server's");
        // A request that is not one, or whose signature does not hold, gets nothing.
        assert!(matches!(
            ca.issue_node_certificate("n1", "not a request", now()),
            Err(PkiError::BadRequest(_))
        ));
        let tampered = tamper(&request_for(&agent_key));
        assert!(matches!(
            ca.issue_node_certificate("n1", &tampered, now()),
            Err(PkiError::BadRequest(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_server_certificate_names_its_addresses_and_chains_to_the_ca() {
        let dir = temp_dir("server");
        let (ca, _) = ClusterCa::open_or_create(&dir, now()).unwrap();
        let names = ["127.0.0.1".to_string(), "berth.example".to_string()];
        let (chain, _key) = ca.server_certificate(&names, now()).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], *ca.certificate());
        let verifier = server_verifier(ca.certificate());
        for name in ["127.0.0.1", "berth.example"] {
            verifier
                .verify_server_cert(
                    &chain[0],
                    &chain[1..],
                    &ServerName::try_from(name).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from("10.9.9.9").unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_err());
        // Another cluster's CA does not vouch for it.
        let other_dir = temp_dir("server-other");
        let (other, _) = ClusterCa::open_or_create(&other_dir, now()).unwrap();
        assert_ne!(other.fingerprint(), ca.fingerprint());
        assert!(server_verifier(other.certificate())
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from("127.0.0.1").unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_err());
        ca.agent_listener_config(&names, now()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other_dir).unwrap();
    }

    /// The request with its last line of base64 (the signature's end) changed.
    fn tamper(pem: &str) -> String {
        let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
        let last_body = lines.len() - 2;
        let line = &mut lines[last_body];
        let flipped = if line.starts_with('A') { "B" } else { "A" };
        line.replace_range(0..1, flipped);
        lines.join("\n")
    }
}
