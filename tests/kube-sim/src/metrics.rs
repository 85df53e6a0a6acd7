//! The resource metrics API (`metrics.k8s.io/v1beta1`), as metrics-server serves it through
//! the aggregation layer: `PodMetrics` and `NodeMetrics`, get and list, namespaced or across
//! namespaces, with label and field selectors. `kubectl top pod|node` reads it.
//!
//! There are no containers to measure, so usage is computed, deterministically:
//! - a pod has metrics only while `status.phase` is `Running` (metrics-server knows nothing of
//!   pods the kubelet does not run: `kubectl top` then says "metrics not available yet");
//! - each container of `spec.containers` uses what the pod's `kube-sim/usage` annotation says
//!   for it — JSON such as `{"app": {"cpu": "250m", "memory": "64Mi"}}` — else its
//!   `resources.requests`, else a small amount derived from a hash of namespace, pod and
//!   container names (1–50m CPU, 8–63 MiB);
//! - a node uses what its `kube-sim/usage` annotation says (`{"cpu": "1500m", "memory":
//!   "3Gi"}`), else the sum over its running pods (`spec.nodeName`) plus 50m CPU and 256 MiB for
//!   the kubelet and system daemons.
//!
//! Usage is written as metrics-server writes it: CPU in nanocores (`"12000000n"`), memory in
//! KiB (`"65536Ki"`).

use serde_json::{Value, json};

use crate::api::Query;
use crate::resources::{self, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::status::{ApiError, Result, StatusDetails};
use crate::store::{Store, now_rfc3339};

/// The API group.
pub const GROUP: &str = "metrics.k8s.io";
/// The served version.
pub const VERSION: &str = "v1beta1";
/// The annotation that overrides computed usage.
pub const USAGE_ANNOTATION: &str = "kube-sim/usage";

const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";
/// CPU and memory a node uses before any pod.
const NODE_BASE: Usage = Usage {
    cpu_nanos: 50_000_000,
    memory_bytes: 256 * 1024 * 1024,
};

/// CPU (nanocores) and memory (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU in nanocores.
    pub cpu_nanos: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Usage {
    fn add(self, o: Usage) -> Usage {
        Usage {
            cpu_nanos: self.cpu_nanos + o.cpu_nanos,
            memory_bytes: self.memory_bytes + o.memory_bytes,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "cpu": format!("{}n", self.cpu_nanos),
            "memory": format!("{}Ki", self.memory_bytes / 1024),
        })
    }
}

/// Parses a resource quantity (`250m`, `1.5`, `64Mi`, `1G`, `2e3`) into base units.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

fn usage_from(v: &Value) -> Option<Usage> {
    let q = |k: &str| v.get(k).and_then(Value::as_str).and_then(parse_quantity);
    let (cpu, mem) = (q("cpu"), q("memory"));
    if cpu.is_none() && mem.is_none() {
        return None;
    }
    Some(Usage {
        cpu_nanos: (cpu.unwrap_or(0.0) * 1e9).round() as u64,
        memory_bytes: mem.unwrap_or(0.0).round() as u64,
    })
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between releases).
fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn annotation(obj: &Value) -> Option<Value> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(USAGE_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Per-container usage of a running pod; `None` for pods that are not running.
pub fn pod_usage(pod: &Value) -> Option<Vec<(String, Usage)>> {
    if str_at(pod, "/status/phase") != "Running" {
        return None;
    }
    let overrides = annotation(pod);
    let ns = str_at(pod, "/metadata/namespace");
    let name = str_at(pod, "/metadata/name");
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    let out = containers
        .into_iter()
        .flatten()
        .map(|c| {
            let cname = str_at(c, "/name").to_string();
            let derived = || {
                let h = stable_hash(&format!("{ns}/{name}/{cname}"));
                Usage {
                    cpu_nanos: (1 + h % 50) * 1_000_000,
                    memory_bytes: (8 + (h >> 16) % 56) * 1024 * 1024,
                }
            };
            let usage = overrides
                .as_ref()
                .and_then(|o| o.get(&cname))
                .and_then(usage_from)
                .or_else(|| c.pointer("/resources/requests").and_then(usage_from))
                .unwrap_or_else(derived);
            (cname, usage)
        })
        .collect();
    Some(out)
}

fn node_usage(store: &Store, node: &Value) -> Usage {
    if let Some(u) = annotation(node).as_ref().and_then(usage_from) {
        return u;
    }
    let pods = resources::by_plural("", "v1", "pods").expect("pods are served");
    let name = str_at(node, "/metadata/name");
    let sel = Selectors {
        labels: LabelSelector::default(),
        fields: FieldSelector::parse(&format!("spec.nodeName={name}"), pods)
            .expect("spec.nodeName is a pod field"),
    };
    let on_node = store
        .list(pods, None, &sel, None, None)
        .map(|p| p.items)
        .unwrap_or_default();
    on_node
        .iter()
        .filter_map(|p| pod_usage(p))
        .flatten()
        .fold(NODE_BASE, |acc, (_, u)| acc.add(u))
}

fn metadata(obj: &Value, now: &str) -> Value {
    let mut m = json!({"name": obj["metadata"]["name"], "creationTimestamp": now});
    if let Some(ns) = obj.pointer("/metadata/namespace") {
        m["namespace"] = ns.clone();
    }
    if let Some(l) = obj.pointer("/metadata/labels") {
        m["labels"] = l.clone();
    }
    m
}

fn pod_metrics(pod: &Value, now: &str) -> Option<Value> {
    let containers: Vec<Value> = pod_usage(pod)?
        .into_iter()
        .map(|(name, u)| json!({"name": name, "usage": u.to_json()}))
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": metadata(pod, now),
        "timestamp": now,
        "window": "15s",
        "containers": containers,
    }))
}

fn node_metrics(store: &Store, node: &Value, now: &str) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": metadata(node, now),
        "timestamp": now,
        "window": "15s",
        "usage": node_usage(store, node).to_json(),
    })
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound".into(),
        message: format!("{resource}.{GROUP} \"{name}\" not found"),
        details: Some(Box::new(StatusDetails {
            name: name.into(),
            group: GROUP.into(),
            kind: resource.into(),
            ..StatusDetails::default()
        })),
    }
}

/// `/apis/metrics.k8s.io/v1beta1`.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ]
    })
}

/// The group entry of `/apis` and `/apis/metrics.k8s.io`.
pub fn group_entry() -> Value {
    let gv = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

/// The group's item in aggregated discovery (`apidiscovery.k8s.io/v2`).
pub fn aggregated_item() -> Value {
    let res = |plural: &str, kind: &str, scope: &str| {
        json!({
            "resource": plural,
            "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
            "scope": scope,
            "singularResource": "",
            "verbs": ["get", "list"],
        })
    };
    json!({
        "metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{
            "version": VERSION,
            "resources": [res("nodes", "NodeMetrics", "Cluster"), res("pods", "PodMetrics", "Namespaced")],
            "freshness": "Current",
        }],
    })
}

fn selectors(res: &ResourceInfo, q: &Query) -> Result<Selectors> {
    Ok(Selectors {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), res)?,
    })
}

/// Serves a GET under `/apis/metrics.k8s.io`; `None` when the path is not one of the API's.
pub fn serve(store: &Store, path: &str, q: &Query) -> Option<Result<Value>> {
    let rest = path.strip_prefix("/apis/metrics.k8s.io")?;
    let segs: Vec<&str> = rest
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let now = now_rfc3339();
    let pods = resources::by_plural("", "v1", "pods").expect("pods are served");
    let nodes = resources::by_plural("", "v1", "nodes").expect("nodes are served");
    let list = |kind: &str, items: Vec<Value>| {
        json!({
            "kind": format!("{kind}List"),
            "apiVersion": GROUP_VERSION,
            "metadata": {},
            "items": items.into_iter().map(|mut i| {
                if let Some(m) = i.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                i
            }).collect::<Vec<_>>(),
        })
    };
    let list_pods = |ns: Option<&str>| -> Result<Value> {
        let page = store.list(pods, ns, &selectors(pods, q)?, None, None)?;
        let items = page
            .items
            .iter()
            .filter_map(|p| pod_metrics(p, &now))
            .collect();
        Ok(list("PodMetrics", items))
    };
    Some(match segs.as_slice() {
        [] => {
            let mut g = group_entry();
            g["kind"] = "APIGroup".into();
            g["apiVersion"] = "v1".into();
            Ok(g)
        }
        [VERSION] => Ok(resource_list()),
        [VERSION, "nodes"] => {
            let page = match selectors(nodes, q) {
                Ok(sel) => store.list(nodes, None, &sel, None, None),
                Err(e) => Err(e),
            };
            page.map(|p| {
                let items = p
                    .items
                    .iter()
                    .map(|n| node_metrics(store, n, &now))
                    .collect();
                list("NodeMetrics", items)
            })
        }
        [VERSION, "nodes", name] => store
            .get(nodes, None, name)
            .map_err(|_| not_found("nodes", name))
            .map(|n| node_metrics(store, &n, &now)),
        [VERSION, "pods"] => list_pods(None),
        [VERSION, "namespaces", ns, "pods"] => list_pods(Some(ns)),
        [VERSION, "namespaces", ns, "pods", name] => store
            .get(pods, Some(ns), name)
            .ok()
            .and_then(|p| pod_metrics(&p, &now))
            .ok_or_else(|| not_found("pods", name)),
        _ => Err(ApiError::no_such_resource()),
    })
}

#[cfg(test)]
mod tests;
