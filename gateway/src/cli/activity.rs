//! `portico run …`, `portico finding …` and `portico audit`: what jobs did and who changed what.

use clap::{Args, Subcommand};

use super::{IdArgs, JobRunsArgs, RemoteArgs};

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Runs, newest first (GET /api/v1/runs).
    List(JobRunsArgs),
    /// One run with its per-cluster results (GET /api/v1/runs/{id}).
    Get(IdArgs),
}

#[derive(Debug, Subcommand)]
pub enum FindingCommand {
    /// Stored findings, newest first (GET /api/v1/findings).
    List(FindingListArgs),
    /// The latest result of every cluster ever inspected (GET /api/v1/findings/summary).
    Summary(RemoteArgs),
}

/// Flags of `portico finding list`: the filters of `GET /api/v1/findings`.
#[derive(Debug, Clone, Args)]
pub struct FindingListArgs {
    /// Only this run's findings.
    #[arg(long)]
    pub run: Option<String>,

    /// Only this cluster's.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Only this check's.
    #[arg(long)]
    pub check: Option<String>,

    /// Only this severity: info, low, medium, high or critical.
    #[arg(long, value_parser = ["info", "low", "medium", "high", "critical"])]
    pub severity: Option<String>,

    /// Only failed checks.
    #[arg(long, conflicts_with = "passed")]
    pub failed: bool,

    /// Only passed checks.
    #[arg(long)]
    pub passed: bool,

    /// At most this many (1-1000; the gateway's default is 100).
    #[arg(long)]
    pub limit: Option<u32>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico audit`: the filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only `proxy` (proxied requests), `api` (admin API changes) or `console` (changes made
    /// in the console, sign-ins and sign-outs) entries.
    #[arg(long, value_parser = ["proxy", "api", "console"])]
    pub kind: Option<String>,

    /// Only this cluster's.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Only this token's (its name).
    #[arg(long)]
    pub token_name: Option<String>,

    /// Only entries older than this: an RFC 3339 time or unix milliseconds.
    #[arg(long)]
    pub before: Option<String>,

    /// At most this many (1-1000; the gateway's default is 100).
    #[arg(long)]
    pub limit: Option<u32>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}
