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
    let gv = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv
    })
}

/// `/apis`.
pub fn group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": resources::groups().into_iter().map(group_doc).collect::<Vec<_>>()
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
        paths.push(format!("/apis/{g}/v1"));
    }
    paths.extend(
        ["/healthz", "/livez", "/readyz", "/version"]
            .iter()
            .map(|s| s.to_string()),
    );
    json!({ "paths": paths })
}
