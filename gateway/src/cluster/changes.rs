//! Which clusters' local state changed since a reader last looked: a set of ids and a wake-up,
//! so that a burst of changes (thousands of clusters failing at once) collapses into one set
//! the publisher writes in one batch. Marking is a short lock and never waits on I/O, so it
//! is safe on any path.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The ids of clusters whose local state (phase or last error) changed, not yet taken.
#[derive(Debug, Clone, Default)]
pub struct StateChanges(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    dirty: Mutex<HashSet<String>>,
    notify: Notify,
}

impl StateChanges {
    /// Records that `id`'s local state changed and wakes the reader. Bounded: one entry per
    /// cluster however often it changes.
    pub fn mark(&self, id: &str) {
        let first = {
            let mut dirty = self.0.dirty.lock();
            let first = dirty.is_empty();
            if !dirty.contains(id) {
                dirty.insert(id.to_owned());
            }
            first
        };
        if first {
            self.0.notify.notify_one();
        }
    }

    /// Marks every id in `ids` (a full republish).
    pub fn mark_all(&self, ids: impl IntoIterator<Item = String>) {
        let mut any = false;
        {
            let mut dirty = self.0.dirty.lock();
            for id in ids {
                dirty.insert(id);
                any = true;
            }
        }
        if any {
            self.0.notify.notify_one();
        }
    }

    /// Takes the changed ids, sorted.
    pub fn take(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::mem::take(&mut *self.0.dirty.lock())
            .into_iter()
            .collect();
        ids.sort();
        ids
    }

    /// Resolves once something is marked (at once if something was marked since the last
    /// [`StateChanges::take`] woke no one).
    pub async fn changed(&self) {
        if !self.0.dirty.lock().is_empty() {
            return;
        }
        self.0.notify.notified().await;
    }
}
