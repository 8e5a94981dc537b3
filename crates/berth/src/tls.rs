//! TLS for `berth dev`'s API: when to use it, the user's certificate pair or one berth
//! generates (self-signed, kept in `<data dir>/tls/`, key mode 0600), and the rustls
//! server configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::paths;

/// What the flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsChoice {
    /// TLS unless the listen address is loopback.
    Auto,
    On,
    Off,
}

impl TlsChoice {
    pub fn from_flags(tls: bool, no_tls: bool, own_pair: bool) -> anyhow::Result<TlsChoice> {
        match (tls || own_pair, no_tls) {
            (true, true) => bail!("--no-tls contradicts --tls / --tls-cert / --tls-key"),
            (true, false) => Ok(TlsChoice::On),
            (false, true) => Ok(TlsChoice::Off),
            (false, false) => Ok(TlsChoice::Auto),
        }
    }

    /// Whether the API on `listen` speaks TLS: plain HTTP stays on this machine, so by
    /// default only a loopback address goes without.
    pub fn uses_tls(self, listen: SocketAddr) -> bool {
        match self {
            TlsChoice::On => true,
            TlsChoice::Off => false,
            TlsChoice::Auto => !listen.ip().is_loopback(),
        }
    }
}

/// The address a client on this machine connects to: the listen address, or loopback
/// when berth listens on every address.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The certificate pair in use and the file a client trusts.
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// The certificate (chain) file: what `--ca-bundle` / `AWS_CA_BUNDLE` point at when
    /// it is self-signed.
    pub cert_path: PathBuf,
    pub source: CertificateSource,
}

/// Where the certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    /// berth's own self-signed one in the data dir; `new` when made on this start.
    SelfSigned { new: bool },
    /// The user's `--tls-cert` / `--tls-key`.
    Given,
}

/// The user's pair (both paths), else the pair in `<data dir>/tls/`, generated when
/// missing or when it does not name every address `listen` is reached by.
pub fn server_tls(
    data_dir: &Path,
    listen: SocketAddr,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<ServerTls> {
    let (cert_path, key_path, source) = match (cert, key) {
        (Some(cert), Some(key)) => (
            cert.to_path_buf(),
            key.to_path_buf(),
            CertificateSource::Given,
        ),
        (Some(_), None) => bail!("--tls-cert needs --tls-key too"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert too"),
        (None, None) => {
            let names = names_for(listen, &machine_addresses());
            let new = ensure_generated(&data_dir.join("tls"), &names)?;
            let dir = data_dir.join("tls");
            let source = CertificateSource::SelfSigned { new };
            (dir.join("cert.pem"), dir.join("key.pem"), source)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .with_context(|| format!("reading the TLS certificate {}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading the TLS key {}", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("setting up TLS")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .with_context(|| {
        format!(
            "the TLS key {} does not fit the certificate {}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        cert_path,
        source,
    })
}

/// Every address of this machine's network interfaces (loopback included), as the
/// system lists them; none if it cannot (the certificate then names loopback, the host
/// name and a specific listen address only).
pub fn machine_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|interface| interface.ip()).collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list this machine's addresses for the TLS certificate");
            Vec::new()
        }
    }
}

/// The names a generated certificate carries: loopback, this machine's host name, and
/// the listen address when it is a specific one; for a wildcard listen address, every
/// address of `machine` that it accepts connections on (`0.0.0.0`: the IPv4 ones; `::`:
/// all), so `https://IP:PORT` verifies whichever of them a client uses. IPv6 link-local
/// addresses are left out: a URL cannot name one without its zone.
pub fn names_for(listen: SocketAddr, machine: &[IpAddr]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    let ip = listen.ip();
    let mut add = |ip: IpAddr| {
        if !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    };
    if !ip.is_unspecified() {
        add(ip);
    } else {
        for &address in machine {
            let reachable = match address {
                IpAddr::V4(_) => true,
                IpAddr::V6(v6) => ip.is_ipv6() && !v6.is_unicast_link_local(),
            };
            if reachable {
                add(address);
            }
        }
    }
    names
}

/// Makes `dir/cert.pem`, `dir/key.pem` (0600) and `dir/names` (the names the
/// certificate carries) unless they are there and cover `names`; `true` if it made them.
fn ensure_generated(dir: &Path, names: &[String]) -> anyhow::Result<bool> {
    let names_path = dir.join("names");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        let covered = std::fs::read_to_string(&names_path).unwrap_or_default();
        let covered: Vec<&str> = covered.lines().collect();
        if names.iter().all(|name| covered.contains(&name.as_str())) {
            return Ok(false);
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert, key) = self_signed(names)?;
    paths::write_private(&key_path, key.as_bytes())?;
    paths::write_private(&cert_path, cert.as_bytes())?;
    paths::write_private(&names_path, names.join("\n").as_bytes())?;
    Ok(true)
}

/// A self-signed certificate for `names` (IP addresses become IP SANs) and its key, PEM.
fn self_signed(names: &[String]) -> anyhow::Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .context("making the TLS certificate")?;
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(
                name.clone()
                    .try_into()
                    .with_context(|| format!("'{name}' is not a DNS name"))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "berth dev");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key = rcgen::KeyPair::generate().context("making the TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the TLS certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn tls_is_the_default_beyond_loopback_and_the_flags_decide_otherwise() {
        let auto = TlsChoice::from_flags(false, false, false).unwrap();
        assert!(!auto.uses_tls(address("127.0.0.1:9650")));
        assert!(!auto.uses_tls(address("127.0.0.2:9650")));
        assert!(!auto.uses_tls(address("[::1]:9650")));
        assert!(auto.uses_tls(address("0.0.0.0:9650")));
        assert!(auto.uses_tls(address("[::]:9650")));
        assert!(auto.uses_tls(address("192.168.1.10:9650")));
        let on = TlsChoice::from_flags(true, false, false).unwrap();
        assert!(on.uses_tls(address("127.0.0.1:9650")));
        let own_pair = TlsChoice::from_flags(false, false, true).unwrap();
        assert_eq!(own_pair, TlsChoice::On);
        let off = TlsChoice::from_flags(false, true, false).unwrap();
        assert!(!off.uses_tls(address("0.0.0.0:9650")));
        let error = TlsChoice::from_flags(true, true, false).unwrap_err();
        assert!(error.to_string().contains("--no-tls"), "{error}");
    }

    #[test]
    fn clients_here_reach_an_unspecified_listen_address_on_loopback() {
        assert_eq!(
            local_address(address("0.0.0.0:9650")),
            address("127.0.0.1:9650")
        );
        assert_eq!(local_address(address("[::]:1")), address("[::1]:1"));
        assert_eq!(
            local_address(address("10.1.2.3:9650")),
            address("10.1.2.3:9650")
        );
    }

    #[test]
    fn a_wildcard_listen_address_names_every_address_of_the_machine() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let machine = [
            ip("127.0.0.1"),
            ip("192.0.2.7"),
            ip("172.17.0.1"),
            ip("::1"),
            ip("2001:db8::5"),
            ip("fe80::1"),
        ];
        let every_v4 = names_for(address("0.0.0.0:9650"), &machine);
        for name in ["localhost", "127.0.0.1", "::1", "192.0.2.7", "172.17.0.1"] {
            assert!(every_v4.iter().any(|n| n == name), "{name}: {every_v4:?}");
        }
        assert!(!every_v4.iter().any(|n| n == "2001:db8::5"), "{every_v4:?}");
        let every = names_for(address("[::]:9650"), &machine);
        for name in ["192.0.2.7", "2001:db8::5"] {
            assert!(every.iter().any(|n| n == name), "{name}: {every:?}");
        }
        assert!(!every.iter().any(|n| n == "fe80::1"), "{every:?}");
        // Each name once.
        let mut unique = every.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), every.len(), "{every:?}");
        // A specific address: that one, not the machine's others.
        let one = names_for(address("192.0.2.7:9650"), &machine);
        assert!(one.iter().any(|n| n == "192.0.2.7"), "{one:?}");
        assert!(!one.iter().any(|n| n == "172.17.0.1"), "{one:?}");
    }

    #[test]
    fn a_new_machine_address_makes_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let listen = address("0.0.0.0:9650");
        let before = names_for(listen, &[ip("192.0.2.7")]);
        assert!(ensure_generated(dir.path(), &before).unwrap());
        assert!(!ensure_generated(dir.path(), &before).unwrap());
        let after = names_for(listen, &[ip("192.0.2.7"), ip("198.51.100.3")]);
        assert!(ensure_generated(dir.path(), &after).unwrap());
        let names = std::fs::read_to_string(dir.path().join("names")).unwrap();
        assert!(names.lines().any(|n| n == "198.51.100.3"), "{names}");
    }

    #[test]
    fn the_generated_pair_is_kept_private_and_reused_until_a_name_is_missing() {
        use std::os::unix::fs::PermissionsExt;
        let data_dir = tempfile::tempdir().unwrap();
        let listen = address("127.0.0.1:9650");
        let first = server_tls(data_dir.path(), listen, None, None).unwrap();
        assert_eq!(first.source, CertificateSource::SelfSigned { new: true });
        let key = data_dir.path().join("tls/key.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let cert = std::fs::read(&first.cert_path).unwrap();
        let again = server_tls(data_dir.path(), listen, None, None).unwrap();
        assert_eq!(again.source, CertificateSource::SelfSigned { new: false });
        assert_eq!(std::fs::read(&again.cert_path).unwrap(), cert);
        // Listening on another address the certificate does not name: a new one.
        let other = server_tls(data_dir.path(), address("10.9.8.7:9650"), None, None).unwrap();
        assert_eq!(other.source, CertificateSource::SelfSigned { new: true });
        let names = std::fs::read_to_string(data_dir.path().join("tls/names")).unwrap();
        assert!(names.lines().any(|n| n == "10.9.8.7"), "{names}");
        // The user's own pair is used as given; half a pair is refused.
        let key_path = data_dir.path().join("tls/key.pem");
        let own = server_tls(
            data_dir.path(),
            listen,
            Some(&other.cert_path),
            Some(&key_path),
        )
        .unwrap();
        assert_eq!(own.source, CertificateSource::Given);
        let error = server_tls(data_dir.path(), listen, Some(&other.cert_path), None)
            .err()
            .unwrap();
        assert!(error.to_string().contains("--tls-key"), "{error}");
    }
}
