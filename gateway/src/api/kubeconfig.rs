//! Kubeconfig export: kubeconfigs that point `kubectl` at this gateway with the caller's own
//! token (the caller already holds it; nothing new is revealed).
//!
//! - `GET /api/v1/clusters/{id}/kubeconfig`: one cluster, context `portico-{id}`.
//! - `GET /api/v1/kubeconfig`: every cluster the caller may reach, one context per cluster
//!   named by its id (`kubectl --context prod-eu get pods`), one user with the token.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::clusters::visible;
use super::{ApiError, ApiResult};
use crate::app::App;
use crate::auth::Principal;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/clusters/{id}/kubeconfig", get(one))
        .route("/kubeconfig", get(fleet))
}

/// `GET /api/v1/clusters/{id}/kubeconfig`.
async fn one(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let record = app.clusters.record(&id).await?;
    visible(&principal, &record)?;
    let base = export_base(&app, &uri, &headers)?;
    let name = format!("portico-{id}");
    let kubeconfig = Kubeconfig {
        base: &base,
        token: caller_token(&headers),
        ca_pem: ca_pem(&app),
        user: &name,
    };
    let context = Context {
        name: &name,
        cluster: &id,
        namespace: record.namespace.as_deref(),
    };
    Ok(kubeconfig.render(&[context], Some(&name)))
}

#[derive(Debug, Deserialize)]
struct FleetQuery {
    /// The context to make current (default: the first, by id).
    current: Option<String>,
}

/// `GET /api/v1/kubeconfig`.
async fn fleet(
    State(app): State<App>,
    principal: Principal,
    Query(query): Query<FleetQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut clusters: Vec<_> = app
        .db
        .clusters()
        .await?
        .into_iter()
        .filter(|c| principal.grant_for_labels(&c.id, &c.labels).is_some())
        .collect();
    clusters.sort_by(|a, b| a.id.cmp(&b.id));
    let current = match query.current {
        Some(id) if clusters.iter().any(|c| c.id == id) => Some(id),
        Some(id) => {
            return Err(ApiError::bad_request(format!(
                "`current`: `{id}` is not a cluster this token may reach"
            )));
        }
        None => clusters.first().map(|c| c.id.clone()),
    };
    let base = export_base(&app, &uri, &headers)?;
    let contexts: Vec<Context<'_>> = clusters
        .iter()
        .map(|c| Context {
            name: &c.id,
            cluster: &c.id,
            namespace: c.namespace.as_deref(),
        })
        .collect();
    let kubeconfig = Kubeconfig {
        base: &base,
        token: caller_token(&headers),
        ca_pem: ca_pem(&app),
        user: "portico",
    };
    Ok(kubeconfig.render(&contexts, current.as_deref()))
}

/// The bearer token the request came with.
fn caller_token(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer_token)
        .unwrap_or_default()
}

/// The gateway's generated CA, when it serves with one.
fn ca_pem(app: &App) -> Option<&str> {
    app.tls.as_ref().and_then(|t| t.ca_pem.as_deref())
}

/// The URL clients reach this gateway at: `--public-url`, else the request's host when the
/// gateway serves it.
pub(crate) fn export_base(app: &App, uri: &Uri, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(url) = &app.config.public_url {
        return Ok(url.clone());
    }
    // HTTP/1.1 has a Host header; HTTP/2 carries `:authority` in the URI.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .ok_or_else(|| {
            ApiError::bad_request("no Host header; start the gateway with --public-url")
        })?;
    // The kubeconfig carries the caller's token: a Host header naming someone else's server
    // (a spoofed header, DNS rebinding) would send that token there.
    if !served_host(app, &host) {
        return Err(ApiError::bad_request(format!(
            "the request's host `{host}` is not one this gateway knows it serves (loopback, the \
             listen or advertised address, or a name on its serving certificate); start the \
             gateway with --public-url (PUBLIC_URL) set to the URL clients use"
        )));
    }
    let scheme = if app.tls.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

/// Whether `authority` (a Host header: `host[:port]`) names this gateway: a loopback name or
/// address, the listen address, the advertised address's host, or a name the serving
/// certificate covers. The port is not compared (port forwards and load balancers change it).
fn served_host(app: &App, authority: &str) -> bool {
    let Some(host) = host_of(authority) else {
        return false;
    };
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        let ip = ip.to_canonical();
        if ip.is_loopback() || (ip == app.config.listen.ip() && !ip.is_unspecified()) {
            return true;
        }
    }
    if host_of(&app.config.advertise_address).is_some_and(|advertised| advertised == host) {
        return true;
    }
    app.tls.as_ref().is_some_and(|tls| tls.serves_name(&host))
}

/// The host of `host[:port]`, lower case, without IPv6 brackets or a trailing dot.
fn host_of(authority: &str) -> Option<String> {
    let authority: http::uri::Authority = authority.parse().ok()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// What every context of an exported kubeconfig shares.
struct Kubeconfig<'a> {
    base: &'a str,
    token: &'a str,
    /// Trusted besides the system roots (the gateway's generated CA).
    ca_pem: Option<&'a str>,
    /// The name of the one user entry.
    user: &'a str,
}

/// One context of an exported kubeconfig.
struct Context<'a> {
    name: &'a str,
    /// The cluster id.
    cluster: &'a str,
    namespace: Option<&'a str>,
}

impl Kubeconfig<'_> {
    /// YAML with one cluster entry and one context per [`Context`]; the cluster entries are
    /// named like the contexts.
    fn render(&self, contexts: &[Context<'_>], current: Option<&str>) -> Response {
        use base64::Engine;
        let clusters: Vec<Value> = contexts
            .iter()
            .map(
                |Context {
                     name, cluster: id, ..
                 }| {
                    let mut cluster = json!({"server": format!("{}/k8s/clusters/{id}", self.base)});
                    if let Some(ca) = self.ca_pem {
                        cluster["certificate-authority-data"] =
                            json!(base64::engine::general_purpose::STANDARD.encode(ca));
                    }
                    json!({"name": name, "cluster": cluster})
                },
            )
            .collect();
        let context_entries: Vec<Value> = contexts
            .iter()
            .map(|c| {
                let mut context = json!({"cluster": c.name, "user": self.user});
                if let Some(namespace) = c.namespace {
                    context["namespace"] = json!(namespace);
                }
                json!({"name": c.name, "context": context})
            })
            .collect();
        let mut config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "users": [{"name": self.user, "user": {"token": self.token}}],
            "contexts": context_entries,
            "preferences": {},
        });
        if let Some(current) = current {
            config["current-context"] = json!(current);
        }
        match serde_yaml::to_string(&config) {
            Ok(yaml) => ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response(),
            Err(e) => ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("kubeconfig: {e}"),
            )
            .into_response(),
        }
    }
}
