//! SPDY/3 header blocks (draft §2.6.10): a count, then length-prefixed names and values
//! (several values of one name joined by NUL), compressed with zlib and the draft's preset
//! dictionary. Each direction of a connection is one zlib stream; every block ends with a
//! sync flush, so each frame's block can be inflated as soon as it arrives.

use std::sync::LazyLock;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Errors reading or writing header blocks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// zlib refused the input (wrong dictionary, corrupt stream).
    #[error("inflating a header block: {0}")]
    Inflate(#[from] flate2::DecompressError),
    /// zlib failed compressing.
    #[error("deflating a header block: {0}")]
    Deflate(#[from] flate2::CompressError),
    /// The inflated block is not a well-formed name/value list.
    #[error("malformed header block")]
    Malformed,
    /// The block inflates to more than the limit.
    #[error("header block larger than {0} bytes")]
    TooLarge(usize),
}

/// Largest inflated header block accepted (a guard against zlib bombs).
const MAX_BLOCK: usize = 1 << 20;

/// The SPDY/3 preset dictionary (draft §2.6.10.1): these names, each behind its 32-bit
/// big-endian length, then the tail text as is. Built from the lists so it can be read and
/// checked; it must be byte-exact, or the peer's inflate fails on the dictionary checksum.
pub static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
        "501 Not Implemented503 Service Unavailable",
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
        "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
        "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
});

/// Header names (lower case, as SPDY requires) with their values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<String>)>);

impl Headers {
    /// The first value of a header, names compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// Serialises the name/value block (uncompressed).
    pub fn to_block(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_u32(self.0.len() as u32);
        for (name, values) in &self.0 {
            let name = name.to_ascii_lowercase();
            b.put_u32(name.len() as u32);
            b.put_slice(name.as_bytes());
            let value = values.join("\0");
            b.put_u32(value.len() as u32);
            b.put_slice(value.as_bytes());
        }
        b.to_vec()
    }

    /// Parses an uncompressed name/value block.
    pub fn from_block(block: &[u8]) -> Result<Self, Error> {
        let mut b = Bytes::copy_from_slice(block);
        let take = |b: &mut Bytes| -> Result<String, Error> {
            if b.remaining() < 4 {
                return Err(Error::Malformed);
            }
            let n = b.get_u32() as usize;
            if b.remaining() < n {
                return Err(Error::Malformed);
            }
            String::from_utf8(b.split_to(n).to_vec()).map_err(|_| Error::Malformed)
        };
        if b.remaining() < 4 {
            return Err(Error::Malformed);
        }
        let count = b.get_u32() as usize;
        let mut out = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let name = take(&mut b)?;
            let value = take(&mut b)?;
            out.push((name, value.split('\0').map(str::to_string).collect()));
        }
        Ok(Self(out))
    }
}

/// Compresses the header blocks one side sends.
pub struct Deflater(Compress);

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflater")
    }
}

impl Deflater {
    /// A zlib stream primed with the SPDY/3 dictionary.
    pub fn new() -> Result<Self, Error> {
        let mut c = Compress::new(Compression::default(), true);
        c.set_dictionary(&DICTIONARY)?;
        Ok(Self(c))
    }

    /// The compressed bytes of one header block, ending with a sync flush.
    pub fn deflate(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let input = headers.to_block();
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut pos = 0;
        // Each round either consumes input or fills output; both are bounded.
        for _ in 0..(input.len() + 64) {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.0.total_in();
            self.0
                .compress_vec(&input[pos..], &mut out, FlushCompress::Sync)?;
            pos += (self.0.total_in() - before) as usize;
            if pos == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
        Err(Error::Malformed)
    }
}

/// Inflates the header blocks the peer sends.
pub struct Inflater(Decompress);

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self(Decompress::new(true))
    }
}

impl Inflater {
    /// Inflates and parses one block; the dictionary is supplied when zlib asks for it.
    pub fn inflate(&mut self, input: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0;
        // Every round consumes input or produces output, so this many rounds always suffice.
        let rounds = input.len() + MAX_BLOCK / 256 + 16;
        for _ in 0..rounds {
            if out.len() > MAX_BLOCK {
                return Err(Error::TooLarge(MAX_BLOCK));
            }
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.0.total_in();
            let r = self
                .0
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.0.total_in() - before) as usize;
            match r {
                Ok(Status::StreamEnd) => return Headers::from_block(&out),
                Ok(_) if pos == input.len() && out.len() < out.capacity() => {
                    return Headers::from_block(&out);
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(&DICTIONARY)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Malformed)
    }
}
