//! Watches: a chunked stream of JSON events, one per line, each flushed as it happens.
//!
//! - `resourceVersion` absent or `0`: the current objects as `ADDED` events, then live events;
//!   `N`: every event after N, or a single `ERROR` event with a 410 `Expired` `Status` when N is
//!   older than the kept history (as the apiserver does: HTTP 200, then the error event).
//! - `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan`): initial `ADDED`
//!   events, then a `BOOKMARK` annotated `k8s.io/initial-events-end: "true"`.
//! - `allowWatchBookmarks=true`: a `BOOKMARK` every bookmark interval.
//! - `timeoutSeconds`: the stream ends cleanly after that long.
//! - Label and field selectors filter events; an object that stops matching is sent as
//!   `DELETED` (its previous state), one that starts matching as `ADDED`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{Format, Query};
use crate::resources::{self, ResourceInfo};
use crate::selector::Selectors;
use crate::server::{Body, Shared};
use crate::status::{ApiError, Result};
use crate::store::{Event, EventType};
use crate::table;

type Chunk = std::result::Result<Frame<Bytes>, std::io::Error>;

/// Counts a watch as open while alive.
struct OpenWatch(Arc<Shared>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Encoder {
    res: &'static ResourceInfo,
    format: Format,
    headers_sent: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = if let (Format::Table(include), false) =
            (self.format, matches!(kind, "ERROR" | "BOOKMARK"))
        {
            let t = table::table(self.res, &[obj], !self.headers_sent, include);
            self.headers_sent = true;
            t
        } else {
            obj.clone()
        };
        let mut buf =
            serde_json::to_vec(&json!({"type": kind, "object": object})).expect("event serialises");
        buf.push(b'\n');
        Bytes::from(buf)
    }
}

fn bookmark(res: &ResourceInfo, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta})
}

/// What one store event means for this watch, if anything.
fn translate(
    ev: &Event,
    res_idx: usize,
    ns: Option<&str>,
    sel: &Selectors,
) -> Option<(&'static str, Value)> {
    if ev.resource != res_idx || ns.is_some_and(|ns| ns != ev.namespace) {
        return None;
    }
    let cur = ev.kind != EventType::Deleted && sel.matches(&ev.object);
    let old = ev.prev.as_ref().is_some_and(|p| sel.matches(p));
    match (cur, old) {
        (true, false) => Some(("ADDED", (*ev.object).clone())),
        (true, true) => Some(("MODIFIED", (*ev.object).clone())),
        (false, true) if ev.kind == EventType::Deleted => Some(("DELETED", (*ev.object).clone())),
        (false, true) => {
            // Stopped matching: a delete of the previous state at this event's version.
            let mut o = (**ev.prev.as_ref().expect("prev matched")).clone();
            o["metadata"]["resourceVersion"] = ev.rv.to_string().into();
            Some(("DELETED", o))
        }
        (false, false) => None,
    }
}

/// Starts a watch and returns the streaming response.
pub fn serve(
    shared: Arc<Shared>,
    res: &'static ResourceInfo,
    ns: Option<String>,
    sel: Selectors,
    q: &Query,
    format: Format,
) -> Result<Response<Body>> {
    let ns = if res.namespaced { ns } else { None };
    let rv_param = q.get("resourceVersion").filter(|v| !v.is_empty());
    let from: Option<u64> = match rv_param {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    if send_initial.is_some() && q.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid(
            res,
            "ListOptions.meta.k8s.io",
            "",
            vec![crate::status::StatusCause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled or resourceVersionMatch is set to NotOlderThan".into(),
                field: "sendInitialEvents".into(),
            }],
        ));
    }
    let initial = match send_initial {
        Some(s) => s,
        None => from.is_none(),
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = q
        .number::<u64>("timeoutSeconds")?
        .map(Duration::from_secs)
        .unwrap_or(shared.default_watch_timeout);

    let (tx, rx) = mpsc::channel::<Chunk>(128);
    shared.open_watches.fetch_add(1, Ordering::SeqCst);
    let guard = OpenWatch(shared.clone());
    let mut enc = Encoder {
        res,
        format,
        headers_sent: false,
    };
    let task_shared = shared.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let shared = task_shared;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut dropped = shared.faults.watch_epoch();
        dropped.borrow_and_update();
        // Subscribe before reading so no change between the snapshot and the loop is missed.
        let mut changed = shared.store.subscribe();
        let res_idx = resources::index_of(res);
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(Frame::data(b))).await.is_ok() }
        };
        let mut last = match from {
            Some(rv) => rv,
            None => shared.store.resource_version(),
        };
        if initial {
            let page = match shared.store.list(res, ns.as_deref(), &sel, None, None) {
                Ok(p) => p,
                Err(e) => {
                    let _ = send(enc.line("ERROR", &e.to_status())).await;
                    return;
                }
            };
            last = page.resource_version;
            for obj in &page.items {
                if !send(enc.line("ADDED", obj)).await {
                    return;
                }
            }
            if send_initial == Some(true)
                && bookmarks
                && !send(enc.line("BOOKMARK", &bookmark(res, last, true))).await
            {
                return;
            }
        }
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + shared.bookmark_interval,
            shared.bookmark_interval,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Deliver everything after `last`.
            match shared.store.events_after(last) {
                Err(oldest) => {
                    let err =
                        ApiError::expired(format!("too old resource version: {last} ({oldest})"));
                    let _ = send(enc.line("ERROR", &err.to_status())).await;
                    return;
                }
                Ok(events) => {
                    for ev in &events {
                        last = ev.rv;
                        if let Some((kind, obj)) = translate(ev, res_idx, ns.as_deref(), &sel)
                            && !send(enc.line(kind, &obj)).await
                        {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = ticker.tick(), if bookmarks => {
                    if !send(enc.line("BOOKMARK", &bookmark(res, last, false))).await {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = dropped.changed() => {
                    let _ = tx.send(Err(std::io::Error::other("watch dropped by fault injection"))).await;
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let body: Body = http_body_util::StreamBody::new(stream).boxed_unsync();
    let content_type = if matches!(format, Format::Table(_)) {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Ok(Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header("cache-control", "no-cache, private")
        .body(body)
        .expect("valid response"))
}
