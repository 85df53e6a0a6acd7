//! OpenAPI v3 documents: the root index (`/openapi/v3`) and one document per group-version
//! with the paths, operations and query parameters of the served kinds — but no schemas.
//!
//! kubectl reads them to learn that the server validates fields itself (`fieldValidation`
//! on PATCH), so `kubectl apply`/`create` skip client-side schema validation, and falls back
//! to its compiled-in types to compute strategic merge patches. `/openapi/v2` is not served
//! (404), which kubectl tolerates once v3 answers.

use serde_json::{Map, Value, json};

use crate::discovery::GIT_VERSION;
use crate::resources::{self, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The group-versions served, as `(group, version)`.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in resources::all() {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `/openapi/v3`.
pub fn root() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(g, v)| {
            let p = gv_path(g, v);
            let url = format!("/openapi/v3/{p}?hash={}", hash(&p));
            (p, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

fn hash(s: &str) -> String {
    // Stable per version and path: enough for client caches.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in GIT_VERSION.bytes().chain(s.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn query(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": ty, "uniqueItems": true}})
}

fn op(res: &ResourceInfo, action: &str, verb: &str, params: Vec<Value>) -> Value {
    let ns = if res.namespaced { "Namespaced" } else { "" };
    let group = if res.group.is_empty() {
        "Core".to_string()
    } else {
        res.group
            .split('.')
            .next()
            .map(|g| {
                let mut c = g.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    json!({
        "operationId": format!("{verb}{group}V1{ns}{}", res.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    })
}

fn write_params() -> Vec<Value> {
    vec![
        query("dryRun", "string"),
        query("fieldManager", "string"),
        query("fieldValidation", "string"),
        query("pretty", "string"),
    ]
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`, if served.
pub fn group_version(path: &str) -> Option<Value> {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path.trim_matches('/'))?;
    let mut paths = Map::new();
    for r in resources::all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let prefix = format!("/{}", gv_path(group, version));
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        if r.review {
            paths.insert(
                collection,
                json!({"post": op(r, "post", "create", write_params())}),
            );
            continue;
        }
        let mut patch_params = write_params();
        patch_params.push(query("force", "boolean"));
        paths.insert(
            collection.clone(),
            json!({
                "get": op(r, "list", "list", vec![query("labelSelector", "string"), query("fieldSelector", "string"), query("limit", "integer"), query("continue", "string"), query("watch", "boolean")]),
                "post": op(r, "post", "create", write_params()),
                "delete": op(r, "deletecollection", "deleteCollection", vec![query("labelSelector", "string")]),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": op(r, "get", "read", vec![query("pretty", "string")]),
                "put": op(r, "put", "replace", write_params()),
                "patch": op(r, "patch", "patch", patch_params.clone()),
                "delete": op(r, "delete", "delete", vec![query("dryRun", "string"), query("gracePeriodSeconds", "integer"), query("propagationPolicy", "string")]),
            }),
        );
        if r.status_subresource {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({
                    "get": op(r, "get", "read", vec![]),
                    "put": op(r, "put", "replace", write_params()),
                    "patch": op(r, "patch", "patch", patch_params),
                }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
