//! HTTPS for the gateway's own listener.
//!
//! `kubectl` sends bearer tokens only over TLS, so the gateway serves HTTPS unless told the TLS
//! terminates in front of it (`--plain-http`, e.g. at a load balancer). Certificates come from
//! `--tls-cert-file`/`--tls-key-file`; standalone with SQLite and no files, a private CA and a
//! serving certificate are generated into the data folder once and reused, and exported
//! kubeconfigs carry that CA so `kubectl` verifies the gateway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read.
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// PEM that does not parse.
    #[error("{what} `{path}` holds no usable PEM {kind}")]
    Pem {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        kind: &'static str,
    },
    /// rustls refused the pair (e.g. key and certificate do not match).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing generated files failed.
    #[error("writing `{path}`: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The listener's TLS: an acceptor, and the CA clients should trust when it is ours.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// PEM of the generated CA (self-signed mode), put into exported kubeconfigs.
    pub ca_pem: Option<String>,
    /// The serving certificate (the chain's first), for the names it covers.
    leaf: CertificateDer<'static>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("self_signed", &self.ca_pem.is_some())
            .finish()
    }
}

impl ServerTls {
    /// TLS from a certificate chain and key in PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read(cert, "--tls-cert-file")?;
        let key_pem = read(key, "--tls-key-file")?;
        Self::from_pem(&cert_pem, cert, &key_pem, key, None)
    }

    /// A CA and serving certificate kept in `dir` (created on first use) for `names`.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let ca_path = dir.join("tls-ca.crt");
        let cert_path = dir.join("tls.crt");
        let key_path = dir.join("tls.key");
        if !(ca_path.is_file() && cert_path.is_file() && key_path.is_file()) {
            generate(&ca_path, &cert_path, &key_path, names)?;
            tracing::info!(
                ca = %ca_path.display(),
                "generated a private CA and serving certificate for HTTPS"
            );
        }
        crate::files::tighten_file(&key_path).map_err(|source| TlsError::Write {
            path: key_path.clone(),
            source,
        })?;
        let ca_pem = read(&ca_path, "generated CA")?;
        let cert_pem = read(&cert_path, "generated certificate")?;
        let key_pem = read(&key_path, "generated key")?;
        Self::from_pem(&cert_pem, &cert_path, &key_pem, &key_path, Some(ca_pem))
    }

    fn from_pem(
        cert_pem: &str,
        cert_path: &Path,
        key_pem: &str,
        key_path: &Path,
        ca_pem: Option<String>,
    ) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .ok()
                .filter(|c: &Vec<_>| !c.is_empty())
                .ok_or_else(|| TlsError::Pem {
                    what: "certificate file",
                    path: cert_path.to_owned(),
                    kind: "certificate",
                })?;
        let leaf = chain[0].clone();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsError::Pem {
            what: "key file",
            path: key_path.to_owned(),
            kind: "private key",
        })?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem,
            leaf,
        })
    }

    /// Whether the serving certificate is valid for `host` (a DNS name or an IP address), as a
    /// client verifying it would decide.
    pub fn serves_name(&self, host: &str) -> bool {
        let Ok(name) = rustls_pki_types::ServerName::try_from(host) else {
            return false;
        };
        rustls::server::ParsedCertificate::try_from(&self.leaf)
            .is_ok_and(|cert| rustls::client::verify_server_name(&cert, &name).is_ok())
    }
}

fn read(path: &Path, what: &'static str) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn generate(
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<(), TlsError> {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Portico gateway CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, "portico");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2099, 1, 1);
    for name in names {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.clone().try_into()?),
        };
        if !leaf.subject_alt_names.contains(&san) {
            leaf.subject_alt_names.push(san);
        }
    }
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    write(ca_path, &ca_cert.pem(), 0o644)?;
    write(
        cert_path,
        &format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        0o644,
    )?;
    write(key_path, &leaf_key.serialize_pem(), 0o600)?;
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let _ = mode;
    let error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(error)?;
    // Exactly `mode`, whatever the umask.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)?;
    Ok(())
}
