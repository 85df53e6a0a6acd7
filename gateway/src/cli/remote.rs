//! Commands that talk to a running gateway through its API: `job …` and `kubeconfig`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::OutputFormat;

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Every job.
    List(JobListArgs),
    /// One job.
    Show(JobIdArgs),
    /// Create a job from a JSON file: the body of `POST /api/v1/jobs`.
    Create(JobCreateArgs),
    /// Run a job now (on the replica you reach); prints the run as started.
    Run(JobIdArgs),
    /// The newest runs, of every job or one.
    Runs(JobRunsArgs),
}

impl JobCommand {
    /// How the result is printed.
    pub fn output(&self) -> OutputFormat {
        match self {
            Self::List(args) => args.output,
            Self::Show(args) | Self::Run(args) => args.output,
            Self::Create(args) => args.output,
            Self::Runs(args) => args.output,
        }
    }
}

/// Flags of `portico job list`.
#[derive(Debug, Clone, Args)]
pub struct JobListArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico job show` and `portico job run`: one job.
#[derive(Debug, Clone, Args)]
pub struct JobIdArgs {
    /// The job's id.
    pub id: String,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico job create`.
#[derive(Debug, Clone, Args)]
pub struct JobCreateArgs {
    /// The job as JSON (`name`, `plugins`, `cron`, optional `kind`, `targets`, `enabled`,
    /// `timeoutSeconds`, `webhooks`, `notifyOnlyOnFailure`); `-` reads standard input.
    #[arg(long, short = 'f')]
    pub file: PathBuf,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico job runs`.
#[derive(Debug, Clone, Args)]
pub struct JobRunsArgs {
    /// Only this job's runs.
    #[arg(long)]
    pub job: Option<String>,

    /// Only runs with this status: running, success, failed or skipped.
    #[arg(long)]
    pub status: Option<String>,

    /// At most this many runs, newest first.
    #[arg(long)]
    pub limit: Option<u32>,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// How the commands that talk to a running gateway reach it.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The gateway's URL.
    #[arg(long, env = "PORTICO_URL", default_value = "https://localhost:3618")]
    pub server: String,

    /// Your Portico token.
    #[arg(long, env = "PORTICO_TOKEN", hide_env_values = true)]
    pub token: String,

    /// CA to trust for the gateway (e.g. `./data/tls-ca.crt` of a standalone gateway).
    #[arg(long, env = "PORTICO_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Flags of `portico kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArgs {
    /// The cluster id.
    #[arg(long)]
    pub cluster: String,

    // The gateway, and your token: it goes into the kubeconfig.
    #[command(flatten)]
    pub gateway: GatewayArgs,
}
