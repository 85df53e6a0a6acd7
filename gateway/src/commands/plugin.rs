//! `portico plugin run`: one plugin call against one registered cluster, in this process.
//!
//! The plugin author's loop: build, `portico plugin run NAME --cluster ID --plugin-dir DIR`,
//! read the findings, repeat. The cluster is reached like the gateway reaches it (its pooled
//! connection, the credentials in the database); a plugin from `--plugin-dir` is registered
//! only in a scratch database, so the shared one is never changed.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{CommandError, open_database};
use crate::cli::{PluginRunArgs, RunEvent};
use crate::cluster::{ClusterEvents, ClusterManager, ClusterOptions, Initiator, Phase};
use crate::config::DatabaseUrl;
use crate::plugin::{
    ClusterInfo, DisconnectedKubeApi, Error as PluginError, Finding, HostSettings, KubeApi,
    LogLine, PluginSource, Plugins, PoolKubeApi, World,
};
use crate::storage::Db;
use crate::telemetry::Metrics;

/// What a run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRun {
    pub plugin: String,
    pub version: String,
    pub world: World,
    /// Where the plugin came from: the `--plugin-dir` folder, or `database`.
    pub from: String,
    pub cluster: ClusterInfo,
    /// The apiserver's version (when the run connected).
    pub server_version: Option<String>,
    /// Lifecycle hooks: the event delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    /// Inspectors: what the plugin found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    pub logs: Vec<LogLine>,
    pub elapsed_ms: u64,
}

/// Runs `args.plugin` against `args.cluster`.
pub async fn run_plugin(args: &PluginRunArgs) -> Result<PluginRun, CommandError> {
    let config = match args.config.as_deref() {
        Some(text) => Some(parse_config(text)?),
        None => None,
    };
    let (database, db, key) = open_database(&args.database).await?;
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let clusters = ClusterManager::new(
        db.clone(),
        key,
        ClusterOptions::default(),
        &Metrics::new(),
        ClusterEvents::new("portico-cli"),
        shutdown.clone(),
        tasks.clone(),
    );
    let result = run(args, config, &database, &db, &clusters, &shutdown).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    db.close().await;
    result
}

async fn run(
    args: &PluginRunArgs,
    config: Option<serde_json::Value>,
    database: &DatabaseUrl,
    db: &Db,
    clusters: &ClusterManager,
    shutdown: &CancellationToken,
) -> Result<PluginRun, CommandError> {
    let record = clusters.record(&args.cluster).await?;
    let cluster = ClusterInfo {
        id: record.id.clone(),
        name: record.name.clone(),
        labels: record.labels.clone(),
    };
    let mut settings = HostSettings::for_database(database);
    if let Some(dir) = &args.plugin_cache_dir {
        settings.cache_dir = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
    }
    let (plugins, from, _scratch) = find_plugin(
        &args.plugin,
        args.plugin_dir.as_deref(),
        settings,
        db,
        shutdown,
    )
    .await?;
    let plugin = plugins.get(&args.plugin).await?;
    let connect = match plugin.world {
        World::Inspector => true,
        World::LifecycleHook => args.event == RunEvent::Connected,
        World::RepoSync => {
            return Err(CommandError::Usage(format!(
                "`{}` is a repo-sync plugin; `plugin run` runs inspectors and lifecycle hooks",
                plugin.name
            )));
        }
    };

    let mut server_version = None;
    let kube: Arc<dyn KubeApi> = if connect {
        // A connection for this run only, not a lifecycle change of the cluster.
        let state = clusters
            .connect_record(&record, Initiator::OtherReplica)
            .await?;
        if state.phase != Phase::Connected {
            return Err(CommandError::NotConnected {
                cluster: cluster.id,
                reason: state.last_error.unwrap_or_else(|| "no answer".to_owned()),
            });
        }
        server_version = state.server_version;
        let connection =
            clusters
                .connection(&cluster.id)
                .ok_or_else(|| CommandError::NotConnected {
                    cluster: cluster.id.clone(),
                    reason: "the connection closed again".to_owned(),
                })?;
        Arc::new(PoolKubeApi::new(
            connection,
            plugin.limits.max_kube_response_bytes,
        ))
    } else {
        Arc::new(DisconnectedKubeApi::new(&cluster.id))
    };

    let config = config.as_ref();
    let (findings, event, logs, elapsed_ms) = match plugin.world {
        World::Inspector => {
            let report = plugins
                .inspect_with_config(&plugin.name, &cluster, kube, config)
                .await?;
            let mut findings = report.value;
            sort_findings(&mut findings);
            (Some(findings), None, report.logs, report.elapsed_ms)
        }
        _ => {
            let report = plugins
                .lifecycle_with_config(&plugin.name, connect, &cluster, kube, config)
                .await?;
            let event = if connect { "connected" } else { "disconnected" };
            (None, Some(event), report.logs, report.elapsed_ms)
        }
    };
    Ok(PluginRun {
        plugin: plugin.name,
        version: plugin.version,
        world: plugin.world,
        from,
        cluster,
        server_version,
        event,
        findings,
        logs,
        elapsed_ms,
    })
}

/// The registry that has `name`: a scratch one loaded from `dir` when the plugin is there,
/// else the database's. The scratch folder lives as long as the returned guard.
async fn find_plugin(
    name: &str,
    dir: Option<&std::path::Path>,
    settings: HostSettings,
    db: &Db,
    shutdown: &CancellationToken,
) -> Result<(Plugins, String, Option<tempfile::TempDir>), CommandError> {
    if let Some(dir) = dir {
        let scratch = tempfile::tempdir()
            .map_err(|e| CommandError::Usage(format!("cannot create a scratch folder: {e}")))?;
        let scratch_db = Db::connect(&DatabaseUrl::Sqlite(scratch.path().join("plugins.db")))
            .await
            .map_err(crate::server::StartError::from)?;
        // Only the plugin run is compiled, when it is called: no background compiles.
        let plugins =
            Plugins::new(settings.clone(), scratch_db, shutdown.clone())?.without_precompile();
        plugins.load_builtins().await?;
        plugins.load_directory(dir).await?;
        if let Ok(plugin) = plugins.get(name).await {
            let from = match plugin.source {
                PluginSource::Builtin => "built in".to_owned(),
                _ => dir.display().to_string(),
            };
            return Ok((plugins, from, Some(scratch)));
        }
    }
    let plugins = Plugins::new(settings, db.clone(), shutdown.clone())?.without_precompile();
    plugins.load_builtins().await?;
    match plugins.get(name).await {
        Ok(plugin) if plugin.source == PluginSource::Builtin => {
            Ok((plugins, "built in".to_owned(), None))
        }
        Ok(_) => Ok((plugins, "database".to_owned(), None)),
        Err(PluginError::NotFound(_)) => Err(CommandError::Usage(match dir {
            Some(dir) => format!(
                "no plugin named `{name}` in {} (NAME.toml beside NAME.wasm) or in the database",
                dir.display()
            ),
            None => format!(
                "no plugin named `{name}` in the database; give --plugin-dir to run one from a \
                 folder"
            ),
        })),
        Err(e) => Err(e.into()),
    }
}

/// `--config`: JSON, or `@FILE` holding JSON.
fn parse_config(text: &str) -> Result<serde_json::Value, CommandError> {
    let (text, source) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| CommandError::Read(path.to_owned(), e))?,
            path,
        ),
        None => (text.to_owned(), "--config"),
    };
    serde_json::from_str(&text)
        .map_err(|e| CommandError::Usage(format!("{source} is not JSON: {e}")))
}

/// Failed findings first, most severe first; then by check and target.
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.passed
            .cmp(&b.passed)
            .then(b.severity.cmp(&a.severity))
            .then_with(|| a.check_id.cmp(&b.check_id))
            .then_with(|| target(a).cmp(&target(b)))
    });
}

fn target(finding: &Finding) -> String {
    match &finding.target {
        Some(t) => match &t.namespace {
            Some(ns) => format!("{} {ns}/{}", t.kind, t.name),
            None => format!("{} {}", t.kind, t.name),
        },
        None => "-".to_owned(),
    }
}

impl PluginRun {
    /// One JSON document.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the run serializes")
    }

    /// What to print in `format`.
    pub fn output(&self, format: crate::cli::OutputFormat) -> super::Output {
        let value = serde_json::to_value(self).expect("the run serializes");
        super::Output::new(value, self.table(), format)
    }

    /// A summary line and, for inspectors, a table of findings (failed first).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let version = self
            .server_version
            .as_deref()
            .map(|v| format!(", {v}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "{} {} ({}, from {}) on cluster {} ({}{version}): ",
            self.plugin, self.version, self.world, self.from, self.cluster.id, self.cluster.name,
        );
        match (&self.findings, self.event) {
            (Some(findings), _) => {
                let failed = findings.iter().filter(|f| !f.passed).count();
                let _ = writeln!(
                    out,
                    "{} findings, {failed} failed, {} ms",
                    findings.len(),
                    self.elapsed_ms
                );
                if !findings.is_empty() {
                    out.push('\n');
                    out.push_str(&findings_table(findings));
                }
            }
            (None, event) => {
                let export = match event {
                    Some("disconnected") => "on-disconnect",
                    _ => "on-connect",
                };
                let _ = writeln!(out, "{export} ok, {} ms", self.elapsed_ms);
            }
        }
        out
    }
}

fn findings_table(findings: &[Finding]) -> String {
    let rows: Vec<[String; 4]> = findings
        .iter()
        .map(|f| {
            let severity = if f.passed {
                "pass".to_owned()
            } else {
                serde_json::to_value(f.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            [severity, f.check_id.clone(), target(f), f.message.clone()]
        })
        .collect();
    let header = ["SEVERITY", "CHECK", "TARGET", "MESSAGE"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
    }
    out
}
