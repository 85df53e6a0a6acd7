//! OpenAPI v3 documents: the root index (`/openapi/v3`) and one document per group-version
//! with the paths, operations and query parameters of the served kinds, and the schemas of
//! the built-in kinds in `components.schemas`.
//!
//! The schemas are generated at build time from k8s-openapi (see `build.rs` for how they are
//! brought to the apiserver's shape) and embedded gzip-compressed. Each kind's schema is
//! named like `io.k8s.api.core.v1.Pod`, carries `x-kubernetes-group-version-kind`, and refers
//! to the others with `#/components/schemas/…`: what `kubectl explain` walks. The Gateway API
//! kinds have paths but no schemas (k8s-openapi does not carry them).
//!
//! kubectl also reads the documents to learn that the server validates fields itself
//! (`fieldValidation` on PATCH), so `kubectl apply`/`create` skip client-side schema
//! validation. The PATCH operations declare no request body, so kubectl computes strategic
//! merge patches from its compiled-in types, not from these schemas (which lack the
//! `x-kubernetes-patch-*` extensions). `/openapi/v2` is not served (404), which kubectl
//! tolerates once v3 answers.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::discovery::GIT_VERSION;
use crate::resources::{self, ResourceInfo};

/// `{"api/v1": {schema name: schema, …}, …}`, written by `build.rs`.
static SCHEMAS_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi-schemas.json.gz"));

/// The embedded schemas, by group-version path.
fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(SCHEMAS_GZ)
            .read_to_end(&mut json)
            .expect("the schemas embedded by build.rs are gzip");
        serde_json::from_slice(&json).expect("the schemas embedded by build.rs are JSON")
    })
}

/// Every group-version document, built once, with its `hash`.
fn documents() -> &'static BTreeMap<String, (Value, String)> {
    static DOCS: OnceLock<BTreeMap<String, (Value, String)>> = OnceLock::new();
    DOCS.get_or_init(|| {
        group_versions()
            .into_iter()
            .map(|(g, v)| {
                let doc = build_document(g, v);
                // The apiserver's hash is the document's ETag: the upper-case hex SHA-512 of
                // its JSON (kube-openapi `handler3`), so clients refetch when it changes.
                let bytes = serde_json::to_vec(&doc).unwrap_or_default();
                let hash = format!("{:X}", sha2::Sha512::digest(&bytes));
                (gv_path(g, v), (doc, hash))
            })
            .collect()
    })
}

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
            let hash = documents()
                .get(&p)
                .map(|(_, h)| h.as_str())
                .unwrap_or_default();
            let url = format!("/openapi/v3/{p}?hash={hash}");
            (p, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
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
    documents()
        .get(path.trim_matches('/'))
        .map(|(doc, _)| doc.clone())
}

fn build_document(group: &str, version: &str) -> Value {
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
    let schemas = schemas()
        .get(&gv_path(group, version))
        .cloned()
        .unwrap_or_else(|| json!({}));
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
