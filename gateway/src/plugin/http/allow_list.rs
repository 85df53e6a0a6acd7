//! The `http` capability's allow-list: `*`, `host`, `host:port`, `*.domain`, `*.domain:port`,
//! `[v6]`, `[v6]:port`.

use reqwest::Url;

/// An allow-list entry that is not a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capabilities.http: `{pattern}` is not `host`, `host:port`, `*.domain` or `*`")]
pub(crate) struct InvalidPattern {
    /// The entry as written.
    pub pattern: String,
}

/// Checks one allow-list entry: `*`, `host`, `host:port`, `*.domain`, `*.domain:port`,
/// `[v6]`, `[v6]:port`.
pub(crate) fn validate_pattern(pattern: &str) -> Result<(), InvalidPattern> {
    match parse_pattern(pattern) {
        Some(_) => Ok(()),
        None => Err(InvalidPattern {
            pattern: pattern.to_owned(),
        }),
    }
}

fn parse_pattern(pattern: &str) -> Option<(String, Option<u16>)> {
    if pattern == "*" {
        return Some(("*".to_owned(), None));
    }
    if pattern.is_empty() || pattern.contains("://") || pattern.contains('/') {
        return None;
    }
    let (host, port) = if let Some(rest) = pattern.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{v6}]"), port)
    } else {
        match pattern.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port.parse().ok()?)),
            None => (pattern.to_owned(), None),
        }
    };
    let bare = host.strip_prefix("*.").unwrap_or(&host);
    let ok = !bare.is_empty()
        && !bare.contains('*')
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'));
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// Whether `url` may be reached under `patterns`.
pub(crate) fn allowed(patterns: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let port = url.port_or_known_default();
    patterns
        .iter()
        .filter_map(|p| parse_pattern(p))
        .any(|(pattern, pattern_port)| {
            let host_ok = if pattern == "*" {
                true
            } else if let Some(domain) = pattern.strip_prefix("*.") {
                host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}"))
            } else {
                host == pattern
            };
            host_ok && pattern_port.is_none_or(|p| Some(p) == port)
        })
}
