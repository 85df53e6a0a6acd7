//! Seeding: objects from (multi-document) YAML, and generated pods and nodes for scale tests.

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::resources;
use crate::store::Store;

/// Errors loading seed objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML did not parse.
    #[error("parsing YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// A document names a kind the simulator does not serve.
    #[error("document {index}: kind {kind:?} in {api_version:?} is not served")]
    UnknownKind {
        /// Position of the document (0-based).
        index: usize,
        /// `apiVersion`.
        api_version: String,
        /// `kind`.
        kind: String,
    },
    /// A document has no `metadata.name`.
    #[error("document {index}: metadata.name is missing")]
    NoName {
        /// Position of the document (0-based).
        index: usize,
    },
}

/// Parses multi-document YAML into objects; `kind: List` documents are expanded and empty
/// documents skipped.
pub fn parse_yaml(text: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        match v {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(items) = m.get("items").and_then(Value::as_array) {
                    out.extend(items.iter().cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Inserts objects (namespaces first), creating missing namespaces. Returns how many.
pub fn load(store: &Store, objects: Vec<Value>) -> Result<usize, Error> {
    let mut by_res: Vec<Vec<Value>> = resources::all().iter().map(|_| Vec::new()).collect();
    for (index, obj) in objects.into_iter().enumerate() {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let res = resources::by_kind(api_version, kind).ok_or_else(|| Error::UnknownKind {
            index,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
        if obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(Error::NoName { index });
        }
        by_res[resources::index_of(res)].push(obj);
    }
    let mut total = 0;
    // Namespaces come first in the table, so they exist before their contents.
    for (idx, objs) in by_res.into_iter().enumerate() {
        if !objs.is_empty() {
            total += store.insert_many(&resources::all()[idx], objs);
        }
    }
    Ok(total)
}

/// `count` running pods `pod-00000`… in `namespace`, spread over `nodes` nodes (`node-0000`…),
/// labelled `app=app-<i % 10>`.
pub fn pods(namespace: &str, count: usize, nodes: usize) -> Vec<Value> {
    let nodes = nodes.max(1);
    (0..count)
        .map(|i| {
            json!({
                "metadata": {
                    "name": format!("pod-{i:05}"),
                    "namespace": namespace,
                    "labels": {"app": format!("app-{}", i % 10), "kube-sim/generated": "true"},
                },
                "spec": {
                    "nodeName": format!("node-{:04}", i % nodes),
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    "restartPolicy": "Always",
                },
                "status": {
                    "phase": "Running",
                    "podIP": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                    "qosClass": "BestEffort",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{
                        "name": "app", "ready": true, "restartCount": 0, "started": true,
                        "image": "registry.k8s.io/pause:3.10",
                        "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                    }],
                },
            })
        })
        .collect()
}

/// `count` ready nodes `node-0000`….
pub fn nodes(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            json!({
                "metadata": {
                    "name": format!("node-{i:04}"),
                    "labels": {
                        "kubernetes.io/hostname": format!("node-{i:04}"),
                        "kubernetes.io/os": "linux",
                        "kube-sim/generated": "true",
                    },
                },
                "spec": {"podCIDR": format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255)},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                    "addresses": [{"type": "InternalIP", "address": format!("172.16.{}.{}", (i >> 8) & 255, i & 255)}],
                    "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                    "nodeInfo": {"kubeletVersion": crate::discovery::GIT_VERSION, "operatingSystem": "linux", "architecture": "amd64"},
                },
            })
        })
        .collect()
}
