//! Listener, TLS, connections (HTTP/1.1 and HTTP/2 through hyper-util's auto builder),
//! authentication, the request log and fault injection in front of the API handlers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};

use crate::faults::Faults;
use crate::logs::PodLogs;
use crate::requestlog::{LOGGED_HEADERS, RequestLog, RequestRecord};
use crate::status::ApiError;
use crate::store::Store;
use crate::tls::{Authority, CertUser};

/// The response body type: full or streamed.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the listen address failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Certificates or the TLS configuration could not be made.
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
}

/// Who a request is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// State shared by every connection and the handle.
#[derive(Debug)]
pub struct Shared {
    /// The objects.
    pub store: Store,
    /// Fault injection.
    pub faults: Faults,
    /// Requests received.
    pub requests: RequestLog,
    /// Pod log texts.
    pub logs: PodLogs,
    /// Containers' in-memory files (exec's file commands, `kubectl cp`).
    pub files: crate::files::Files,
    /// Bearer tokens accepted, with the user each one authenticates.
    pub tokens: Mutex<HashMap<String, String>>,
    /// The CA, when serving TLS.
    pub authority: Option<Authority>,
    /// Client certificates signed by the CA are accepted instead of a token.
    pub client_cert_auth: bool,
    /// Open watch streams.
    pub open_watches: AtomicUsize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch length when the client sets no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Serve aggregated discovery (`apidiscovery.k8s.io/v2`) to clients that ask for it.
    pub aggregated_discovery: bool,
    /// The bound address (the port is kept when the listener is re-bound).
    pub addr: SocketAddr,
    /// Full JSON lists kept encoded while the store is unchanged (off by default).
    pub list_cache: Option<crate::listcache::ListCache>,
}

impl Shared {
    fn authenticate(&self, headers: &HeaderMap, cert: Option<&CertUser>) -> Option<User> {
        if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)?;
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            return tokens.get(token).map(|name| User {
                name: name.clone(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            });
        }
        cert.map(|c| User {
            name: c.name.clone(),
            groups: c
                .groups
                .iter()
                .cloned()
                .chain(std::iter::once("system:authenticated".to_string()))
                .collect(),
        })
    }
}

/// Binds a listener with SO_REUSEADDR so the same port can be bound again after refusing.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Waits until a watched flag equals `want`; false when the sender is gone.
pub async fn wait_flag(rx: &mut tokio::sync::watch::Receiver<bool>, want: bool) -> bool {
    rx.wait_for(|v| *v == want).await.is_ok()
}

/// Accepts connections until the task is aborted; stops listening while connections are
/// refused and binds the same address again afterwards.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut accepting = shared.faults.accepting();
    let mut listener = Some(listener);
    loop {
        if let Some(l) = listener.take() {
            loop {
                tokio::select! {
                    accepted = l.accept() => match accepted {
                        Ok((tcp, _)) => {
                            let _ = tcp.set_nodelay(true);
                            let shared = shared.clone();
                            let tls = tls.clone();
                            tokio::spawn(async move { accept_one(shared, tcp, tls).await });
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = wait_flag(&mut accepting, false) => break,
                }
            }
            drop(l);
            shared.faults.conn_epoch.send_modify(|e| *e += 1);
            shared.faults.listening.send_replace(false);
        } else {
            if !wait_flag(&mut accepting, true).await {
                return;
            }
            loop {
                match bind(shared.addr) {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "re-binding failed; retrying");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            shared.faults.listening.send_replace(true);
        }
    }
}

async fn accept_one(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    match tls {
        None => serve_connection(shared, tcp, None).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let cert_user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| shared.authority.as_ref()?.user_for(c.as_ref()));
            serve_connection(shared, stream, cert_user).await;
        }
    }
}

async fn serve_connection<S>(shared: Arc<Shared>, io: S, cert_user: Option<CertUser>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut epoch = shared.faults.conn_epoch.subscribe();
    epoch.borrow_and_update();
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let cert_user = cert_user.clone();
        async move { Ok::<_, Infallible>(dispatch(shared, req, cert_user.as_ref()).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = epoch.changed() => {}
    }
}

fn record(req: &Request<Incoming>, user: Option<&User>) -> RequestRecord {
    let headers = req
        .headers()
        .iter()
        .filter(|(k, _)| {
            LOGGED_HEADERS.contains(&k.as_str())
                || k.as_str().starts_with("impersonate-extra-")
                || k.as_str().starts_with("x-remote-")
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    RequestRecord {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| req.uri().path().to_string()),
        headers,
        version: format!("{:?}", req.version()),
        user: user.map(|u| u.name.clone()),
    }
}

/// Applies `Impersonate-User` / `Impersonate-Group`: every authenticated user may impersonate
/// (they all act as cluster admins here).
fn impersonate(headers: &HeaderMap, user: User) -> Option<User> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let groups = values("impersonate-group");
    match headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    {
        Some(name) => Some(User {
            name: name.to_string(),
            groups: groups
                .into_iter()
                .chain(std::iter::once("system:authenticated".to_string()))
                .collect(),
        }),
        None if !groups.is_empty() => None,
        None => Some(user),
    }
}

const HEALTH_PATHS: &[&str] = &["/healthz", "/livez", "/readyz"];

async fn dispatch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    cert_user: Option<&CertUser>,
) -> Response<Body> {
    let user = shared.authenticate(
        req.headers(),
        if shared.client_cert_auth {
            cert_user
        } else {
            None
        },
    );
    shared.requests.push(record(&req, user.as_ref()));
    if shared.faults.is_frozen() {
        shared.faults.wait_unfrozen().await;
    }
    let (latency, failure) = shared.faults.injected_failure(req.uri().path());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = failure {
        return error_response(&ApiError::for_code(code));
    }
    let path = req.uri().path();
    if HEALTH_PATHS
        .iter()
        .any(|h| path == *h || path.starts_with(&format!("{h}/")))
    {
        let mut resp = health_response(path, req.uri().query());
        crate::apf::set_headers(
            resp.headers_mut(),
            crate::apf::classify(user.as_ref(), path),
        );
        return resp;
    }
    let Some(user) = user else {
        return error_response(&ApiError::unauthorized());
    };
    let Some(user) = impersonate(req.headers(), user) else {
        // The apiserver's impersonation filter answers this with a plain-text 500.
        return text_response(
            500,
            &format!(
                "Internal Server Error: \"{}\": requested group impersonation without impersonating a user",
                req.uri().path()
            ),
        );
    };
    let apf = (!crate::apf::is_long_running(path)).then(|| crate::apf::classify(Some(&user), path));
    let mut resp = crate::api::handle(shared, req, user).await;
    if let Some(c) = apf {
        crate::apf::set_headers(resp.headers_mut(), c);
    }
    resp
}

/// `/healthz`, `/livez`, `/readyz`: `ok`, or with `?verbose` one `[+]check ok` line per check
/// and a closing `<name> check passed`, as the apiserver's healthz handler writes them.
fn health_response(path: &str, query: Option<&str>) -> Response<Body> {
    let name = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("healthz");
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if !verbose {
        return text_response(200, "ok");
    }
    let mut checks = vec![
        "ping",
        "log",
        "etcd",
        "poststarthook/start-apiserver-admission-initializer",
    ];
    if name == "readyz" {
        checks.insert(3, "informer-sync");
        checks.push("shutdown");
    }
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!("[+]{c} ok\n"));
    }
    out.push_str(&format!("{name} check passed\n"));
    text_response(200, &out)
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A JSON response.
pub fn json_response(code: u16, body: &serde_json::Value) -> Response<Body> {
    bytes_response(
        code,
        "application/json",
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

/// A response with a body and content type.
pub fn bytes_response(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .header("cache-control", "no-cache, private")
        .body(full(body))
        .expect("valid response")
}

/// A plain-text response.
pub fn text_response(code: u16, text: &str) -> Response<Body> {
    bytes_response(code, "text/plain; charset=utf-8", text.to_string())
}

/// A `Status` error response.
pub fn error_response(err: &ApiError) -> Response<Body> {
    bytes_response(err.code, "application/json", err.to_json_bytes())
}
