//! Portico: a WebAssembly-extensible HTTP gateway in front of many Kubernetes clusters.
//!
//! The binary (`portico serve`) is a thin shell around [`server::Gateway`]; tests start the
//! same gateway in-process. `gateway/ARCHITECTURE.md` says how the modules fit together.

// The surface the binary, the plugin tooling and embedders use.
pub mod cli;
pub mod commands;
pub mod config;
pub mod plugin;
pub mod records;
pub mod server;
pub mod telemetry;

// Internals: crate-private. The end-to-end tests and benchmarks reach what they need below
// the HTTP API and the CLI through `testing` (the `testing` feature, never in releases).
pub(crate) mod api;
pub(crate) mod app;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod clock;
pub(crate) mod cluster;
pub(crate) mod console;
pub(crate) mod coord;
pub(crate) mod crypto;
pub(crate) mod files;
pub(crate) mod hooks;
pub(crate) mod ids;
pub(crate) mod jobs;
pub(crate) mod peer;
pub(crate) mod proxy;
pub(crate) mod storage;
pub(crate) mod tls;

#[cfg(feature = "testing")]
pub mod testing;
