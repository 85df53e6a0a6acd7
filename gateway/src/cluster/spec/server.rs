//! Which cluster servers are acceptable: the URL checks, the operator's policy (plain-HTTP
//! credentials, local addresses), and server URLs masked for messages and logs.

use std::net::IpAddr;

use super::{ClusterSpec, RequestAuth, Result, SpecError};

/// What the operator lets cluster servers be, checked at registration (and, for local
/// addresses, again at every connection: see [`crate::cluster::upstream`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Credentials may go to an `http://` server (`--allow-insecure-cluster-credentials`).
    pub allow_insecure_credentials: bool,
    /// Loopback, link-local and unspecified servers are refused
    /// (`--deny-local-cluster-servers`).
    pub deny_local: bool,
}

/// Checks a resolved spec against the operator's policy.
pub fn check_policy(spec: &ClusterSpec, policy: ServerPolicy) -> Result<()> {
    let url: http::Uri = spec
        .server
        .parse()
        .map_err(|_| SpecError::Server(mask_url(&spec.server)))?;
    if url.scheme_str() == Some("http") && !policy.allow_insecure_credentials {
        let credential = match &spec.auth {
            RequestAuth::None => None,
            RequestAuth::Token { .. } => Some("bearer token"),
            RequestAuth::TokenFile { .. } => Some("bearer token (tokenFile)"),
            RequestAuth::Exec(_) => Some("bearer token (from its exec plugin)"),
            RequestAuth::Basic { .. } => Some("basic auth password"),
        };
        if let Some(credential) = credential {
            return Err(SpecError::InsecureCredentials {
                server: mask_url(&spec.server),
                credential,
            });
        }
    }
    if policy.deny_local
        && let Some(kind) = url.host().and_then(ip_literal).and_then(local_address_kind)
    {
        return Err(SpecError::LocalServer {
            server: mask_url(&spec.server),
            kind,
        });
    }
    Ok(())
}

/// The IP address of a URL host that is an IP literal (`10.0.0.1`, `[::1]`).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why `ip` counts as local for `--deny-local-cluster-servers`: loopback, link-local or
/// unspecified (IPv4-mapped IPv6 addresses count as their IPv4 address).
pub fn local_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        // 0.0.0.0/8 is "this host" (connecting to it reaches the local machine).
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        _ => None,
    }
}

/// A server URL fit for messages and logs: user info and anything after `?` or `#` masked.
pub fn mask_url(url: &str) -> String {
    let (scheme, authority, path, tail) = split_url(url);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.chars().next() {
        Some(c) => format!("{c}***"),
        None => String::new(),
    };
    format!("{scheme}{authority}{path}{tail}")
}

/// `scheme://`, authority, path, and the rest from the first `?` or `#`.
fn split_url(url: &str) -> (&str, &str, &str, &str) {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let (rest, tail) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (scheme, authority, path, tail)
}

/// The server URL must be http(s) with a host, and carry no credentials: user info and query
/// strings are refused (the URL is stored and logged in plain text), and so are fragments.
pub(super) fn check_server_url(server: &str) -> Result<()> {
    let (_, authority, _, tail) = split_url(server);
    let what = if authority.contains('@') {
        Some("user info (`user:password@`)")
    } else if tail.starts_with('?') {
        Some("a query string")
    } else if tail.starts_with('#') {
        Some("a fragment")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(SpecError::ServerCredentials {
            server: mask_url(server),
            what,
        });
    }
    let url: http::Uri = server
        .parse()
        .map_err(|_| SpecError::Server(mask_url(server)))?;
    if !matches!(url.scheme_str(), Some("https" | "http")) || url.host().is_none() {
        return Err(SpecError::Server(mask_url(server)));
    }
    Ok(())
}
