//! What this build is: version, git commit, wasmtime and the WIT package, as `build.rs` found
//! them. `portico --version` prints them; `GET /version` answers them.

use serde::Serialize;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built (`unknown` without a repository or `PORTICO_GIT_COMMIT`).
pub const COMMIT: &str = env!("PORTICO_BUILD_COMMIT");
/// The wasmtime version the plugin host runs.
pub const WASMTIME: &str = env!("PORTICO_BUILD_WASMTIME");
/// The WIT package plugins are built against.
pub const WIT: &str = env!("PORTICO_BUILD_WIT");

/// `--version`: the version, then one fact per line.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit:   ",
    env!("PORTICO_BUILD_COMMIT"),
    "\nwasmtime: ",
    env!("PORTICO_BUILD_WASMTIME"),
    "\nwit:      ",
    env!("PORTICO_BUILD_WIT"),
);

/// The build facts as JSON: `{"version", "commit", "wasmtime", "wit"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub wasmtime: &'static str,
    pub wit: &'static str,
}

/// This build.
pub const BUILD: BuildInfo = BuildInfo {
    version: VERSION,
    commit: COMMIT,
    wasmtime: WASMTIME,
    wit: WIT,
};
