//! The OpenAPI v3 documents: the index with content hashes, and the schemas of the built-in
//! kinds in the shape kube-openapi serves (what `kubectl explain` walks).

#[path = "support/http.rs"]
mod support;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn documents_hash_their_content_and_carry_kind_schemas() {
    let (sim, c) = support::start().await;
    let (code, index) = support::get(&c, &sim, "/openapi/v3").await;
    assert_eq!(code, StatusCode::OK);
    let paths = index["paths"].as_object().unwrap();

    let mut seen_kinds = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    for (gv, entry) in paths {
        let url = entry["serverRelativeURL"].as_str().unwrap();
        let (path, hash) = url.split_once("?hash=").unwrap();
        assert_eq!(path, format!("/openapi/v3/{gv}"));
        let resp = c.get(format!("{}{url}", sim.url())).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.bytes().await.unwrap();
        // The hash is the ETag of the document: upper-case hex SHA-512 of its bytes.
        assert_eq!(hash, format!("{:X}", sha2::Sha512::digest(&body)), "{gv}");
        assert!(hashes.insert(hash.to_string()), "{gv}: hash not unique");
        let doc: Value = serde_json::from_slice(&body).unwrap();

        let schemas = doc["components"]["schemas"].as_object().unwrap();
        // Every reference resolves inside the same document.
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{gv}: ref {r}"));
            assert!(schemas.contains_key(name), "{gv}: dangling ref {r}");
        }
        for (name, schema) in schemas {
            if let Some(gvks) = schema.get("x-kubernetes-group-version-kind") {
                let gvk = &gvks[0];
                assert_eq!(gvks.as_array().unwrap().len(), 1, "{name}");
                seen_kinds.insert((
                    gvk["group"].as_str().unwrap().to_string(),
                    gvk["version"].as_str().unwrap().to_string(),
                    gvk["kind"].as_str().unwrap().to_string(),
                ));
                // k8s-openapi's `metadata` requirement is not the apiserver's.
                let required = schema["required"].as_array().cloned().unwrap_or_default();
                assert!(!required.contains(&json!("metadata")), "{name}");
            }
        }
    }

    // Every served built-in kind has its schema in the document of its group-version; the
    // Gateway API kinds have none.
    for r in kube_sim::resources::all() {
        let key = (
            r.group.to_string(),
            r.version.to_string(),
            r.kind.to_string(),
        );
        assert_eq!(
            seen_kinds.contains(&key),
            r.group != "gateway.networking.k8s.io",
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn pod_schema_has_the_apiserver_shape() {
    let (sim, c) = support::start().await;
    let (_, index) = support::get(&c, &sim, "/openapi/v3").await;
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, doc) = support::get(&c, &sim, &url).await;
    let schemas = &doc["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(pod["description"].as_str().unwrap().starts_with("Pod is"));
    // A referenced field with a description: `allOf: [{$ref}]` beside it, as kube-openapi
    // writes it.
    let spec = &pod["properties"]["spec"];
    assert_eq!(
        spec["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}])
    );
    assert!(spec.get("$ref").is_none());
    assert!(spec["description"].as_str().is_some());
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(
        schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
            .get("x-kubernetes-int-or-string")
            .is_none()
    );
    // Only the core group's kinds are in its document.
    assert!(
        schemas
            .get("io.k8s.api.apps.v1.Deployment")
            .is_none_or(Value::is_null)
    );
}
