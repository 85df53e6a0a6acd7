//! Commands about the CLI itself: `login`, `logout`, `context`, `completion` and `version`.

use std::path::PathBuf;

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

    /// Sign in through an OpenID Connect provider (single sign-on) instead of with a token:
    /// the authorization-code flow with PKCE and a loopback redirect (or `--device`), then a
    /// kubeconfig whose users run `portico credential`.
    #[arg(long, conflicts_with = "token")]
    pub sso: bool,

    /// With --sso: the device-code flow, for a machine without a browser (open the printed
    /// address anywhere and enter the code).
    #[arg(long, requires = "sso")]
    pub device: bool,

    /// With --sso: do not try to open a browser; only print the address to open.
    #[arg(long, requires = "sso")]
    pub no_browser: bool,

    /// With --sso: where to write the kubeconfig (default:
    /// `~/.kube/portico-<context>.yaml`).
    #[arg(long, requires = "sso", conflicts_with = "no_kubeconfig")]
    pub kubeconfig: Option<PathBuf>,

    /// With --sso: write no kubeconfig.
    #[arg(long, requires = "sso")]
    pub no_kubeconfig: bool,

    /// With --sso: what the kubeconfig's `portico credential` may do when the refresh token
    /// no longer works: `IfAvailable` signs in again in a browser when kubectl runs in a
    /// terminal, `Never` fails with a message.
    #[arg(long, value_enum, default_value = "IfAvailable", requires = "sso")]
    pub interactive_mode: InteractiveMode,

    /// With --sso: how long to wait for the sign-in to finish, in seconds.
    #[arg(long, default_value_t = 300, requires = "sso")]
    pub sso_timeout_seconds: u64,

    #[command(flatten)]
    pub oidc: OidcClientArgs,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `interactiveMode` of the kubeconfig's exec credential plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InteractiveMode {
    /// Sign in again interactively when kubectl runs in a terminal.
    #[value(name = "IfAvailable")]
    IfAvailable,
    /// Never sign in interactively.
    #[value(name = "Never")]
    Never,
}

impl InteractiveMode {
    /// The value kubectl reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IfAvailable => "IfAvailable",
            Self::Never => "Never",
        }
    }
}

/// The OpenID provider and client of `login --sso` and `credential`.
#[derive(Debug, Clone, Default, Args)]
pub struct OidcClientArgs {
    /// The provider's issuer URL (https). Default for `login --sso`: what the gateway
    /// announces (`GET /api/v1/auth/oidc`, from its own `--oidc-issuer-url`).
    #[arg(long, env = "PORTICO_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,

    /// The client id registered at the provider (a public client: no secret). Default for
    /// `login --sso`: what the gateway announces (its `--oidc-client-id`).
    #[arg(long, env = "PORTICO_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// CA to trust for the provider, besides the system's roots.
    #[arg(long, env = "PORTICO_OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,

    /// Scopes to ask for, comma-separated or repeated (default: `openid`, plus those of
    /// `offline_access`, `email`, `profile` and `groups` the provider lists as supported).
    #[arg(long, value_delimiter = ',')]
    pub oidc_scope: Vec<String>,

    /// The folder of the ID and refresh token cache (0700; files 0600). Default:
    /// `$XDG_CACHE_HOME/portico/oidc`, else `~/.cache/portico/oidc`.
    #[arg(long, env = "PORTICO_TOKEN_CACHE_DIR")]
    pub token_cache_dir: Option<PathBuf>,

    /// `XDG_CACHE_HOME`, read through the parser so tests can give it.
    #[arg(long = "xdg-cache-home", env = "XDG_CACHE_HOME", hide = true)]
    pub xdg_cache_home: Option<PathBuf>,
}

/// Flags of `portico credential`.
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub oidc: OidcClientArgs,

    /// `HOME` (for the default cache folder), read through the parser.
    #[arg(long = "home-dir", env = "HOME", hide = true)]
    pub home: Option<PathBuf>,

    /// What kubectl tells an exec plugin (`KUBERNETES_EXEC_INFO`): whether it may ask the
    /// person to sign in again.
    #[arg(long = "exec-info", env = "KUBERNETES_EXEC_INFO", hide = true)]
    pub exec_info: Option<String>,

    /// Do not try to open a browser when signing in again; only print the address.
    #[arg(long)]
    pub no_browser: bool,
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
