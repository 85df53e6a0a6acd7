//! `pods/portforward`, as the kubelet serves it (`pkg/kubelet/cri/streaming/portforward`):
//!
//! - SPDY/3.1 with `X-Stream-Protocol-Version: portforward.k8s.io`: every forwarded
//!   connection is a pair of client streams, `streamType: error` and `streamType: data`, with
//!   the same `port` and `requestID` headers (older clients without `requestID` are paired by
//!   stream id, as the kubelet does). Failures are written as text on the error stream.
//! - WebSocket without a subprotocol or with `v4.channel.k8s.io`, ports in `?ports=`: two
//!   channels per port (data `2i`, error `2i+1`), each starting with the port as two
//!   little-endian bytes; one connection per port for the life of the socket.
//! - SPDY tunneled over WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`, KEP-4006, what
//!   kubectl ≥ 1.31 uses): every binary message carries SPDY bytes; the SPDY session is the
//!   same as above.
//!
//! What a connection reaches (there are no containers): a port declared in a container's
//! `ports` whose `name` starts with `http` is a small HTTP/1.1 server answering every request
//! with JSON `{namespace, pod, port, method, path, body}`; any other declared port echoes
//! bytes back; a port no container declares refuses the connection, reported on the error
//! stream as the kubelet reports a refused dial.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::api::Query;
use crate::server::{Body, Shared};
use crate::spdy::{Connection, Stream, StreamWriter};
use crate::status::{ApiError, Result};
use crate::upgrade;

/// The SPDY stream protocol.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunneled over WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The WebSocket channel protocol.
pub const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";

const BUFFER: usize = 64 * 1024;

/// What listens on a port of the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// An HTTP server describing each request.
    Http,
    /// Echoes what it reads.
    Echo,
}

/// The listener of a port, from the containers' declared ports (`None`: nothing listens).
pub fn listener(pod: &Value, port: u16) -> Option<Listener> {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array)?;
    containers
        .iter()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .find(|p| {
            p.get("containerPort").and_then(Value::as_u64) == Some(u64::from(port))
                && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == "TCP"
        })
        .map(|p| {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if name.starts_with("http") {
                Listener::Http
            } else {
                Listener::Echo
            }
        })
}

/// The pod being forwarded to.
#[derive(Debug)]
struct Pod {
    namespace: String,
    name: String,
    uid: String,
    object: Value,
}

impl Pod {
    /// The kubelet's error text for a port: `error forwarding port P to pod …` around what the
    /// runtime said (containerd's wording for a refused dial).
    fn refused(&self, port: u16) -> String {
        format!(
            "error forwarding port {port} to pod {}, uid : failed to execute portforward in network namespace \"/var/run/netns/{}\": failed to connect to localhost:{port} inside namespace \"{}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused ",
            self.uid, self.name, self.uid
        )
    }

    /// Connects to a port: the in-memory end to read and write, or the error text.
    fn connect(self: &Arc<Self>, port: u16) -> std::result::Result<DuplexStream, String> {
        let listener = listener(&self.object, port).ok_or_else(|| self.refused(port))?;
        let (client, server) = tokio::io::duplex(BUFFER);
        let pod = self.clone();
        tokio::spawn(async move {
            match listener {
                Listener::Echo => {
                    let (mut r, mut w) = tokio::io::split(server);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                }
                Listener::Http => {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let pod = pod.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await?.to_bytes();
                            let doc = json!({
                                "namespace": pod.namespace,
                                "pod": pod.name,
                                "port": port,
                                "method": method,
                                "path": path,
                                "body": String::from_utf8_lossy(&body),
                            });
                            Ok::<_, hyper::Error>(crate::server::json_response(200, &doc))
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(server), service);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "port-forward HTTP connection ended");
                    }
                }
            }
        });
        Ok(client)
    }
}

/// `…/pods/{name}/portforward`.
pub fn serve(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    ns: &str,
    name: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let res = crate::resources::by_plural("", "v1", "pods").expect("pods are served");
    let obj = shared.store.get(res, Some(ns), name)?;
    if obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let pod = Arc::new(Pod {
        namespace: ns.to_string(),
        name: name.to_string(),
        uid: obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        object: (*obj).clone(),
    });
    let headers = req.headers().clone();
    if upgrade::is_websocket(&headers) {
        let (resp, protocol) =
            upgrade::websocket(&headers, &[TUNNEL_PROTOCOL, CHANNEL_PROTOCOL], true)?;
        let ports = if protocol == TUNNEL_PROTOCOL {
            Vec::new()
        } else {
            ports(q)?
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else {
                return;
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            if protocol == TUNNEL_PROTOCOL {
                spdy_session(Connection::serve(tunnel(ws)), pod).await;
            } else {
                channel_session(ws, pod, ports).await;
            }
        });
        return Ok(resp);
    }
    if upgrade::is_spdy(&headers) {
        let (resp, _) = match upgrade::spdy(&headers, &[SPDY_PROTOCOL]) {
            Ok(r) => r,
            Err(resp) => return Ok(resp),
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                spdy_session(Connection::serve(TokioIo::new(upgraded)), pod).await;
            }
        });
        return Ok(resp);
    }
    Err(upgrade::missing())
}

/// `?ports=` as the kubelet's `NewV4Options` reads it (repeatable, comma-separated).
fn ports(q: &Query) -> Result<Vec<u16>> {
    let given = q.all("ports");
    if given.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"port\" is required",
        ));
    }
    let mut out = Vec::new();
    for s in given {
        if s.is_empty() {
            return Err(ApiError::bad_request(
                "query parameter \"port\" cannot be empty",
            ));
        }
        for p in s.split(',') {
            match p.parse::<u16>() {
                Ok(0) => {
                    return Err(ApiError::bad_request(format!("port \"{s}\" must be > 0")));
                }
                Ok(n) => out.push(n),
                Err(e) => {
                    return Err(ApiError::bad_request(format!(
                        "unable to parse \"{s}\" as a port: {e}"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// A byte stream over WebSocket binary messages (client-go's `TunnelingConnection`): each
/// write is one message, reads run across message boundaries.
fn tunnel<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (near, far) = tokio::io::duplex(BUFFER);
    let (mut far_r, mut far_w) = tokio::io::split(far);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            match msg {
                Message::Binary(b) if far_w.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = far_w.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; BUFFER];
        loop {
            match far_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    near
}

/// Writes what the client sends into the forwarded connection, then half-closes it.
fn feed(
    mut conn: tokio::io::WriteHalf<DuplexStream>,
    mut from_client: mpsc::Receiver<Bytes>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(data) = from_client.recv().await {
            if conn.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = conn.shutdown().await;
    })
}

/// Copies between a forwarded connection and a SPDY data stream, half-closing each way.
async fn bridge(conn: DuplexStream, from_client: mpsc::Receiver<Bytes>, to_client: StreamWriter) {
    let (mut r, w) = tokio::io::split(conn);
    let upstream = feed(w, from_client);
    // The forward ends when the target is done sending (the kubelet's copy back returns).
    let mut buf = vec![0u8; BUFFER];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to_client
                    .write(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    upstream.abort();
}

async fn forward(pod: Arc<Pod>, data: Stream, error: Stream) {
    let port: u16 = data
        .headers
        .get("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    match pod.connect(port) {
        Ok(conn) => bridge(conn, data.rx, data.tx.clone()).await,
        Err(msg) => {
            let _ = error.tx.write(Bytes::from(msg)).await;
        }
    }
    data.tx.close().await;
    error.tx.close().await;
}

async fn spdy_session(mut conn: Connection, pod: Arc<Pod>) {
    let mut pairs: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(s) = conn.accept().await {
        let port_ok = s
            .headers
            .get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p > 0);
        let kind = s.headers.get("streamtype").unwrap_or_default().to_string();
        if !port_ok || !matches!(kind.as_str(), "data" | "error") {
            // The kubelet's stream handler rejects such streams.
            s.tx.reset().await;
            continue;
        }
        let id = match s.headers.get("requestid") {
            Some(id) if !id.is_empty() => id.to_string(),
            // Older clients: error and data streams are consecutive odd ids.
            _ if kind == "error" => s.id.to_string(),
            _ => s.id.saturating_sub(2).to_string(),
        };
        let entry = pairs.entry(id.clone()).or_default();
        if kind == "data" {
            entry.0 = Some(s);
        } else {
            entry.1 = Some(s);
        }
        if entry.0.is_some() && entry.1.is_some() {
            let (Some(data), Some(error)) = pairs.remove(&id).unwrap_or_default() else {
                continue;
            };
            tokio::spawn(forward(pod.clone(), data, error));
        }
    }
}

async fn channel_session<S>(ws: WebSocketStream<S>, pod: Arc<Pod>, ports: Vec<u16>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let mut inputs: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        for ch in [data_ch, error_ch] {
            let mut frame = vec![ch];
            frame.extend_from_slice(&port.to_le_bytes());
            let _ = out_tx.send(frame).await;
        }
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(16);
        inputs.push(Some(in_tx));
        let out = out_tx.clone();
        let pod = pod.clone();
        tokio::spawn(async move {
            match pod.connect(port) {
                Ok(conn) => {
                    let (mut r, w) = tokio::io::split(conn);
                    let up = feed(w, in_rx);
                    let mut buf = vec![0u8; BUFFER];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut frame = Vec::with_capacity(n + 1);
                                frame.push(data_ch);
                                frame.extend_from_slice(&buf[..n]);
                                if out.send(frame).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    up.abort();
                }
                Err(msg) => {
                    let mut frame = vec![error_ch];
                    frame.extend_from_slice(msg.as_bytes());
                    let _ = out.send(frame).await;
                }
            }
        });
    }
    drop(out_tx);
    loop {
        tokio::select! {
            frame = out_rx.recv() => match frame {
                Some(f) => if sink.send(Message::Binary(f.into())).await.is_err() { return },
                // Every forward finished and its output is sent: close, as the kubelet does.
                None => break,
            },
            msg = source.next() => match msg {
                Some(Ok(m)) => match crate::exec::text_as_binary(m) {
                    Message::Binary(b) if !b.is_empty() => {
                        let ch = usize::from(b[0]);
                        if ch % 2 == 0
                            && let Some(Some(tx)) = inputs.get(ch / 2)
                            && tx.send(b.slice(1..)).await.is_err()
                        {
                            inputs[ch / 2] = None;
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                },
                Some(Err(_)) | None => return,
            },
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_follow_declared_ports() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 7000}]},
            {"name": "b", "ports": [{"name": "http-alt", "containerPort": 9090, "protocol": "TCP"},
                                     {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}
        ]}});
        assert_eq!(listener(&pod, 8080), Some(Listener::Http));
        assert_eq!(listener(&pod, 9090), Some(Listener::Http));
        assert_eq!(listener(&pod, 7000), Some(Listener::Echo));
        assert_eq!(listener(&pod, 53), None);
        assert_eq!(listener(&pod, 1), None);
    }
}
