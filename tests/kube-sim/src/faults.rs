//! Fault injection: latency, injected failures, freezing, dropped watches and refused
//! connections. Shared by the server and the [`crate::KubeSim`] handle.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// The knobs that apply to every request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSettings {
    /// Added before each request is handled.
    pub latency: Duration,
    /// Fraction of requests (0.0–1.0) answered with `failure_code` instead.
    pub failure_rate: f64,
    /// The HTTP code of injected failures (a proper `Status` body is sent).
    pub failure_code: u16,
    /// Only requests whose path starts with this are affected (`None`: all).
    pub path_prefix: Option<String>,
}

/// Fault state. Cheap reads on the request path.
#[derive(Debug)]
pub struct Faults {
    settings: Mutex<FaultSettings>,
    frozen: watch::Sender<bool>,
    /// Bumped to end every open watch.
    watch_epoch: watch::Sender<u64>,
    /// Wanted listener state: true = accept connections.
    accepting: watch::Sender<bool>,
    /// Actual listener state, reported by the accept loop.
    pub(crate) listening: watch::Sender<bool>,
    /// Bumped to close every open connection (when refusing connections).
    pub(crate) conn_epoch: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            settings: Mutex::new(FaultSettings {
                failure_code: 500,
                ..FaultSettings::default()
            }),
            frozen: watch::channel(false).0,
            watch_epoch: watch::channel(0).0,
            accepting: watch::channel(true).0,
            listening: watch::channel(true).0,
            conn_epoch: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// Current settings.
    pub fn settings(&self) -> FaultSettings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces all settings at once.
    pub fn set(&self, settings: FaultSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    fn update(&self, f: impl FnOnce(&mut FaultSettings)) {
        f(&mut self.settings.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Adds `latency` before every request is handled.
    pub fn set_latency(&self, latency: Duration) {
        self.update(|s| s.latency = latency);
    }

    /// Fails `rate` (0.0–1.0) of requests with `code` and a matching `Status`.
    pub fn set_failure_rate(&self, rate: f64, code: u16) {
        self.update(|s| {
            s.failure_rate = rate.clamp(0.0, 1.0);
            s.failure_code = code;
        });
    }

    /// Limits latency and failures to paths starting with `prefix` (`None`: every path).
    pub fn set_path_prefix(&self, prefix: Option<String>) {
        self.update(|s| s.path_prefix = prefix);
    }

    /// Clears latency, failures and freezing (not refused connections).
    pub fn clear(&self) {
        self.update(|s| {
            *s = FaultSettings {
                failure_code: 500,
                ..FaultSettings::default()
            }
        });
        self.unfreeze();
    }

    /// Requests are accepted and read, but not answered until [`Faults::unfreeze`].
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Answers held and new requests again.
    pub fn unfreeze(&self) {
        self.frozen.send_replace(false);
    }

    /// Whether requests are frozen.
    pub fn is_frozen(&self) -> bool {
        *self.frozen.borrow()
    }

    pub(crate) async fn wait_unfrozen(&self) {
        let mut rx = self.frozen.subscribe();
        crate::server::wait_flag(&mut rx, false).await;
    }

    /// Cuts every open watch (the connection is aborted mid-stream, as when an apiserver
    /// dies). New watches are served normally.
    pub fn drop_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    pub(crate) fn watch_epoch(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    pub(crate) fn accepting(&self) -> watch::Receiver<bool> {
        self.accepting.subscribe()
    }

    pub(crate) fn set_accepting(&self, on: bool) {
        self.accepting.send_replace(on);
    }

    /// Decides what happens to a request: `Some(code)` to fail it.
    pub(crate) fn injected_failure(&self, path: &str) -> (Duration, Option<u16>) {
        let s = self.settings();
        if s.path_prefix
            .as_deref()
            .is_some_and(|p| !path.starts_with(p))
        {
            return (Duration::ZERO, None);
        }
        let fail = s.failure_rate > 0.0 && rand::random::<f64>() < s.failure_rate;
        (s.latency, fail.then_some(s.failure_code))
    }
}
