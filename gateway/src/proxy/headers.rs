//! What crosses the proxy: hop-by-hop headers, the caller's credentials and identity claims
//! never do; the audit verb and the bound on the response head are read off the request.

use std::time::Duration;

use http::Method;
use http::header::{self, HeaderMap, HeaderName};

/// Set from the TCP peer; a client's own value is never forwarded.
pub(super) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers that describe one hop and never cross the proxy (RFC 9110 §7.6.1), plus the
/// caller's credentials and identity claims, which the cluster must not see.
pub(super) fn strip_request_headers(headers: &mut HeaderMap, keep_upgrade: bool) {
    strip_hop_by_hop(headers, keep_upgrade);
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    headers.remove(header::PROXY_AUTHORIZATION);
    // Portico's own session, never the cluster's business.
    headers.remove(header::COOKIE);
    // Claims about the client's address: X-Forwarded-For is set from the TCP peer.
    headers.remove(header::FORWARDED);
    headers.remove(X_FORWARDED_FOR);
    headers.remove("x-real-ip");
    // Identity claims: impersonation, and the apiserver's front-proxy headers
    // (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`).
    let claims: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.starts_with("impersonate-") || name.starts_with("x-remote-")
        })
        .cloned()
        .collect();
    for name in claims {
        headers.remove(name);
    }
}

pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the audit log calls a request.
pub(super) fn verb(method: &Method, path: &str, upgrade: bool) -> Option<String> {
    let sub = path.rsplit('/').next().unwrap_or_default();
    if upgrade || matches!(sub, "exec" | "attach" | "portforward") && *method == Method::POST {
        return Some(match sub {
            "exec" | "attach" | "portforward" => sub.to_owned(),
            _ => "upgrade".to_owned(),
        });
    }
    match *method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            Some(method.as_str().to_ascii_lowercase())
        }
        _ => None,
    }
}

/// Bound on waiting for the response head: the configured timeout, or longer when the client
/// asked the apiserver for a longer server-side `timeout`/`timeoutSeconds`.
pub(super) fn head_timeout(default: Duration, query: Option<&str>) -> Duration {
    let requested = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, v)| match k {
            "timeoutSeconds" => v.parse::<u64>().ok().map(Duration::from_secs),
            "timeout" => parse_go_duration(v),
            _ => None,
        })
        .max();
    match requested {
        Some(t) => default.max(t + Duration::from_secs(5)),
        None => default,
    }
}

/// `30s`, `1m`, `1m30s`, `500ms` (what clients put in `?timeout=`).
pub(super) fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => value * 3600.0,
            "m" => value * 60.0,
            "s" => value,
            "ms" => value / 1000.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(seconds).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total)
}
