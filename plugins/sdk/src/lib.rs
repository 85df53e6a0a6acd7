//! SDK for Portico plugins: WebAssembly components built for `wasm32-wasip2` against the WIT
//! package in `wit/`.
//!
//! This crate is the scaffold of the plugin workspace. The bindings, typed Kubernetes access,
//! the finding builder and config decoding arrive with the plugin platform; until then it only
//! pins the workspace's target and lints so that CI builds and checks it.

#![no_std]

/// The WIT package version this SDK targets.
pub const WIT_PACKAGE: &str = "portico:plugin@0.1.0";
