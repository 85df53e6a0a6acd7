//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) for a few simple kinds, both
//! ways: request bodies are decoded, and responses are encoded when the client asks for them.
//!
//! Typed client-go clients — `kubectl create namespace|configmap|secret|serviceaccount`, leader
//! election — send protobuf bodies and do not fall back to JSON on a 415; they `Accept`
//! `application/vnd.kubernetes.protobuf, application/json`. The envelope is the magic `k8s\0`
//! followed by a `runtime.Unknown` message (`typeMeta` = 1 with `apiVersion` = 1 and `kind` =
//! 2, `raw` = 2); `raw` is the object in the field numbering of the Kubernetes
//! `generated.proto` files.
//!
//! One schema table per message (field number, JSON name, type) drives both directions, so an
//! encoded object decodes back to the same JSON. Field numbers were taken from the
//! `generated.proto` files as the `k8s-pb` crate carries them. Namespaces, ConfigMaps, Secrets,
//! ServiceAccounts and Leases (and their lists) are covered, with the whole `ObjectMeta`. A
//! request body of another kind gets a 415; a response is encoded only when every field of the
//! object is in the tables, otherwise the caller falls back to JSON (see [`encode_object`]).
//!
//! No crate does this: `k8s-pb` has the prost messages but no JSON mapping, `k8s-openapi` has
//! the JSON types but no protobuf, so the tables here are the bridge for the kinds needed.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::status::ApiError;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\x00";

/// How a field's value is written in protobuf and in JSON.
#[derive(Clone, Copy, Debug)]
enum Ty {
    /// string ↔ JSON string.
    Str,
    /// bool ↔ JSON bool.
    Bool,
    /// int32/int64 varint ↔ JSON number.
    Int,
    /// `map<string, string>` ↔ JSON object of strings.
    MapStr,
    /// `map<string, bytes>` ↔ JSON object of base64 strings.
    MapBytes,
    /// `metav1.Time` / `MicroTime` (seconds = 1, nanos = 2) ↔ RFC 3339 (`micro`: 6 decimals).
    Time { micro: bool },
    /// `FieldsV1` (raw JSON bytes = 1) ↔ the JSON value.
    FieldsV1,
    /// `resource.Quantity` (`string` = 1) ↔ JSON string (a JSON number is accepted too).
    Quantity,
    /// `map<string, Quantity>` ↔ JSON object of quantity strings.
    MapQuantity,
    /// `intstr.IntOrString` (`type` = 1: 0 int, 1 string; `intVal` = 2; `strVal` = 3) ↔ JSON
    /// number or string.
    IntOrString,
    /// A nested message.
    Msg(&'static Msg),
    /// A message Go embeds (`json:",inline"`): its fields are the parent's in JSON
    /// (`Probe.ProbeHandler`, `Volume.VolumeSource`, `EphemeralContainer.EphemeralContainerCommon`).
    Embed(&'static Msg),
}

#[derive(Debug)]
struct FieldDef {
    tag: u64,
    json: &'static str,
    ty: Ty,
    repeated: bool,
}

/// A protobuf message's fields.
#[derive(Debug)]
pub struct Msg {
    name: &'static str,
    fields: &'static [FieldDef],
}

macro_rules! f {
    ($tag:expr, $json:expr, $ty:expr) => {
        FieldDef {
            tag: $tag,
            json: $json,
            ty: $ty,
            repeated: false,
        }
    };
    ($tag:expr, $json:expr, $ty:expr, repeated) => {
        FieldDef {
            tag: $tag,
            json: $json,
            ty: $ty,
            repeated: true,
        }
    };
}

static OWNER_REFERENCE: Msg = Msg {
    name: "OwnerReference",
    fields: &[
        f!(1, "kind", Ty::Str),
        f!(3, "name", Ty::Str),
        f!(4, "uid", Ty::Str),
        f!(5, "apiVersion", Ty::Str),
        f!(6, "controller", Ty::Bool),
        f!(7, "blockOwnerDeletion", Ty::Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Msg = Msg {
    name: "ManagedFieldsEntry",
    fields: &[
        f!(1, "manager", Ty::Str),
        f!(2, "operation", Ty::Str),
        f!(3, "apiVersion", Ty::Str),
        f!(4, "time", Ty::Time { micro: false }),
        f!(6, "fieldsType", Ty::Str),
        f!(7, "fieldsV1", Ty::FieldsV1),
        f!(8, "subresource", Ty::Str),
    ],
};

static OBJECT_META: Msg = Msg {
    name: "ObjectMeta",
    fields: &[
        f!(1, "name", Ty::Str),
        f!(2, "generateName", Ty::Str),
        f!(3, "namespace", Ty::Str),
        f!(4, "selfLink", Ty::Str),
        f!(5, "uid", Ty::Str),
        f!(6, "resourceVersion", Ty::Str),
        f!(7, "generation", Ty::Int),
        f!(8, "creationTimestamp", Ty::Time { micro: false }),
        f!(9, "deletionTimestamp", Ty::Time { micro: false }),
        f!(10, "deletionGracePeriodSeconds", Ty::Int),
        f!(11, "labels", Ty::MapStr),
        f!(12, "annotations", Ty::MapStr),
        f!(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE), repeated),
        f!(14, "finalizers", Ty::Str, repeated),
        f!(
            17,
            "managedFields",
            Ty::Msg(&MANAGED_FIELDS_ENTRY),
            repeated
        ),
    ],
};

static LIST_META: Msg = Msg {
    name: "ListMeta",
    fields: &[
        f!(1, "selfLink", Ty::Str),
        f!(2, "resourceVersion", Ty::Str),
        f!(3, "continue", Ty::Str),
        f!(4, "remainingItemCount", Ty::Int),
    ],
};

static NAMESPACE_CONDITION: Msg = Msg {
    name: "NamespaceCondition",
    fields: &[
        f!(1, "type", Ty::Str),
        f!(2, "status", Ty::Str),
        f!(4, "lastTransitionTime", Ty::Time { micro: false }),
        f!(5, "reason", Ty::Str),
        f!(6, "message", Ty::Str),
    ],
};

static NAMESPACE: Msg = Msg {
    name: "Namespace",
    fields: &[
        f!(1, "metadata", Ty::Msg(&OBJECT_META)),
        f!(
            2,
            "spec",
            Ty::Msg(&Msg {
                name: "NamespaceSpec",
                fields: &[f!(1, "finalizers", Ty::Str, repeated)],
            })
        ),
        f!(
            3,
            "status",
            Ty::Msg(&Msg {
                name: "NamespaceStatus",
                fields: &[
                    f!(1, "phase", Ty::Str),
                    f!(2, "conditions", Ty::Msg(&NAMESPACE_CONDITION), repeated),
                ],
            })
        ),
    ],
};

static CONFIG_MAP: Msg = Msg {
    name: "ConfigMap",
    fields: &[
        f!(1, "metadata", Ty::Msg(&OBJECT_META)),
        f!(2, "data", Ty::MapStr),
        f!(3, "binaryData", Ty::MapBytes),
        f!(4, "immutable", Ty::Bool),
    ],
};

static SECRET: Msg = Msg {
    name: "Secret",
    fields: &[
        f!(1, "metadata", Ty::Msg(&OBJECT_META)),
        f!(2, "data", Ty::MapBytes),
        f!(3, "type", Ty::Str),
        f!(4, "stringData", Ty::MapStr),
        f!(5, "immutable", Ty::Bool),
    ],
};

static OBJECT_REFERENCE: Msg = Msg {
    name: "ObjectReference",
    fields: &[
        f!(1, "kind", Ty::Str),
        f!(2, "namespace", Ty::Str),
        f!(3, "name", Ty::Str),
        f!(4, "uid", Ty::Str),
        f!(5, "apiVersion", Ty::Str),
        f!(6, "resourceVersion", Ty::Str),
        f!(7, "fieldPath", Ty::Str),
    ],
};

static SERVICE_ACCOUNT: Msg = Msg {
    name: "ServiceAccount",
    fields: &[
        f!(1, "metadata", Ty::Msg(&OBJECT_META)),
        f!(2, "secrets", Ty::Msg(&OBJECT_REFERENCE), repeated),
        f!(
            3,
            "imagePullSecrets",
            Ty::Msg(&Msg {
                name: "LocalObjectReference",
                fields: &[f!(1, "name", Ty::Str)],
            }),
            repeated
        ),
        f!(4, "automountServiceAccountToken", Ty::Bool),
    ],
};

static LEASE: Msg = Msg {
    name: "Lease",
    fields: &[
        f!(1, "metadata", Ty::Msg(&OBJECT_META)),
        f!(
            2,
            "spec",
            Ty::Msg(&Msg {
                name: "LeaseSpec",
                fields: &[
                    f!(1, "holderIdentity", Ty::Str),
                    f!(2, "leaseDurationSeconds", Ty::Int),
                    f!(3, "acquireTime", Ty::Time { micro: true }),
                    f!(4, "renewTime", Ty::Time { micro: true }),
                    f!(5, "leaseTransitions", Ty::Int),
                    f!(6, "strategy", Ty::Str),
                    f!(7, "preferredHolder", Ty::Str),
                ],
            })
        ),
    ],
};

// The tables of Pod and all it reaches, generated from the same sources (see `pod.rs`).
mod pod;

/// Kinds whose protobuf encoding is understood, with their messages.
const KINDS: &[(&str, &Msg)] = &[
    ("Pod", &pod::POD),
    ("Namespace", &NAMESPACE),
    ("ConfigMap", &CONFIG_MAP),
    ("Secret", &SECRET),
    ("ServiceAccount", &SERVICE_ACCOUNT),
    ("Lease", &LEASE),
];

fn message_for(kind: &str) -> Option<&'static Msg> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m)
}

/// Whether objects of this kind can be encoded and decoded.
pub fn supports(kind: &str) -> bool {
    message_for(kind).is_some()
}

// ---------------------------------------------------------------------------------------
// Wire format.

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn bad(why: &str) -> ApiError {
    ApiError::bad_request(format!("protobuf body: {why}"))
}

struct Reader<'a> {
    buf: &'a [u8],
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

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if self.buf.len() < n {
                    return Err(bad("truncated fixed field"));
                }
                self.buf = &self.buf[n..];
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                if self.buf.len() < len {
                    return Err(bad("truncated field"));
                }
                let (data, rest) = self.buf.split_at(len);
                self.buf = rest;
                Wire::Bytes(data)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn wire_fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, tag: u64, data: &[u8]) {
    put_varint(out, tag << 3 | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn put_int(out: &mut Vec<u8>, tag: u64, v: i64) {
    put_varint(out, tag << 3);
    // int32/int64: negative values are ten-byte two's complement varints.
    put_varint(out, v as u64);
}

// ---------------------------------------------------------------------------------------
// Decoding: protobuf → JSON.

fn utf8(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn map_entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (n, f) in wire_fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode_time(b: &[u8], micro: bool) -> Result<Value, ApiError> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for (n, f) in wire_fields(b)? {
        match (n, f) {
            (1, Wire::Varint(v)) => secs = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    if secs == 0 && nanos == 0 {
        // The zero time: JSON `null`, left out.
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::new(secs, (nanos % 1_000_000_000) as i32)
        .map_err(|_| bad("time out of range"))?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(ts.strftime(fmt).to_string()))
}

fn decode_quantity(b: &[u8]) -> Result<Value, ApiError> {
    let mut out = Value::from("");
    for (n, f) in wire_fields(b)? {
        if let (1, Wire::Bytes(v)) = (n, f) {
            out = utf8(v);
        }
    }
    Ok(out)
}

fn decode_value(ty: Ty, w: Wire<'_>) -> Result<Value, ApiError> {
    Ok(match (ty, w) {
        (Ty::Str, Wire::Bytes(b)) => utf8(b),
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Ty::Int, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::Time { micro }, Wire::Bytes(b)) => decode_time(b, micro)?,
        (Ty::FieldsV1, Wire::Bytes(b)) => {
            let mut raw: &[u8] = &[];
            for (n, f) in wire_fields(b)? {
                if let (1, Wire::Bytes(r)) = (n, f) {
                    raw = r;
                }
            }
            serde_json::from_slice(raw).map_err(|_| bad("fieldsV1 is not JSON"))?
        }
        (Ty::Msg(m), Wire::Bytes(b)) => decode_msg(m, b)?,
        (Ty::Quantity, Wire::Bytes(b)) => decode_quantity(b)?,
        (Ty::IntOrString, Wire::Bytes(b)) => {
            let (mut is_str, mut int, mut s) = (false, 0i64, Value::from(""));
            for (n, f) in wire_fields(b)? {
                match (n, f) {
                    (1, Wire::Varint(t)) => is_str = t == 1,
                    (2, Wire::Varint(v)) => int = i64::from(v as i32),
                    (3, Wire::Bytes(v)) => s = utf8(v),
                    _ => {}
                }
            }
            if is_str { s } else { Value::from(int) }
        }
        _ => return Err(bad("a field has an unexpected wire type")),
    })
}

fn decode_msg(msg: &Msg, buf: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    for (tag, w) in wire_fields(buf)? {
        let Some(def) = msg.fields.iter().find(|d| d.tag == tag) else {
            return Err(ApiError::unsupported_media_type(&format!(
                "{MEDIA_TYPE} with field {tag} of {}, which kube-sim does not decode",
                msg.name
            )));
        };
        match (def.ty, w) {
            (Ty::Embed(m), Wire::Bytes(b)) => {
                if let Value::Object(inner) = decode_msg(m, b)? {
                    obj.extend(inner);
                }
            }
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                let v = match def.ty {
                    Ty::MapStr => utf8(v),
                    Ty::MapBytes => b64(v),
                    _ => decode_quantity(v)?,
                };
                if let Some(m) = obj
                    .entry(def.json)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                {
                    m.insert(k, v);
                }
            }
            (ty, w) => {
                let v = decode_value(ty, w)?;
                if def.repeated {
                    if let Some(a) = obj
                        .entry(def.json)
                        .or_insert_with(|| Value::Array(Vec::new()))
                        .as_array_mut()
                    {
                        a.push(v);
                    }
                } else if !v.is_null() && v != "" {
                    // gogo-protobuf writes optional scalars even when empty; Go's JSON drops
                    // them (`omitempty`), and so does this.
                    obj.insert(def.json.to_string(), v);
                }
            }
        }
    }
    Ok(Value::Object(obj))
}

fn envelope(body: &[u8]) -> Result<(String, String, &[u8]), ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s envelope"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in wire_fields(rest)? {
        match (n, f) {
            (1, Wire::Bytes(tm)) => {
                for (n, f) in wire_fields(tm)? {
                    match (n, f) {
                        (1, Wire::Bytes(v)) => api_version = String::from_utf8_lossy(v).into(),
                        (2, Wire::Bytes(v)) => kind = String::from_utf8_lossy(v).into(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let (api_version, kind, raw) = envelope(body)?;
    let Some(msg) = message_for(&kind) else {
        let names: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(ApiError::unsupported_media_type(&format!(
            "{MEDIA_TYPE} for kind {kind:?}; kube-sim decodes protobuf only for {}",
            names.join(", ")
        )));
    };
    let mut obj = decode_msg(msg, raw)?;
    obj["apiVersion"] = api_version.into();
    obj["kind"] = kind.into();
    Ok(obj)
}

// ---------------------------------------------------------------------------------------
// Encoding: JSON → protobuf. `None` when some field is not in the tables.

fn encode_time(s: &str) -> Option<Vec<u8>> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    let mut out = Vec::new();
    if ts.as_second() != 0 {
        put_int(&mut out, 1, ts.as_second());
    }
    if ts.subsec_nanosecond() != 0 {
        put_int(&mut out, 2, i64::from(ts.subsec_nanosecond()));
    }
    Some(out)
}

/// A quantity's message; JSON allows a number where a quantity string goes.
fn encode_quantity(v: &Value) -> Option<Vec<u8>> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut out = Vec::new();
    put_bytes(&mut out, 1, s.as_bytes());
    Some(out)
}

/// Whether `msg` (or a message it embeds) has the JSON field `key`.
fn knows(msg: &Msg, key: &str) -> bool {
    msg.fields.iter().any(|d| match d.ty {
        Ty::Embed(m) => knows(m, key),
        _ => d.json == key,
    })
}

fn encode_one(out: &mut Vec<u8>, tag: u64, ty: Ty, v: &Value) -> Option<()> {
    match ty {
        Ty::Str => put_bytes(out, tag, v.as_str()?.as_bytes()),
        Ty::Bool => put_int(out, tag, i64::from(v.as_bool()?)),
        Ty::Int => put_int(out, tag, v.as_i64()?),
        Ty::Time { .. } => put_bytes(out, tag, &encode_time(v.as_str()?)?),
        Ty::FieldsV1 => {
            let mut inner = Vec::new();
            put_bytes(&mut inner, 1, &serde_json::to_vec(v).ok()?);
            put_bytes(out, tag, &inner);
        }
        Ty::Msg(m) => put_bytes(out, tag, &encode_msg(m, v)?),
        Ty::Embed(m) => put_bytes(out, tag, &encode_msg(m, v)?),
        Ty::Quantity => put_bytes(out, tag, &encode_quantity(v)?),
        Ty::IntOrString => {
            // Go writes all three fields, zero or not.
            let mut inner = Vec::new();
            match v {
                Value::String(s) => {
                    put_int(&mut inner, 1, 1);
                    put_int(&mut inner, 2, 0);
                    put_bytes(&mut inner, 3, s.as_bytes());
                }
                _ => {
                    put_int(&mut inner, 1, 0);
                    put_int(&mut inner, 2, i64::from(i32::try_from(v.as_i64()?).ok()?));
                    put_bytes(&mut inner, 3, b"");
                }
            }
            put_bytes(out, tag, &inner);
        }
        Ty::MapQuantity => {
            for (k, val) in v.as_object()? {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, k.as_bytes());
                put_bytes(&mut entry, 2, &encode_quantity(val)?);
                put_bytes(out, tag, &entry);
            }
        }
        Ty::MapStr | Ty::MapBytes => {
            // Go writes map entries in sorted key order; serde_json's map is sorted too.
            for (k, val) in v.as_object()? {
                let data = match ty {
                    Ty::MapStr => val.as_str()?.as_bytes().to_vec(),
                    _ => base64::engine::general_purpose::STANDARD
                        .decode(val.as_str()?)
                        .ok()?,
                };
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, k.as_bytes());
                put_bytes(&mut entry, 2, &data);
                put_bytes(out, tag, &entry);
            }
        }
    }
    Some(())
}

fn encode_msg(msg: &Msg, v: &Value) -> Option<Vec<u8>> {
    let obj = v.as_object()?;
    // Every JSON field must be known, or the encoding would silently lose it.
    for (k, val) in obj {
        if !val.is_null() && !matches!(k.as_str(), "kind" | "apiVersion") && !knows(msg, k) {
            return None;
        }
    }
    let mut out = Vec::new();
    let mut defs: Vec<&FieldDef> = msg.fields.iter().collect();
    defs.sort_by_key(|d| d.tag);
    for def in defs {
        if let Ty::Embed(m) = def.ty {
            // The embedded message takes its fields from the parent's JSON object.
            let inner: Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| knows(m, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            encode_one(&mut out, def.tag, def.ty, &Value::Object(inner))?;
            continue;
        }
        let Some(val) = obj.get(def.json).filter(|v| !v.is_null()) else {
            continue;
        };
        if def.repeated {
            for item in val.as_array()? {
                encode_one(&mut out, def.tag, def.ty, item)?;
            }
        } else {
            encode_one(&mut out, def.tag, def.ty, val)?;
        }
    }
    Some(out)
}

fn wrap(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, raw);
    out
}

/// Encodes an object (with `apiVersion` and `kind`) in the `k8s\0` envelope; `None` when its
/// kind or one of its fields is not covered, so the caller can answer in JSON instead.
pub fn encode_object(obj: &Value) -> Option<Vec<u8>> {
    let kind = obj.get("kind")?.as_str()?;
    let api_version = obj.get("apiVersion")?.as_str()?;
    let raw = encode_msg(message_for(kind)?, obj)?;
    Some(wrap(api_version, kind, &raw))
}

/// Encodes a list (`NamespaceList`, …: `metadata` = 1 as `ListMeta`, `items` = 2).
pub fn encode_list<'a>(
    api_version: &str,
    item_kind: &str,
    meta: &Value,
    items: impl IntoIterator<Item = &'a Value>,
) -> Option<Vec<u8>> {
    let msg = message_for(item_kind)?;
    let mut raw = Vec::new();
    put_bytes(&mut raw, 1, &encode_msg(&LIST_META, meta)?);
    for item in items {
        put_bytes(&mut raw, 2, &encode_msg(msg, item)?);
    }
    Some(wrap(api_version, &format!("{item_kind}List"), &raw))
}

/// Decodes a list encoded by [`encode_list`] (tests and clients in this repository).
pub fn decode_list(body: &[u8]) -> Result<Value, ApiError> {
    let (api_version, kind, raw) = envelope(body)?;
    let item_kind = kind.strip_suffix("List").ok_or_else(|| bad("not a list"))?;
    let msg = message_for(item_kind).ok_or_else(|| bad("unknown list kind"))?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), kind.clone().into());
    let mut items = Vec::new();
    for (n, w) in wire_fields(raw)? {
        match (n, w) {
            (1, Wire::Bytes(b)) => {
                out.insert("metadata".into(), decode_msg(&LIST_META, b)?);
            }
            (2, Wire::Bytes(b)) => items.push(decode_msg(msg, b)?),
            _ => {}
        }
    }
    out.insert("items".into(), Value::Array(items));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests;
