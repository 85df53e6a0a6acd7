//! `pods/attach`: connects to a container's main process.
//!
//! The simulator runs no processes, so a container's "main process" is its output — the
//! container's log ([`crate::logs`]) — plus, for a container whose `command` (or `args` when
//! there is no command) is exactly `["cat"]`, an echo: what an attached client writes on stdin
//! is appended to the log, and so comes back on every attached client's stdout, as with a real
//! `cat` whose output is the container log. Any other container ignores stdin.
//!
//! Output starts at the log's end when the client attaches (earlier output is not replayed,
//! as with a real attach). The session ends when the client goes away, when the pod is
//! deleted, or — for the echo with `stdinOnce: true` in the container spec — when the client
//! closes stdin (the real `cat` then exits; the simulated container's status does not change).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use crate::api::Query;
use crate::exec::{self, Job, Streams};
use crate::resources;
use crate::server::{Body, Shared};
use crate::shell::{Out, STDOUT, Stdin};
use crate::status::Result;

/// What the container's main process does with stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainProcess {
    /// `cat`: stdin is echoed into the log.
    Echo {
        /// The container spec's `stdinOnce`: closing stdin ends the process.
        stdin_once: bool,
    },
    /// Anything else: stdin is read and dropped.
    LogOnly,
}

/// Decides the main process from the container spec.
pub fn main_process(pod: &Value, container: &str) -> MainProcess {
    let Some(spec) = crate::logs::container_spec(pod, container) else {
        return MainProcess::LogOnly;
    };
    let words = |key: &str| -> Vec<String> {
        spec.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = words("command");
    let argv = if command.is_empty() {
        words("args")
    } else {
        command
    };
    let is_cat = argv.len() == 1 && argv[0].rsplit('/').next() == Some("cat");
    if is_cat {
        MainProcess::Echo {
            stdin_once: spec.get("stdinOnce").and_then(Value::as_bool) == Some(true),
        }
    } else {
        MainProcess::LogOnly
    }
}

/// `…/pods/{name}/attach`.
pub fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let t = exec::target(&shared, ns, pod, q.get("container"))?;
    let streams = Streams::from_query(q)?;
    let main = main_process(&t.object, &t.container);
    if let Some(text) = t
        .object
        .pointer("/metadata/annotations/kube-sim~1log")
        .and_then(Value::as_str)
    {
        shared.logs.init(ns, pod, text);
    }
    let job: Job = Box::new(move |stdin, out| Box::pin(run(shared, t, main, stdin, out)));
    Ok(exec::session(req, streams, job, "attach".into()))
}

async fn run(
    shared: Arc<Shared>,
    t: exec::Target,
    main: MainProcess,
    mut stdin: Stdin,
    out: Out,
) -> i32 {
    let res = resources::by_plural("", "v1", "pods").expect("pods are served");
    let key = (t.namespace.clone(), t.pod.clone(), t.container.clone());
    let mut changed = shared.logs.subscribe();
    let mut store_changed = shared.store.subscribe();
    let mut sent = shared.logs.read(&key, 0).len();
    let mut stdin_open = true;
    loop {
        let more = shared.logs.read(&key, sent);
        sent += more.len();
        let text: String = more.into_iter().map(|(_, line)| line).collect();
        if !text.is_empty() && out.send((STDOUT, Bytes::from(text))).await.is_err() {
            return 0;
        }
        if !stdin_open && matches!(main, MainProcess::Echo { stdin_once: true }) {
            return 0;
        }
        let same_pod = shared
            .store
            .get(res, Some(&t.namespace), &t.pod)
            .is_ok_and(|p| p.pointer("/metadata/uid").and_then(Value::as_str) == Some(&t.uid));
        if !same_pod {
            return 0;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return 0 },
            r = store_changed.changed() => if r.is_err() { return 0 },
            chunk = stdin.chunk(), if stdin_open => match chunk {
                Some(data) => {
                    if let MainProcess::Echo { .. } = main {
                        shared.logs.append_resolved(
                            &t.namespace,
                            &t.pod,
                            &t.container,
                            &String::from_utf8_lossy(&data),
                        );
                    }
                }
                None => stdin_open = false,
            },
            _ = out.closed() => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn main_process_is_an_echo_only_for_cat() {
        let pod = |c: Value| json!({"spec": {"containers": [c]}});
        assert_eq!(
            main_process(
                &pod(json!({"name": "a", "command": ["cat"], "stdinOnce": true})),
                "a"
            ),
            MainProcess::Echo { stdin_once: true }
        );
        assert_eq!(
            main_process(&pod(json!({"name": "a", "args": ["/bin/cat"]})), "a"),
            MainProcess::Echo { stdin_once: false }
        );
        assert_eq!(
            main_process(&pod(json!({"name": "a", "command": ["sleep", "1d"]})), "a"),
            MainProcess::LogOnly
        );
        assert_eq!(
            main_process(&pod(json!({"name": "a"})), "b"),
            MainProcess::LogOnly
        );
    }
}
