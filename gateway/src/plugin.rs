//! The wasm plugin platform: a wasmtime host for WebAssembly components built against `wit/`
//! (package `portico:plugin@0.1.0`), and the registry of installed plugins.
//!
//! ```text
//!  PLUGIN_DIR/*.toml + *.wasm ──┐                       ┌─ kube  ─▶ KubeApi (the cluster pool)
//!  POST /api/v1/plugins ────────┼─▶ Plugins (registry) ─▶ PluginHost ─┼─ http  ─▶ allow-listed hosts
//!  database table `plugins` ────┘        │               (wasmtime)  ├─ log   ─▶ tracing + call report
//!                                        │                           └─ config ─▶ the plugin's JSON
//!                      compile once per digest, cached on disk; InstancePre + pooling allocator
//! ```
//!
//! Every call gets a fresh store and runs on a fiber: its first slice on the caller's thread
//! (a short call ends there, without a thread hop), and from its first wait (the next epoch
//! tick, or a host call on the network) on the blocking thread pool, so a long guest never
//! holds one of the runtime's threads (the proxy's) for more than one tick. It runs under an
//! epoch deadline, a memory cap and per-host-call timeouts, with caps on
//! output size and log volume. Errors have two levels: a host call the guest may not make
//! (undeclared capability, host not allow-listed, timeout, cap exceeded) is an `error` the
//! guest sees; a guest that runs too long, exceeds its memory, writes past its log cap or
//! panics is trapped, and only that call fails.

use std::time::Duration;

mod bindings;
mod engine;
mod host;
mod http;
mod kube;
mod manifest;
mod pool;
mod registry;

pub use engine::{HostSettings, PluginHost, engine_config, pool_sizes};
pub use host::{CallReport, ClusterInfo, LogLine, RepositoryAuth, RepositoryInfo};
pub use http::{CaPemError, parse_ca_pem};
pub use kube::{KubeApi, KubeFuture, KubeGetError, ResourcePathError, RestKubeApi, resource_path};
pub use manifest::{Capabilities, HookScope, Limits, Manifest, World};
pub use pool::{DisconnectedKubeApi, PoolKubeApi};
pub use registry::{PluginRecord, PluginSource, Plugins};

/// Findings, charts and the other values plugins return, in the gateway's own types.
pub use host::{Chart, ChartIndex, ConfigIssue, Finding, ObjectRef, Severity, SyncOutcome};

/// Why a plugin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest does not parse or is not valid.
    #[error("invalid plugin manifest: {0}")]
    Manifest(String),
    /// The uploaded or loaded file is not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component does not implement the world its manifest declares.
    #[error("the component does not implement world `{world}`: {detail}")]
    WrongWorld {
        /// The declared world.
        world: World,
        /// What is missing or mistyped.
        detail: String,
    },
    /// The component imports something the host does not provide.
    #[error("the component imports what Portico does not provide: {0}")]
    UnsupportedImport(String),
    /// No plugin has this name.
    #[error("no plugin named `{0}`")]
    NotFound(String),
    /// The plugin exists but is disabled.
    #[error("plugin `{0}` is disabled")]
    Disabled(String),
    /// The plugin implements another world than the call needs.
    #[error("plugin `{name}` implements world `{actual}`, not `{expected}`")]
    WrongKind {
        /// The plugin.
        name: String,
        /// Its world.
        actual: World,
        /// The world the call needs.
        expected: World,
    },
    /// A plugin-directory plugin whose files this replica does not have.
    #[error("plugin `{name}` comes from the plugin directory, but this replica has no {detail}")]
    MissingComponent {
        /// The plugin.
        name: String,
        /// What is missing (file, or the same digest).
        detail: String,
    },
    /// The plugin comes from the plugin directory, so the API cannot replace or delete it.
    #[error(
        "plugin `{0}` comes from the plugin directory: change or remove its files there (it can be disabled)"
    )]
    FromDirectory(String),
    /// The plugin is built into the binary, so the API cannot replace or delete it, and no
    /// other plugin may take its name.
    #[error(
        "plugin `{0}` is built into Portico: it can be disabled or configured, not replaced or \
         deleted; give your plugin another name"
    )]
    Builtin(String),
    /// The guest was stopped: it ran too long, ran out of memory, panicked or trapped.
    #[error("plugin `{plugin}` was stopped: {reason}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// Why.
        reason: TrapReason,
    },
    /// The guest returned an error.
    #[error("plugin `{plugin}` failed: {kind}: {message}")]
    Guest {
        /// The plugin.
        plugin: String,
        /// The error's kind as the guest gave it.
        kind: String,
        /// The guest's message.
        message: String,
    },
    /// The guest returned more than its output cap.
    #[error("plugin `{plugin}` returned {size} bytes of output, over its limit of {limit}")]
    OutputTooLarge {
        /// The plugin.
        plugin: String,
        /// Bytes returned.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The guest returned a malformed value (e.g. `extra` that is not JSON).
    #[error("plugin `{plugin}` returned invalid output: {detail}")]
    InvalidOutput {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        detail: String,
    },
    /// The plugin's `config-check` export refused a configuration (nothing was stored).
    #[error("plugin `{plugin}` refuses this configuration: {}", join_issues(.issues))]
    InvalidConfig {
        /// The plugin.
        plugin: String,
        /// Its reasons.
        issues: Vec<ConfigIssue>,
    },
    /// A repository's `caPem` is not usable as CA certificates.
    #[error("the CA of repository `{repository}`: {detail}")]
    InvalidCa {
        /// The repository.
        repository: String,
        /// What is wrong.
        detail: String,
    },
    /// The host could not be set up or a file could not be read.
    #[error("plugin host: {0}")]
    Host(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `rules[0].expression: … (line 1, column 5); …`.
fn join_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|issue| match (issue.line, issue.column) {
            (Some(line), Some(column)) => format!("{issue} (line {line}, column {column})"),
            _ => issue.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a guest was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapReason {
    /// The call ran past its time limit.
    Timeout(Duration),
    /// A linear memory tried to grow past the memory cap (bytes).
    Memory(u64),
    /// The guest panicked; the panic message.
    Panic(String),
    /// The guest wrote more log lines and stdout/stderr than its `max-log-bytes` (bytes).
    LogLimit(usize),
    /// The call was cancelled (the gateway is stopping or lost leadership).
    Cancelled,
    /// Any other trap (the wasm trap message).
    Other(String),
}

impl std::fmt::Display for TrapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout(limit) => write!(f, "timed out after {} ms", limit.as_millis()),
            Self::Memory(limit) => write!(f, "memory limit of {} MiB exceeded", limit >> 20),
            Self::LogLimit(limit) => write!(
                f,
                "log limit of {limit} bytes exceeded (log lines, stdout and stderr together)"
            ),
            Self::Panic(message) => write!(f, "panicked: {message}"),
            Self::Cancelled => f.write_str("cancelled"),
            Self::Other(message) => write!(f, "trapped: {message}"),
        }
    }
}

#[cfg(test)]
mod tests;
