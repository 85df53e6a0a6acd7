//! Lines in the gateway's log, attributed to the plugin (capability `log`).
//!
//! Lines from a plugin without the capability are dropped by the host. The volume is capped
//! per call by the manifest's `max-log-bytes` (stdout and stderr count too): the line that
//! passes it stops the plugin, and the call fails.

use crate::bindings::portico::plugin::log::{Level, log};

/// Logs at `trace`.
pub fn trace(message: impl AsRef<str>) {
    let _ = log(Level::Trace, message.as_ref());
}

/// Logs at `debug`.
pub fn debug(message: impl AsRef<str>) {
    let _ = log(Level::Debug, message.as_ref());
}

/// Logs at `info`.
pub fn info(message: impl AsRef<str>) {
    let _ = log(Level::Info, message.as_ref());
}

/// Logs at `warn`.
pub fn warn(message: impl AsRef<str>) {
    let _ = log(Level::Warn, message.as_ref());
}

/// Logs at `error`.
pub fn error(message: impl AsRef<str>) {
    let _ = log(Level::Error, message.as_ref());
}
