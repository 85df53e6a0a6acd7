//! `pods/log`: text set per pod (and container) through the library or, for seeded pods, the
//! pod's `kube-sim/log` annotation, with `tailLines`,
//! `limitBytes`, `timestamps` and `follow=true` streaming of lines appended later until the pod
//! is deleted or the client goes away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::api::Query;
use crate::resources::{self, ResourceInfo};
use crate::server::{Body, Shared};
use crate::status::{ApiError, Result};

#[derive(Debug, Default)]
struct Buffer {
    /// (RFC 3339 timestamp, line with its newline)
    lines: Vec<(String, String)>,
}

type Key = (String, String, String);

/// Log texts by (namespace, pod, container); container `""` is the pod's default.
#[derive(Debug, Default)]
pub struct PodLogs {
    buffers: Mutex<HashMap<Key, Buffer>>,
    changed: watch::Sender<u64>,
}

fn split_lines(text: &str) -> Vec<(String, String)> {
    let now = jiff::Timestamp::now().to_string();
    text.split_inclusive('\n')
        .map(|l| (now.clone(), l.to_string()))
        .collect()
}

impl PodLogs {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Buffer>) -> R) -> R {
        let r = f(&mut self.buffers.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// Replaces the log of a pod's container (`container = ""`: every container without its
    /// own text).
    pub fn set(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.with(|m| {
            m.insert(
                (ns.into(), pod.into(), container.into()),
                Buffer {
                    lines: split_lines(text),
                },
            );
        });
    }

    /// Sets the pod's log from its `kube-sim/log` annotation unless the log was already set.
    pub(crate) fn init(&self, ns: &str, pod: &str, text: &str) {
        let key = (ns.to_string(), pod.to_string(), String::new());
        let mut m = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key).or_insert_with(|| Buffer {
            lines: split_lines(text),
        });
    }

    /// Appends text (one or more lines) to a pod's container log; followers receive it.
    pub fn append(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.with(|m| {
            let b = m
                .entry((ns.into(), pod.into(), container.into()))
                .or_default();
            b.lines.extend(split_lines(text));
        });
    }

    /// Forgets the logs of a deleted pod, or of every pod in a deleted namespace.
    pub(crate) fn pod_deleted(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) {
        match (res.group, res.plural) {
            ("", "pods") => {
                let ns = ns.unwrap_or_default();
                self.with(|m| m.retain(|(n, p, _), _| !(n == ns && p == name)));
            }
            ("", "namespaces") => self.with(|m| m.retain(|(n, _, _), _| n != name)),
            _ => {}
        }
    }

    /// Notified on every change to any log.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Appends to the buffer reads of this container resolve to (its own, else the pod's),
    /// so readers' positions stay valid; used by attach's echoing main process.
    pub(crate) fn append_resolved(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.with(|m| {
            let own: Key = (ns.into(), pod.into(), container.into());
            let pods: Key = (ns.into(), pod.into(), String::new());
            let key = if m.contains_key(&own) || !m.contains_key(&pods) {
                own
            } else {
                pods
            };
            m.entry(key).or_default().lines.extend(split_lines(text));
        });
    }

    /// Lines of a container's log from position `from`.
    pub(crate) fn read(&self, key: &Key, from: usize) -> Vec<(String, String)> {
        let m = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .or_else(|| m.get(&(key.0.clone(), key.1.clone(), String::new())))
            .map(|b| b.lines.get(from..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }
}

/// The names of the pod's containers of one kind (`containers`, `initContainers`,
/// `ephemeralContainers`).
fn container_names(pod: &Value, kind: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{kind}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The spec of the container named `name`, whichever kind it is.
pub(crate) fn container_spec<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    CONTAINER_KINDS.iter().find_map(|kind| {
        pod.pointer(&format!("/spec/{kind}"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
    })
}

/// A named container may be any of these (the apiserver's `podHasContainerWithName` visits
/// all of them); the default is picked among regular containers only.
const CONTAINER_KINDS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Picks the container the request is about, as the apiserver does.
pub fn pick_container(pod: &Value, requested: Option<&str>) -> Result<String> {
    let names = container_names(pod, "containers");
    let any_kind: Vec<String> = CONTAINER_KINDS
        .iter()
        .flat_map(|kind| container_names(pod, kind))
        .collect();
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if any_kind.is_empty() || any_kind.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if names.len() <= 1 => Ok(names.into_iter().next().unwrap_or_default()),
        None => {
            let default = pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str);
            match default {
                Some(d) => Ok(d.to_string()),
                None => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    names.join(" ")
                ))),
            }
        }
    }
}

fn render(lines: &[(String, String)], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (ts, line) in lines {
        if timestamps {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// `GET …/pods/{name}/log`.
pub fn serve(shared: Arc<Shared>, ns: &str, pod: &str, q: &Query) -> Result<Response<Body>> {
    let res = resources::by_plural("", "v1", "pods").expect("pods are served");
    let obj = shared.store.get(res, Some(ns), pod)?;
    let container = pick_container(&obj, q.get("container"))?;
    let key = (ns.to_string(), pod.to_string(), container);
    if let Some(text) = obj
        .pointer("/metadata/annotations/kube-sim~1log")
        .and_then(Value::as_str)
    {
        shared.logs.init(ns, pod, text);
    }
    let timestamps = q.flag("timestamps");
    let mut lines = shared.logs.read(&key, 0);
    let mut sent = lines.len();
    if let Some(n) = q.number::<usize>("tailLines")? {
        lines = lines.split_off(lines.len().saturating_sub(n));
    }
    let mut first = render(&lines, timestamps);
    if let Some(limit) = q.number::<usize>("limitBytes")? {
        first.truncate(limit);
    }
    let builder = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .header("cache-control", "no-cache, private");
    if !q.flag("follow") {
        return Ok(builder
            .body(crate::server::full(first))
            .expect("valid response"));
    }
    let (tx, rx) = mpsc::channel::<std::result::Result<Frame<Bytes>, std::io::Error>>(32);
    let uid = obj.pointer("/metadata/uid").cloned();
    tokio::spawn(async move {
        let mut changed = shared.logs.changed.subscribe();
        let mut store_changed = shared.store.subscribe();
        if !first.is_empty() && tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err() {
            return;
        }
        loop {
            let more = shared.logs.read(&key, sent);
            sent += more.len();
            if !more.is_empty()
                && tx
                    .send(Ok(Frame::data(Bytes::from(render(&more, timestamps)))))
                    .await
                    .is_err()
            {
                return;
            }
            let same_pod = shared
                .store
                .get(res, Some(&key.0), &key.1)
                .is_ok_and(|p| p.pointer("/metadata/uid").cloned() == uid);
            if !same_pod {
                return;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                r = store_changed.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok(builder
        .body(http_body_util::StreamBody::new(stream).boxed_unsync())
        .expect("valid response"))
}
