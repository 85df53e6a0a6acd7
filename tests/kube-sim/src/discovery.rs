//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//! `/apis/{group}/{version}`, in the legacy (unaggregated) form. kubectl asks for aggregated
//! discovery first and falls back to these when the answer is a plain `APIGroupList`.

use serde_json::{Value, json};

use crate::resources::{self, ResourceInfo};

/// The Kubernetes version the simulator reports.
pub const GIT_VERSION: &str = "v1.37.0";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

fn group_doc(group: &str) -> Value {
    let versions: Vec<Value> = resources::versions(group)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "preferredVersion": versions[0].clone(),
        "versions": versions,
    })
}

/// `/apis`.
pub fn group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": resources::groups().into_iter().map(group_doc)
            .chain(std::iter::once(crate::metrics::group_entry()))
            .collect::<Vec<_>>()
    })
}

/// `/apis/{group}`, if the group is served.
pub fn group(group: &str) -> Option<Value> {
    resources::groups().contains(&group).then(|| {
        let mut doc = group_doc(group);
        doc["kind"] = "APIGroup".into();
        doc["apiVersion"] = "v1".into();
        doc
    })
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entry(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
    });
    if r.plural == "namespaces" {
        e["verbs"] = json!([
            "create", "delete", "get", "list", "patch", "update", "watch"
        ]);
    }
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    e
}

fn sub_entry(r: &ResourceInfo, sub: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({
        "name": format!("{}/{sub}", r.plural),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    })
}

/// `/api/v1` or `/apis/{group}/{version}`, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceInfo> = resources::all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in &served {
        list.push(resource_entry(r));
        if r.scale {
            let mut e = sub_entry(r, "scale", "Scale", &["get", "patch", "update"]);
            e["group"] = "autoscaling".into();
            e["version"] = "v1".into();
            list.push(e);
        }
        if r.status_subresource {
            list.push(sub_entry(r, "status", r.kind, &["get", "patch", "update"]));
        }
        if r.plural == "pods" {
            list.push(sub_entry(
                r,
                "ephemeralcontainers",
                "Pod",
                &["get", "patch", "update"],
            ));
            list.push(sub_entry(r, "exec", "PodExecOptions", &["create", "get"]));
            list.push(sub_entry(r, "log", "Pod", &["get"]));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list
    }))
}

/// `/`: the paths the server serves.
pub fn root_paths() -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for g in resources::groups() {
        paths.push(format!("/apis/{g}"));
        for v in resources::versions(g) {
            paths.push(format!("/apis/{g}/{v}"));
        }
    }
    paths.extend(
        [
            "/apis/metrics.k8s.io",
            "/apis/metrics.k8s.io/v1beta1",
            "/healthz",
            "/livez",
            "/metrics",
            "/readyz",
            "/version",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    json!({ "paths": paths })
}

/// The media type of aggregated discovery (`apidiscovery.k8s.io/v2`).
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery v2 before any plain type.
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let mime = params.next().unwrap_or_default();
        if mime != "application/json" && mime != "*/*" {
            continue;
        }
        let params: Vec<String> = params.map(|p| p.replace(' ', "")).collect();
        if params.is_empty() {
            return false;
        }
        let has = |p: &str| params.iter().any(|x| x == p);
        if has("g=apidiscovery.k8s.io") && has("v=v2") && has("as=APIGroupDiscoveryList") {
            return true;
        }
    }
    false
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let legacy = resource_entry(r);
    let mut subresources = Vec::new();
    if r.scale {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": gvk("autoscaling", "v1", "Scale"),
            "verbs": ["get", "patch", "update"],
        }));
    }
    if r.status_subresource {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": gvk(r.group, r.version, r.kind),
            "verbs": ["get", "patch", "update"],
        }));
    }
    if r.plural == "pods" {
        subresources.push(json!({
            "subresource": "ephemeralcontainers",
            "responseKind": gvk("", "v1", "Pod"),
            "verbs": ["get", "patch", "update"],
        }));
        subresources.push(json!({
            "subresource": "exec",
            "responseKind": gvk("", "v1", "PodExecOptions"),
            "verbs": ["create", "get"],
        }));
        subresources.push(json!({
            "subresource": "log",
            "responseKind": gvk("", "v1", "Pod"),
            "verbs": ["get"],
        }));
    }
    let mut e = json!({
        "resource": r.plural,
        "responseKind": gvk(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": legacy["verbs"],
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        e["subresources"] = json!(subresources);
    }
    e
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): the core group for
/// `/api`, the named groups for `/apis`.
pub fn aggregated(core: bool) -> Value {
    let groups: Vec<&str> = if core { vec![""] } else { resources::groups() };
    let mut items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = resources::versions(g)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> = resources::all()
                        .iter()
                        .filter(|r| r.group == g && r.version == v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = g.into();
            }
            json!({
                "metadata": meta,
                "versions": versions,
            })
        })
        .collect();
    if !core {
        // The metrics API is served as metrics-server would serve it, from another version.
        items.push(crate::metrics::aggregated_item());
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
