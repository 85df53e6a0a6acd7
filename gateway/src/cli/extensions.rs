//! `portico plugin …`, `portico helm repo …`, `portico chart search` and `portico webhook …`
//! through a running gateway's API, and the in-process `plugin run`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

use super::{IdArgs, PluginRunArgs, RemoteArgs};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// The installed plugins (GET /api/v1/plugins).
    List(RemoteArgs),
    /// One plugin (GET /api/v1/plugins/{name}).
    Get(IdArgs),
    /// Upload a plugin: its manifest and component (POST /api/v1/plugins, multipart).
    Install(PluginInstallArgs),
    /// Let jobs and hooks call a plugin (POST /api/v1/plugins/{name}/enable).
    Enable(IdArgs),
    /// Stop calls to a plugin (POST /api/v1/plugins/{name}/disable).
    Disable(IdArgs),
    /// Show a plugin's configuration, replace it (PUT …/config) or reset it to the manifest's
    /// default (DELETE …/config).
    Config(PluginConfigArgs),
    /// Remove an uploaded plugin (DELETE /api/v1/plugins/{name}).
    Delete(IdArgs),
    /// Run a plugin once against one registered cluster, in this process (no gateway needed).
    ///
    /// Connects to the cluster with the credentials in the database, calls the plugin, prints
    /// what it found. Inspectors report findings; lifecycle hooks get `on-connect` (or
    /// `--event disconnected`). The plugin's log lines go to stderr as it runs.
    Run(PluginRunArgs),
    /// Write a new plugin from a template: manifest, source and `build.sh` (no gateway needed).
    ///
    /// The template is an inspector flagging Deployments without the configured labels; its
    /// `build.sh` builds `NAME.wasm` beside `NAME.toml`, ready for `portico plugin install
    /// NAME.toml` or a plugin directory.
    New(PluginNewArgs),
}

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginLanguage {
    /// Rust with `portico-plugin-sdk` (cargo, target wasm32-wasip2).
    Rust,
    /// Python with `plugins/sdk-python` (componentize-py).
    Python,
    /// JavaScript with `plugins/sdk-js` (componentize-js, Node).
    Js,
}

/// Flags of `portico plugin new`.
#[derive(Debug, Clone, Args)]
pub struct PluginNewArgs {
    /// The plugin's name (the manifest's `name`): lower-case letters, digits and `-`.
    pub name: String,

    /// The language.
    #[arg(long, value_enum)]
    pub lang: PluginLanguage,

    /// The folder to create (default `./NAME`); it must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// The Portico checkout whose SDKs and `wit/` the plugin builds with (default: the first
    /// folder above the new one that has them).
    #[arg(long, env = "PORTICO_SOURCE")]
    pub portico: Option<PathBuf>,
}

/// Flags of `portico plugin install`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("files").required(true).multiple(true)
    .args(["path", "manifest", "component"])))]
pub struct PluginInstallArgs {
    /// `NAME.toml`, `NAME.wasm` or `NAME`: the manifest and the component beside each other.
    pub path: Option<PathBuf>,

    /// The manifest (TOML), when not beside the component.
    #[arg(long)]
    pub manifest: Option<PathBuf>,

    /// The component (`.wasm`), when not beside the manifest.
    #[arg(long)]
    pub component: Option<PathBuf>,

    /// Replace an uploaded plugin of the same name (its state and configuration are kept).
    #[arg(long)]
    pub replace: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico plugin config`.
#[derive(Debug, Clone, Args)]
pub struct PluginConfigArgs {
    /// The plugin's name.
    pub name: String,

    /// The new configuration: JSON, `@FILE` holding JSON, or `-` (standard input). Without
    /// it (and without `--reset`) the current configuration is printed.
    #[arg(conflicts_with = "reset")]
    pub value: Option<String>,

    /// Back to the manifest's default configuration.
    #[arg(long)]
    pub reset: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Helm repositories the repo-sync job reads.
    #[command(subcommand)]
    Repo(HelmRepoCommand),
}

#[derive(Debug, Subcommand)]
pub enum HelmRepoCommand {
    /// Add a repository (POST /api/v1/helm/repositories).
    Add(HelmRepoAddArgs),
    /// Every repository with its last sync (GET /api/v1/helm/repositories).
    List(RemoteArgs),
    /// One repository by id or name (GET /api/v1/helm/repositories/{id}).
    Get(IdArgs),
    /// Change a repository (PUT /api/v1/helm/repositories/{id}).
    Update(HelmRepoUpdateArgs),
    /// Sync every repository now, and wait for it.
    ///
    /// Runs the repo-sync jobs (POST /api/v1/jobs/{id}/run: the API has no per-repository
    /// sync) and waits for their runs; exits 1 when a run or a repository's sync failed.
    Sync(HelmRepoSyncArgs),
    /// Remove a repository and its charts (DELETE /api/v1/helm/repositories/{id}).
    Delete(IdArgs),
}

/// Credentials and CA of a Helm repository.
#[derive(Debug, Clone, Args)]
pub struct HelmAuthArgs {
    /// Basic auth user name (with `--password`).
    #[arg(long, requires = "password", conflicts_with = "bearer_token")]
    pub username: Option<String>,

    /// Basic auth password.
    #[arg(
        long,
        env = "PORTICO_HELM_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,

    /// A bearer token for the repository.
    #[arg(long, env = "PORTICO_HELM_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,

    /// PEM CA certificates to trust for the repository's host.
    #[arg(long)]
    pub repo_ca_file: Option<PathBuf>,
}

/// Flags of `portico helm repo add`.
#[derive(Debug, Clone, Args)]
pub struct HelmRepoAddArgs {
    /// The repository's name (lower-case letters, digits, `-`, `.`).
    pub name: String,

    /// Its URL (`<url>/index.yaml` is read).
    pub url: String,

    #[command(flatten)]
    pub auth: HelmAuthArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico helm repo update`.
#[derive(Debug, Clone, Args)]
pub struct HelmRepoUpdateArgs {
    /// The repository's id or name.
    pub id: String,

    /// A new name.
    #[arg(long)]
    pub name: Option<String>,

    /// A new URL.
    #[arg(long)]
    pub url: Option<String>,

    #[command(flatten)]
    pub auth: HelmAuthArgs,

    /// Remove the credentials.
    #[arg(long, conflicts_with_all = ["username", "bearer_token"])]
    pub no_auth: bool,

    /// Remove the CA.
    #[arg(long, conflicts_with = "repo_ca_file")]
    pub no_repo_ca: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico helm repo sync`.
#[derive(Debug, Clone, Args)]
pub struct HelmRepoSyncArgs {
    /// Return once the runs started, without waiting for them.
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the runs, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum ChartCommand {
    /// Charts of the synced repositories (GET /api/v1/helm/charts), filtered by a keyword in
    /// the name, description or keywords.
    Search(ChartSearchArgs),
}

/// Flags of `portico chart search`.
#[derive(Debug, Clone, Args)]
pub struct ChartSearchArgs {
    /// Only charts whose name, description or keywords contain this (any case).
    pub keyword: Option<String>,

    /// Only this repository (id or name).
    #[arg(long)]
    pub repo: Option<String>,

    /// Every version, newest first, not only the newest of each chart.
    #[arg(long)]
    pub versions: bool,

    /// Only versions new in their repository's latest sync.
    #[arg(long)]
    pub new: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Create a webhook (POST /api/v1/webhooks).
    Create(WebhookCreateArgs),
    /// Every webhook (GET /api/v1/webhooks).
    List(RemoteArgs),
    /// One webhook by id or name (GET /api/v1/webhooks/{id}).
    Get(IdArgs),
    /// Change a webhook (PUT /api/v1/webhooks/{id}).
    Update(WebhookUpdateArgs),
    /// Delete a webhook (DELETE /api/v1/webhooks/{id}).
    Delete(IdArgs),
    /// A webhook's delivery log, newest first (GET /api/v1/webhooks/{id}/deliveries).
    Deliveries(WebhookDeliveriesArgs),
}

/// What a webhook is sent, shared by `create` and `update`.
#[derive(Debug, Clone, Args)]
pub struct WebhookFields {
    /// The HMAC secret (write-only).
    #[arg(long, env = "PORTICO_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// An event: `connected` or `disconnected` (repeatable; create's default: both).
    #[arg(long = "event", value_parser = ["connected", "disconnected"])]
    pub events: Vec<String>,

    /// `cluster` (once per change) or `replica` (every replica's own change).
    #[arg(long, value_parser = ["cluster", "replica"])]
    pub scope: Option<String>,

    /// Only this cluster (repeatable; default: every cluster).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
}

/// Flags of `portico webhook create`.
#[derive(Debug, Clone, Args)]
pub struct WebhookCreateArgs {
    /// The webhook's name.
    pub name: String,

    /// Where to POST events (http or https).
    #[arg(long)]
    pub url: String,

    #[command(flatten)]
    pub fields: WebhookFields,

    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico webhook update`.
#[derive(Debug, Clone, Args)]
pub struct WebhookUpdateArgs {
    /// The webhook's id or name.
    pub id: String,

    /// A new name.
    #[arg(long)]
    pub name: Option<String>,

    /// A new URL.
    #[arg(long)]
    pub url: Option<String>,

    #[command(flatten)]
    pub fields: WebhookFields,

    /// Every cluster again (drops `--cluster` filters).
    #[arg(long, conflicts_with = "clusters")]
    pub all_clusters: bool,

    /// Enable it.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,

    /// Disable it.
    #[arg(long)]
    pub disable: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico webhook deliveries`.
#[derive(Debug, Clone, Args)]
pub struct WebhookDeliveriesArgs {
    /// The webhook's id or name.
    pub id: String,

    /// At most this many (1-500; the gateway's default is 50).
    #[arg(long)]
    pub limit: Option<u32>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}
