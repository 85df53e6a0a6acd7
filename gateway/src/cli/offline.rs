//! Commands that work on the database directly, without a running gateway: `cluster import`
//! and `plugin run`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{ClusterServerArgs, OutputFormat};

/// Flags of `portico plugin run`.
#[derive(Debug, Clone, Args)]
pub struct PluginRunArgs {
    /// The plugin's name (its manifest's `name`).
    pub plugin: String,

    /// The registered cluster to run it against.
    #[arg(long)]
    pub cluster: String,

    /// A folder of plugins (`NAME.toml` beside `NAME.wasm`) to take the plugin from, before
    /// the database. Nothing from it is stored.
    #[arg(long, env = "PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// The compile cache, as `serve --plugin-cache-dir` (default: beside the database): a
    /// plugin compiled by the gateway there is not compiled again.
    #[arg(long, env = "PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,

    /// Configuration for this run instead of the installed one: JSON, or `@FILE` holding JSON.
    #[arg(long)]
    pub config: Option<String>,

    /// Lifecycle hooks: the event to deliver.
    #[arg(long, value_enum, default_value = "connected")]
    pub event: RunEvent,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// The database and its secret key.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The database flags of the commands that open it directly, as `portico serve` takes them.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Same as `portico serve`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/portico.db"
    )]
    pub database_url: String,

    /// Same as `portico serve`.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

/// The event `portico plugin run` delivers to a lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunEvent {
    /// `on-connect`, with read access to the cluster.
    Connected,
    /// `on-disconnect`: as in the gateway, the cluster cannot be read any more.
    Disconnected,
}

/// Flags of `portico cluster import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The kubeconfig file to read.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// Only these contexts (repeatable; default: all).
    #[arg(long = "context", visible_alias = "kube-context")]
    pub contexts: Vec<String>,

    /// Mark the imported clusters `connected`: replicas started with `--connect-cluster` (or
    /// coordinating through leases) connect them.
    #[arg(long)]
    pub connect: bool,

    /// How cluster servers are vetted, as for `portico serve`.
    #[command(flatten)]
    pub cluster_servers: ClusterServerArgs,

    /// The database and its secret key.
    #[command(flatten)]
    pub database: DatabaseArgs,
}
