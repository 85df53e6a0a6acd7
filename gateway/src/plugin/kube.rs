//! The `kube` capability: read-only access to a cluster through [`KubeApi`].
//!
//! The host maps an apiVersion and kind to a REST path: core `v1` lives under `/api/v1`, every
//! other group under `/apis/{group}/{version}`. A kind k8s-openapi knows in that group takes
//! its plural and scope from k8s-openapi ([`kinds::BUILTIN`]); any other kind falls back to the
//! lower-case kind plus `s` (`es` after s/x/ch/sh, `ies` after a consonant + y), which is what
//! most custom resources use, with no scope check ([`kinds::guess_plural`]). Discovery is not
//! consulted: it would cost a round trip per call.

mod kinds;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::cluster::credentials::CredentialError;
use crate::cluster::upstream::{UpstreamError, error_chain};

/// What [`KubeApi::get`] returns: the HTTP status and body, or why the cluster gave none.
pub type KubeFuture = BoxFuture<'static, Result<(u16, Bytes), KubeGetError>>;

/// Why a [`KubeApi::get`] got no answer from the cluster. The guest sees it as `unavailable`,
/// with this text.
#[derive(Debug, thiserror::Error)]
pub enum KubeGetError {
    /// The request failed ([`RestKubeApi`]).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The path is not a valid path on the cluster's server.
    #[error("bad path `{path}`: {source}")]
    Path {
        /// The path and query asked for.
        path: String,
        source: http::Error,
    },
    /// The request could not be built.
    #[error("bad request: {0}")]
    Request(#[source] http::Error),
    /// The cluster's credential could not be produced.
    #[error("cluster `{cluster}` credentials: {source}")]
    Credentials {
        /// The cluster's id.
        cluster: String,
        source: CredentialError,
    },
    /// The cluster's pooled connection failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The answer's body could not be read.
    #[error("reading the answer from {server}: {}", error_chain(.source))]
    Body {
        /// The cluster's server.
        server: String,
        source: hyper::Error,
    },
    /// This replica has no connection to the cluster.
    #[error("cluster `{cluster}` is not connected on this replica")]
    Disconnected {
        /// The cluster's id.
        cluster: String,
    },
}

/// Read access to one cluster. The cluster pool implements it; tests implement it over plain
/// HTTP(S) ([`RestKubeApi`]).
pub trait KubeApi: Send + Sync + 'static {
    /// GET `path_and_query` (e.g. `/api/v1/namespaces/default/pods?labelSelector=a%3Db`) on
    /// the cluster; returns status and body.
    fn get(&self, path_and_query: String) -> KubeFuture;
}

/// A guest-visible failure: the WIT `error-kind` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KubeError {
    Invalid(String),
    NotFound(String),
    Denied(String),
    Unavailable(String),
    TooLarge(String),
}

/// Why [`resource_path`] refused its arguments. The guest sees it as `invalid`, with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcePathError {
    /// Not `v1` or `group/version`.
    #[error("apiVersion `{0}` is not `v1` or `group/version`")]
    ApiVersion(String),
    /// Not a kind's name.
    #[error("kind `{0}` is not a Kubernetes kind")]
    Kind(String),
    /// A namespace given for a cluster-scoped built-in kind.
    #[error("{0} is cluster-scoped: give no namespace")]
    ClusterScoped(String),
    /// An object of a namespaced built-in kind asked for without its namespace.
    #[error("{0} is namespaced: give its namespace")]
    Namespaced(String),
    /// Not a valid namespace name.
    #[error("namespace `{0}` is not a valid name")]
    Namespace(String),
    /// Not a valid object name.
    #[error("name `{0}` is not a valid object name")]
    Name(String),
}

/// The REST path of a collection (`name` absent) or of one object.
pub fn resource_path(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<String, ResourcePathError> {
    let (group, prefix) = match api_version.split_once('/') {
        None if api_version == "v1" => ("", "/api/v1".to_owned()),
        Some((group, version)) if segment_ok(group) && segment_ok(version) => {
            (group, format!("/apis/{group}/{version}"))
        }
        _ => {
            return Err(ResourcePathError::ApiVersion(api_version.to_owned()));
        }
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ResourcePathError::Kind(kind.to_owned()));
    }
    let (plural, namespaced) = match kinds::builtin_kind(group, kind) {
        Some(builtin) => (builtin.plural.to_owned(), Some(builtin.namespaced)),
        None => (kinds::guess_plural(kind), None),
    };
    let namespace = namespace.filter(|ns| !ns.is_empty());
    let mut path = prefix;
    match (namespace, namespaced) {
        (Some(_), Some(false)) => {
            return Err(ResourcePathError::ClusterScoped(kind.to_owned()));
        }
        (Some(ns), _) => {
            if !segment_ok(ns) {
                return Err(ResourcePathError::Namespace(ns.to_owned()));
            }
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        (None, Some(true)) if name.is_some() => {
            return Err(ResourcePathError::Namespaced(kind.to_owned()));
        }
        (None, _) => {}
    }
    path.push('/');
    path.push_str(&plural);
    if let Some(name) = name {
        if !name_ok(name) {
            return Err(ResourcePathError::Name(name.to_owned()));
        }
        path.push('/');
        path.push_str(name);
    }
    Ok(path)
}

/// A DNS label or subdomain (group, version, namespace).
fn segment_ok(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Object names: path-safe characters only (RBAC names may contain ':').
fn name_ok(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@'))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(super) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path and query of a list.
pub(super) fn list_request(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<String, KubeError> {
    let mut path = resource_path(api_version, kind, namespace, None)
        .map_err(|e| KubeError::Invalid(e.to_string()))?;
    let mut query = Vec::new();
    if let Some(sel) = label_selector.filter(|s| !s.is_empty()) {
        query.push(format!("labelSelector={}", encode_query(sel)));
    }
    if let Some(sel) = field_selector.filter(|s| !s.is_empty()) {
        query.push(format!("fieldSelector={}", encode_query(sel)));
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    Ok(path)
}

/// The path and query of a pod's log.
pub(super) fn logs_request(
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    tail_lines: Option<u32>,
    limit_bytes: usize,
) -> Result<String, KubeError> {
    let mut path = resource_path("v1", "Pod", Some(namespace), Some(pod))
        .map_err(|e| KubeError::Invalid(e.to_string()))?;
    path.push_str("/log?");
    let mut query = vec![format!("limitBytes={limit_bytes}")];
    if let Some(container) = container.filter(|c| !c.is_empty()) {
        query.push(format!("container={}", encode_query(container)));
    }
    if let Some(tail) = tail_lines {
        query.push(format!("tailLines={tail}"));
    }
    path.push_str(&query.join("&"));
    Ok(path)
}

/// Maps a non-2xx status to a guest error, with the `Status` message when there is one.
pub(super) fn status_error(status: u16, body: &[u8], what: &str) -> KubeError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let text = format!("{what}: HTTP {status}: {message}");
    match status {
        401 | 403 => KubeError::Denied(text),
        404 => KubeError::NotFound(text),
        400 | 422 => KubeError::Invalid(text),
        _ => KubeError::Unavailable(text),
    }
}

/// One object's JSON with `apiVersion` and `kind` set.
pub(super) fn object_json(api_version: &str, kind: &str, body: &[u8]) -> Result<String, KubeError> {
    let mut object: Value = serde_json::from_slice(body)
        .map_err(|e| KubeError::Unavailable(format!("the cluster sent invalid JSON: {e}")))?;
    stamp(&mut object, api_version, kind);
    Ok(object.to_string())
}

/// The items of a list as JSON documents, each with `apiVersion` and `kind` (the apiserver
/// leaves them out of list items).
pub(super) fn list_items(
    api_version: &str,
    kind: &str,
    body: &[u8],
) -> Result<Vec<String>, KubeError> {
    // Items stay raw JSON text: each is scanned for `apiVersion` and `kind` (which list items
    // usually lack) and the missing ones are spliced in front. Parsing every item into a
    // `Value` and printing it again cost a 10,000-pod list about a fifth of an inspection.
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Option<Vec<&'a RawValue>>,
    }
    let list: List<'_> = serde_json::from_slice(body)
        .map_err(|e| KubeError::Unavailable(format!("the cluster sent invalid JSON: {e}")))?;
    let Some(items) = list.items else {
        return Err(KubeError::Unavailable(
            "the cluster's answer to a list has no `items`".to_owned(),
        ));
    };
    let api_version = Value::from(api_version).to_string();
    let kind = Value::from(kind).to_string();
    Ok(items
        .into_iter()
        .map(|item| stamp_raw(item.get(), &api_version, &kind))
        .collect())
}

/// A field that is there (whatever its value, `null` included) or not.
#[derive(Debug, Default)]
struct Present(bool);

impl<'de> serde::Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self(true))
    }
}

/// `object` (raw JSON) with `"apiVersion"` and `"kind"` (already JSON strings) added where it
/// has none; anything but an object is returned as it is.
fn stamp_raw(object: &str, api_version: &str, kind: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default, rename = "apiVersion")]
        api_version: Present,
        #[serde(default)]
        kind: Present,
    }
    let Ok(head) = serde_json::from_str::<Head>(object) else {
        return object.to_owned();
    };
    let Some(rest) = object.trim_start().strip_prefix('{') else {
        return object.to_owned();
    };
    let mut out = String::with_capacity(object.len() + api_version.len() + kind.len() + 24);
    out.push('{');
    if !head.api_version.0 {
        out.push_str("\"apiVersion\":");
        out.push_str(api_version);
        out.push(',');
    }
    if !head.kind.0 {
        out.push_str("\"kind\":");
        out.push_str(kind);
        out.push(',');
    }
    // `{}` had no field to follow the added ones: drop the comma.
    if out.len() > 1 && rest.trim_start().starts_with('}') {
        out.pop();
    }
    out.push_str(rest);
    out
}

fn stamp(object: &mut Value, api_version: &str, kind: &str) {
    if let Value::Object(map) = object {
        map.entry("apiVersion")
            .or_insert_with(|| Value::from(api_version));
        map.entry("kind").or_insert_with(|| Value::from(kind));
    }
}

/// A [`KubeApi`] over plain HTTP(S): a base URL, an optional CA and bearer token. For tests,
/// and for reading a cluster without the pool.
#[derive(Debug, Clone)]
pub struct RestKubeApi {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl RestKubeApi {
    /// A client for the apiserver at `base_url`, trusting `ca_pem` when given.
    pub fn new(base_url: &str, ca_pem: Option<&str>, token: Option<&str>) -> super::Result<Self> {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| super::Error::Host(format!("cluster CA: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| super::Error::Host(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
        })
    }
}

impl KubeApi for RestKubeApi {
    fn get(&self, path_and_query: String) -> KubeFuture {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Box::pin(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok((status, body))
        })
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    fn items(body: &str) -> Vec<Value> {
        list_items("v1", "Pod", body.as_bytes())
            .unwrap()
            .iter()
            .map(|item| serde_json::from_str(item).expect("each item is JSON"))
            .collect()
    }

    #[test]
    fn items_get_api_version_and_kind_where_missing() {
        let got = items(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
                {"metadata":{"name":"a"}},
                { "apiVersion" : "v1", "kind":"Pod","metadata":{"name":"b"}},
                {"kind":null,"metadata":{"name":"c"}},
                {},
                {"metadata":{"name":"quoted \"kind\": \"x\""}}
            ]}"#,
        );
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[0],
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}})
        );
        assert_eq!(got[1]["metadata"]["name"], "b");
        assert_eq!(got[1]["kind"], "Pod");
        // A field that is there keeps its value (null included): no duplicate key is made.
        assert_eq!(got[2]["kind"], Value::Null);
        assert_eq!(got[2]["apiVersion"], "v1");
        assert_eq!(
            got[3],
            serde_json::json!({"apiVersion": "v1", "kind": "Pod"})
        );
        assert_eq!(got[4]["metadata"]["name"], "quoted \"kind\": \"x\"");
        assert_eq!(got[4]["kind"], "Pod");
        for item in list_items("v1", "Pod", br#"{"items":[{"kind":null}]}"#).unwrap() {
            assert_eq!(item.matches("\"kind\"").count(), 1, "{item}");
        }
    }

    #[test]
    fn odd_lists_are_errors_or_kept() {
        assert!(matches!(
            list_items("v1", "Pod", b"{\"metadata\":{}}"),
            Err(KubeError::Unavailable(_))
        ));
        assert!(matches!(
            list_items("v1", "Pod", b"not json"),
            Err(KubeError::Unavailable(_))
        ));
        assert_eq!(
            list_items("v1", "Pod", br#"{"items":[]}"#).unwrap().len(),
            0
        );
        // Not an object: passed on untouched.
        assert_eq!(
            list_items("v1", "Pod", br#"{"items":[7, "x"]}"#).unwrap(),
            vec!["7".to_owned(), "\"x\"".to_owned()]
        );
        // Kinds with characters JSON escapes stay valid JSON.
        let item = &list_items("example.com/v1", "We\"ird", br#"{"items":[{}]}"#).unwrap()[0];
        let value: Value = serde_json::from_str(item).unwrap();
        assert_eq!(value["kind"], "We\"ird");
        assert_eq!(value["apiVersion"], "example.com/v1");
    }
}
