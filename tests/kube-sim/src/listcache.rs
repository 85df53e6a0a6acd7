//! Encoded JSON lists, kept while the store does not change (`--cache-lists`).
//!
//! The apiserver serves lists from its watch cache but encodes each one again per request; so
//! does the simulator by default. A benchmark of what sits in front of the apiserver wants the
//! simulator's own share small and steady, so a full list (no `continue`, not cut by `limit`)
//! can be kept encoded. An entry is keyed by the request's path and query and holds the
//! store's resourceVersion it was encoded at: any write moves that version on, so a stale entry
//! is never served. Clients see the same bytes either way.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Entries kept at most; a full cache starts over.
const MAX_ENTRIES: usize = 32;

/// The encoded lists, by path and query.
#[derive(Debug, Default)]
pub struct ListCache {
    entries: Mutex<HashMap<String, (u64, Bytes)>>,
}

impl ListCache {
    /// The list encoded for `key` at store version `resource_version`, if kept.
    pub fn get(&self, key: &str, resource_version: u64) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(rv, _)| *rv == resource_version)
            .map(|(_, body)| body.clone())
    }

    /// Keeps `body`, the list for `key` at store version `resource_version`.
    pub fn put(&self, key: String, resource_version: u64, body: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (rv, _)| *rv >= resource_version);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (resource_version, body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_at_its_version() {
        let cache = ListCache::default();
        cache.put("/api/v1/pods".into(), 7, Bytes::from_static(b"{}"));
        assert_eq!(cache.get("/api/v1/pods", 7).as_deref(), Some(&b"{}"[..]));
        assert_eq!(cache.get("/api/v1/pods", 8), None);
        assert_eq!(cache.get("/api/v1/pods?labelSelector=a", 7), None);
        // A newer version drops entries encoded before it.
        cache.put("/api/v1/nodes".into(), 9, Bytes::from_static(b"[]"));
        assert_eq!(cache.get("/api/v1/pods", 7), None);
        assert!(cache.get("/api/v1/nodes", 9).is_some());
    }
}
