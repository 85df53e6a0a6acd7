//! Splitting and vetting the proxy URL's raw path: the cluster id and the upstream path, with
//! every spelling that could be decoded into another resource refused.

use http::StatusCode;

use super::{PREFIX, StatusError};
use crate::cluster;

/// The cluster id and upstream path of a proxy URL, vetted.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub cluster: &'a str,
    /// Starts with `/`; the raw (still percent-encoded) path after the id.
    pub path: &'a str,
}

/// Splits and vets the raw request path. Works on the encoded form: an encoded slash in the id
/// or a `..` segment in any spelling is refused, never normalised into another resource.
pub fn parse_target(raw_path: &str) -> Result<Target<'_>, StatusError> {
    let bad = |message: String| StatusError::new(StatusCode::BAD_REQUEST, "BadRequest", message);
    let rest = raw_path
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("not a proxy path".to_owned()))?;
    let (cluster, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if cluster.contains('%') {
        return Err(bad(format!(
            "encoded characters are not allowed in the cluster id `{cluster}`"
        )));
    }
    cluster::validate_id(cluster).map_err(|e| bad(e.to_string()))?;
    if let Some(problem) = path_problem(path) {
        return Err(bad(format!("{problem} in the path are not allowed")));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(bad("`.` and `..` path segments are not allowed".to_owned()));
    }
    Ok(Target { cluster, path })
}

/// Spellings that a server or proxy behind the cluster might decode into another path than
/// the one vetted here: encoded `/` and `\`, an encoded `%` (double encoding: `%252e%252e`),
/// `;` path parameters (`..;`), encoded control characters, a raw `\`, and a `%` that is not
/// followed by two hex digits. No Kubernetes resource path needs any of them.
pub(super) fn path_problem(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match decoded {
                    None => return Some("malformed percent-encodings"),
                    Some(b'/' | b'\\') => return Some("encoded slashes"),
                    Some(b'%') => return Some("encoded `%` (double encoding)"),
                    Some(b';') => return Some("`;` path parameters"),
                    Some(c) if c < 0x20 || c == 0x7f => return Some("encoded control characters"),
                    Some(_) => i += 3,
                }
            }
            b';' => return Some("`;` path parameters"),
            b'\\' => return Some("backslashes"),
            _ => i += 1,
        }
    }
    None
}

/// `.` or `..`, each dot written as `.`, `%2e` or `%2E` (no allocation: every request passes
/// here).
pub(super) fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
        dots += 1;
    }
    dots == 1 || dots == 2
}
