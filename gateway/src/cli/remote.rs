//! How commands reach a running gateway (context, server, token, CA), and the `job …` and
//! `kubeconfig` commands that talk to its API.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::OutputFormat;

/// How the commands that talk to a running gateway reach it. Each of `--server`, `--token`
/// and `--ca-file` (or its variable) overrides the context's; a `--server` other than the
/// context's uses none of the context's credentials.
#[derive(Debug, Clone, Default, Args)]
pub struct GatewayArgs {
    /// The context to use (see `portico context list`; default: the current one).
    #[arg(long, env = "PORTICO_CONTEXT")]
    pub context: Option<String>,

    /// The gateway's URL (default: the context's, else https://localhost:3618).
    #[arg(long, env = "PORTICO_SERVER")]
    pub server: Option<String>,

    /// Your Portico token (default: the context's).
    #[arg(long, env = "PORTICO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// CA to trust for the gateway (e.g. `./data/tls-ca.crt` of a standalone gateway;
    /// default: the context's).
    #[arg(long, env = "PORTICO_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Where the contexts are kept.
    #[command(flatten)]
    pub config: ConfigLocation,

    /// The former name of `PORTICO_SERVER`, still read.
    #[arg(long = "portico-url", env = "PORTICO_URL", hide = true)]
    pub legacy_url: Option<String>,
}

impl GatewayArgs {
    /// `--server`, else the former `PORTICO_URL`.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref().or(self.legacy_url.as_deref())
    }
}

/// The CLI's config file: `--config-file`, `$PORTICO_CONFIG`, else
/// `$XDG_CONFIG_HOME/portico/config.yaml`, else `~/.config/portico/config.yaml`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigLocation {
    /// The file that keeps contexts (default: `$XDG_CONFIG_HOME/portico/config.yaml`, else
    /// `~/.config/portico/config.yaml`).
    #[arg(long = "config-file", env = "PORTICO_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// `XDG_CONFIG_HOME`, read through the parser so tests can give it.
    #[arg(long = "xdg-config-home", env = "XDG_CONFIG_HOME", hide = true)]
    pub xdg_config_home: Option<PathBuf>,

    /// `HOME`, likewise.
    #[arg(long = "home-dir", env = "HOME", hide = true)]
    pub home: Option<PathBuf>,
}

impl ConfigLocation {
    /// The config file's path, or `None` when neither a file nor a home is known.
    pub fn path(&self) -> Option<PathBuf> {
        let nonempty = |p: &&PathBuf| !p.as_os_str().is_empty();
        if let Some(file) = self.config_file.as_ref().filter(nonempty) {
            return Some(file.clone());
        }
        let base = match self.xdg_config_home.as_ref().filter(nonempty) {
            Some(dir) => dir.clone(),
            None => self.home.as_ref().filter(nonempty)?.join(".config"),
        };
        Some(base.join("portico").join("config.yaml"))
    }
}

/// The gateway and the output format: what every API command takes.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// One object by id (tokens, webhooks and jobs: or by their unique name).
#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// Which one.
    pub id: String,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Every job (GET /api/v1/jobs).
    List(JobListArgs),
    /// One job (GET /api/v1/jobs/{id}).
    #[command(visible_alias = "get")]
    Show(JobIdArgs),
    /// Create a job from a JSON file: the body of `POST /api/v1/jobs`.
    Create(JobCreateArgs),
    /// Change a job from a JSON file of the fields to change (PUT /api/v1/jobs/{id}).
    Update(JobUpdateArgs),
    /// Delete a job and its runs (DELETE /api/v1/jobs/{id}).
    Delete(JobIdArgs),
    /// Run a job now (on the replica you reach); prints the run as started.
    Run(JobIdArgs),
    /// The newest runs, of every job or one (GET /api/v1/runs).
    Runs(JobRunsArgs),
}

impl JobCommand {
    /// How the result is printed.
    pub fn output(&self) -> OutputFormat {
        match self {
            Self::List(args) => args.output,
            Self::Show(args) | Self::Run(args) | Self::Delete(args) => args.output,
            Self::Create(args) => args.output,
            Self::Update(args) => args.output,
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

/// Flags of `portico job show`, `run` and `delete`: one job.
#[derive(Debug, Clone, Args)]
pub struct JobIdArgs {
    /// The job's id or name.
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

/// Flags of `portico job update`.
#[derive(Debug, Clone, Args)]
pub struct JobUpdateArgs {
    /// The job's id or name.
    pub id: String,

    /// The fields to change as JSON (absent fields keep their value); `-` reads standard input.
    #[arg(long, short = 'f')]
    pub file: PathBuf,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico job runs` and `portico run list`.
#[derive(Debug, Clone, Args)]
pub struct JobRunsArgs {
    /// Only this job's runs (its id).
    #[arg(long)]
    pub job: Option<String>,

    /// Only runs with this status: running, success, failed or skipped.
    #[arg(long)]
    pub status: Option<String>,

    /// At most this many runs, newest first (1-1000; the gateway's default is 100).
    #[arg(long)]
    pub limit: Option<u32>,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico kubeconfig`: a kubeconfig for one cluster or for all of them.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArgs {
    /// One cluster (context `portico-ID`); without it, every cluster your token may reach, one
    /// context per cluster named by its id (`kubectl --context ID …`).
    #[arg(long)]
    pub cluster: Option<String>,

    /// With every cluster: the context to make current (default: the first by id).
    #[arg(long, conflicts_with = "cluster")]
    pub current: Option<String>,

    // The gateway, and your token: it goes into the kubeconfig.
    #[command(flatten)]
    pub gateway: GatewayArgs,
}
