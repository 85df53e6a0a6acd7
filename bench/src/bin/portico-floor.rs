//! `portico-floor`: the least a reverse proxy in front of an apiserver can do, built from the
//! parts Portico is built from, as the floor `bench/run` measures Portico against.
//!
//! One upstream, no routing, no authentication of the caller, no grants, no metrics, no audit:
//! every request goes to `--upstream` with the same path and query, the token of `--token`
//! and no `Host`, over the same hyper-util pooled client as Portico's (rustls with ring, ALPN
//! `h2` then `http/1.1`, the same HTTP/2 frame and window sizes); the answer streams back as
//! it arrives. It serves HTTP/1.1 and HTTP/2 (hyper-util's `auto` server) over plain TCP, or
//! over rustls with `--tls-cert`/`--tls-key`, as Portico does. It prints
//! `portico-floor listening on <url>` once it accepts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use portico::testing::ServerTls;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Portico's HTTP/2 settings toward apiservers (`gateway/src/cluster/upstream.rs`).
const H2_MAX_FRAME_SIZE: u32 = 1 << 20;
const H2_STREAM_WINDOW: u32 = 4 << 20;
const H2_CONNECTION_WINDOW: u32 = 32 << 20;

#[derive(Debug, Parser)]
#[command(
    name = "portico-floor",
    about = "A minimal reverse proxy: the floor of the proxy benchmark"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The apiserver, e.g. `https://127.0.0.1:6443`.
    #[arg(long)]
    upstream: Uri,
    /// The CA (PEM) the upstream's certificate is verified with.
    #[arg(long)]
    upstream_ca: PathBuf,
    /// Bearer token sent upstream with every request.
    #[arg(long)]
    token: String,
    /// Serve HTTPS with this certificate chain (PEM) …
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// … and this private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

type ResponseBody = BoxBody<Bytes, hyper::Error>;

struct Floor {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>,
    scheme: Scheme,
    authority: Authority,
    authorization: HeaderValue,
}

impl Floor {
    async fn forward(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build();
        let Ok(uri) = uri else {
            return error(StatusCode::BAD_REQUEST);
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        parts.headers.remove(header::HOST);
        parts
            .headers
            .insert(header::AUTHORIZATION, self.authorization.clone());
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                parts.version = Version::HTTP_11;
                Response::from_parts(parts, body.boxed())
            }
            Err(_) => error(StatusCode::BAD_GATEWAY),
        }
    }
}

fn error(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed());
    *response.status_mut() = status;
    response
}

fn client(
    args: &Args,
) -> anyhow::Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>> {
    let pem = std::fs::read(&args.upstream_ca)
        .with_context(|| format!("reading {}", args.upstream_ca.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.context("upstream CA")?)?;
    }
    let tls =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(30)));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .http2_keep_alive_interval(Some(Duration::from_secs(30)))
        .http2_keep_alive_while_idle(true)
        .http2_max_frame_size(H2_MAX_FRAME_SIZE)
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
        .build(connector))
}

/// The listener's TLS, built as Portico builds its own (`ServerTls`: rustls with ring, the safe
/// default protocol versions, ALPN `h2` then `http/1.1`).
fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    Ok(ServerTls::from_files(cert, key)?.acceptor)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let floor = Arc::new(Floor {
        client: client(&args)?,
        scheme: args.upstream.scheme().cloned().unwrap_or(Scheme::HTTPS),
        authority: args
            .upstream
            .authority()
            .cloned()
            .context("--upstream has no host")?,
        authorization: HeaderValue::from_str(&format!("Bearer {}", args.token))?,
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(args.listen).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "portico-floor listening on {scheme}://{}",
        listener.local_addr()?
    );
    let server = ServerBuilder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (floor, tls, server) = (floor.clone(), tls.clone(), server.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let floor = floor.clone();
                async move { Ok::<_, std::convert::Infallible>(floor.forward(request).await) }
            });
            let _ = match tls {
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        server
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    server
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}
