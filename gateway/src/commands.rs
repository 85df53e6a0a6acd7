//! The one-shot subcommands: `portico cluster import`, `portico kubeconfig`,
//! `portico plugin run` and `portico job`.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{DatabaseArgs, ImportArgs, KubeconfigArgs};
use crate::cluster::spec::{self, Origin};
use crate::cluster::{ClusterError, ClusterEvents, ClusterManager, ClusterOptions, NewCluster};
use crate::config::{ConfigError, DatabaseUrl};
use crate::crypto::SecretKey;
use crate::server::{StartError, settle_secret_key};
use crate::storage::Db;
use crate::storage::clusters::DesiredState;
use crate::telemetry::Metrics;

mod api;
mod job;
mod plugin;

pub use api::GatewayClient;
pub use job::{JobOutput, run_job_command};
pub use plugin::{PluginRun, run_plugin};

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
    /// The kubeconfig file cannot be read.
    #[error("cannot read `{0}`: {1}")]
    Read(String, std::io::Error),
    /// The gateway refused or could not be reached.
    #[error("{0}")]
    Http(String),
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

/// Fetches the kubeconfig the gateway exports for `args.cluster` and the caller's token.
pub async fn fetch_kubeconfig(args: &KubeconfigArgs) -> Result<String, CommandError> {
    let client = GatewayClient::new(&args.gateway)?;
    let url = client.url(&["clusters", &args.cluster, "kubeconfig"]);
    client.send(reqwest::Method::GET, url, None).await
}
