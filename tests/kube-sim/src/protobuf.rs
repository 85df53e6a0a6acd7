//! Decoding of Kubernetes protobuf request bodies for a few simple kinds.
//!
//! Typed client-go clients — `kubectl create namespace|configmap|secret|serviceaccount`, leader
//! election — send `application/vnd.kubernetes.protobuf` bodies and do not fall back to JSON
//! on a 415. The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message
//! (`typeMeta` = 1, `raw` = 2); `raw` is the object in the field numbering of the Kubernetes
//! `generated.proto` files. Namespaces, ConfigMaps, Secrets, ServiceAccounts and Leases are
//! decoded (with full `ObjectMeta`); other kinds get a 415. Responses are always JSON.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

const MAGIC: &[u8] = b"k8s\x00";

/// A protobuf field value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn bad(why: &str) -> ApiError {
    ApiError::bad_request(format!("protobuf body: {why}"))
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("truncated varint"))?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if self.buf.len() < n {
                    return Err(bad("truncated fixed field"));
                }
                self.buf = &self.buf[n..];
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                if self.buf.len() < len {
                    return Err(bad("truncated field"));
                }
                let (data, rest) = self.buf.split_at(len);
                self.buf = rest;
                Field::Bytes(data)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn string(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// A map entry message (`key` = 1, `value` = 2) as (key, value bytes).
fn entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Field::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(
    obj: &mut Map<String, Value>,
    field: &str,
    b: &[u8],
    conv: fn(&[u8]) -> Value,
) -> Result<(), ApiError> {
    let (k, v) = entry(b)?;
    obj.entry(field)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("map field")
        .insert(k, conv(v));
    Ok(())
}

fn push(obj: &mut Map<String, Value>, field: &str, v: Value) {
    if let Some(a) = obj.entry(field).or_insert_with(|| json!([])).as_array_mut() {
        a.push(v);
    }
}

/// `metav1.MicroTime`: seconds = 1, nanos = 2.
fn micro_time(b: &[u8]) -> Result<Value, ApiError> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => secs = v as i64,
            (2, Field::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    let ts = jiff::Timestamp::new(secs, (nanos % 1_000_000_000) as i32)
        .map_err(|_| bad("time out of range"))?;
    Ok(Value::String(
        ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    ))
}

fn owner_reference(b: &[u8]) -> Result<Value, ApiError> {
    let mut o = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(v)) => {
                o.insert("kind".into(), string(v));
            }
            (3, Field::Bytes(v)) => {
                o.insert("name".into(), string(v));
            }
            (4, Field::Bytes(v)) => {
                o.insert("uid".into(), string(v));
            }
            (5, Field::Bytes(v)) => {
                o.insert("apiVersion".into(), string(v));
            }
            (6, Field::Varint(v)) => {
                o.insert("controller".into(), (v != 0).into());
            }
            (7, Field::Varint(v)) => {
                o.insert("blockOwnerDeletion".into(), (v != 0).into());
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        let name = match n {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            _ => "",
        };
        match (n, f) {
            (1..=6, Field::Bytes(v)) if !name.is_empty() => {
                m.insert(name.into(), string(v));
            }
            (7, Field::Varint(v)) => {
                m.insert("generation".into(), (v as i64).into());
            }
            (11, Field::Bytes(v)) => insert_entry(&mut m, "labels", v, string)?,
            (12, Field::Bytes(v)) => insert_entry(&mut m, "annotations", v, string)?,
            (13, Field::Bytes(v)) => push(&mut m, "ownerReferences", owner_reference(v)?),
            (14, Field::Bytes(v)) => push(&mut m, "finalizers", string(v)),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    for (n, f) in fields(raw)? {
        let Field::Bytes(b) = f else {
            match (kind, n, f) {
                ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                    obj.insert("immutable".into(), (v != 0).into());
                }
                ("ServiceAccount", 4, Field::Varint(v)) => {
                    obj.insert("automountServiceAccountToken".into(), (v != 0).into());
                }
                _ => {}
            }
            continue;
        };
        match (kind, n) {
            (_, 1) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            ("ConfigMap", 2) => insert_entry(&mut obj, "data", b, string)?,
            ("ConfigMap", 3) => insert_entry(&mut obj, "binaryData", b, b64)?,
            ("Secret", 2) => insert_entry(&mut obj, "data", b, b64)?,
            ("Secret", 3) => {
                obj.insert("type".into(), string(b));
            }
            ("Secret", 4) => insert_entry(&mut obj, "stringData", b, string)?,
            ("Namespace", 2) => {
                let mut finalizers = Vec::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(v)) = (n, f) {
                        finalizers.push(string(v));
                    }
                }
                obj.insert("spec".into(), json!({ "finalizers": finalizers }));
            }
            ("Lease", 2) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => {
                            spec.insert("holderIdentity".into(), string(v));
                        }
                        (2, Field::Varint(v)) => {
                            spec.insert("leaseDurationSeconds".into(), (v as i32).into());
                        }
                        (3, Field::Bytes(v)) => {
                            spec.insert("acquireTime".into(), micro_time(v)?);
                        }
                        (4, Field::Bytes(v)) => {
                            spec.insert("renewTime".into(), micro_time(v)?);
                        }
                        (5, Field::Varint(v)) => {
                            spec.insert("leaseTransitions".into(), (v as i32).into());
                        }
                        (6, Field::Bytes(v)) => {
                            spec.insert("strategy".into(), string(v));
                        }
                        (7, Field::Bytes(v)) => {
                            spec.insert("preferredHolder".into(), string(v));
                        }
                        _ => {}
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            ("ServiceAccount", 3) => {
                let mut r = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(v)) = (n, f) {
                        r.insert("name".into(), string(v));
                    }
                }
                push(&mut obj, "imagePullSecrets", Value::Object(r));
            }
            _ => {}
        }
    }
    Ok(Value::Object(obj))
}

/// Kinds whose protobuf encoding is understood.
pub const KINDS: &[&str] = &[
    "Namespace",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Lease",
];

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s envelope"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => api_version = String::from_utf8_lossy(v).into(),
                        (2, Field::Bytes(v)) => kind = String::from_utf8_lossy(v).into(),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf for kind {kind:?}; kube-sim decodes protobuf only for {}",
            KINDS.join(", ")
        )));
    }
    let mut obj = decode_kind(&kind, raw)?;
    obj["apiVersion"] = api_version.into();
    obj["kind"] = kind.into();
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, data: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, data.len() as u8];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = [
            field(1, b"cm"),
            field(11, &[field(1, b"a"), field(2, b"b")].concat()),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
            vec![4 << 3, 1],
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
                   "metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn other_kinds_are_unsupported() {
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta)].concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
    }
}
