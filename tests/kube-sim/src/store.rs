//! The object store: every object of every served kind, one global `resourceVersion`, and a
//! bounded history of change events for watches.
//!
//! Objects are JSON values behind `Arc`s so lists and watch events share them. All writes go
//! through one mutex, like the single etcd revision counter they imitate.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::resources::{self, ResourceInfo};
use crate::selector::Selectors;
use crate::status::{ApiError, Result, StatusCause};

/// A stored object, shared between the store, lists and watch events.
pub type Object = Arc<Value>;

type Key = (String, String);

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated (including a deletion that is waiting for finalizers).
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history for watches.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Index of the resource in [`resources::all`].
    pub resource: usize,
    /// Namespace of the object (empty when cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change; for deletes, the last state with the delete's
    /// resourceVersion.
    pub object: Object,
    /// The object before the change (for selector transitions), if any.
    pub prev: Option<Object>,
}

/// `DeleteOptions.preconditions`.
#[derive(Clone, Debug, Default)]
pub struct Preconditions {
    /// Required UID.
    pub uid: Option<String>,
    /// Required resourceVersion.
    pub resource_version: Option<String>,
}

/// Result of a delete.
#[derive(Debug)]
pub struct Deleted {
    /// The object: its last state, or the state now waiting for finalizers.
    pub object: Object,
    /// True when the object is gone; false when it waits for finalizers.
    pub gone: bool,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Items, in key order (namespace, name).
    pub items: Vec<Object>,
    /// resourceVersion of the list.
    pub resource_version: u64,
    /// Token for the next page, when there is one.
    pub continue_token: Option<String>,
    /// Items left after this page (only without selectors, as the apiserver does).
    pub remaining: Option<u64>,
}

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` when the kind has a status subresource.
    Main,
    /// The `status` subresource: only `status`.
    Status,
}

struct Inner {
    rv: u64,
    objects: Vec<BTreeMap<Key, Object>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Highest resourceVersion no longer in the history (0: nothing dropped yet).
    compacted: u64,
}

/// The object store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Store")
            .field("resource_version", &inner.rv)
            .field(
                "objects",
                &inner.objects.iter().map(BTreeMap::len).sum::<usize>(),
            )
            .field("history", &inner.history.len())
            .finish()
    }
}

/// Now, as the apiserver writes timestamps (`2024-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta(obj: &Value, field: &str) -> String {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// The object's resourceVersion as a number (0 when absent).
pub fn resource_version_of(obj: &Value) -> u64 {
    meta(obj, "resourceVersion").parse().unwrap_or(0)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn validate_name(res: &ResourceInfo, name: &str) -> Result<()> {
    let (ok, what, regex) = if res.plural == "namespaces" {
        (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "",
        )
    } else {
        (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "",
        )
    };
    let _ = regex;
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid(
        res,
        res.kind,
        name,
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: \"{name}\": {what}"),
            field: "metadata.name".into(),
        }],
    ))
}

fn random_suffix() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Everything but `metadata` and `status`: what a generation bump looks at.
fn spec_part(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The namespaces every cluster starts with (plus the `kubernetes` service in `default`).
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Store {
    /// An empty store keeping at most `history_limit` events for watches, with the usual
    /// namespaces created.
    pub fn new(history_limit: usize) -> Self {
        let (changed, _) = tokio::sync::watch::channel(0);
        let store = Self {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: resources::all().iter().map(|_| BTreeMap::new()).collect(),
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted: 0,
            }),
            changed,
        };
        let ns = resources::by_plural("", "v1", "namespaces").expect("namespaces are served");
        for name in INITIAL_NAMESPACES {
            store
                .create(ns, None, json!({"metadata": {"name": name}}), false)
                .expect("initial namespace");
        }
        // The service the apiserver keeps for itself.
        let svc = resources::by_plural("", "v1", "services").expect("services are served");
        store
            .create(
                svc,
                Some("default"),
                json!({
                    "metadata": {"name": "kubernetes",
                        "labels": {"component": "apiserver", "provider": "kubernetes"}},
                    "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "internalTrafficPolicy": "Cluster"},
                }),
                false,
            )
            .expect("kubernetes service");
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// A receiver that changes whenever the store does (its value is the latest
    /// resourceVersion).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Changes the number of events kept for watches.
    pub fn set_history_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.history_limit = limit.max(1);
        Self::trim(&mut inner);
    }

    fn trim(inner: &mut Inner) {
        while inner.history.len() > inner.history_limit {
            if let Some(e) = inner.history.pop_front() {
                inner.compacted = e.rv;
            }
        }
    }

    fn record(&self, inner: &mut Inner, event: Event) {
        inner.history.push_back(Arc::new(event));
        Self::trim(inner);
    }

    fn notify(&self, rv: u64) {
        self.changed.send_replace(rv);
    }

    fn key(res: &ResourceInfo, ns: Option<&str>, name: &str) -> Key {
        let ns = if res.namespaced {
            ns.unwrap_or_default()
        } else {
            ""
        };
        (ns.to_string(), name.to_string())
    }

    /// Events with a resourceVersion above `after`, or `Err(oldest available)` when some of
    /// them were already dropped from the history.
    pub fn events_after(&self, after: u64) -> std::result::Result<Vec<Arc<Event>>, u64> {
        let inner = self.lock();
        if after < inner.compacted {
            return Err(inner.compacted + 1);
        }
        let start = inner.history.partition_point(|e| e.rv <= after);
        Ok(inner.history.range(start..).cloned().collect())
    }

    /// Creates an object. `ns` is the namespace from the URL (ignored for cluster-scoped
    /// kinds).
    pub fn create(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Object> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be an object",
            ));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != res.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                res.kind
            )));
        }
        if meta(&obj, "resourceVersion")
            .parse::<u64>()
            .is_ok_and(|rv| rv != 0)
        {
            // The storage layer's plain error, surfaced as a bare 500 by the apiserver.
            return Err(ApiError::new(
                500,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let body_ns = meta(&obj, "namespace");
        let ns = if res.namespaced {
            let url_ns = ns.unwrap_or_default();
            if !body_ns.is_empty() && !url_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns = if url_ns.is_empty() {
                body_ns
            } else {
                url_ns.to_string()
            };
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the object is missing",
                ));
            }
            Some(ns)
        } else {
            None
        };
        let mut name = meta(&obj, "name");
        let generate = meta(&obj, "generateName");
        if name.is_empty() {
            if generate.is_empty() {
                return Err(ApiError::invalid(
                    res,
                    res.kind,
                    "",
                    vec![StatusCause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
            name = format!("{generate}{}", random_suffix());
        }
        validate_name(res, &name)?;

        let mut inner = self.lock();
        if let Some(ns) = &ns {
            let ns_res = resources::by_plural("", "v1", "namespaces").expect("namespaces");
            let ns_idx = resources::index_of(ns_res);
            match inner.objects[ns_idx].get(&(String::new(), ns.clone())) {
                None => return Err(ApiError::not_found(ns_res, ns)),
                Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError {
                        code: 403,
                        reason: "Forbidden".into(),
                        message: format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            res.qualified()
                        ),
                        details: Some(Box::new(crate::status::StatusDetails {
                            name: name.clone(),
                            group: res.group.into(),
                            kind: res.plural.into(),
                            ..Default::default()
                        })),
                    });
                }
                Some(_) => {}
            }
        }
        let idx = resources::index_of(res);
        let key = Self::key(res, ns.as_deref(), &name);
        if inner.objects[idx].contains_key(&key) {
            return Err(ApiError::already_exists(res, &name));
        }
        let rv = inner.rv + 1;
        {
            let obj_map = obj.as_object_mut().expect("object");
            obj_map.insert("apiVersion".into(), res.api_version().into());
            obj_map.insert("kind".into(), res.kind.into());
        }
        let m = meta_mut(&mut obj);
        m.insert("name".into(), name.clone().into());
        match &ns {
            Some(ns) => {
                m.insert("namespace".into(), ns.clone().into());
            }
            None => {
                m.remove("namespace");
            }
        }
        m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        m.insert("resourceVersion".into(), rv.to_string().into());
        m.insert("creationTimestamp".into(), now_rfc3339().into());
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
        if res.generation {
            m.insert("generation".into(), 1.into());
        } else {
            m.remove("generation");
        }
        prepare_for_create(res, &mut obj);
        drop_empty_metadata(&mut obj);
        let obj = Arc::new(obj);
        if dry_run {
            return Ok(obj);
        }
        inner.rv = rv;
        inner.objects[idx].insert(key.clone(), obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                resource: idx,
                namespace: key.0,
                kind: EventType::Added,
                object: obj.clone(),
                prev: None,
            },
        );
        drop(inner);
        self.notify(rv);
        Ok(obj)
    }

    /// Reads one object.
    pub fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Object> {
        let inner = self.lock();
        inner.objects[resources::index_of(res)]
            .get(&Self::key(res, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Lists objects (all namespaces when `ns` is `None`), optionally one page at a time.
    pub fn list(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        selectors: &Selectors,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage> {
        let (start, token_rv) = match continue_token.filter(|t| !t.is_empty()) {
            Some(t) => {
                let (rv, key) = decode_continue(t)?;
                (Some(key), Some(rv))
            }
            None => (None, None),
        };
        let inner = self.lock();
        if let Some(rv) = token_rv
            && rv < inner.compacted
        {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ));
        }
        let map = &inner.objects[resources::index_of(res)];
        let ns = if res.namespaced { ns } else { None };
        let lower = match (&start, ns) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut iter = map
            .range((lower, std::ops::Bound::Unbounded))
            .take_while(|((k_ns, _), _)| ns.is_none_or(|ns| k_ns == ns))
            .filter(|(_, o)| selectors.matches(o));
        let limit = limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        for (k, o) in iter.by_ref() {
            if limit.is_some_and(|l| items.len() >= l) {
                // One more exists: remember where this page ended.
                let rest = 1 + iter.count() as u64;
                let rv = token_rv.unwrap_or(inner.rv);
                let last: &Key = last_key.expect("page is not empty");
                return Ok(ListPage {
                    items,
                    resource_version: rv,
                    continue_token: Some(encode_continue(rv, last)),
                    remaining: (selectors.labels.is_empty() && selectors.fields.is_empty())
                        .then_some(rest),
                });
            }
            items.push(o.clone());
            last_key = Some(k);
        }
        Ok(ListPage {
            items,
            resource_version: token_rv.unwrap_or(inner.rv),
            continue_token: None,
            remaining: None,
        })
    }

    /// Replaces an object (PUT), with the apiserver's optimistic-concurrency rules.
    pub fn update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Object> {
        self.modify(res, ns, name, part, dry_run, |_| Ok(body))
    }

    /// Read-modify-write under the store lock: `f` receives the current object and returns
    /// the new one (used by PATCH). The returned object's resourceVersion, if set, is checked
    /// like an update's.
    pub fn modify(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        dry_run: bool,
        f: impl FnOnce(&Value) -> Result<Value>,
    ) -> Result<Object> {
        let mut inner = self.lock();
        let idx = resources::index_of(res);
        let key = Self::key(res, ns, name);
        let old = inner.objects[idx]
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let body = f(&old)?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be an object",
            ));
        }
        let body_name = meta(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta(&body, "namespace");
        if res.namespaced && !body_ns.is_empty() && body_ns != key.0 {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let body_rv = meta(&body, "resourceVersion");
        if body_rv.is_empty() {
            if res.requires_resource_version {
                return Err(ApiError::invalid(
                    res,
                    res.plural,
                    name,
                    vec![StatusCause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
        } else if body_rv != meta(&old, "resourceVersion") {
            if body_rv.parse::<u64>().is_err() {
                return Err(ApiError::bad_request(format!(
                    "invalid resourceVersion {body_rv:?}"
                )));
            }
            return Err(ApiError::stale(res, name));
        }
        let body_uid = meta(&body, "uid");
        let old_uid = meta(&old, "uid");
        if !body_uid.is_empty() && body_uid != old_uid {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {old_uid}"
                ),
            ));
        }

        let mut new = match part {
            Part::Main => {
                let mut new = body;
                if res.status_subresource {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                new
            }
            Part::Status => {
                let mut new = (*old).clone();
                match body.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                new
            }
        };
        {
            let obj_map = new.as_object_mut().expect("object");
            obj_map.insert("apiVersion".into(), res.api_version().into());
            obj_map.insert("kind".into(), res.kind.into());
        }
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => {
                    m.insert(field.into(), v.clone());
                }
                None => {
                    m.remove(field);
                }
            }
        }
        if res.generation && spec_part(&new) != spec_part(&old) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), (g + 1).into());
        }
        drop_empty_metadata(&mut new);
        if new == *old {
            // A no-op update writes nothing and keeps the resourceVersion, as on etcd.
            return Ok(old);
        }
        if dry_run {
            // Nothing is written, so no new revision: the apiserver's dry-run storage answers
            // with the object at the version it was read.
            return Ok(Arc::new(new));
        }
        let rv = inner.rv + 1;
        meta_mut(&mut new).insert("resourceVersion".into(), rv.to_string().into());
        let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let new = Arc::new(new);
        inner.rv = rv;
        let kind = if finalized {
            inner.objects[idx].remove(&key);
            EventType::Deleted
        } else {
            inner.objects[idx].insert(key.clone(), new.clone());
            EventType::Modified
        };
        self.record(
            &mut inner,
            Event {
                rv,
                resource: idx,
                namespace: key.0,
                kind,
                object: new.clone(),
                prev: Some(old),
            },
        );
        drop(inner);
        self.notify(rv);
        Ok(new)
    }

    /// Deletes an object, honouring preconditions and finalizers. Deleting a namespace
    /// deletes everything in it at once.
    pub fn delete(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<Deleted> {
        let mut inner = self.lock();
        let idx = resources::index_of(res);
        let key = Self::key(res, ns, name);
        let old = inner.objects[idx]
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let old_uid = meta(&old, "uid");
        if let Some(uid) = pre.uid.as_deref().filter(|u| *u != old_uid) {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
                ),
            ));
        }
        let old_rv = meta(&old, "resourceVersion");
        if let Some(rv) = pre.resource_version.as_deref().filter(|r| *r != old_rv) {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old_rv}"
                ),
            ));
        }
        let is_namespace = res.plural == "namespaces";
        if is_namespace && PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden".into(),
                message: format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                ),
                details: Some(Box::new(crate::status::StatusDetails {
                    name: name.into(),
                    kind: "namespaces".into(),
                    ..Default::default()
                })),
            });
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
                return Ok(Deleted {
                    object: old,
                    gone: false,
                });
            }
            let rv = inner.rv + 1;
            let mut new = (*old).clone();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), now_rfc3339().into());
            m.insert("deletionGracePeriodSeconds".into(), 0.into());
            m.insert("resourceVersion".into(), rv.to_string().into());
            let new = Arc::new(new);
            inner.rv = rv;
            inner.objects[idx].insert(key.clone(), new.clone());
            self.record(
                &mut inner,
                Event {
                    rv,
                    resource: idx,
                    namespace: key.0,
                    kind: EventType::Modified,
                    object: new.clone(),
                    prev: Some(old),
                },
            );
            drop(inner);
            self.notify(rv);
            return Ok(Deleted {
                object: new,
                gone: false,
            });
        }
        if dry_run {
            return Ok(Deleted {
                object: old,
                gone: true,
            });
        }
        if is_namespace {
            // The namespace controller's work, done at once: empty the namespace first.
            for (r_idx, r) in resources::all().iter().enumerate() {
                if !r.namespaced {
                    continue;
                }
                let keys: Vec<Key> = inner.objects[r_idx]
                    .range((name.to_string(), String::new())..)
                    .take_while(|((k_ns, _), _)| k_ns == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    let gone = inner.objects[r_idx].remove(&k).expect("key listed");
                    Self::record_delete(self, &mut inner, r_idx, k.0, gone);
                }
            }
        }
        inner.objects[idx].remove(&key);
        let mut last = (*old).clone();
        if is_namespace {
            let m = meta_mut(&mut last);
            m.insert("deletionTimestamp".into(), now_rfc3339().into());
            last["status"] = json!({"phase": "Terminating"});
        }
        let object = Self::record_delete(self, &mut inner, idx, key.0, Arc::new(last));
        let rv = inner.rv;
        drop(inner);
        self.notify(rv);
        Ok(Deleted { object, gone: true })
    }

    fn record_delete(&self, inner: &mut Inner, idx: usize, ns: String, last: Object) -> Object {
        let rv = inner.rv + 1;
        inner.rv = rv;
        let mut obj = (*last).clone();
        meta_mut(&mut obj).insert("resourceVersion".into(), rv.to_string().into());
        let obj = Arc::new(obj);
        self.record(
            inner,
            Event {
                rv,
                resource: idx,
                namespace: ns,
                kind: EventType::Deleted,
                object: obj.clone(),
                prev: Some(last),
            },
        );
        obj
    }

    /// Inserts many objects at once under one lock (seeding). Objects must carry `metadata.name`
    /// (and `metadata.namespace` when namespaced); existing objects are replaced. Missing
    /// namespaces are created.
    pub fn insert_many(&self, res: &ResourceInfo, objects: Vec<Value>) -> usize {
        let mut inner = self.lock();
        let idx = resources::index_of(res);
        let ns_res = resources::by_plural("", "v1", "namespaces").expect("namespaces");
        let ns_idx = resources::index_of(ns_res);
        let now = now_rfc3339();
        let mut count = 0;
        for mut obj in objects {
            let name = meta(&obj, "name");
            if name.is_empty() {
                continue;
            }
            let ns = if res.namespaced {
                let ns = meta(&obj, "namespace");
                let ns = if ns.is_empty() {
                    "default".to_string()
                } else {
                    ns
                };
                let ns_key = (String::new(), ns.clone());
                if !inner.objects[ns_idx].contains_key(&ns_key) {
                    inner.rv += 1;
                    let rv = inner.rv;
                    let ns_obj = Arc::new(json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                            "resourceVersion": rv.to_string(), "creationTimestamp": now,
                            "labels": {"kubernetes.io/metadata.name": ns}},
                        "spec": {"finalizers": ["kubernetes"]},
                        "status": {"phase": "Active"}
                    }));
                    inner.objects[ns_idx].insert(ns_key.clone(), ns_obj.clone());
                    self.record(
                        &mut inner,
                        Event {
                            rv,
                            resource: ns_idx,
                            namespace: String::new(),
                            kind: EventType::Added,
                            object: ns_obj,
                            prev: None,
                        },
                    );
                }
                ns
            } else {
                String::new()
            };
            inner.rv += 1;
            let rv = inner.rv;
            if let Some(m) = obj.as_object_mut() {
                m.insert("apiVersion".into(), res.api_version().into());
                m.insert("kind".into(), res.kind.into());
            }
            let m = meta_mut(&mut obj);
            if res.namespaced {
                m.insert("namespace".into(), ns.clone().into());
            }
            m.entry("uid")
                .or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
            m.entry("creationTimestamp")
                .or_insert_with(|| now.clone().into());
            m.insert("resourceVersion".into(), rv.to_string().into());
            if res.generation {
                m.entry("generation").or_insert(1.into());
            }
            prepare_for_create(res, &mut obj);
            let obj = Arc::new(obj);
            let key = (ns.clone(), name);
            let prev = inner.objects[idx].insert(key, obj.clone());
            let kind = if prev.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            self.record(
                &mut inner,
                Event {
                    rv,
                    resource: idx,
                    namespace: ns,
                    kind,
                    object: obj,
                    prev,
                },
            );
            count += 1;
        }
        let rv = inner.rv;
        drop(inner);
        self.notify(rv);
        count
    }

    /// Number of stored objects of one kind.
    pub fn count(&self, res: &ResourceInfo) -> usize {
        self.lock().objects[resources::index_of(res)].len()
    }
}

/// Go's JSON encoding leaves out empty `omitempty` maps and lists of `ObjectMeta`, so an
/// object whose last label or annotation was removed has no `labels`/`annotations` at all.
fn drop_empty_metadata(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, v| {
            !(matches!(
                k.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences" | "managedFields"
            ) && match v {
                Value::Object(o) => o.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Null => true,
                _ => false,
            })
        });
    }
}

/// Defaults the apiserver's create strategies apply.
fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    match (res.group, res.plural) {
        ("", "namespaces") => {
            let name = meta(obj, "name");
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), name.into());
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "secrets") => {
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                obj["type"] = "Opaque".into();
            }
        }
        ("", "services") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("type").or_insert_with(|| "ClusterIP".into());
                spec.entry("sessionAffinity")
                    .or_insert_with(|| "None".into());
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert_with(|| "TCP".into());
                    }
                }
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        ("", "pods") => {
            if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        _ => {
            if res.status_subresource && obj.get("status").is_none() {
                obj["status"] = json!({});
            }
        }
    }
}

fn encode_continue(rv: u64, key: &Key) -> String {
    let start = if key.0.is_empty() {
        format!("{}\u{0}", key.1)
    } else {
        format!("{}/{}\u{0}", key.0, key.1)
    };
    let body = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, Key)> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad("not base64"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no rv"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no start"))?;
    let start = start.trim_end_matches('\u{0}');
    let key = match start.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), start.to_string()),
    };
    Ok((rv, key))
}
