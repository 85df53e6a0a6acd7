//! Portico: a WebAssembly-extensible HTTP gateway in front of many Kubernetes clusters.
//!
//! The binary (`portico serve`) is a thin shell around [`server::Gateway`]; tests start the
//! same gateway in-process. See `ARCHITECTURE` in the README for how the modules fit together.

// The surface the binary, the plugin tooling and embedders use.
pub mod cli;
pub mod commands;
pub mod config;
pub mod plugin;
pub mod records;
pub mod server;
pub mod telemetry;

/// Declares internal modules: crate-private, unless the `testing` feature (enabled only by the
/// workspace's end-to-end tests and benchmarks) opens them so tests can seed and inspect
/// state that the HTTP API does not expose.
macro_rules! internal {
    ($($module:ident),* $(,)?) => {
        $(
            #[cfg(feature = "testing")]
            pub mod $module;
            #[cfg(not(feature = "testing"))]
            pub(crate) mod $module;
        )*
    };
}

internal!(
    api, app, audit, auth, clock, cluster, coord, crypto, files, hooks, ids, jobs, peer, proxy,
    storage, tls,
);
