use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::Connection;
use super::frame::{self, Frame};
use super::header::{DICTIONARY, Deflater, Headers, Inflater};

fn hdrs(pairs: &[(&str, &str)]) -> Headers {
    Headers(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), vec![v.to_string()]))
            .collect(),
    )
}

#[test]
fn dictionary_has_the_drafts_size_and_ends() {
    // draft-mbelshe-httpbis-spdy-00 §2.6.10.1: 1423 bytes from "\0\0\0\x07options" to "enq=0.".
    assert_eq!(DICTIONARY.len(), 1423);
    assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
    assert!(DICTIONARY.ends_with(b",*,enq=0."));
}

#[test]
fn frames_round_trip() {
    let frames = vec![
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 3,
            flags: frame::FLAG_FIN,
            headers: Bytes::from_static(b"hdr"),
        },
        Frame::SynReply {
            stream_id: 3,
            flags: 0,
            headers: Bytes::from_static(b"x"),
        },
        Frame::RstStream {
            stream_id: 5,
            status: frame::CANCEL,
        },
        Frame::Settings {
            flags: 1,
            entries: vec![(0, 7, 65536), (1, 4, 100)],
        },
        Frame::Ping { id: 7 },
        Frame::GoAway {
            last_good: 9,
            status: 0,
        },
        Frame::Headers {
            stream_id: 11,
            flags: frame::FLAG_FIN,
            headers: Bytes::from_static(b"h"),
        },
        Frame::WindowUpdate {
            stream_id: 13,
            delta: 1000,
        },
        Frame::Data {
            stream_id: 15,
            flags: frame::FLAG_FIN,
            data: Bytes::from_static(b"payload"),
        },
    ];
    let mut wire = BytesMut::new();
    for f in &frames {
        frame::encode(f, &mut wire);
    }
    // Fed a byte at a time, frames come out only once complete.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.extend_from_slice(&[*b]);
        while let Some(f) = frame::decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
}

#[test]
fn control_frames_have_the_drafts_layout() {
    let mut wire = BytesMut::new();
    frame::encode(&Frame::Ping { id: 5 }, &mut wire);
    // Control bit + version 3, type 6, flags 0, length 4, id.
    assert_eq!(&wire[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 5]);
    let mut wire = BytesMut::new();
    frame::encode(
        &Frame::Data {
            stream_id: 3,
            flags: frame::FLAG_FIN,
            data: Bytes::from_static(b"ab"),
        },
        &mut wire,
    );
    assert_eq!(&wire[..], &[0, 0, 0, 3, 1, 0, 0, 2, b'a', b'b']);
    // Another version is refused.
    let mut bad = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 5][..]);
    assert_eq!(frame::decode(&mut bad), Err(frame::Error::Version(2)));
}

#[test]
fn header_blocks_share_one_zlib_stream_per_direction() {
    let mut d = Deflater::new().unwrap();
    let mut i = Inflater::default();
    let a = hdrs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]);
    let b = hdrs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]);
    let wa = d.deflate(&a).unwrap();
    // zlib header with FDICT set: the dictionary's checksum follows.
    assert_eq!(wa[0], 0x78);
    assert_ne!(wa[1] & 0x20, 0, "FDICT flag");
    let wb = d.deflate(&b).unwrap();
    assert_eq!(i.inflate(&wa).unwrap(), a);
    assert_eq!(i.inflate(&wb).unwrap(), b);
    assert_eq!(
        i.inflate(&d.deflate(&Headers::default()).unwrap()).unwrap(),
        Headers::default()
    );
    // Several values of one name travel NUL-joined.
    let multi = Headers(vec![("x".into(), vec!["1".into(), "2".into()])]);
    assert_eq!(i.inflate(&d.deflate(&multi).unwrap()).unwrap(), multi);
    assert_eq!(multi.get("X"), Some("1"));
}

#[test]
fn a_block_out_of_order_fails() {
    let mut d = Deflater::new().unwrap();
    let _first = d.deflate(&hdrs(&[("a", "1")])).unwrap();
    let second = d.deflate(&hdrs(&[("b", "2")])).unwrap();
    // The second block alone lacks the zlib header.
    assert!(Inflater::default().inflate(&second).is_err());
}

/// A minimal client written with the same framing, on the other end of a pipe.
struct Client {
    io: tokio::io::DuplexStream,
    d: Deflater,
    i: Inflater,
    buf: BytesMut,
}

impl Client {
    async fn send(&mut self, f: Frame) {
        let mut w = BytesMut::new();
        frame::encode(&f, &mut w);
        self.io.write_all(&w).await.unwrap();
    }

    async fn open(&mut self, id: u32, h: &Headers, fin: bool) {
        let headers = self.d.deflate(h).unwrap().into();
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: if fin { frame::FLAG_FIN } else { 0 },
            headers,
        })
        .await;
    }

    async fn next(&mut self) -> Frame {
        for _ in 0..10_000 {
            if let Some(f) = frame::decode(&mut self.buf).unwrap() {
                if let Frame::SynReply {
                    stream_id,
                    flags,
                    headers,
                } = f
                {
                    let h = self.i.inflate(&headers).unwrap();
                    assert_eq!(h, Headers::default());
                    return Frame::SynReply {
                        stream_id,
                        flags,
                        headers: Bytes::new(),
                    };
                }
                return f;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_buf(&mut self.buf))
                .await
                .expect("a frame in time")
                .unwrap();
            assert!(n > 0, "server closed the connection");
        }
        panic!("no frame");
    }
}

#[tokio::test]
async fn connection_accepts_streams_and_moves_data_both_ways() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut conn = Connection::serve(b);
    let mut c = Client {
        io: a,
        d: Deflater::new().unwrap(),
        i: Inflater::default(),
        buf: BytesMut::new(),
    };
    c.open(1, &hdrs(&[("streamtype", "stdin")]), false).await;
    let mut s = conn.accept().await.unwrap();
    assert_eq!(s.id, 1);
    assert_eq!(s.headers.get("streamType"), Some("stdin"));
    assert_eq!(
        c.next().await,
        Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Bytes::new()
        }
    );

    // Client → server, larger than any window: nothing waits for WINDOW_UPDATE.
    let big = Bytes::from(vec![7u8; 300 * 1024]);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(d) = s.rx.recv().await {
            got.extend_from_slice(&d);
        }
        (got, s.tx)
    });
    for chunk in big.chunks(50_000) {
        c.send(Frame::Data {
            stream_id: 1,
            flags: 0,
            data: Bytes::copy_from_slice(chunk),
        })
        .await;
    }
    c.send(Frame::Data {
        stream_id: 1,
        flags: frame::FLAG_FIN,
        data: Bytes::new(),
    })
    .await;
    let (got, tx) = reader.await.unwrap();
    assert_eq!(got.len(), big.len());

    // Server → client, split into frames of at most 32 KiB, then FIN.
    let w = tokio::spawn(async move {
        tx.write(Bytes::from(vec![1u8; 100_000])).await.unwrap();
        tx.close().await;
    });
    let mut total = 0;
    loop {
        match c.next().await {
            Frame::Data {
                stream_id: 1,
                flags,
                data,
            } => {
                assert!(data.len() <= 32 * 1024);
                total += data.len();
                if flags & frame::FLAG_FIN != 0 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    w.await.unwrap();
    assert_eq!(total, 100_000);

    // Pings with client ids are echoed; even stream ids are refused.
    c.send(Frame::Ping { id: 3 }).await;
    assert_eq!(c.next().await, Frame::Ping { id: 3 });
    c.open(4, &hdrs(&[("streamtype", "x")]), false).await;
    assert_eq!(
        c.next().await,
        Frame::RstStream {
            stream_id: 4,
            status: frame::PROTOCOL_ERROR
        }
    );

    // Shutdown says GOAWAY with the last accepted stream and ends when the client closes.
    let closer = tokio::spawn(conn.shutdown(Duration::from_secs(10)));
    assert_eq!(
        c.next().await,
        Frame::GoAway {
            last_good: 1,
            status: 0
        }
    );
    drop(c);
    closer.await.unwrap();
}
