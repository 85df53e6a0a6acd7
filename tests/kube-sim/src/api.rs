//! The REST API: path routing, verbs, content types, and the rendering of objects and lists.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;

use crate::patch;
use crate::resources::{self, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::server::{Body, Shared, User, bytes_response, error_response, json_response};
use crate::status::{self, ApiError, Result};
use crate::store::{Part, Preconditions};
use crate::{discovery, table, watch};

/// Decoded query parameters, in order.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(v);
            i += 2;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// First value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }

    /// A numeric parameter; a malformed value is a 400.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {name}: {v:?}"))),
        }
    }

    /// `dryRun=All`.
    pub fn dry_run(&self) -> bool {
        self.all("dryRun").contains(&"All")
    }
}

/// What a resource path names.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resource.
    pub res: &'static ResourceInfo,
    /// Namespace from the path.
    pub ns: Option<String>,
    /// Object name, for item paths.
    pub name: Option<String>,
    /// Subresource (`status`, `log`, `exec`).
    pub sub: Option<String>,
    /// Legacy `/watch/` path prefix.
    pub legacy_watch: bool,
}

enum Route {
    Discovery(Value),
    Resource(Target),
    NotFound,
}

fn route(path: &str, server_address: &str) -> Route {
    let segs: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|seg| percent_decode(&seg.replace('+', "%2B")))
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Route::Discovery(discovery::core_versions(server_address)),
        ["apis"] => return Route::Discovery(discovery::group_list()),
        ["apis", g] => {
            return discovery::group(g).map_or(Route::NotFound, Route::Discovery);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    if rest.is_empty() {
        return discovery::resource_list(group, version).map_or(Route::NotFound, Route::Discovery);
    }
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    let find = |plural: &str| resources::by_plural(group, version, plural);
    let target =
        |res: &'static ResourceInfo, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
            Route::Resource(Target {
                res,
                ns: ns.map(str::to_string),
                name: name.map(str::to_string),
                sub: sub.map(str::to_string),
                legacy_watch,
            })
        };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty()
                && tail.is_empty()
                && matches!(*plural, "status" | "finalize")) =>
        {
            let Some(res) = find(plural).filter(|r| r.namespaced) else {
                return Route::NotFound;
            };
            match tail {
                [] => target(res, Some(ns), None, None),
                [name] => target(res, Some(ns), Some(name), None),
                [name, sub] => target(res, Some(ns), Some(name), Some(sub)),
                _ => Route::NotFound,
            }
        }
        [plural, tail @ ..] => {
            let Some(res) = find(plural) else {
                return Route::NotFound;
            };
            match tail {
                [] => target(res, None, None, None),
                [_, ..] if res.namespaced => Route::NotFound,
                [name] => target(res, None, Some(name), None),
                [name, sub] => target(res, None, Some(name), Some(sub)),
                _ => Route::NotFound,
            }
        }
        [] => Route::NotFound,
    }
}

/// How the client wants objects rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// A `meta.k8s.io/v1` `Table` (kubectl get), rows carrying what `includeObject` asks.
    Table(table::IncludeObject),
    /// Kubernetes protobuf, for the kinds [`crate::protobuf`] covers; other kinds are answered
    /// in the fallback the client also accepted, or with 406 when it accepted nothing else.
    Protobuf(Fallback),
}

/// The format to use instead of protobuf when an object cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The client accepts only protobuf.
    None,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

const NOT_ACCEPTABLE: &str = "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf";

fn not_acceptable() -> ApiError {
    ApiError::new(406, "NotAcceptable", NOT_ACCEPTABLE)
}

/// One clause of an `Accept` header.
struct Clause<'a> {
    mime: &'a str,
    params: Vec<String>,
    q: f32,
}

/// Splits `Accept` into clauses ordered by `q` (highest first, header order among equals), and
/// drops `q=0` ones, as the apiserver's negotiation (`goautoneg.ParseAccept`) does.
fn clauses(accept: &str) -> Vec<Clause<'_>> {
    let mut out: Vec<Clause<'_>> = accept
        .split(',')
        .filter_map(|part| {
            let mut params = part.split(';').map(str::trim);
            let mime = params.next().filter(|m| !m.is_empty())?;
            let mut q = 1.0f32;
            let mut rest = Vec::new();
            for p in params {
                let p = p.replace(' ', "");
                match p.strip_prefix("q=") {
                    Some(v) => q = v.parse().unwrap_or(0.0),
                    None if !p.is_empty() => rest.push(p),
                    None => {}
                }
            }
            Some(Clause {
                mime,
                params: rest,
                q,
            })
        })
        .filter(|c| c.q > 0.0)
        .collect();
    out.sort_by(|a, b| b.q.total_cmp(&a.q));
    out
}

/// What one clause selects, if anything served fits it.
fn clause_format(c: &Clause<'_>) -> Option<Format> {
    let as_param = c.params.iter().find_map(|p| p.strip_prefix("as="));
    let is_table = as_param == Some("Table");
    match (c.mime, as_param) {
        ("application/json" | "*/*" | "application/*", _) if is_table => {
            Some(Format::Table(table::IncludeObject::default()))
        }
        ("application/json" | "*/*" | "application/*", None) => Some(Format::Json),
        ("application/yaml", None) => Some(Format::Yaml),
        (crate::protobuf::MEDIA_TYPE, None) => Some(Format::Protobuf(Fallback::None)),
        _ => None,
    }
}

/// Picks the response format from the `Accept` header: clauses by `q`, the first one a
/// served format fits; 406 `NotAcceptable` when none does.
pub fn negotiate(accept: Option<&str>) -> Result<Format> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    let formats: Vec<Format> = clauses(accept).iter().filter_map(clause_format).collect();
    match formats.first() {
        None => Err(not_acceptable()),
        Some(Format::Protobuf(_)) => {
            let fallback = formats
                .iter()
                .find_map(|f| match f {
                    Format::Json => Some(Fallback::Json),
                    Format::Yaml => Some(Fallback::Yaml),
                    _ => None,
                })
                .unwrap_or(Fallback::None);
            Ok(Format::Protobuf(fallback))
        }
        Some(f) => Ok(*f),
    }
}

/// The format to use when protobuf cannot encode a response; `Err` when there is none.
fn fallback(f: Fallback) -> Result<Format> {
    match f {
        Fallback::Json => Ok(Format::Json),
        Fallback::Yaml => Ok(Format::Yaml),
        Fallback::None => Err(not_acceptable()),
    }
}

fn render(code: u16, format: Format, body: &Value) -> Response<Body> {
    match format {
        Format::Yaml => bytes_response(
            code,
            "application/yaml",
            serde_yaml::to_string(body).unwrap_or_default(),
        ),
        _ => json_response(code, body),
    }
}

fn render_object(code: u16, format: Format, res: &ResourceInfo, obj: &Value) -> Response<Body> {
    match format {
        Format::Table(include) => json_response(code, &table::table(res, &[obj], true, include)),
        Format::Protobuf(fb) => match crate::protobuf::encode_object(obj) {
            Some(bytes) => bytes_response(code, crate::protobuf::MEDIA_TYPE, bytes),
            None => match fallback(fb) {
                Ok(f) => render_object(code, f, res, obj),
                Err(e) => error_response(&e),
            },
        },
        f => render(code, f, obj),
    }
}

/// Serialises a list the way the apiserver does: items without `kind`/`apiVersion`.
fn render_list(
    res: &ResourceInfo,
    format: Format,
    items: &[Arc<Value>],
    meta: Value,
) -> Response<Body> {
    if let Format::Table(include) = format {
        let refs: Vec<&Value> = items.iter().map(|o| o.as_ref()).collect();
        let mut t = table::table(res, &refs, true, include);
        t["metadata"] = meta;
        return json_response(200, &t);
    }
    if let Format::Protobuf(fb) = format {
        let encoded = crate::protobuf::encode_list(
            &res.api_version(),
            res.kind,
            &meta,
            items.iter().map(|o| o.as_ref()),
        );
        return match (encoded, fallback(fb)) {
            (Some(bytes), _) => bytes_response(200, crate::protobuf::MEDIA_TYPE, bytes),
            (None, Ok(f)) => render_list(res, f, items, meta),
            (None, Err(e)) => error_response(&e),
        };
    }
    if format == Format::Yaml {
        let list = serde_json::json!({
            "kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta,
            "items": items.iter().map(|o| strip_type(o)).collect::<Vec<_>>(),
        });
        return render(200, format, &list);
    }
    bytes_response(200, "application/json", list_json(res, items, &meta))
}

/// A list as JSON, items without `kind`/`apiVersion`.
fn list_json(res: &ResourceInfo, items: &[Arc<Value>], meta: &Value) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256 + items.len() * 512);
    buf.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut buf, &res.list_kind()).expect("write");
    buf.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut buf, &res.api_version()).expect("write");
    buf.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut buf, meta).expect("write");
    buf.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_without_type(&mut buf, item);
    }
    buf.extend_from_slice(b"]}");
    buf
}

fn strip_type(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "kind" && *k != "apiVersion")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn write_without_type(buf: &mut Vec<u8>, obj: &Value) {
    let Value::Object(m) = obj else {
        serde_json::to_writer(&mut *buf, obj).expect("write");
        return;
    };
    buf.push(b'{');
    let mut first = true;
    for (k, v) in m {
        if k == "kind" || k == "apiVersion" {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *buf, k).expect("write");
        buf.push(b':');
        serde_json::to_writer(&mut *buf, v).expect("write");
    }
    buf.push(b'}');
}

fn selectors(res: &ResourceInfo, q: &Query) -> Result<Selectors> {
    Ok(Selectors {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), res)?,
    })
}

async fn read_body(req: Request<Incoming>) -> Result<(Option<String>, Bytes)> {
    let ct = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string());
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    Ok((ct, bytes))
}

fn decode_object(ct: Option<&str>, bytes: &[u8]) -> Result<Value> {
    match ct.unwrap_or("application/json") {
        "application/json" | "" => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized: couldn't get version/kind; json parse error: {e}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("yaml: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(bytes),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Entry point for authenticated requests.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>, user: User) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match path.as_str() {
        "/version" | "/version/" => return json_response(200, &discovery::version()),
        "/" => return json_response(200, &discovery::root_paths()),
        _ => {}
    }
    if path == "/openapi/v3" || path == "/openapi/v3/" {
        return json_response(200, &crate::openapi::root());
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        return match crate::openapi::group_version(gv) {
            Some(doc) => json_response(200, &doc),
            None => bytes_response(404, "text/plain; charset=utf-8", "404 page not found\n"),
        };
    }
    if path.starts_with("/openapi/") {
        return bytes_response(404, "text/plain; charset=utf-8", "404 page not found\n");
    }
    if shared.aggregated_discovery
        && (path == "/api" || path == "/apis")
        && discovery::wants_aggregated(accept.as_deref())
    {
        let body = discovery::aggregated(path == "/api");
        let mut resp = bytes_response(
            200,
            discovery::AGGREGATED_V2,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        resp.headers_mut()
            .insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
        return resp;
    }
    if req.method() == Method::GET
        && let Some(answer) = crate::metrics::serve(&shared.store, &path, &query)
    {
        return match answer {
            Ok(body) => json_response(200, &body),
            Err(e) => error_response(&e),
        };
    }
    if path == "/metrics" {
        return crate::server::text_response(200, &server_metrics(&shared));
    }
    match route(&path, &shared.addr.to_string()) {
        Route::NotFound if path.starts_with("/api/") || path.starts_with("/apis/") => {
            error_response(&ApiError::no_such_resource())
        }
        Route::NotFound => bytes_response(404, "text/plain; charset=utf-8", "404 page not found\n"),
        Route::Discovery(doc) => {
            if req.method() != Method::GET {
                return error_response(&ApiError::method_not_allowed());
            }
            json_response(200, &doc)
        }
        Route::Resource(target) => {
            let format = match negotiate(accept.as_deref()) {
                Ok(Format::Table(_)) => {
                    Format::Table(table::IncludeObject::parse(query.get("includeObject")))
                }
                Ok(f) => f,
                Err(e) => return error_response(&e),
            };
            if target.res.review {
                return match review(req, &target, &user).await {
                    Ok(resp) => resp,
                    Err(e) => error_response(&e),
                };
            }
            match resource(shared, req, target, query, format).await {
                Ok(resp) => resp,
                Err(e) => error_response(&e),
            }
        }
    }
}

/// `/metrics`: the apiserver's Prometheus text, reduced to what the simulator knows: the build
/// and `apiserver_storage_objects` per resource.
fn server_metrics(shared: &Shared) -> String {
    let mut out = String::from(
        "# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.\n# TYPE apiserver_storage_objects gauge\n",
    );
    for r in resources::all().iter().filter(|r| !r.review) {
        out.push_str(&format!(
            "apiserver_storage_objects{{resource=\"{}\"}} {}\n",
            r.qualified(),
            shared.store.count(r)
        ));
    }
    out.push_str(&format!(
        "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\nkubernetes_build_info{{git_version=\"{}\"}} 1\n",
        discovery::GIT_VERSION
    ));
    out
}

async fn resource(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    t: Target,
    q: Query,
    format: Format,
) -> Result<Response<Body>> {
    let res = t.res;
    let ns = t.ns.as_deref();
    let store = &shared.store;
    let method = req.method().clone();
    let is_watch = t.legacy_watch || q.flag("watch");
    if t.sub.as_deref() == Some("status") && !res.status_subresource {
        return Err(ApiError::no_such_resource());
    }
    match (&method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, None, None) if is_watch => {
            let sel = selectors(res, &q)?;
            watch::serve(shared.clone(), res, t.ns.clone(), sel, &q, format)
        }
        (&Method::GET, None, None) => {
            let sel = selectors(res, &q)?;
            if q.get("resourceVersionMatch") == Some("Exact") {
                let want: u64 = q.number("resourceVersion")?.unwrap_or(0);
                if want != store.resource_version() {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {want} ({})",
                        store.resource_version()
                    )));
                }
            }
            let page = store.list(res, ns, &sel, q.number("limit")?, q.get("continue"))?;
            // A full list, not a page: fixed by the request and the store's version.
            let cache = shared.list_cache.as_ref().filter(|_| {
                format == Format::Json
                    && page.continue_token.is_none()
                    && q.get("continue").is_none_or(str::is_empty)
            });
            let cache_key = cache.and_then(|_| req.uri().path_and_query().map(|pq| pq.as_str()));
            if let (Some(cache), Some(key)) = (cache, cache_key)
                && let Some(body) = cache.get(key, page.resource_version)
            {
                return Ok(bytes_response(200, "application/json", body));
            }
            let mut meta =
                serde_json::json!({"resourceVersion": page.resource_version.to_string()});
            if let Some(c) = &page.continue_token {
                meta["continue"] = c.clone().into();
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = r.into();
            }
            if let (Some(cache), Some(key)) = (cache, cache_key) {
                let body = Bytes::from(list_json(res, &page.items, &meta));
                cache.put(key.to_owned(), page.resource_version, body.clone());
                return Ok(bytes_response(200, "application/json", body));
            }
            Ok(render_list(res, format, &page.items, meta))
        }
        (&Method::GET, Some(name), None) if is_watch => {
            let mut sel = selectors(res, &q)?;
            sel.fields = FieldSelector::parse(&format!("metadata.name={name}"), res)?;
            watch::serve(shared.clone(), res, t.ns.clone(), sel, &q, format)
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let obj = store.get(res, ns, name)?;
            Ok(render_object(200, format, res, &obj))
        }
        (&Method::POST, None, None) => {
            let (ct, body) = read_body(req).await?;
            let obj = decode_object(ct.as_deref(), &body)?;
            let created = store.create(res, ns, obj, q.dry_run())?;
            Ok(warned(
                render_object(201, format, res, &created),
                res,
                &created,
            ))
        }
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => {
            let part = if sub.is_some() {
                Part::Status
            } else {
                Part::Main
            };
            let (ct, body) = read_body(req).await?;
            let obj = decode_object(ct.as_deref(), &body)?;
            let updated = store.update(res, ns, name, obj, part, q.dry_run())?;
            Ok(warned(
                render_object(200, format, res, &updated),
                res,
                &updated,
            ))
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let part = if sub.is_some() {
                Part::Status
            } else {
                Part::Main
            };
            let (ct, body) = read_body(req).await?;
            patch_object(
                &shared,
                res,
                ns,
                name,
                part,
                ct.as_deref(),
                &body,
                &q,
                format,
            )
        }
        (&Method::DELETE, Some(name), None) => {
            let (_, body) = read_body(req).await?;
            let opts: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("DeleteOptions: {e}")))?
            };
            let pre = Preconditions {
                uid: opts
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource_version: opts
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            let dry_run = q.dry_run()
                || opts
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let deleted = store.delete(res, ns, name, &pre, dry_run)?;
            if deleted.gone && !dry_run {
                shared.logs.pod_deleted(res, ns, name);
            }
            if !deleted.gone || res.returns_deleted_object {
                Ok(render_object(200, format, res, &deleted.object))
            } else {
                let uid = deleted
                    .object
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(json_response(200, &status::success(res, name, uid)))
            }
        }
        (&Method::DELETE, None, None) => {
            let sel = selectors(res, &q)?;
            let page = store.list(res, ns, &sel, None, None)?;
            let mut gone = Vec::new();
            for obj in page.items {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let obj_ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match store.delete(
                    res,
                    obj_ns.as_deref(),
                    &name,
                    &Preconditions::default(),
                    q.dry_run(),
                ) {
                    Ok(d) => {
                        if d.gone && !q.dry_run() {
                            shared.logs.pod_deleted(res, obj_ns.as_deref(), &name);
                        }
                        gone.push(d.object);
                    }
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let meta = serde_json::json!({"resourceVersion": store.resource_version().to_string()});
            Ok(render_list(res, Format::Json, &gone, meta))
        }
        (&Method::GET, Some(name), Some("scale")) if res.scale => {
            let obj = store.get(res, ns, name)?;
            Ok(json_response(200, &scale_of(&obj)))
        }
        (&Method::PUT | &Method::PATCH, Some(name), Some("scale")) if res.scale => {
            let (ct, body) = read_body(req).await?;
            let ct = ct.unwrap_or_default();
            let doc: Value = if ct == "application/yaml" {
                serde_yaml::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("yaml: {e}")))?
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?
            };
            let is_put = method == Method::PUT;
            let updated = store.modify(res, ns, name, Part::Main, q.dry_run(), |old| {
                let mut scale = scale_of(old);
                match (is_put, ct.as_str()) {
                    (true, _) => scale = doc.clone(),
                    (false, "application/json-patch+json") => {
                        patch::json_patch(&mut scale, &doc)
                            .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?
                    }
                    (false, "application/merge-patch+json") => patch::merge_patch(&mut scale, &doc),
                    (false, "application/strategic-merge-patch+json") => {
                        patch::strategic_merge(&mut scale, &doc)
                    }
                    (false, other) => return Err(ApiError::unsupported_media_type(other)),
                }
                let replicas = scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        res,
                        "Scale",
                        name,
                        vec![status::StatusCause {
                            reason: "FieldValueInvalid".into(),
                            message: format!(
                                "Invalid value: {replicas}: must be greater than or equal to 0"
                            ),
                            field: "spec.replicas".into(),
                        }],
                    ));
                }
                let mut new = old.clone();
                new["spec"]["replicas"] = replicas.into();
                // The Scale's resourceVersion, when given, is a precondition on the object.
                match scale.pointer("/metadata/resourceVersion") {
                    Some(rv) => new["metadata"]["resourceVersion"] = rv.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove("resourceVersion");
                        }
                    }
                }
                Ok(new)
            })?;
            Ok(json_response(200, &scale_of(&updated)))
        }
        (_, Some(name), Some("log")) if res.plural == "pods" && method == Method::GET => {
            crate::logs::serve(shared.clone(), ns.unwrap_or_default(), name, &q)
        }
        (_, Some(name), Some("exec")) if res.plural == "pods" => {
            crate::exec::serve(shared.clone(), req, ns.unwrap_or_default(), name, &q)
        }
        (_, Some(name), Some("attach")) if res.plural == "pods" => {
            crate::attach::serve(shared.clone(), req, ns.unwrap_or_default(), name, &q)
        }
        (_, Some(name), Some("ephemeralcontainers")) if res.plural == "pods" => {
            let ns = ns.unwrap_or_default();
            let change = match method {
                Method::GET => {
                    let pod = store.get(res, Some(ns), name)?;
                    return Ok(render_object(200, format, res, &pod));
                }
                Method::PUT | Method::PATCH => read_body(req).await?,
                _ => return Err(ApiError::method_not_allowed()),
            };
            let (ct, body) = change;
            let updated = if method == Method::PUT {
                let pod = decode_object(ct.as_deref(), &body)?;
                crate::ephemeral::update(
                    store,
                    res,
                    ns,
                    name,
                    crate::ephemeral::Change::Replace(pod),
                    q.dry_run(),
                )?
            } else {
                let doc: Value = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                let ct = ct.unwrap_or_default();
                crate::ephemeral::update(
                    store,
                    res,
                    ns,
                    name,
                    crate::ephemeral::Change::Patch(&ct, doc),
                    q.dry_run(),
                )?
            };
            Ok(render_object(200, format, res, &updated))
        }
        (_, Some(name), Some("portforward")) if res.plural == "pods" => {
            crate::portforward::serve(shared.clone(), req, ns.unwrap_or_default(), name, &q)
        }
        (_, Some(_), Some(sub)) if sub == "proxy" && res.plural == "pods" => Err(
            ApiError::bad_request(format!("kube-sim does not support pods/{sub}")),
        ),
        (_, Some(_), Some(_)) => Err(ApiError::no_such_resource()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Create-only reviews: who am I, may I. Every authenticated user may do everything.
async fn review(req: Request<Incoming>, t: &Target, user: &User) -> Result<Response<Body>> {
    if req.method() != Method::POST || t.name.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let (ct, body) = read_body(req).await?;
    // Typed clients send protobuf; the spec is only echoed, so only JSON/YAML is read.
    let sent = match ct.as_deref() {
        Some("application/vnd.kubernetes.protobuf") => Value::Null,
        other if body.is_empty() => {
            let _ = other;
            Value::Null
        }
        other => decode_object(other, &body)?,
    };
    let res = t.res;
    let status = match res.kind {
        "SelfSubjectReview" => serde_json::json!({
            "userInfo": {"username": user.name, "groups": user.groups}
        }),
        "SelfSubjectAccessReview" => serde_json::json!({
            "allowed": true,
            "reason": "kube-sim authorizes every authenticated user"
        }),
        _ => serde_json::json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false
        }),
    };
    let mut out = serde_json::json!({
        "kind": res.kind,
        "apiVersion": res.api_version(),
        "metadata": {"creationTimestamp": null},
        "status": status,
    });
    if let Some(spec) = sent.get("spec") {
        out["spec"] = spec.clone();
    } else if res.kind != "SelfSubjectReview" {
        out["spec"] = serde_json::json!({});
    }
    Ok(json_response(201, &out))
}

/// The `autoscaling/v1` `Scale` view of an object with `spec.replicas`.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = &obj["metadata"];
    serde_json::json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    shared: &Shared,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    part: Part,
    ct: Option<&str>,
    body: &[u8],
    q: &Query,
    format: Format,
) -> Result<Response<Body>> {
    let store = &shared.store;
    let ct = ct.unwrap_or_default();
    if ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json" {
        let applied: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !applied.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        if let Some(kind) = applied.get("kind").and_then(Value::as_str)
            && kind != res.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                res.kind
            )));
        }
        match store.modify(res, ns, name, part, q.dry_run(), |old| {
            let mut new = old.clone();
            patch::apply(&mut new, &applied);
            Ok(new)
        }) {
            Ok(obj) => return Ok(warned(render_object(200, format, res, &obj), res, &obj)),
            Err(e) if e.code == 404 && part == Part::Main => {
                let mut obj = applied.clone();
                obj["metadata"]["name"] = name.into();
                let created = store.create(res, ns, obj, q.dry_run())?;
                return Ok(warned(
                    render_object(201, format, res, &created),
                    res,
                    &created,
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let kind = match ct {
        "application/json-patch+json" => 0,
        "application/merge-patch+json" => 1,
        "application/strategic-merge-patch+json" => 2,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let patch_doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let obj = store.modify(res, ns, name, part, q.dry_run(), |old| {
        let mut new = old.clone();
        match kind {
            0 => patch::json_patch(&mut new, &patch_doc).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?,
            1 => patch::merge_patch(&mut new, &patch_doc),
            _ => patch::strategic_merge(&mut new, &patch_doc),
        }
        Ok(new)
    })?;
    Ok(warned(render_object(200, format, res, &obj), res, &obj))
}

/// Adds the apiserver's `Warning` headers for a created or updated object.
fn warned(mut resp: Response<Body>, res: &ResourceInfo, obj: &Value) -> Response<Body> {
    crate::warnings::add_headers(resp.headers_mut(), &crate::warnings::for_object(res, obj));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| match route(p, "x") {
            Route::Resource(t) => format!(
                "{} {:?} {:?} {:?} {}",
                t.res.plural, t.ns, t.name, t.sub, t.legacy_watch
            ),
            Route::Discovery(_) => "discovery".into(),
            Route::NotFound => "404".into(),
        };
        assert_eq!(r("/api/v1/pods"), "pods None None None false");
        assert_eq!(
            r("/api/v1/namespaces/a/pods/b/log"),
            "pods Some(\"a\") Some(\"b\") Some(\"log\") false"
        );
        assert_eq!(
            r("/api/v1/namespaces/a"),
            "namespaces None Some(\"a\") None false"
        );
        assert_eq!(
            r("/api/v1/namespaces/a/status"),
            "namespaces None Some(\"a\") Some(\"status\") false"
        );
        assert_eq!(r("/api/v1/namespaces"), "namespaces None None None false");
        assert_eq!(
            r("/apis/coordination.k8s.io/v1/namespaces/d/leases/x"),
            "leases Some(\"d\") Some(\"x\") None false"
        );
        assert_eq!(
            r("/api/v1/watch/namespaces/d/pods"),
            "pods Some(\"d\") None None true"
        );
        assert_eq!(r("/api/v1/pods/x"), "404");
        assert_eq!(r("/api/v1/namespaces/d/nodes"), "404");
        assert_eq!(r("/apis/apps/v1"), "discovery");
        assert_eq!(r("/apis/nope/v1"), "404");
    }

    #[test]
    fn queries_and_accept() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&command=echo&command=hi",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.all("command"), vec!["echo", "hi"]);
        assert_eq!(negotiate(None).unwrap(), Format::Json);
        assert_eq!(
            negotiate(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            ))
            .unwrap(),
            Format::Table(table::IncludeObject::Metadata)
        );
        assert_eq!(
            negotiate(Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf")).unwrap(),
            Format::Protobuf(Fallback::None)
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            ))
            .unwrap(),
            Format::Protobuf(Fallback::Json)
        );
        // q-values order the clauses; q=0 rules a type out.
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf;q=0.5, application/yaml"
            ))
            .unwrap(),
            Format::Yaml
        );
        assert_eq!(
            negotiate(Some("application/json;q=0, text/html, */*;q=0.1")).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json;q=0.9")).unwrap(),
            Format::Json
        );
        let err = negotiate(Some("text/html, application/json;q=0")).unwrap_err();
        assert_eq!(err.code, 406);
        assert_eq!(err.reason, "NotAcceptable");
    }
}
