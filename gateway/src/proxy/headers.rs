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
    strip(headers, keep_upgrade, |name| match name {
        "authorization" | "host" | "proxy-authorization" => true,
        // Portico's own session, never the cluster's business.
        "cookie" => true,
        // Claims about the client's address: X-Forwarded-For is set from the TCP peer.
        "forwarded" | "x-forwarded-for" | "x-real-ip" => true,
        // Identity claims: impersonation, and the apiserver's front-proxy headers
        // (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`).
        _ => name.starts_with("impersonate-") || name.starts_with("x-remote-"),
    });
}

/// The hop-by-hop headers of RFC 9110 §7.6.1 (and the names the `Connection` header lists).
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    strip(headers, keep_upgrade, |_| false);
}

/// Removes the hop-by-hop headers and those `also` names (lower case, as `HeaderName`s are),
/// in one pass over the names present: a request carries a handful of headers, and removing
/// each name that could be there (a hash and a probe each) cost more than the pass.
fn strip(headers: &mut HeaderMap, keep_upgrade: bool, also: impl Fn(&str) -> bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let goes = |name: &HeaderName| {
        let hop = match name.as_str() {
            "connection" | "te" | "trailer" | "transfer-encoding" | "proxy-authenticate"
            | "keep-alive" | "proxy-connection" => true,
            "upgrade" => !keep_upgrade,
            _ => named.contains(name),
        };
        hop || also(name.as_str())
    };
    let gone: Vec<HeaderName> = headers.keys().filter(|n| goes(n)).cloned().collect();
    for name in gone {
        headers.remove(name);
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
