//! Command line: `portico serve` and friends.
//!
//! Every flag of `serve` also reads an environment variable. The environment is an injectable
//! source ([`Cli::parse_with_env`]): `main` passes the process environment, tests pass a map, so a
//! test never depends on (or mutates) the variables of the process that runs it.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod activity;
mod admin;
mod extensions;
mod offline;
mod remote;
mod serve;
mod session;
pub mod version;

pub use activity::{AuditArgs, FindingCommand, FindingListArgs, RunCommand};
pub use admin::{
    ClusterAddArgs, ClusterCommand, ClusterKubeconfigArgs, ClusterUpdateArgs, GrantCommand,
    GrantCreateArgs, GrantDeleteArgs, TokenCommand, TokenCreateArgs,
};
pub use extensions::{
    ChartCommand, ChartSearchArgs, HelmAuthArgs, HelmCommand, HelmRepoAddArgs, HelmRepoCommand,
    HelmRepoSyncArgs, HelmRepoUpdateArgs, PluginCommand, PluginConfigArgs, PluginInstallArgs,
    PluginLanguage, PluginNewArgs, WebhookCommand, WebhookCreateArgs, WebhookDeliveriesArgs,
    WebhookFields, WebhookUpdateArgs,
};
pub use offline::{DatabaseArgs, ImportArgs, PluginRunArgs, RunEvent};
pub use remote::{
    ConfigLocation, GatewayArgs, IdArgs, JobCommand, JobCreateArgs, JobIdArgs, JobListArgs,
    JobRunsArgs, JobUpdateArgs, KubeconfigArgs, RemoteArgs,
};
pub use serve::{ClusterServerArgs, ServeArgs};
pub use session::{
    CompletionArgs, ContextCommand, ContextListArgs, ContextNameArgs, CredentialArgs,
    InteractiveMode, LoginArgs, LogoutArgs, OidcClientArgs, Shell, VersionArgs,
};

/// Portico: a WebAssembly-extensible gateway in front of many Kubernetes clusters.
///
/// Commands other than `serve`, `cluster import` and `plugin run` talk to a running gateway's
/// API: `portico login` stores its URL, your token and its CA as a context.
#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version = version::VERSION,
    long_version = version::LONG_VERSION,
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<ServeArgs>),
    /// Check a token against a gateway and store it as the current context; or, with
    /// `--sso`, sign in through the OpenID provider and write a kubeconfig for kubectl.
    ///
    /// The context holds the gateway's URL, the token (or the provider) and the CA to trust.
    Login(LoginArgs),
    /// kubectl's exec credential plugin for single sign-on: prints an `ExecCredential`
    /// (`client.authentication.k8s.io/v1`) with the cached ID token, refreshed with the
    /// refresh token when it has expired. `portico login --sso` writes kubeconfigs that run it.
    Credential(CredentialArgs),
    /// Forget the token of a context (the current one by default).
    ///
    /// Its server and CA stay. The token itself stays valid: `portico token revoke` ends it.
    Logout(LogoutArgs),
    /// List, switch and delete contexts.
    #[command(subcommand)]
    Context(ContextCommand),
    /// The cluster registry (`import` writes the database directly, for bootstrap).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a kubeconfig that points kubectl at a running gateway for one cluster (as
    /// `cluster kubeconfig`).
    Kubeconfig(KubeconfigArgs),
    /// API tokens: create, list, show, revoke (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Grants for people and groups signed in through OIDC: list, create, delete (admin).
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Wasm plugins (`run` calls one in this process).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// List, show, create, change, delete and run scheduled jobs, and list their runs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Runs of jobs.
    #[command(subcommand)]
    Run(RunCommand),
    /// Findings of inspections.
    #[command(subcommand)]
    Finding(FindingCommand),
    /// Helm repositories.
    #[command(subcommand)]
    Helm(HelmCommand),
    /// Charts of the synced Helm repositories.
    #[command(subcommand)]
    Chart(ChartCommand),
    /// Webhooks on cluster connect and disconnect, and their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The gateway's replicas (GET /api/v1/instances).
    Instances(RemoteArgs),
    /// Who leads the replicas (GET /api/v1/leader).
    Leader(RemoteArgs),
    /// The audit log, newest first (GET /api/v1/audit).
    Audit(AuditArgs),
    /// Print a shell completion script (e.g. `portico completion bash >
    /// /etc/bash_completion.d/portico`).
    Completion(CompletionArgs),
    /// This program's version and the gateway's (GET /version).
    Version(VersionArgs),
}

/// Output of commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

pub use crate::telemetry::LogFormat;

impl Cli {
    /// Parses `args` (program name first), reading environment variables from `env` instead
    /// of the process environment.
    pub fn parse_with_env<I, T>(args: I, env: &HashMap<String, String>) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        parse_with_env(args, env)
    }

    /// Parses the process's arguments and environment; exits with clap's message on error.
    /// (clap reads the process environment itself here, so `--help` shows each variable.)
    pub fn parse_process() -> Self {
        Self::parse()
    }
}

/// Parses `args` (program name first) as `P`, reading environment variables from `env`.
fn parse_with_env<P, I, T>(args: I, env: &HashMap<String, String>) -> Result<P, clap::Error>
where
    P: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let command = with_env_source(P::command(), env);
    let matches = command.try_get_matches_from(args)?;
    P::from_arg_matches(&matches)
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
