//! The request log: what arrived, for tests that check what a proxy sent upstream.

use std::sync::Mutex;

/// Headers the log keeps (lower case); `impersonate-extra-*` and `x-remote-*` (front-proxy
/// identity headers) are kept too.
pub const LOGGED_HEADERS: &[&str] = &[
    "authorization",
    "impersonate-user",
    "impersonate-group",
    "impersonate-uid",
    "user-agent",
    "accept",
    "content-type",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    // Which streaming protocol a client asked for (exec, attach, port-forward).
    "upgrade",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// One request as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Selected headers, names lower case, in arrival order (repeated headers repeat).
    pub headers: Vec<(String, String)>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The authenticated user, when authentication succeeded.
    pub user: Option<String>,
}

impl RequestRecord {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (name case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }
}

/// A bounded log of requests (oldest dropped first).
#[derive(Debug)]
pub struct RequestLog {
    entries: Mutex<std::collections::VecDeque<RequestRecord>>,
    limit: usize,
}

impl RequestLog {
    /// A log keeping at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Self {
            entries: Mutex::new(std::collections::VecDeque::new()),
            limit: limit.max(1),
        }
    }

    pub(crate) fn push(&self, record: RequestRecord) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.len() >= self.limit {
            e.pop_front();
        }
        e.push_back(record);
    }

    /// A copy of every entry, oldest first.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
