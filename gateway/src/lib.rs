//! Portico: a WebAssembly-extensible HTTP gateway in front of many Kubernetes clusters.
//!
//! The binary (`portico serve`) is a thin shell around [`server::Gateway`]; tests start the
//! same gateway in-process. See `ARCHITECTURE` in the README for how the modules fit together.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod coord;
pub mod crypto;
pub mod files;
pub mod hooks;
pub mod ids;
pub mod jobs;
pub mod peer;
pub mod plugin;
pub mod proxy;
pub mod records;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
