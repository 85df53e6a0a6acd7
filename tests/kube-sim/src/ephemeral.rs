//! The `pods/ephemeralcontainers` subresource (`kubectl debug POD`): GET, PUT and PATCH (JSON,
//! merge and strategic merge patches) of a Pod where only `spec.ephemeralContainers` changes.
//!
//! As the apiserver's `podEphemeralContainersStrategy` does, every other change in the body is
//! dropped (`dropNonEphemeralContainerUpdates`), new containers get the usual defaults
//! (`terminationMessagePath`, `terminationMessagePolicy`, `imagePullPolicy`), and the update
//! is validated as `ValidatePodEphemeralContainersUpdate` does: existing ephemeral containers
//! may be neither changed nor removed, a name and an image are required, names are unique
//! across all containers, and ports, probes, lifecycle and resources are forbidden — 422
//! `Invalid` otherwise.
//!
//! No kubelet runs, so the simulator stands in for it: when the pod is `Running`, each new
//! ephemeral container is reported running in `status.ephemeralContainerStatuses` by a second
//! write right after the first (as a kubelet's status update would follow). kubectl waits for
//! that before it attaches. Pods in other phases get no status for them.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::status::{ApiError, Result, StatusCause};
use crate::store::{Object, Part, Store, now_rfc3339};

/// The body a client sent.
#[derive(Debug)]
pub enum Change<'a> {
    /// PUT: a whole Pod.
    Replace(Value),
    /// PATCH with a content type.
    Patch(&'a str, Value),
}

fn cause(field: String, message: String, reason: &str) -> StatusCause {
    StatusCause {
        reason: reason.into(),
        message,
        field,
    }
}

const FORBIDDEN_FIELDS: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
];

fn validate(old: &Value, new: &[Value]) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let existing: Vec<&Value> = old
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for e in &existing {
        let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
        match new.iter().position(|n| n.get("name") == e.get("name")) {
            None => causes.push(cause(
                "spec.ephemeralContainers".into(),
                format!("Forbidden: existing ephemeral containers \"{name}\" may not be removed"),
                "FieldValueForbidden",
            )),
            Some(i) if &new[i] != *e => causes.push(cause(
                format!("spec.ephemeralContainers[{i}]"),
                format!("Forbidden: existing ephemeral containers \"{name}\" may not be changed"),
                "FieldValueForbidden",
            )),
            Some(_) => {}
        }
    }
    let mut names: Vec<String> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| old.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for (i, c) in new.iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            causes.push(cause(
                format!("{path}.name"),
                "Required value".into(),
                "FieldValueRequired",
            ));
        } else if names.iter().any(|n| n == name) {
            causes.push(cause(
                format!("{path}.name"),
                format!("Duplicate value: \"{name}\""),
                "FieldValueDuplicate",
            ));
        } else {
            names.push(name.to_string());
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(cause(
                format!("{path}.image"),
                "Required value".into(),
                "FieldValueRequired",
            ));
        }
        for f in FORBIDDEN_FIELDS {
            let set = c.get(*f).is_some_and(|v| match v {
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Null => false,
                _ => true,
            });
            if set {
                causes.push(cause(
                    format!("{path}.{f}"),
                    "Forbidden: cannot be set for an Ephemeral Container".into(),
                    "FieldValueForbidden",
                ));
            }
        }
    }
    causes
}

/// The defaults the apiserver gives a container (`SetDefaults_EphemeralContainer`).
fn with_defaults(mut c: Value) -> Value {
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let latest = !image.contains('@') && tag.split_once(':').is_none_or(|(_, t)| t == "latest");
    if let Some(m) = c.as_object_mut() {
        m.entry("terminationMessagePath")
            .or_insert_with(|| "/dev/termination-log".into());
        m.entry("terminationMessagePolicy")
            .or_insert_with(|| "File".into());
        m.entry("imagePullPolicy")
            .or_insert_with(|| if latest { "Always" } else { "IfNotPresent" }.into());
    }
    c
}

/// Applies a PUT or PATCH to the subresource and returns the updated pod.
pub fn update(
    store: &Store,
    res: &'static ResourceInfo,
    ns: &str,
    name: &str,
    change: Change<'_>,
    dry_run: bool,
) -> Result<Object> {
    let mut added: Vec<Value> = Vec::new();
    let updated = store.modify(res, Some(ns), name, Part::Main, dry_run, |old| {
        let sent = match change {
            Change::Replace(body) => body,
            Change::Patch(ct, ref doc) => {
                let mut p = old.clone();
                match ct {
                    "application/json-patch+json" => crate::patch::json_patch(&mut p, doc)
                        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?,
                    "application/merge-patch+json" => crate::patch::merge_patch(&mut p, doc),
                    "application/strategic-merge-patch+json" => {
                        crate::patch::strategic_merge(&mut p, doc)
                    }
                    other => return Err(ApiError::unsupported_media_type(other)),
                }
                p
            }
        };
        let containers: Vec<Value> = sent
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let existing = old
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        let containers: Vec<Value> = containers
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i >= existing { with_defaults(c) } else { c })
            .collect();
        let causes = validate(old, &containers);
        if !causes.is_empty() {
            return Err(ApiError::invalid(res, res.kind, name, causes));
        }
        added = containers[existing.min(containers.len())..].to_vec();
        // Only the ephemeral containers (and the resourceVersion precondition) are taken.
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] = Value::Array(containers);
        match sent.pointer("/metadata/resourceVersion") {
            Some(rv) => new["metadata"]["resourceVersion"] = rv.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
            }
        }
        Ok(new)
    })?;
    if dry_run
        || added.is_empty()
        || updated.pointer("/status/phase").and_then(Value::as_str) != Some("Running")
    {
        return Ok(updated);
    }
    // The kubelet's part: the new containers start.
    let now = now_rfc3339();
    store.modify(res, Some(ns), name, Part::Status, false, |pod| {
        let mut new = pod.clone();
        let mut statuses = pod
            .pointer("/status/ephemeralContainerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in &added {
            statuses.push(json!({
                "name": c["name"], "image": c["image"], "imageID": "",
                "containerID": format!("containerd://{}", uuid::Uuid::new_v4().simple()),
                "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }));
        }
        new["status"]["ephemeralContainerStatuses"] = Value::Array(statuses);
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
}

#[cfg(test)]
mod tests;
