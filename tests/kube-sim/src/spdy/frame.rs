//! SPDY/3 frames on the wire (draft-mbelshe-httpbis-spdy-00 §2.2–2.6), with header blocks kept
//! compressed: the connection owns the zlib streams, which span every header block of a
//! direction in order.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

/// The protocol version carried by every control frame.
pub const VERSION: u16 = 3;
/// `FLAG_FIN` on DATA, SYN_STREAM, SYN_REPLY and HEADERS: the sender's last frame.
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status `PROTOCOL_ERROR`.
pub const PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status `CANCEL`.
pub const CANCEL: u32 = 5;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Errors reading frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A control frame shorter than its type's fixed fields.
    #[error("control frame type {kind} too short ({len} bytes)")]
    Short {
        /// Frame type.
        kind: u16,
        /// Payload length.
        len: usize,
    },
}

/// One frame. Header blocks (`headers`) are compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// Stream id (odd from the client).
        stream_id: u32,
        /// Stream this one belongs to (0: none).
        associated_to: u32,
        /// 3-bit priority (0 highest).
        priority: u8,
        /// `FLAG_FIN`, `FLAG_UNIDIRECTIONAL`.
        flags: u8,
        /// Compressed header block.
        headers: Bytes,
    },
    /// Accepts a stream.
    SynReply {
        /// Stream id.
        stream_id: u32,
        /// `FLAG_FIN`.
        flags: u8,
        /// Compressed header block.
        headers: Bytes,
    },
    /// Aborts a stream.
    RstStream {
        /// Stream id.
        stream_id: u32,
        /// Status code (`PROTOCOL_ERROR`, `CANCEL`, …).
        status: u32,
    },
    /// Connection settings: (flags, id, value) entries.
    Settings {
        /// Frame flags.
        flags: u8,
        /// Entries.
        entries: Vec<(u8, u32, u32)>,
    },
    /// Liveness check; the receiver echoes the peer's ids.
    Ping {
        /// Odd from the client, even from the server.
        id: u32,
    },
    /// No new streams after `last_good`.
    GoAway {
        /// Last stream the sender accepted.
        last_good: u32,
        /// 0 OK, 1 protocol error, 2 internal error.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// Stream id.
        stream_id: u32,
        /// `FLAG_FIN`.
        flags: u8,
        /// Compressed header block.
        headers: Bytes,
    },
    /// Flow-control credit.
    WindowUpdate {
        /// Stream id.
        stream_id: u32,
        /// Bytes added to the window.
        delta: u32,
    },
    /// Stream data.
    Data {
        /// Stream id.
        stream_id: u32,
        /// `FLAG_FIN`.
        flags: u8,
        /// Payload.
        data: Bytes,
    },
    /// A control frame type this implementation does not know; the draft says to ignore it.
    Unknown {
        /// Frame type.
        kind: u16,
    },
}

/// Takes one frame off the front of `buf`; `Ok(None)` when more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    let head = buf.split_to(8);
    let mut p = buf.split_to(len).freeze();
    let flags = head[4];
    if head[0] & 0x80 == 0 {
        let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
        return Ok(Some(Frame::Data {
            stream_id,
            flags,
            data: p,
        }));
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(Error::Version(version));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let need = match kind {
        SYN_STREAM => 10,
        SYN_REPLY | HEADERS | SETTINGS | PING => 4,
        RST_STREAM | GOAWAY | WINDOW_UPDATE => 8,
        _ => 0,
    };
    if len < need {
        return Err(Error::Short { kind, len });
    }
    let id31 = |p: &mut Bytes| p.get_u32() & 0x7fff_ffff;
    Ok(Some(match kind {
        SYN_STREAM => {
            let stream_id = id31(&mut p);
            let associated_to = id31(&mut p);
            let priority = p.get_u8() >> 5;
            p.advance(1); // slot
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers: p,
            }
        }
        SYN_REPLY => Frame::SynReply {
            stream_id: id31(&mut p),
            flags,
            headers: p,
        },
        HEADERS => Frame::Headers {
            stream_id: id31(&mut p),
            flags,
            headers: p,
        },
        RST_STREAM => Frame::RstStream {
            stream_id: id31(&mut p),
            status: p.get_u32(),
        },
        SETTINGS => {
            let n = p.get_u32() as usize;
            let mut entries = Vec::new();
            while entries.len() < n && p.remaining() >= 8 {
                let word = p.get_u32();
                entries.push(((word >> 24) as u8, word & 0x00ff_ffff, p.get_u32()));
            }
            Frame::Settings { flags, entries }
        }
        PING => Frame::Ping { id: p.get_u32() },
        GOAWAY => Frame::GoAway {
            last_good: id31(&mut p),
            status: p.get_u32(),
        },
        WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: id31(&mut p),
            delta: p.get_u32() & 0x7fff_ffff,
        },
        kind => Frame::Unknown { kind },
    }))
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | payload.len() as u32);
    out.put_slice(payload);
}

/// Appends a frame's bytes to `out`. Payloads must fit the 24-bit length (DATA is split by
/// the connection).
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    let mut p = BytesMut::new();
    match frame {
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
            out.put_slice(data);
        }
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            flags,
            headers,
        } => {
            p.put_u32(*stream_id);
            p.put_u32(*associated_to);
            p.put_u8(priority << 5);
            p.put_u8(0);
            p.put_slice(headers);
            control(out, SYN_STREAM, *flags, &p);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            p.put_u32(*stream_id);
            p.put_slice(headers);
            control(out, SYN_REPLY, *flags, &p);
        }
        Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            p.put_u32(*stream_id);
            p.put_slice(headers);
            control(out, HEADERS, *flags, &p);
        }
        Frame::RstStream { stream_id, status } => {
            p.put_u32(*stream_id);
            p.put_u32(*status);
            control(out, RST_STREAM, 0, &p);
        }
        Frame::Settings { flags, entries } => {
            p.put_u32(entries.len() as u32);
            for (f, id, value) in entries {
                p.put_u32((u32::from(*f) << 24) | (id & 0x00ff_ffff));
                p.put_u32(*value);
            }
            control(out, SETTINGS, *flags, &p);
        }
        Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            p.put_u32(*last_good);
            p.put_u32(*status);
            control(out, GOAWAY, 0, &p);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            p.put_u32(*stream_id);
            p.put_u32(*delta);
            control(out, WINDOW_UPDATE, 0, &p);
        }
        Frame::Unknown { kind } => control(out, *kind, 0, &[]),
    }
}
