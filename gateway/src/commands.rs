//! The one-shot subcommands: everything but `portico serve`. Most talk to a running gateway's
//! API ([`run`]); `cluster import` and `plugin run` open the database directly.
//!
//! Exit codes ([`CommandError::exit_code`]): 0 success; 1 the command failed (an API refusal
//! not listed below, a failed connect, run or sync); 2 usage (flags, input files, the config
//! file; clap's own errors are 2 too); 3 the gateway could not be reached; 4 not
//! authenticated (no token, or the token was refused: 401); 5 forbidden (403); 6 not found
//! (404); 7 conflict (409).

use std::collections::BTreeMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{Command, DatabaseArgs, ImportArgs, KubeconfigArgs};
use crate::cluster::spec::{self, Origin};
use crate::cluster::{ClusterError, ClusterEvents, ClusterManager, ClusterOptions, NewCluster};
use crate::config::{ConfigError, DatabaseUrl};
use crate::crypto::SecretKey;
use crate::server::{StartError, settle_secret_key};
use crate::storage::Db;
use crate::storage::clusters::DesiredState;
use crate::telemetry::Metrics;

mod activity;
mod api;
mod clusters;
mod contexts;
mod extensions;
mod grants;
mod helm;
mod job;
mod output;
mod plugin;
mod scaffold;
mod session;
mod sso;
mod tokens;
mod webhooks;

pub use activity::completion;
pub use api::GatewayClient;
pub use contexts::{ConfigFile, Context, Credential, DEFAULT_SERVER};
pub use job::{JobOutput, run_job_command};
pub use output::Output;
pub use plugin::{PluginRun, run_plugin};

/// Exit codes of `portico`, by class of failure.
pub mod exit {
    /// It worked.
    pub const OK: u8 = 0;
    /// The command failed: an API refusal not listed below, a failed connect, run or sync.
    pub const FAILED: u8 = 1;
    /// Bad flags or arguments, unreadable input files, a bad config file.
    pub const USAGE: u8 = 2;
    /// The gateway could not be reached (connection, TLS, DNS, timeout).
    pub const UNREACHABLE: u8 = 3;
    /// No token, or the gateway refused it (401).
    pub const UNAUTHENTICATED: u8 = 4;
    /// The token may not do this (403).
    pub const FORBIDDEN: u8 = 5;
    /// No such object (404).
    pub const NOT_FOUND: u8 = 6;
    /// It exists already, or its state forbids the change (409).
    pub const CONFLICT: u8 = 7;
}

/// A subcommand that failed; the message is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad flags.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database or key could not be opened.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A cluster could not be registered.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An input file cannot be read.
    #[error("cannot read `{0}`: {1}")]
    Read(String, std::io::Error),
    /// The gateway answered with an error.
    #[error("{server} answered {status} {reason}: {message}")]
    Api {
        /// The gateway.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The status's reason phrase.
        reason: String,
        /// The API's `error.message`, else the body.
        message: String,
    },
    /// The gateway could not be reached.
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// The gateway.
        server: String,
        /// Why.
        reason: String,
    },
    /// No token for the gateway.
    #[error(
        "no token for {server}: run `portico login --server {server}`, or pass --token \
         (PORTICO_TOKEN)"
    )]
    NotLoggedIn {
        /// The gateway.
        server: String,
    },
    /// The config file cannot be read or written.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Another HTTP failure (an answer that is not JSON).
    #[error("{0}")]
    Http(String),
    /// The request went through and what it did failed (a connect, a run).
    #[error("{0}")]
    Failed(String),
    /// A plugin could not be loaded, or its call failed.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::Error),
    /// The cluster did not answer the connection check.
    #[error("cannot connect to cluster `{cluster}`: {reason}")]
    NotConnected {
        /// The cluster.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// Arguments that cannot be used together or do not parse.
    #[error("{0}")]
    Usage(String),
    /// A single sign-on failed, or its tokens no longer work.
    #[error("{0}")]
    SignIn(String),
}

impl CommandError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Read(..) | Self::ConfigFile { .. } | Self::Config(_) => {
                exit::USAGE
            }
            Self::Unreachable { .. } => exit::UNREACHABLE,
            Self::NotLoggedIn { .. } | Self::SignIn(_) => exit::UNAUTHENTICATED,
            Self::Api { status, .. } => match status {
                401 => exit::UNAUTHENTICATED,
                403 => exit::FORBIDDEN,
                404 => exit::NOT_FOUND,
                409 => exit::CONFLICT,
                _ => exit::FAILED,
            },
            _ => exit::FAILED,
        }
    }

    /// The HTTP status the gateway answered, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Runs one command other than `serve`, `cluster import`, `plugin run` and `completion`
/// (those need the process's terminal or the command tree; `main` runs them).
pub async fn run(command: &Command) -> Result<Output, CommandError> {
    use crate::cli::{ClusterCommand, PluginCommand};
    match command {
        Command::Login(args) => session::login(args).await,
        Command::Credential(args) => sso::credential(args).await,
        Command::Logout(args) => session::logout(args),
        Command::Context(command) => session::context(command),
        Command::Cluster(ClusterCommand::Import(_))
        | Command::Plugin(PluginCommand::Run(_))
        | Command::Serve(_)
        | Command::Completion(_) => Err(CommandError::Usage(
            "this command does not talk to a gateway's API".to_owned(),
        )),
        Command::Cluster(command) => clusters::cluster(command).await,
        Command::Kubeconfig(args) => fetch_kubeconfig(args).await.map(Output::raw),
        Command::Token(command) => tokens::token(command).await,
        Command::Grant(command) => grants::grant(command).await,
        Command::Plugin(command) => extensions::plugin(command).await,
        Command::Job(command) => run_job_command(command).await,
        Command::Run(command) => job::run_command(command).await,
        Command::Finding(command) => activity::finding(command).await,
        Command::Helm(command) => helm::helm(command).await,
        Command::Chart(command) => helm::chart(command).await,
        Command::Webhook(command) => webhooks::webhook(command).await,
        Command::Instances(args) => activity::instances(args).await,
        Command::Leader(args) => activity::leader(args).await,
        Command::Audit(args) => activity::audit(args).await,
        Command::Version(args) => activity::version(args).await,
    }
}

/// Opens the database and settles the secret key as `portico serve` does.
async fn open_database(args: &DatabaseArgs) -> Result<(DatabaseUrl, Db, SecretKey), CommandError> {
    let database = DatabaseUrl::parse(&args.database_url)?;
    let key = args
        .secret_key
        .as_deref()
        .map(SecretKey::parse)
        .transpose()
        .map_err(ConfigError::from)?;
    if key.is_none() && matches!(database, DatabaseUrl::Postgres(_)) {
        return Err(ConfigError::SecretKeyRequired.into());
    }
    let db = Db::connect(&database).await.map_err(StartError::from)?;
    let key = settle_secret_key(&database, key.as_ref(), &db).await?;
    Ok((database, db, key))
}

/// What an import did, per context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Added { context: String, id: String },
    Exists { context: String, id: String },
    Failed { context: String, error: String },
}

/// Registers the contexts of a kubeconfig file.
pub async fn import_clusters(args: &ImportArgs) -> Result<Vec<Imported>, CommandError> {
    // Flags first, so a bad database URL or key is reported before the file is read.
    DatabaseUrl::parse(&args.database.database_url)?;
    if let Some(key) = args.database.secret_key.as_deref() {
        SecretKey::parse(key).map_err(ConfigError::from)?;
    }
    let text = std::fs::read_to_string(&args.kubeconfig)
        .map_err(|e| CommandError::Read(args.kubeconfig.display().to_string(), e))?;
    let config = spec::parse_kubeconfig(&text).map_err(ClusterError::from)?;
    let (_, db, key) = open_database(&args.database).await?;
    let manager = ClusterManager::new(
        db.clone(),
        key,
        ClusterOptions {
            allow_insecure_credentials: args.cluster_servers.allow_insecure_cluster_credentials,
            deny_local_servers: args.cluster_servers.deny_local_cluster_servers,
            ..ClusterOptions::default()
        },
        &Metrics::new(),
        ClusterEvents::new("portico-cli"),
        CancellationToken::new(),
        TaskTracker::new(),
    );
    let base_dir = args.kubeconfig.parent().map(Path::to_path_buf);
    let origin = Origin {
        base_dir: base_dir.as_deref(),
        allow_files: true,
        allow_exec: true,
    };
    let mut results = Vec::new();
    for context in spec::context_names(&config) {
        if !args.contexts.is_empty() && !args.contexts.contains(&context) {
            continue;
        }
        let id = id_from_context(&context);
        if db.cluster(&id).await.map_err(ClusterError::from)?.is_some() {
            results.push(Imported::Exists { context, id });
            continue;
        }
        let new = NewCluster {
            id: id.clone(),
            name: Some(context.clone()),
            kubeconfig: text.clone(),
            context: Some(context.clone()),
            namespace: None,
            labels: BTreeMap::new(),
        };
        match manager.create_from(new, origin).await {
            Ok(_) => {
                if args.connect {
                    manager.set_desired(&id, DesiredState::Connected).await?;
                }
                results.push(Imported::Added { context, id });
            }
            Err(e) => results.push(Imported::Failed {
                context,
                error: e.to_string(),
            }),
        }
    }
    db.close().await;
    Ok(results)
}

/// A cluster id from a context name: allowed characters kept, others replaced by `-`.
pub fn id_from_context(context: &str) -> String {
    let id: String = context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let id: String = id.chars().take(253).collect();
    if id.is_empty() {
        "cluster".to_owned()
    } else {
        id
    }
}

/// Fetches the kubeconfig the gateway exports for the caller's token: for `args.cluster`, or
/// for every cluster the token may reach.
pub async fn fetch_kubeconfig(args: &KubeconfigArgs) -> Result<String, CommandError> {
    match &args.cluster {
        Some(id) => clusters::kubeconfig(&args.gateway, id).await,
        None => clusters::fleet_kubeconfig(&args.gateway, args.current.as_deref()).await,
    }
}
