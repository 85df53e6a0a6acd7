//! The clients plugin requests go through: the host's shared one, and one per call trusting a
//! repository's private CA (parsed by [`parse_ca_pem`]) for that repository's host only.

use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::Resolve;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::address::{AddressPolicy, SystemResolver, guarded_resolver};

/// Why a PEM text is not usable as the CA certificates of a private PKI.
#[derive(Debug, thiserror::Error)]
pub enum CaPemError {
    /// The text is not valid PEM.
    #[error("not valid PEM: {0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    /// The text holds no certificate.
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) found")]
    NoCertificate,
    /// A certificate rustls does not take as a trust anchor.
    #[error("certificate {number} is not a usable CA certificate: {source}")]
    NotACa {
        /// The certificate's place in the text, from 1.
        number: usize,
        source: rustls::Error,
    },
}

/// Parses `pem` as the CA certificates of a private PKI: at least one certificate, each usable
/// as a trust anchor.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, CaPemError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CaPemError::Pem)?;
    if certs.is_empty() {
        return Err(CaPemError::NoCertificate);
    }
    for (i, cert) in certs.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|source| CaPemError::NotACa {
                number: i + 1,
                source,
            })?;
    }
    Ok(certs)
}

/// Why a client for plugin requests could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// An extra root reqwest refuses.
    #[error(transparent)]
    Root(reqwest::Error),
    /// The client itself.
    #[error("HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// The client plugin requests go through, trusting the web PKI roots and `extra_roots`,
/// connecting only to addresses `policy` allows. Redirects are not followed by the client:
/// [`send`](super::send) follows them after checking each hop.
pub(crate) fn client(
    extra_roots: &[CertificateDer<'static>],
    policy: &AddressPolicy,
) -> Result<reqwest::Client, ClientError> {
    client_with_resolver(extra_roots, policy, Arc::new(SystemResolver))
}

/// [`client`] resolving names with `resolver` (before the policy's filter).
pub(crate) fn client_with_resolver(
    extra_roots: &[CertificateDer<'static>],
    policy: &AddressPolicy,
    resolver: Arc<dyn Resolve>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portico-plugin/", env!("CARGO_PKG_VERSION")));
    if *policy != AddressPolicy::AllowAll {
        builder = builder.dns_resolver(Arc::new(guarded_resolver(policy.clone(), resolver)));
    }
    for root in extra_roots {
        let cert = reqwest::Certificate::from_der(root).map_err(ClientError::Root)?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(ClientError::Build)
}

/// The clients one call's requests go through: the host's shared one, and for one origin (a
/// repository's host and port) one that also trusts that origin's private CA; both built
/// under `policy`, which [`send`](super::send) also applies to IP-literal URLs.
#[derive(Clone)]
pub(crate) struct HttpClients {
    pub shared: reqwest::Client,
    pub scoped: Option<ScopedTrust>,
    pub policy: AddressPolicy,
}

/// Why a [`ScopedTrust`] could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScopedTrustError {
    /// The repository's URL does not parse.
    #[error("URL `{url}`: {source}")]
    Url {
        /// The URL as given.
        url: String,
        source: <Url as std::str::FromStr>::Err,
    },
    /// The repository's URL has no host.
    #[error("URL `{0}` has no host")]
    NoHost(Url),
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A client trusting extra roots, used only for requests to `host`:`port`.
#[derive(Clone)]
pub(crate) struct ScopedTrust {
    host: String,
    port: Option<u16>,
    client: reqwest::Client,
}

impl ScopedTrust {
    /// A client trusting `roots` for the host and port of `url`, connecting where `policy`
    /// allows.
    pub fn new(
        url: &str,
        roots: &[CertificateDer<'static>],
        policy: &AddressPolicy,
    ) -> Result<Self, ScopedTrustError> {
        let url = Url::parse(url).map_err(|source| ScopedTrustError::Url {
            url: url.to_owned(),
            source,
        })?;
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return Err(ScopedTrustError::NoHost(url));
        };
        Ok(Self {
            host,
            port: url.port_or_known_default(),
            client: client(roots, policy)?,
        })
    }
}

impl HttpClients {
    /// The client for a request to `url`.
    pub fn for_url(&self, url: &Url) -> &reqwest::Client {
        match &self.scoped {
            Some(scoped)
                if url
                    .host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&scoped.host))
                    && url.port_or_known_default() == scoped.port =>
            {
                &scoped.client
            }
            _ => &self.shared,
        }
    }
}
