//! Commands about the CLI itself: `login`, `logout`, `context`, `completion` and `version`.

use clap::{Args, Subcommand, ValueEnum};

use super::{ConfigLocation, GatewayArgs, OutputFormat, RemoteArgs};

/// Flags of `portico login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// `--server` (required unless the context exists), `--token` (else read from standard
    /// input when it is not a terminal), `--ca-file` (its PEM is stored in the context),
    /// `--context` (the name to store it as; default: the server's host and port).
    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico logout`.
#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// The context whose credential to forget (default: the current one).
    #[arg(long, env = "PORTICO_CONTEXT")]
    pub context: Option<String>,

    #[command(flatten)]
    pub config: ConfigLocation,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Every context; `*` marks the current one.
    List(ContextListArgs),
    /// Make a context the current one.
    Use(ContextNameArgs),
    /// Forget a context and its credential.
    Delete(ContextNameArgs),
}

/// Flags of `portico context list`.
#[derive(Debug, Clone, Args)]
pub struct ContextListArgs {
    #[command(flatten)]
    pub config: ConfigLocation,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico context use` and `delete`.
#[derive(Debug, Clone, Args)]
pub struct ContextNameArgs {
    /// The context's name.
    pub name: String,

    #[command(flatten)]
    pub config: ConfigLocation,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Flags of `portico completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells `portico completion` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// Flags of `portico version`.
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Only this program's version; do not ask the gateway.
    #[arg(long)]
    pub client: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}
