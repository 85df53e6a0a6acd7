//! `pods/exec` and `pods/attach` sessions over WebSocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`) and SPDY/3.1 (`v4.channel.k8s.io` down to `channel.k8s.io`), as the
//! kubelet serves them (`pkg/kubelet/cri/streaming/remotecommand`).
//!
//! WebSocket: each binary message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr,
//! 3 error (the final `Status`), 4 resize; v5 adds `[255, channel]` to close a channel. The
//! socket is closed normally after the status.
//!
//! SPDY: the client opens one stream per channel, typed by its `streamType` header (`error`,
//! `stdin`, `stdout`, `stderr`, `resize`); the session starts once all the streams the query
//! asks for are there (`tty` drops `stderr`; `resize` only from v3 on). Output streams are
//! half-closed when the process ends, then the error stream carries the result: v4 a
//! `metav1.Status` JSON (`Success`, or `NonZeroExitCode` with an `ExitCode` cause), v1–v3 the
//! message text on failure only. Then GOAWAY; the client closes the connection.
//!
//! What runs is a [`Job`]: a built-in command ([`crate::shell`]) for exec, the container's
//! main process ([`crate::attach`]) for attach.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use crate::api::Query;
use crate::resources;
use crate::server::{Body, Shared};
use crate::shell::{self, Out, STDERR, STDOUT, Stdin};
use crate::spdy::Connection;
use crate::status::{ApiError, Result};
use crate::upgrade;

/// WebSocket subprotocols served, best first.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// SPDY stream protocols served (`X-Stream-Protocol-Version`), best first.
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

const STDIN: u8 = 0;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// How long the client has to open its SPDY streams (the kubelet's stream creation timeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the client to close the connection after the session.
const LINGER: Duration = Duration::from_secs(5);

/// What the session runs: gets stdin and the output channel, returns the exit code.
pub type Job = Box<dyn FnOnce(Stdin, Out) -> BoxFuture<'static, i32> + Send>;

/// The streams a request asks for.
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    /// Client sends stdin.
    pub stdin: bool,
    /// Client wants stdout.
    pub stdout: bool,
    /// Client wants stderr (never with a tty).
    pub stderr: bool,
    /// A terminal: stderr goes to stdout.
    pub tty: bool,
}

impl Streams {
    /// Reads `stdin`, `stdout`, `stderr`, `tty` as the kubelet's `NewOptions` does.
    pub fn from_query(q: &Query) -> Result<Self> {
        let tty = q.flag("tty");
        let s = Self {
            stdin: q.flag("stdin"),
            stdout: q.flag("stdout"),
            stderr: q.flag("stderr") && !tty,
            tty,
        };
        if !s.stdin && !s.stdout && !q.flag("stderr") {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(s)
    }
}

/// The pod a streaming request is about, checked as the apiserver's `streamLocation` does.
#[derive(Clone, Debug)]
pub struct Target {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod uid.
    pub uid: String,
    /// Container name.
    pub container: String,
    /// The pod object.
    pub object: crate::store::Object,
}

/// Looks up the pod and container: 404 for a missing pod, 400 for a bad or missing container
/// name or a pod without a node; a container that is not running (pod phase other than
/// `Running`) is a 404 `container not found`, as the kubelet reports it.
pub fn target(shared: &Shared, ns: &str, pod: &str, container: Option<&str>) -> Result<Target> {
    let res = resources::by_plural("", "v1", "pods").expect("pods are served");
    let obj = shared.store.get(res, Some(ns), pod)?;
    let container = crate::logs::pick_container(&obj, container)?;
    if obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "pod {pod} does not have a host assigned"
        )));
    }
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    if phase != "Running" {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("container not found (\"{container}\")"),
        ));
    }
    Ok(Target {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        uid: obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        container,
        object: obj,
    })
}

/// `…/pods/{name}/exec`.
pub fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let t = target(&shared, ns, pod, q.get("container"))?;
    let command: Vec<String> = q.all("command").into_iter().map(str::to_string).collect();
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let streams = Streams::from_query(q)?;
    let ctx = shell::Context {
        files: shared
            .files
            .tree(&t.namespace, &t.pod, &t.uid, &t.container),
        pod: t.pod,
        namespace: t.namespace,
        container: t.container,
    };
    let described = command.join(" ");
    let job: Job = Box::new(move |mut stdin, out| {
        Box::pin(async move { shell::run(&ctx, &command, &mut stdin, &out).await })
    });
    Ok(session(req, streams, job, described))
}

/// Answers the upgrade (WebSocket or SPDY) and runs the job on the upgraded connection.
pub fn session(
    mut req: Request<Incoming>,
    streams: Streams,
    job: Job,
    described: String,
) -> Response<Body> {
    let headers = req.headers().clone();
    let upgrade = hyper::upgrade::on(&mut req);
    if upgrade::is_websocket(&headers) {
        let (resp, protocol) = match upgrade::websocket(&headers, PROTOCOLS, false) {
            Ok(r) => r,
            Err(e) => return crate::server::error_response(&e),
        };
        let v5 = protocol.starts_with("v5.");
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    websocket_session(ws, streams, job, v5, described).await;
                }
                Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
            }
        });
        return resp;
    }
    if upgrade::is_spdy(&headers) {
        let (resp, protocol) = match upgrade::spdy(&headers, SPDY_PROTOCOLS) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let version = match protocol.as_str() {
            "v4.channel.k8s.io" => 4,
            "v3.channel.k8s.io" => 3,
            "v2.channel.k8s.io" => 2,
            _ => 1,
        };
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let conn = Connection::serve(TokioIo::new(upgraded));
                    spdy_session(conn, version, streams, job, described).await;
                }
                Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
            }
        });
        return resp;
    }
    crate::server::error_response(&upgrade::missing())
}

/// The v4/v5 `Status` for an exit code.
fn status(code: i32, described: &str) -> Value {
    if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": failure_message(code, described),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        })
    }
}

fn failure_message(code: i32, described: &str) -> String {
    format!(
        "command terminated with non-zero exit code: error executing command [{described}], exit code {code}"
    )
}

/// Where output goes: `None` drops it (the client did not ask for that stream).
fn route(streams: Streams, ch: u8) -> Option<u8> {
    let ch = if streams.tty && ch == STDERR {
        STDOUT
    } else {
        ch
    };
    ((ch == STDOUT && streams.stdout) || (ch == STDERR && streams.stderr)).then_some(ch)
}

async fn websocket_session<S>(
    ws: WebSocketStream<S>,
    streams: Streams,
    job: Job,
    v5: bool,
    described: String,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(64);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(64);
    // Reader: stdin data and close signals; the socket closing ends stdin too.
    let stdin_on = streams.stdin;
    let reader = tokio::spawn(async move {
        let mut stdin_tx = stdin_on.then_some(stdin_tx);
        while let Some(msg) = source.next().await {
            let msg = msg.map(text_as_binary);
            match msg {
                Ok(Message::Binary(data)) if !data.is_empty() => match data[0] {
                    STDIN => {
                        if let Some(tx) = &stdin_tx
                            && tx.send(data.slice(1..)).await.is_err()
                        {
                            stdin_tx = None;
                        }
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) => stdin_tx = None,
                    _ => {}
                },
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let runner = tokio::spawn(job(Stdin::new(stdin_rx), out_tx));
    let mut reader = reader;
    // Writer: forward output until the job is done and its output drained, or the client
    // closes the socket (attach runs until then).
    loop {
        let (ch, data) = tokio::select! {
            item = out_rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
            _ = &mut reader => {
                runner.abort();
                return;
            }
        };
        let Some(ch) = route(streams, ch) else {
            continue;
        };
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(ch);
        frame.extend_from_slice(&data);
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            reader.abort();
            runner.abort();
            return;
        }
    }
    let code = runner.await.unwrap_or(1);
    let mut frame = vec![ERROR];
    frame.extend_from_slice(status(code, &described).to_string().as_bytes());
    let _ = sink.send(Message::Binary(frame.into())).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

async fn spdy_session(
    mut conn: Connection,
    version: u8,
    streams: Streams,
    job: Job,
    described: String,
) {
    let expected = 1
        + usize::from(streams.stdin)
        + usize::from(streams.stdout)
        + usize::from(streams.stderr)
        + usize::from(streams.tty && version >= 3);
    let mut error = None;
    let mut stdin = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while received < expected {
        let s = match tokio::time::timeout_at(deadline, conn.accept()).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("timed out waiting for client to create streams");
                return;
            }
        };
        match s.headers.get("streamtype").unwrap_or_default() {
            "error" => error = Some(s),
            "stdin" => stdin = Some(s),
            "stdout" => stdout = Some(s),
            "stderr" => stderr = Some(s),
            "resize" => {
                // Terminal sizes are read and dropped: the built-in commands have no terminal.
                let mut rx = s.rx;
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
            }
            other => {
                tracing::debug!(stream_type = other, "unexpected stream type");
                continue;
            }
        }
        received += 1;
    }
    let stdin = match stdin {
        Some(s) => Stdin::new(s.rx),
        None => Stdin::closed(),
    };
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(64);
    let mut runner = tokio::spawn(job(stdin, out_tx));
    loop {
        let (ch, data) = tokio::select! {
            item = out_rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
            // The client went away: nothing will read the rest (attach runs until then).
            _ = conn.closed() => {
                runner.abort();
                return;
            }
        };
        let target = match route(streams, ch) {
            Some(STDOUT) => stdout.as_ref(),
            Some(_) => stderr.as_ref(),
            None => None,
        };
        if let Some(s) = target
            && s.tx.write(data).await.is_err()
        {
            runner.abort();
            return;
        }
    }
    let code = (&mut runner).await.unwrap_or(1);
    for s in [&stdout, &stderr].into_iter().flatten() {
        s.tx.close().await;
    }
    if let Some(e) = &error {
        let text = if version >= 4 {
            Some(status(code, &described).to_string())
        } else {
            (code != 0).then(|| failure_message(code, &described))
        };
        if let Some(text) = text {
            let _ = e.tx.write(Bytes::from(text)).await;
        }
        e.tx.close().await;
    }
    conn.shutdown(LINGER).await;
}

/// The apiserver reads a WebSocket text frame like a binary one (x/net/websocket's
/// `Message.Receive` into a `[]byte`); the Python client sends stdin as text.
pub(crate) fn text_as_binary(message: Message) -> Message {
    match message {
        Message::Text(text) => Message::Binary(Bytes::from(text)),
        other => other,
    }
}
