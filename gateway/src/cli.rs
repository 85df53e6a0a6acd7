//! Command line: `portico serve` and friends.
//!
//! Every flag of `serve` also reads an environment variable. The environment is an injectable
//! source ([`Cli::parse_with_env`]): `main` passes the process environment, tests pass a map, so a
//! test never depends on (or mutates) the variables of the process that runs it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Portico: a WebAssembly-extensible gateway in front of many Kubernetes clusters.
#[derive(Debug, Parser)]
#[command(name = "portico", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<ServeArgs>),
    /// Manage the cluster registry directly in the database.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a kubeconfig that points kubectl at a running gateway for one cluster.
    Kubeconfig(KubeconfigArgs),
    /// Work with wasm plugins without a running gateway.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// List, show, create and run scheduled jobs, and list their runs, through a running
    /// gateway's API (admin token).
    #[command(subcommand)]
    Job(JobCommand),
}

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

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run a plugin once against one registered cluster, in this process: connects to the
    /// cluster with the credentials in the database, calls the plugin, prints what it found.
    /// Inspectors report findings; lifecycle hooks get `on-connect` (or `--event
    /// disconnected`). The plugin's log lines go to stderr as it runs.
    Run(PluginRunArgs),
}

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

    /// Configuration for this run instead of the installed one: JSON, or `@FILE` holding JSON.
    #[arg(long)]
    pub config: Option<String>,

    /// Lifecycle hooks: the event to deliver.
    #[arg(long, value_enum, default_value = "connected")]
    pub event: RunEvent,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,

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

/// Output of commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Table,
    /// One JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register every context of a kubeconfig file (ids from context names; existing ids are
    /// left alone). File references and exec plugins are allowed: you run this as the operator.
    Import(ImportArgs),
}

/// Flags of `portico cluster import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The kubeconfig file to read.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// Only these contexts (repeatable; default: all).
    #[arg(long = "context")]
    pub contexts: Vec<String>,

    /// Mark the imported clusters `connected`: replicas started with `--connect-cluster` (or
    /// coordinating through leases) connect them.
    #[arg(long)]
    pub connect: bool,

    /// How cluster servers are vetted, as for `portico serve`.
    #[command(flatten)]
    pub cluster_servers: ClusterServerArgs,

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

pub use crate::telemetry::LogFormat;

/// Flags of `portico serve`. Values are validated into a `config::Config`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for the API, the proxy, health and metrics.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:3618")]
    pub listen: String,

    /// `sqlite://PATH` (embedded, created if missing) or `postgres://…` (shared by replicas).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/portico.db"
    )]
    pub database_url: String,

    /// Admin token to accept. Without it, a first start generates one and prints it once.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// 32-byte key (base64 or 64 hex digits) that encrypts cluster credentials at rest.
    /// Standalone: generated into the data folder when missing. Required with PostgreSQL.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Use the pod's service account to reach the cluster Portico runs in.
    #[arg(long, env = "IN_CLUSTER", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub in_cluster: bool,

    /// A registered cluster that holds the coordination leases.
    #[arg(long, env = "HOST_CLUSTER_ID")]
    pub host_cluster_id: Option<String>,

    /// A kubeconfig file for the cluster that holds the coordination leases.
    #[arg(long, env = "HOST_KUBECONFIG")]
    pub host_kubeconfig: Option<PathBuf>,

    /// Namespace of the leases (default: the service account's namespace, else `default`).
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Lifetime of cluster and instance leases.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 60)]
    pub lease_duration_seconds: u64,

    /// How often a holder renews its leases; 0 or not below the duration means duration/3.
    #[arg(long, env = "LEASE_RENEW_INTERVAL_SECONDS", default_value_t = 20)]
    pub lease_renew_interval_seconds: u64,

    /// Leader lease lifetime.
    #[arg(long, env = "LEADER_LEASE_DURATION_SECONDS", default_value_t = 60)]
    pub leader_lease_duration_seconds: u64,

    /// The leader steps down when it could not renew for this long.
    #[arg(long, env = "LEADER_RENEW_DEADLINE_SECONDS", default_value_t = 50)]
    pub leader_renew_deadline_seconds: u64,

    /// Interval between leader acquire/renew attempts.
    #[arg(long, env = "LEADER_RETRY_PERIOD_SECONDS", default_value_t = 10)]
    pub leader_retry_period_seconds: u64,

    /// Full re-list of cluster leases, on top of the watch.
    #[arg(long, env = "RESYNC_PERIOD_SECONDS", default_value_t = 30)]
    pub resync_period_seconds: u64,

    /// How often the leader looks for expired cluster leases (takeover or delete).
    #[arg(long, env = "LEASE_CLEANUP_INTERVAL_SECONDS", default_value_t = 30)]
    pub lease_cleanup_interval_seconds: u64,

    /// Connect every cluster whose desired state is `connected` at start-up.
    #[arg(long, env = "CONNECT_CLUSTER", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub connect_cluster: bool,

    /// Prefix of lease names and the `app` label.
    #[arg(long, env = "PRODUCT_NAME", default_value = "portico")]
    pub product_name: String,

    /// This replica's identity in leases (default: `<hostname>-<6 random [a-z0-9]>`).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Address other replicas and `GET /api/v1/instances` show (default: `$POD_IP:<port>`).
    #[arg(long, env = "ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// Folder of plugin components and manifests loaded at start.
    #[arg(long, env = "PLUGIN_DIR", default_value = "./plugins")]
    pub plugin_dir: PathBuf,

    /// Let plugin HTTP requests reach loopback, link-local (cloud metadata included) and
    /// unspecified addresses, refused by default.
    #[arg(long, env = "PLUGIN_HTTP_ALLOW_LOCAL", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub plugin_http_allow_local: bool,

    /// Log filter, e.g. `info` or `portico=debug,info`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// On SIGTERM/SIGINT, how long in-flight requests (watches included) may take to finish.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 30)]
    pub shutdown_timeout_seconds: u64,

    /// Interval of the `/version` heartbeat to each connected cluster; 3 failures in a row mark
    /// the cluster failed and start reconnecting with backoff.
    #[arg(long, env = "HEARTBEAT_INTERVAL_SECONDS", default_value_t = 30)]
    pub heartbeat_interval_seconds: u64,

    /// Bound on waiting for a cluster's response head (raised for requests that ask the
    /// apiserver for a longer `timeout`/`timeoutSeconds`; streaming bodies are not bounded).
    #[arg(long, env = "UPSTREAM_TIMEOUT_SECONDS", default_value_t = 60)]
    pub upstream_timeout_seconds: u64,

    /// The gateway's URL as clients see it, for exported kubeconfigs (default: from the
    /// request's Host header).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Accept exec credential plugins in kubeconfigs sent to the API (they run programs on the
    /// gateway host). `portico cluster import` always accepts them.
    #[arg(long, env = "ALLOW_EXEC_CREDENTIALS", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_exec_credentials: bool,

    /// How cluster servers are vetted at registration and connection.
    #[command(flatten)]
    pub cluster_servers: ClusterServerArgs,

    /// PEM certificate chain for HTTPS on the listener.
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key for `--tls-cert-file`.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,

    /// Serve plain HTTP: TLS terminates in front of the gateway (kubectl sends tokens only over
    /// TLS). Without it and without certificate files, standalone SQLite generates a private CA
    /// and certificate into the data folder.
    #[arg(long, env = "PLAIN_HTTP", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub plain_http: bool,

    /// Attempts per webhook delivery, the first included. Network errors, timeouts, 5xx and
    /// 429 answers are retried.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 5)]
    pub webhook_max_attempts: u32,

    /// Wait before the first webhook retry, in milliseconds; it doubles for each further one
    /// (at most 5 minutes).
    #[arg(long, env = "WEBHOOK_RETRY_DELAY_MS", default_value_t = 1000)]
    pub webhook_retry_delay_ms: u64,

    /// Bound on one webhook request, connecting included.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    pub webhook_timeout_seconds: u64,

    /// How often the leader's job scheduler re-reads the jobs table, in milliseconds (an edit
    /// made on any replica takes effect within this interval).
    #[arg(long, env = "JOB_POLL_INTERVAL_MS", default_value_t = 5000)]
    pub job_poll_interval_ms: u64,

    /// A second, plain-HTTP listener that serves only `GET /metrics`, without a token (for a
    /// Prometheus on the pod network). On the main listener `/metrics` needs an admin token.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// Bound on a client sending a request's headers: from the connection's start (after the
    /// TLS handshake) or the first byte of a later request, to the end of its headers.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    pub http_header_timeout_seconds: u64,

    /// A connection with no request in flight and no traffic for this long is closed.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECONDS", default_value_t = 120)]
    pub http_idle_timeout_seconds: u64,

    /// Open client connections at most; past it the listener stops accepting until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Long-lived proxied requests (watches, `logs -f`, exec, attach, port-forward) open at
    /// once per token; more are answered 429.
    #[arg(long, env = "MAX_STREAMS_PER_TOKEN", default_value_t = 200)]
    pub max_streams_per_token: usize,

    /// Days the audit log keeps an entry.
    #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = 90)]
    pub audit_retention_days: u64,

    /// `POD_IP`, read for the default advertised address (Downward API).
    #[arg(long, env = "POD_IP", hide = true)]
    pub pod_ip: Option<String>,
}

/// How cluster servers are vetted (shared by `serve` and `cluster import`).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterServerArgs {
    /// Accept bearer tokens and basic auth for `http://` cluster servers, which sends them
    /// unencrypted.
    #[arg(long, env = "ALLOW_INSECURE_CLUSTER_CREDENTIALS", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_cluster_credentials: bool,

    /// Refuse cluster servers at loopback, link-local (e.g. 169.254.169.254) and unspecified
    /// addresses: the server's IP at registration, every resolved address at connection.
    #[arg(long, env = "DENY_LOCAL_CLUSTER_SERVERS", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub deny_local_cluster_servers: bool,
}

impl Cli {
    /// Parses `args` (program name first), reading environment variables from `env` instead
    /// of the process environment.
    pub fn parse_with_env<I, T>(args: I, env: &HashMap<String, String>) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = with_env_source(Self::command(), env);
        let matches = command.try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }

    /// Parses the process's arguments and environment; exits with clap's message on error.
    /// (clap reads the process environment itself here, so `--help` shows each variable.)
    pub fn parse_process() -> Self {
        Self::parse()
    }
}

impl ServeArgs {
    /// `serve` flags from a list of arguments (without program or subcommand name) and an
    /// environment map: the entry point tests use.
    pub fn from_args_and_env<T: AsRef<str>>(
        args: &[T],
        env: &HashMap<String, String>,
    ) -> Result<Self, clap::Error> {
        let argv = ["portico", "serve"]
            .into_iter()
            .map(String::from)
            .chain(args.iter().map(|a| a.as_ref().to_owned()));
        match Cli::parse_with_env(argv, env)?.command {
            Command::Serve(args) => Ok(*args),
            _ => unreachable!("the `serve` subcommand was parsed"),
        }
    }
}

/// Rebinds every argument's environment variable to `env`: clap itself would read the process
/// environment, so the variable is dropped and its value (if any) becomes the argument's default,
/// which keeps command-line flags first, then the environment, then built-in defaults.
fn with_env_source(command: clap::Command, env: &HashMap<String, String>) -> clap::Command {
    let command = command.mut_args(|arg| {
        let value = arg
            .get_env()
            .and_then(|name| name.to_str())
            .and_then(|name| env.get(name))
            .cloned();
        let arg = arg.env(None::<&str>);
        match value {
            // clap still demands a required argument that only has a default: the variable
            // satisfies it, as clap's own environment lookup would.
            Some(value) => arg.default_value(value).required(false),
            None => arg,
        }
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| with_env_source(sub, env))
    })
}

#[cfg(test)]
mod tests;
