//! The server side of SPDY/3.1 as Kubernetes uses it (`Upgrade: SPDY/3.1`) for exec, attach
//! and port-forward: the client opens streams (SYN_STREAM with headers such as `streamType`),
//! the server accepts each with a SYN_REPLY, and both sides exchange DATA until they half-close
//! with FIN.
//!
//! Written by hand: no maintained Rust crate serves SPDY (the one found, `spdy-mux`, is a
//! young client-side multiplexer over WebSocket pools that enforces flow control, which
//! Kubernetes' peers do not send credit for).
//!
//! What the peer does, and so what this does (moby/spdystream, used by client-go and the
//! kubelet):
//! - No flow control. spdystream never sends WINDOW_UPDATE and ignores the ones it gets, so
//!   windows are ignored here too; back-pressure comes from TCP (a stream's reader that does
//!   not read stops this connection's frame reader, as spdystream's unbuffered channels do).
//! - SETTINGS and WINDOW_UPDATE are ignored; PINGs with the peer's (odd) ids are echoed.
//! - DATA on a stream spdystream has not seen a SYN_REPLY for is dropped, so every stream is
//!   answered before anything is written on it.
//! - `Close` sends GOAWAY; the peer then closes the connection once its streams are done.

mod frame;
mod header;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use frame::Frame;
pub use header::Headers;

/// The `Upgrade` token.
pub const UPGRADE: &str = "SPDY/3.1";

/// Largest DATA payload written at once; spdystream reads whole frames into memory.
const MAX_DATA: usize = 32 * 1024;

/// Errors on a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] frame::Error),
    /// A header block could not be (de)compressed.
    #[error(transparent)]
    Header(#[from] header::Error),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The connection is gone.
    #[error("the SPDY connection is closed")]
    Closed,
}

/// What the writer task sends.
#[derive(Debug)]
enum Out {
    Reply(u32),
    Data(u32, Bytes, bool),
    Reset(u32, u32),
    Ping(u32),
    GoAway,
    /// Flush, close the socket's write side and stop.
    Close,
}

/// A stream the client opened.
#[derive(Debug)]
pub struct Stream {
    /// Stream id.
    pub id: u32,
    /// Headers of its SYN_STREAM.
    pub headers: Headers,
    /// DATA from the client; ends at FIN or RST_STREAM.
    pub rx: mpsc::Receiver<Bytes>,
    /// Writes to the client.
    pub tx: StreamWriter,
}

/// Writes DATA on one stream; cheap to clone.
#[derive(Clone, Debug)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

impl StreamWriter {
    /// Sends bytes (split into frames of at most 32 KiB).
    pub async fn write(&self, data: Bytes) -> Result<(), Error> {
        let mut data = data;
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(MAX_DATA));
            self.out
                .send(Out::Data(self.id, chunk, false))
                .await
                .map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    /// Half-closes the stream (an empty DATA frame with FIN).
    pub async fn close(&self) {
        let _ = self.out.send(Out::Data(self.id, Bytes::new(), true)).await;
    }

    /// Aborts the stream with RST_STREAM `CANCEL`.
    pub async fn reset(&self) {
        let _ = self.out.send(Out::Reset(self.id, frame::CANCEL)).await;
    }
}

/// A served SPDY connection: streams come in through [`Connection::accept`].
#[derive(Debug)]
pub struct Connection {
    streams: mpsc::UnboundedReceiver<Stream>,
    out: mpsc::Sender<Out>,
    ended: watch::Receiver<bool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Connection {
    /// Serves SPDY on an upgraded connection.
    pub fn serve<S>(io: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (streams_tx, streams) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(false);
        let writer = tokio::spawn(async move {
            if let Err(e) = write_loop(wr, out_rx).await {
                tracing::debug!(error = %e, "SPDY writer ended");
            }
        });
        let reader_out = out_tx.clone();
        let reader = tokio::spawn(async move {
            if let Err(e) = read_loop(rd, reader_out, streams_tx).await {
                tracing::debug!(error = %e, "SPDY reader ended");
            }
            ended_tx.send_replace(true);
        });
        Self {
            streams,
            out: out_tx,
            ended,
            reader,
            writer,
        }
    }

    /// The next stream the client opens; `None` once the client closed the connection.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.streams.recv().await
    }

    /// Resolves when the client has closed the connection (or it failed).
    pub async fn closed(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Sends GOAWAY, waits (at most `linger`) for the client to close the connection after its
    /// streams are done, as spdystream's `Close` leads it to, then drops the connection.
    pub async fn shutdown(mut self, linger: Duration) {
        let _ = self.out.send(Out::GoAway).await;
        let _ = tokio::time::timeout(linger, self.closed()).await;
        // Frames queued before are written first: the queue is in order.
        let _ = self.out.send(Out::Close).await;
        let _ = tokio::time::timeout(linger, &mut self.writer).await;
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Out>,
) -> Result<(), Error> {
    let mut deflater = header::Deflater::new()?;
    let mut last_accepted = 0;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut closing = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Batch what is queued into one write.
        while let Some(out) = next.take() {
            let f = match out {
                Out::Close => {
                    closing = true;
                    break;
                }
                Out::Reply(id) => {
                    last_accepted = last_accepted.max(id);
                    Frame::SynReply {
                        stream_id: id,
                        flags: 0,
                        headers: deflater.deflate(&Headers::default())?.into(),
                    }
                }
                Out::Data(id, data, fin) => Frame::Data {
                    stream_id: id,
                    flags: if fin { frame::FLAG_FIN } else { 0 },
                    data,
                },
                Out::Reset(id, status) => Frame::RstStream {
                    stream_id: id,
                    status,
                },
                Out::Ping(id) => Frame::Ping { id },
                Out::GoAway => Frame::GoAway {
                    last_good: last_accepted,
                    status: 0,
                },
            };
            frame::encode(&f, &mut buf);
            if buf.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        wr.write_all(&buf).await?;
        wr.flush().await?;
        buf.clear();
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    out: mpsc::Sender<Out>,
    streams: mpsc::UnboundedSender<Stream>,
) -> Result<(), Error> {
    let mut inflater = header::Inflater::default();
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut next_id = 1;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let f = match frame::decode(&mut buf)? {
            Some(f) => f,
            None => {
                if rd.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
                continue;
            }
        };
        match f {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                let headers = inflater.inflate(&headers)?;
                // Client streams are odd and increasing (spdystream's validateStreamId).
                if stream_id % 2 == 0 || stream_id < next_id {
                    let _ = out.send(Out::Reset(stream_id, frame::PROTOCOL_ERROR)).await;
                    continue;
                }
                next_id = stream_id + 2;
                let (tx, rx) = mpsc::channel(16);
                if flags & frame::FLAG_FIN == 0 {
                    open.insert(stream_id, tx);
                }
                // The reply is queued before the stream is handed out, so it precedes any DATA.
                out.send(Out::Reply(stream_id))
                    .await
                    .map_err(|_| Error::Closed)?;
                let _ = streams.send(Stream {
                    id: stream_id,
                    headers,
                    rx,
                    tx: StreamWriter {
                        id: stream_id,
                        out: out.clone(),
                    },
                });
            }
            Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
                // Inflated only to keep the shared zlib stream in step.
                inflater.inflate(&headers)?;
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(tx) = open.get(&stream_id)
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    // Nobody reads this stream any more: later data is dropped.
                    open.remove(&stream_id);
                }
                if flags & frame::FLAG_FIN != 0 {
                    open.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                open.remove(&stream_id);
            }
            Frame::Ping { id } if id % 2 == 1 => {
                let _ = out.send(Out::Ping(id)).await;
            }
            Frame::Ping { .. }
            | Frame::Settings { .. }
            | Frame::WindowUpdate { .. }
            | Frame::GoAway { .. }
            | Frame::Unknown { .. } => {}
        }
    }
}
