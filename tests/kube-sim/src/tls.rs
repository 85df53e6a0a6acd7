//! The simulator's own certificate authority (made with `rcgen`), its serving certificate and
//! client certificates for certificate authentication.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Errors building certificates or the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen could not make a key or certificate.
    #[error("generating a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls rejected the configuration.
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("building the client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A client certificate and its key, both PEM.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The certificate (signed by the simulator's CA), PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// The user a client certificate names: CN is the user, O the groups (as Kubernetes reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertUser {
    /// Common name.
    pub name: String,
    /// Organisations.
    pub groups: Vec<String>,
}

/// The CA, the server certificate, and the client certificates minted so far.
pub struct Authority {
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    server_cert_pem: String,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    /// Minted client certificates by DER, so a presented certificate maps back to its user
    /// without an X.509 parser.
    clients: Mutex<HashMap<Vec<u8>, CertUser>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
}

impl Authority {
    /// A fresh CA and a server certificate for 127.0.0.1, ::1, localhost and `extra_sans`.
    pub fn generate(extra_sans: &[String]) -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "kube-sim-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key)?;

        let mut sans = vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
        ];
        sans.extend(extra_sans.iter().cloned());
        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(sans)?;
        server.distinguished_name = rcgen::DistinguishedName::new();
        server
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        validity(&mut server);
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key)?;
        Ok(Self {
            server_cert_pem: server_cert.pem(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            ca_cert,
            ca_key,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_cert.pem()
    }

    /// The server certificate, PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// Mints a client certificate for `user` in `groups`, signed by the CA.
    pub fn mint_client_cert(&self, user: &str, groups: &[&str]) -> Result<ClientCert, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key)?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                cert.der().to_vec(),
                CertUser {
                    name: user.to_string(),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                },
            );
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The user of a verified client certificate.
    pub fn user_for(&self, der: &[u8]) -> Option<CertUser> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(der)
            .cloned()
    }

    /// The rustls server configuration: ALPN `h2` and `http/1.1`; client certificates signed
    /// by the CA are requested (optional) when `client_auth` is set.
    pub fn server_config(&self, client_auth: bool) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_cert.der().clone())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = builder.with_single_cert(vec![self.server_cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
