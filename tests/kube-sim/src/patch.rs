//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), a strategic-merge-patch subset
//! and a simplified server-side apply.
//!
//! Strategic merge patch support (what `kubectl apply` / `kubectl patch` send):
//! - maps merge recursively, `null` deletes a key;
//! - lists of objects merge by the key the Kubernetes types declare (`containers`, `env`,
//!   `volumes`, `imagePullSecrets` by `name`; `volumeMounts` by `mountPath`; container `ports`
//!   by `containerPort`, service `ports` by `port`; `conditions`/`addresses` by `type`;
//!   `ownerReferences` by `uid`; `hostAliases` by `ip`; `topologySpreadConstraints` by
//!   `topologyKey`), other lists are replaced;
//! - `finalizers` merge as a set;
//! - directives `$patch: replace|delete|merge` (maps and list elements), `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` is accepted and only used
//!   to order the merged list.
//!
//! Server-side apply merges the applied configuration into the live object with the same
//! rules. Field ownership (`managedFields`) is not tracked, so fields left out of a later apply
//! are not removed and conflicts are never reported.

use serde_json::{Map, Value};

/// Errors applying a patch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A JSON patch operation was malformed or targeted a missing path.
    #[error("{0}")]
    JsonPatch(String),
    /// A JSON patch `test` operation failed.
    #[error("testing value {path} failed")]
    TestFailed {
        /// The pointer that was tested.
        path: String,
    },
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn merge_key(field: &str, elem: &Value) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => {
            if field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => {
            if elem.get("containerPort").is_some() {
                "containerPort"
            } else {
                "port"
            }
        }
        "conditions" | "addresses" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

const SET_LISTS: &[&str] = &["finalizers"];

/// Applies a strategic merge patch (see the module docs for the supported subset).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => merge_map(t, p),
        _ => *target = strip_directives(patch),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| e.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = match strip_directives(&Value::Object(patch.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            return;
        }
        Some("delete") => {
            target.clear();
            return;
        }
        _ => {}
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (target.get_mut(field), v.as_array())
            {
                list.retain(|e| !remove.contains(e));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), v) {
            (Some(Value::Object(t)), Value::Object(p)) => merge_map(t, p),
            (Some(Value::Array(t)), Value::Array(p)) => {
                let order = patch
                    .get(&format!("$setElementOrder/{k}"))
                    .and_then(Value::as_array);
                merge_list(k, t, p, order);
            }
            _ => {
                target.insert(k.clone(), strip_directives(v));
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
}

fn merge_list(field: &str, target: &mut Vec<Value>, patch: &[Value], order: Option<&Vec<Value>>) {
    if patch
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = patch
            .iter()
            .filter(|e| e.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    if SET_LISTS.contains(&field) {
        for e in patch {
            if !target.contains(e) {
                target.push(e.clone());
            }
        }
        return;
    }
    let Some(key) = patch.first().and_then(|e| merge_key(field, e)) else {
        *target = patch.iter().map(strip_directives).collect();
        return;
    };
    for pe in patch {
        let Some(id) = pe.get(key) else {
            target.push(strip_directives(pe));
            continue;
        };
        let pos = target.iter().position(|te| te.get(key) == Some(id));
        let delete = pe.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut target[i], pe),
            (None, false) => target.push(strip_directives(pe)),
        }
    }
    if let Some(order) = order {
        let rank = |e: &Value| {
            let id = e.get(key);
            order
                .iter()
                .position(|o| o.get(key) == id)
                .unwrap_or(usize::MAX)
        };
        target.sort_by_key(rank);
    }
}

/// Server-side apply, simplified: merges the applied configuration into the live object.
pub fn apply(live: &mut Value, applied: &Value) {
    strategic_merge(live, applied);
}

fn unescape_token(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), Error> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| Error::JsonPatch(format!("invalid path {path:?}")))?;
    Ok((path[..idx].to_string(), unescape_token(&path[idx + 1..])))
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> Result<(), Error> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| Error::JsonPatch(format!("invalid index in {path:?}")))?;
            if i > a.len() {
                return Err(Error::JsonPatch(format!("index out of range in {path:?}")));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(Error::JsonPatch(format!(
            "doc is missing path: \"{path}\": missing value"
        ))),
    }
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, Error> {
    let (parent, last) = split_pointer(path)?;
    let missing = || Error::JsonPatch(format!("doc is missing path: \"{path}\": missing value"));
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), Error> {
    let ops = ops
        .as_array()
        .ok_or_else(|| Error::JsonPatch("a JSON patch must be an array".into()))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| Error::JsonPatch(format!("missing value for {kind} {path}")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::JsonPatch(format!("missing from for {kind} {path}")))
        };
        match kind {
            "add" => add_at(doc, path, value()?)?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "replace" => {
                let v = value()?;
                let slot = doc.pointer_mut(path).ok_or_else(|| {
                    Error::JsonPatch(format!("doc is missing path: \"{path}\": missing value"))
                })?;
                *slot = v;
            }
            "move" => {
                let v = remove_at(doc, from()?)?;
                add_at(doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| Error::JsonPatch(format!("doc is missing from path: {path}")))?;
                add_at(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(Error::TestFailed {
                        path: path.to_string(),
                    });
                }
            }
            other => return Err(Error::JsonPatch(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_deletes_nulls_and_replaces_lists() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_by_key_and_directives() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}, "metadata": {"finalizers": ["f1"]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "containers": [
                    {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                    {"name": "c", "image": "c:1"},
                    {"name": "b", "$patch": "delete"}
                ]}, "metadata": {"finalizers": ["f2"]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "c", "image": "c:1"}
            ]}, "metadata": {"finalizers": ["f1", "f2"]}})
        );
        let mut m = json!({"data": {"a": "1", "b": "2"}, "args": ["x"]});
        strategic_merge(
            &mut m,
            &json!({"data": {"$patch": "replace", "c": "3"}, "args": ["y"]}),
        );
        assert_eq!(m, json!({"data": {"c": "3"}, "args": ["y"]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "copy", "from": "/b", "path": "/d"},
                {"op": "remove", "path": "/a/0"},
                {"op": "test", "path": "/d/c", "value": 2}
            ]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": [2, 3], "b": {"c": 2}, "d": {"c": 2}}));
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "test", "path": "/a/0", "value": 9}])
            )
            .is_err()
        );
    }
}
