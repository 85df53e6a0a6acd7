//! Command line: `portico serve` and friends.
//!
//! Every flag of `serve` also reads an environment variable. The environment is an injectable
//! source ([`Cli::parse_with_env`]): `main` passes the process environment, tests pass a map, so a
//! test never depends on (or mutates) the variables of the process that runs it.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod offline;
mod remote;
mod serve;

pub use offline::{
    ClusterCommand, DatabaseArgs, ImportArgs, PluginCommand, PluginRunArgs, RunEvent,
};
pub use remote::{
    GatewayArgs, JobCommand, JobCreateArgs, JobIdArgs, JobListArgs, JobRunsArgs, KubeconfigArgs,
};
pub use serve::{ClusterServerArgs, ServeArgs};

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

/// Output of commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Table,
    /// One JSON document.
    Json,
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
