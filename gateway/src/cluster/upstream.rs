//! The pooled HTTP client to one cluster's apiserver.
//!
//! Two hyper-util clients share the cluster's TLS settings: the main one offers HTTP/2 and
//! HTTP/1.1 by ALPN (so many requests share a few connections when the apiserver speaks h2), the
//! other offers only HTTP/1.1, because `Upgrade` (exec, attach, port-forward) exists only there.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tower_service::Service;

use super::credentials::{CredentialError, Credentials};
use super::spec::{ClusterSpec, ip_literal, local_address_kind, mask_url, parse_certs};

/// HTTP/2 settings toward apiservers, near those of Go's HTTP/2 client (client-go, kubectl):
/// the largest DATA frame we accept, and the flow-control windows we grant.
const H2_MAX_FRAME_SIZE: u32 = 1 << 20;
const H2_STREAM_WINDOW: u32 = 4 << 20;
const H2_CONNECTION_WINDOW: u32 = 32 << 20;

/// A client that cannot be built or a call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// TLS material that rustls refuses.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A loopback, link-local or unspecified server with `--deny-local-cluster-servers`.
    #[error(
        "{server} is a {kind} address, refused by --deny-local-cluster-servers \
         (DENY_LOCAL_CLUSTER_SERVERS)"
    )]
    LocalServer {
        /// The apiserver (masked).
        server: String,
        /// "loopback", "link-local" or "unspecified".
        kind: &'static str,
    },
    /// The credential could not be produced.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Connection refused, reset, TLS failure…
    #[error("cannot reach {server}: {message}")]
    Unreachable {
        /// The apiserver.
        server: String,
        /// Why.
        message: String,
    },
    /// No answer in time.
    #[error("{server} did not answer within {seconds}s")]
    Timeout {
        /// The apiserver.
        server: String,
        /// The bound.
        seconds: u64,
    },
    /// An answer that is not what was asked for.
    #[error("{server} answered {status}: {body}")]
    Status {
        /// The apiserver.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// Connection pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle_per_host: usize,
    /// Never connect to loopback, link-local or unspecified addresses: an IP literal server is
    /// refused here, a name's such addresses are dropped at every resolution (a name with no
    /// other address fails to connect).
    pub deny_local_servers: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 64,
            deny_local_servers: false,
        }
    }
}

type HyperClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Body>;

/// The pooled client of one cluster.
#[derive(Debug)]
pub struct Upstream {
    server: String,
    scheme: Scheme,
    authority: Authority,
    /// Path prefix of the server URL (e.g. `/k8s/clusters/x` behind another proxy), no slash at
    /// the end.
    prefix: String,
    client: HyperClient,
    upgrade_client: HyperClient,
    credentials: Credentials,
}

impl Upstream {
    pub fn new(spec: &ClusterSpec, options: PoolOptions) -> Result<Self, UpstreamError> {
        let uri: Uri = spec
            .server
            .parse()
            .map_err(|_| UpstreamError::Tls(format!("bad server URL {}", spec.server)))?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::Tls(format!("server URL {} has no host", spec.server)))?;
        let prefix = uri.path().trim_end_matches('/').to_owned();
        if options.deny_local_servers
            && let Some(kind) = ip_literal(authority.host()).and_then(local_address_kind)
        {
            return Err(UpstreamError::LocalServer {
                server: mask_url(&spec.server),
                kind,
            });
        }
        let tls = tls_config(spec)?;
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            inner: GaiResolver::new(),
            deny_local: options.deny_local_servers,
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(30)));

        let server_name = match &spec.tls_server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| UpstreamError::Tls(format!("bad tls-server-name `{name}`")))?,
            ),
            None => None,
        };
        let schemes = || {
            let builder = HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http();
            match &server_name {
                Some(name) => {
                    builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
                }
                None => builder,
            }
        };
        let main = schemes()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http.clone());
        let h1_only = schemes().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(options.idle_timeout)
            .pool_max_idle_per_host(options.max_idle_per_host)
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .http2_keep_alive_while_idle(true)
            // Near Go's HTTP/2 client settings (client-go, kubectl): large lists arrive in a few
            // big frames rather than thousands of 16 KiB ones, which costs both ends less CPU,
            // and many concurrent lists are not held up by the connection's window. A stream
            // buffers at most its window before the client reads it.
            .http2_max_frame_size(H2_MAX_FRAME_SIZE)
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
            .build(main);
        let upgrade_client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(options.idle_timeout)
            .pool_max_idle_per_host(8)
            .build(h1_only);
        Ok(Self {
            server: spec.server.clone(),
            scheme,
            authority,
            prefix,
            client,
            upgrade_client,
            credentials: Credentials::new(&spec.auth)?,
        })
    }

    /// The apiserver URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The upstream URI of `path_and_query` (which starts with `/`).
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let pq: PathAndQuery = if self.prefix.is_empty() {
            path_and_query.parse()?
        } else {
            format!("{}{path_and_query}", self.prefix).parse()?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }

    /// Forgets cached credentials (after the cluster refused them, or it became unhealthy).
    pub fn invalidate_credentials(&self) {
        self.credentials.invalidate();
    }

    /// Sends a request with the cluster's credentials (its `Authorization` header, if it uses
    /// one, replacing any the request had). A 401 answer drops cached credentials, so the
    /// next request gets fresh ones (an exec plugin's token that expired early). Every request
    /// to a cluster (proxied, plugin `kube` reads, `/version` checks) goes through here.
    pub async fn send_with_credentials(
        &self,
        mut request: Request<Body>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match self.credentials.header().await? {
            Some(value) => {
                request.headers_mut().insert(header::AUTHORIZATION, value);
            }
            None => {
                request.headers_mut().remove(header::AUTHORIZATION);
            }
        }
        let response = self.send(request, upgrade).await?;
        if response.status() == http::StatusCode::UNAUTHORIZED {
            self.invalidate_credentials();
        }
        Ok(response)
    }

    /// Sends a request (HTTP/2 when negotiated); an `Upgrade` request goes over HTTP/1.1.
    async fn send(
        &self,
        request: Request<Body>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let client = if upgrade {
            &self.upgrade_client
        } else {
            &self.client
        };
        client
            .request(request)
            .await
            .map_err(|e| UpstreamError::Unreachable {
                server: self.server.clone(),
                message: error_chain(&e),
            })
    }

    /// `GET /version` with credentials, within `timeout`: the connect and heartbeat check.
    /// Returns `gitVersion`.
    pub async fn version(&self, timeout: Duration) -> Result<String, UpstreamError> {
        let call = async {
            let mut request = Request::new(Body::empty());
            *request.uri_mut() = self
                .uri("/version")
                .map_err(|e| UpstreamError::Unreachable {
                    server: self.server.clone(),
                    message: format!("the /version URL: {e}"),
                })?;
            request
                .headers_mut()
                .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            let response = self.send_with_credentials(request, false).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| UpstreamError::Unreachable {
                    server: self.server.clone(),
                    message: error_chain(&e),
                })?
                .to_bytes();
            if !status.is_success() {
                return Err(UpstreamError::Status {
                    server: self.server.clone(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body).chars().take(300).collect(),
                });
            }
            let version: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| UpstreamError::Status {
                    server: self.server.clone(),
                    status: status.as_u16(),
                    body: "/version is not JSON".to_owned(),
                })?;
            Ok(version["gitVersion"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned())
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout {
                server: self.server.clone(),
                seconds: timeout.as_secs(),
            })?
    }
}

/// The system resolver; with `deny_local`, loopback, link-local and unspecified addresses are
/// dropped from every answer, so a name cannot lead a connection to them (checked on each
/// resolution: a name that changes its answer is checked again).
#[derive(Debug, Clone)]
struct GuardedResolver {
    inner: GaiResolver,
    deny_local: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let deny_local = self.deny_local;
        let lookup = self.inner.call(name.clone());
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = lookup.await?.collect();
            if !deny_local {
                return Ok(addresses.into_iter());
            }
            let (refused, kept): (Vec<_>, Vec<_>) = addresses
                .into_iter()
                .partition(|a| local_address_kind(a.ip()).is_some());
            if kept.is_empty() && !refused.is_empty() {
                let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "`{name}` resolves only to loopback, link-local or unspecified \
                         addresses ({}), refused by --deny-local-cluster-servers",
                        list.join(", ")
                    ),
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

/// An error with its causes, e.g. "client error (Connect): tcp connect error: Connection refused".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(spec: &ClusterSpec) -> Result<ClientConfig, UpstreamError> {
    let mut config = tls_config_with_roots(spec)?;
    // Session tickets for the one server this client talks to. rustls' default store is sized
    // for 32 servers and allocates for all of them up front (about 20 KiB), once per cluster:
    // 100 MB at 5,000 clusters for entries that stay empty.
    config.resumption = Resumption::in_memory_sessions(TICKETS_PER_SERVER);
    Ok(config)
}

/// The TLS 1.3 tickets rustls keeps per server: a session store of this size holds one server.
const TICKETS_PER_SERVER: usize = 8;

fn tls_config_with_roots(spec: &ClusterSpec) -> Result<ClientConfig, UpstreamError> {
    let tls_error = |e: rustls::Error| UpstreamError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = if spec.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        match &spec.ca_pem {
            Some(pem) => {
                let certs = parse_certs(pem, "certificate-authority")
                    .map_err(|e| UpstreamError::Tls(e.to_string()))?;
                let (added, _ignored) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(UpstreamError::Tls(
                        "certificate-authority holds no usable certificate".to_owned(),
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    match &spec.client_cert {
        Some(identity) => {
            let certs: Vec<CertificateDer<'static>> =
                parse_certs(&identity.cert_pem, "client-certificate")
                    .map_err(|e| UpstreamError::Tls(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| UpstreamError::Tls(format!("client-key: {e}")))?;
            builder.with_client_auth_cert(certs, key).map_err(tls_error)
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `insecure-skip-tls-verify`: accept any certificate but still check handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
