//! Server-side printing: `meta.k8s.io/v1` `Table` responses for `kubectl get`, with the
//! apiserver's columns for the common kinds and `Name`/`Created At` for the rest.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

fn col(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn len_of(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// Age as kubectl shows it (`5s`, `3m2s`, `4h`, `2d3h`).
pub fn age(timestamp: &str) -> String {
    let Ok(ts) = timestamp.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - ts.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", secs % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn columns_and_cells(res: &ResourceInfo, obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let name = json!(s(obj, "/metadata/name"));
    let age_col = col("Age", "string", "", 0);
    let age_cell = json!(age(s(obj, "/metadata/creationTimestamp")));
    let name_col = col("Name", "string", "name", 0);
    match (res.group, res.plural) {
        ("", "pods") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = len_of(obj, "/spec/containers");
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
                .sum();
            let mut phase = s(obj, "/status/phase").to_string();
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                phase = "Terminating".into();
            }
            let ip = s(obj, "/status/podIP");
            let node = s(obj, "/spec/nodeName");
            (
                vec![
                    name_col,
                    col("Ready", "string", "", 0),
                    col("Status", "string", "", 0),
                    col("Restarts", "string", "", 0),
                    age_col,
                    col("IP", "string", "", 1),
                    col("Node", "string", "", 1),
                    col("Nominated Node", "string", "", 1),
                    col("Readiness Gates", "string", "", 1),
                ],
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(phase),
                    json!(restarts.to_string()),
                    age_cell,
                    json!(if ip.is_empty() { "<none>" } else { ip }),
                    json!(if node.is_empty() { "<none>" } else { node }),
                    json!("<none>"),
                    json!("<none>"),
                ],
            )
        }
        ("", "namespaces") => (
            vec![name_col, col("Status", "string", "", 0), age_col],
            vec![name, json!(s(obj, "/status/phase")), age_cell],
        ),
        ("", "nodes") => {
            let mut ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown")
                .to_string();
            if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                ready.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (
                vec![
                    name_col,
                    col("Status", "string", "", 0),
                    col("Roles", "string", "", 0),
                    age_col,
                    col("Version", "string", "", 0),
                ],
                vec![
                    name,
                    json!(ready),
                    json!(if roles.is_empty() {
                        "<none>".to_string()
                    } else {
                        roles.join(",")
                    }),
                    age_cell,
                    json!(s(obj, "/status/nodeInfo/kubeletVersion")),
                ],
            )
        }
        ("", "services") => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ty = s(obj, "/spec/type");
            let ip = s(obj, "/spec/clusterIP");
            (
                vec![
                    name_col,
                    col("Type", "string", "", 0),
                    col("Cluster-IP", "string", "", 0),
                    col("External-IP", "string", "", 0),
                    col("Port(s)", "string", "", 0),
                    age_col,
                ],
                vec![
                    name,
                    json!(if ty.is_empty() { "ClusterIP" } else { ty }),
                    json!(if ip.is_empty() { "<none>" } else { ip }),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".to_string()
                    } else {
                        ports.join(",")
                    }),
                    age_cell,
                ],
            )
        }
        ("", "configmaps") => (
            vec![name_col, col("Data", "integer", "", 0), age_col],
            vec![
                name,
                json!(len_of(obj, "/data") + len_of(obj, "/binaryData")),
                age_cell,
            ],
        ),
        ("", "secrets") => (
            vec![
                name_col,
                col("Type", "string", "", 0),
                col("Data", "integer", "", 0),
                age_col,
            ],
            vec![
                name,
                json!(s(obj, "/type")),
                json!(len_of(obj, "/data")),
                age_cell,
            ],
        ),
        ("apps", "deployments") => (
            vec![
                name_col,
                col("Ready", "string", "", 0),
                col("Up-to-date", "integer", "", 0),
                col("Available", "integer", "", 0),
                age_col,
            ],
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    obj.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                age_cell,
            ],
        ),
        ("coordination.k8s.io", "leases") => (
            vec![name_col, col("Holder", "string", "", 0), age_col],
            vec![name, json!(s(obj, "/spec/holderIdentity")), age_cell],
        ),
        _ => (
            vec![name_col, col("Created At", "date", "", 0)],
            vec![name, json!(s(obj, "/metadata/creationTimestamp"))],
        ),
    }
}

/// What each row carries in `object` (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
    /// Nothing.
    None,
}

impl IncludeObject {
    /// From the `includeObject` query parameter.
    pub fn parse(param: Option<&str>) -> Self {
        match param {
            Some("Object") => Self::Object,
            Some("None") => Self::None,
            _ => Self::Metadata,
        }
    }
}

/// A `Table` of `objects`; `headers` includes the column definitions (watch events after the
/// first leave them out, as the apiserver does).
pub fn table(
    res: &ResourceInfo,
    objects: &[&Value],
    headers: bool,
    include: IncludeObject,
) -> Value {
    let mut columns = None;
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let (cols, cells) = columns_and_cells(res, obj);
            columns.get_or_insert(cols);
            let mut row = json!({ "cells": cells });
            match include {
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
                IncludeObject::Object => row["object"] = (*obj).clone(),
                IncludeObject::None => {}
            }
            row
        })
        .collect();
    let columns = columns.unwrap_or_else(|| columns_and_cells(res, &json!({})).0);
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "rows": rows,
    });
    if headers {
        t["columnDefinitions"] = json!(columns);
    }
    t
}
