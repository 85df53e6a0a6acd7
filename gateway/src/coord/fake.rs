//! An in-memory [`LeaseApi`] for unit tests that follows the apiserver's documented semantics:
//!
//! - one resourceVersion counter for the store; every write (create, changing update, delete)
//!   takes the next value, and an update that changes nothing keeps the object's version (a
//!   no-op on etcd);
//! - `create` of an existing name: 409 `AlreadyExists`; with a resourceVersion set: refused;
//! - `replace` of a missing lease: 404; without a resourceVersion: 422; with a stale one, or a
//!   uid that is not the stored object's: 409;
//! - `delete` of a missing lease: 404; preconditions `{uid, resourceVersion}` that do not match
//!   the stored object: 409;
//! - `list` and `watch` take an equality label selector (`k=v,k=v`); a watch replays the changes
//!   after its resourceVersion, then follows live ones until its timeout.
//!
//! Tests steer it: inject failures per operation ([`FakeLeases::fail`]), run another writer just
//! before a call ([`FakeLeases::before`]), make calls slow so that other tasks run while one is
//! in flight ([`FakeLeases::delay`]) and write as another replica
//! ([`FakeLeases::write_as_other`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::WatchEvent;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::lease::{LeaseApi, LeaseError, LeaseEvents, Result};

/// A lease API operation, to inject failures into or count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Create,
    Replace,
    Delete,
    List,
    Watch,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Get,
        Op::Create,
        Op::Replace,
        Op::Delete,
        Op::List,
        Op::Watch,
    ];
}

type Hook = Box<dyn FnOnce(&FakeLeases) + Send>;

/// The in-memory lease namespace. Clones share the store.
#[derive(Clone)]
pub struct FakeLeases {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakeLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("FakeLeases")
            .field("resource_version", &inner.rv)
            .field("names", &inner.objects.keys().collect::<Vec<_>>())
            .finish()
    }
}

struct Inner {
    rv: u64,
    uids: u64,
    objects: BTreeMap<String, Lease>,
    /// Every change, to replay for watches that start behind.
    history: Vec<(u64, WatchEvent<Lease>)>,
    live: broadcast::Sender<(u64, WatchEvent<Lease>)>,
    failures: HashMap<Op, Failure>,
    hooks: HashMap<Op, VecDeque<Hook>>,
    delays: HashMap<Op, Duration>,
    calls: HashMap<Op, usize>,
}

struct Failure {
    error: LeaseError,
    /// Calls left to fail; `None`: until healed.
    remaining: Option<usize>,
}

impl Default for FakeLeases {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeLeases {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                rv: 0,
                uids: 0,
                objects: BTreeMap::new(),
                history: Vec::new(),
                live: broadcast::channel(1024).0,
                failures: HashMap::new(),
                hooks: HashMap::new(),
                delays: HashMap::new(),
                calls: HashMap::new(),
            })),
        }
    }

    // ---- steering ----

    /// Every call of `op` fails with `error` until [`FakeLeases::heal`].
    pub fn fail(&self, op: Op, error: LeaseError) {
        self.inner.lock().failures.insert(
            op,
            Failure {
                error,
                remaining: None,
            },
        );
    }

    /// The next `times` calls of `op` fail with `error`.
    pub fn fail_times(&self, op: Op, times: usize, error: LeaseError) {
        self.inner.lock().failures.insert(
            op,
            Failure {
                error,
                remaining: Some(times),
            },
        );
    }

    /// Every operation fails with `error` (an apiserver that is away).
    pub fn fail_all(&self, error: LeaseError) {
        for op in Op::ALL {
            self.fail(op, error.clone());
        }
    }

    /// No more injected failures.
    pub fn heal(&self) {
        self.inner.lock().failures.clear();
    }

    /// Runs `hook` once, just before the next call of `op` is served: another writer racing.
    pub fn before(&self, op: Op, hook: impl FnOnce(&FakeLeases) + Send + 'static) {
        self.inner
            .lock()
            .hooks
            .entry(op)
            .or_default()
            .push_back(Box::new(hook));
    }

    /// Every call of `op` waits `latency` before it is served (a slow apiserver): other tasks
    /// run while it is in flight, and it sees the store as it is once the wait is over.
    pub fn delay(&self, op: Op, latency: Duration) {
        self.inner.lock().delays.insert(op, latency);
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: Op) -> usize {
        self.inner.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// The stored lease.
    pub fn stored(&self, name: &str) -> Option<Lease> {
        self.inner.lock().objects.get(name).cloned()
    }

    /// Stores `lease` as another client's create would (no failures, no hooks).
    pub fn insert(&self, lease: Lease) -> Lease {
        self.inner
            .lock()
            .create(&lease)
            .expect("insert a new lease")
    }

    /// Another client reads the lease, changes it with `edit` and writes it back
    /// (conditionally, so it cannot lose a race).
    pub fn write_as_other(&self, name: &str, edit: impl FnOnce(&mut Lease)) -> Lease {
        let mut inner = self.inner.lock();
        let mut lease = inner.objects.get(name).cloned().expect("lease to edit");
        edit(&mut lease);
        inner
            .replace(&lease)
            .expect("conditional write of the stored lease")
    }

    /// Another client deletes the lease (no preconditions).
    pub fn remove(&self, name: &str) {
        let mut inner = self.inner.lock();
        let lease = inner.objects.get(name).cloned().expect("lease to delete");
        inner.delete(&lease).expect("delete of the stored lease");
    }

    /// The latency of one call of `op`, if any, then [`FakeLeases::enter`].
    async fn serve(&self, op: Op) -> Result<()> {
        let latency = self.inner.lock().delays.get(&op).copied();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        self.enter(op)
    }

    /// Hooks, the call count and injected failures of one call.
    fn enter(&self, op: Op) -> Result<()> {
        let hook = self
            .inner
            .lock()
            .hooks
            .get_mut(&op)
            .and_then(VecDeque::pop_front);
        if let Some(hook) = hook {
            hook(self);
        }
        let mut inner = self.inner.lock();
        *inner.calls.entry(op).or_insert(0) += 1;
        let Some(failure) = inner.failures.get_mut(&op) else {
            return Ok(());
        };
        let error = failure.error.clone();
        match &mut failure.remaining {
            None => {}
            Some(0) => {
                inner.failures.remove(&op);
                return Ok(());
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    inner.failures.remove(&op);
                }
            }
        }
        Err(error)
    }
}

impl Inner {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, rv: u64, event: WatchEvent<Lease>) {
        self.history.push((rv, event.clone()));
        // No receiver is fine: nobody watches right now.
        let _ = self.live.send((rv, event));
    }

    fn create(&mut self, lease: &Lease) -> Result<Lease> {
        let name = lease
            .metadata
            .name
            .clone()
            .ok_or_else(|| LeaseError::Other("metadata.name: Required value".to_owned()))?;
        if lease
            .metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty() && rv != "0")
        {
            return Err(LeaseError::Other(
                "resourceVersion should not be set on objects to be created".to_owned(),
            ));
        }
        if self.objects.contains_key(&name) {
            return Err(LeaseError::Conflict(format!(
                "leases.coordination.k8s.io \"{name}\" already exists"
            )));
        }
        self.uids += 1;
        let rv = self.next_rv();
        let mut stored = lease.clone();
        stored.metadata.uid = Some(format!("uid-{}", self.uids));
        stored.metadata.resource_version = Some(rv.to_string());
        stored.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        self.objects.insert(name, stored.clone());
        self.record(rv, WatchEvent::Added(stored.clone()));
        Ok(stored)
    }

    fn replace(&mut self, lease: &Lease) -> Result<Lease> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let Some(old) = self.objects.get(&name).cloned() else {
            return Err(LeaseError::NotFound);
        };
        let body_rv = lease.metadata.resource_version.as_deref().unwrap_or("");
        if body_rv.is_empty() {
            return Err(LeaseError::Other(format!(
                "Lease.coordination.k8s.io \"{name}\" is invalid: metadata.resourceVersion: \
                 Invalid value: 0x0: must be specified for an update"
            )));
        }
        if Some(body_rv) != old.metadata.resource_version.as_deref() {
            return Err(LeaseError::Conflict(format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the \
                 object has been modified; please apply your changes to the latest version and \
                 try again"
            )));
        }
        if let Some(uid) = lease.metadata.uid.as_deref()
            && Some(uid) != old.metadata.uid.as_deref()
        {
            return Err(LeaseError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old.metadata.uid.as_deref().unwrap_or_default()
            )));
        }
        let mut new = lease.clone();
        new.metadata.uid.clone_from(&old.metadata.uid);
        new.metadata
            .creation_timestamp
            .clone_from(&old.metadata.creation_timestamp);
        new.metadata.namespace.clone_from(&old.metadata.namespace);
        new.metadata
            .resource_version
            .clone_from(&old.metadata.resource_version);
        if new == old {
            return Ok(old);
        }
        let rv = self.next_rv();
        new.metadata.resource_version = Some(rv.to_string());
        self.objects.insert(name, new.clone());
        self.record(rv, WatchEvent::Modified(new.clone()));
        Ok(new)
    }

    fn delete(&mut self, lease: &Lease) -> Result<()> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let Some(old) = self.objects.get(&name).cloned() else {
            return Err(LeaseError::NotFound);
        };
        let old_uid = old.metadata.uid.as_deref().unwrap_or_default();
        if let Some(uid) = lease.metadata.uid.as_deref()
            && uid != old_uid
        {
            return Err(LeaseError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
            )));
        }
        let old_rv = old.metadata.resource_version.as_deref().unwrap_or_default();
        if let Some(rv) = lease.metadata.resource_version.as_deref()
            && rv != old_rv
        {
            return Err(LeaseError::Conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion \
                 in object meta: {old_rv}"
            )));
        }
        self.objects.remove(&name);
        let rv = self.next_rv();
        let mut gone = old;
        gone.metadata.resource_version = Some(rv.to_string());
        self.record(rv, WatchEvent::Deleted(gone));
        Ok(())
    }
}

/// An equality label selector: `k=v,k=v` (`==` too). Nothing else is used by the protocol.
fn matches(selector: &str, lease: &Lease) -> bool {
    let labels = lease.metadata.labels.clone().unwrap_or_default();
    selector
        .split(',')
        .filter(|term| !term.trim().is_empty())
        .all(|term| {
            let (key, value) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .unwrap_or_else(|| panic!("the fake takes k=v selectors only, not {term:?}"));
            labels.get(key.trim()).map(String::as_str) == Some(value.trim())
        })
}

fn event_lease(event: &WatchEvent<Lease>) -> Option<&Lease> {
    match event {
        WatchEvent::Added(l) | WatchEvent::Modified(l) | WatchEvent::Deleted(l) => Some(l),
        WatchEvent::Bookmark(_) | WatchEvent::Error(_) => None,
    }
}

impl LeaseApi for FakeLeases {
    async fn get(&self, name: &str) -> Result<Option<Lease>> {
        self.serve(Op::Get).await?;
        Ok(self.stored(name))
    }

    async fn create(&self, lease: &Lease) -> Result<Lease> {
        self.serve(Op::Create).await?;
        self.inner.lock().create(lease)
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease> {
        self.serve(Op::Replace).await?;
        self.inner.lock().replace(lease)
    }

    async fn delete(&self, lease: &Lease) -> Result<()> {
        self.serve(Op::Delete).await?;
        self.inner.lock().delete(lease)
    }

    async fn list(&self, selector: &str) -> Result<(Vec<Lease>, String)> {
        self.serve(Op::List).await?;
        let inner = self.inner.lock();
        let items = inner
            .objects
            .values()
            .filter(|l| matches(selector, l))
            .cloned()
            .collect();
        Ok((items, inner.rv.to_string()))
    }

    async fn watch(&self, selector: &str, version: &str, timeout: Duration) -> Result<LeaseEvents> {
        self.serve(Op::Watch).await?;
        let (backlog, live) = {
            let inner = self.inner.lock();
            let backlog: VecDeque<WatchEvent<Lease>> = match version.parse::<u64>() {
                // From a version: the changes after it.
                Ok(from) if from > 0 => inner
                    .history
                    .iter()
                    .filter(|(rv, _)| *rv > from)
                    .map(|(_, e)| e.clone())
                    .collect(),
                // "" or "0": the current objects as ADDED, then changes.
                _ => inner
                    .objects
                    .values()
                    .cloned()
                    .map(WatchEvent::Added)
                    .collect(),
            };
            // Subscribed under the same lock as the backlog: no change falls between.
            (backlog, inner.live.subscribe())
        };
        let selector = selector.to_owned();
        let deadline = Box::pin(tokio::time::sleep(timeout));
        let state = (backlog, live, deadline, selector);
        let stream = futures::stream::unfold(state, |mut state| async move {
            let (backlog, live, deadline, selector) = &mut state;
            loop {
                let event = match backlog.pop_front() {
                    Some(event) => event,
                    None => tokio::select! {
                        () = deadline.as_mut() => return None,
                        received = live.recv() => match received {
                            Ok((_, event)) => event,
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                let error = LeaseError::Other("too old resource version".into());
                                return Some((Err(error), state));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                    },
                };
                if event_lease(&event).is_some_and(|l| matches(selector, l)) {
                    return Some((Ok(event), state));
                }
            }
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests;
