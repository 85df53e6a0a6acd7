//! `portico cluster …` and `portico token …`: the cluster registry and tokens through a running
//! gateway's API, and the database-direct `cluster import` for bootstrap.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{IdArgs, ImportArgs, RemoteArgs};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster from a kubeconfig context (POST /api/v1/clusters).
    ///
    /// The gateway refuses file references and exec plugins: flatten first (`kubectl config
    /// view --raw --minify --flatten --context NAME`).
    Add(ClusterAddArgs),
    /// The clusters your token can see (GET /api/v1/clusters).
    List(RemoteArgs),
    /// One cluster (GET /api/v1/clusters/{id}).
    Get(IdArgs),
    /// Change a cluster's name, labels or kubeconfig (PUT /api/v1/clusters/{id}); a connected
    /// cluster reconnects with the new configuration.
    Update(ClusterUpdateArgs),
    /// Connect a cluster (POST /api/v1/clusters/{id}/connect).
    ///
    /// Records that it should be connected and connects the replica you reach; exits 1 when
    /// the connection check fails (the gateway keeps retrying).
    Connect(IdArgs),
    /// Disconnect a cluster (POST /api/v1/clusters/{id}/disconnect).
    Disconnect(IdArgs),
    /// Disconnect and forget a cluster (DELETE /api/v1/clusters/{id}).
    Delete(IdArgs),
    /// Print a kubeconfig for kubectl through the gateway, with your token
    /// (GET /api/v1/clusters/{id}/kubeconfig).
    Kubeconfig(ClusterKubeconfigArgs),
    /// Bootstrap: register every context of a kubeconfig file straight into the database.
    ///
    /// Needs no running gateway, only the database (`--database-url`, `--secret-key`); ids
    /// come from context names, existing ids are left alone. File references and exec plugins
    /// are allowed: you run this as the operator. Use `cluster add` against a running gateway
    /// otherwise.
    Import(ImportArgs),
}

/// Flags of `portico cluster add`.
#[derive(Debug, Clone, Args)]
pub struct ClusterAddArgs {
    /// The cluster's id (letters, digits, `-`, `_`, `.`, `:`).
    pub id: String,

    /// The kubeconfig file (`-`: standard input); its text is sent as it is.
    #[arg(long, short = 'f', env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,

    /// The kubeconfig's context to use (default: its current context).
    #[arg(long)]
    pub kube_context: Option<String>,

    /// The namespace exported kubeconfigs name in the cluster's context (default: the
    /// kubeconfig context's namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// A display name (default: the id).
    #[arg(long)]
    pub name: Option<String>,

    /// A label `KEY=VALUE` (repeatable).
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Connect it right away (as `cluster connect`).
    #[arg(long)]
    pub connect: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico cluster update`.
#[derive(Debug, Clone, Args)]
pub struct ClusterUpdateArgs {
    /// The cluster's id.
    pub id: String,

    /// A new display name.
    #[arg(long)]
    pub name: Option<String>,

    /// A new kubeconfig file (`-`: standard input).
    #[arg(long, short = 'f')]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig's context to use.
    #[arg(long)]
    pub kube_context: Option<String>,

    /// The namespace exported kubeconfigs name in the cluster's context (`""`: none).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Set a label `KEY=VALUE`, or remove one with `KEY-` (repeatable; others are kept).
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE|KEY-")]
    pub labels: Vec<String>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico cluster kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct ClusterKubeconfigArgs {
    /// The cluster's id.
    pub id: String,

    #[command(flatten)]
    pub gateway: super::GatewayArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (POST /api/v1/tokens); its secret is shown once.
    Create(TokenCreateArgs),
    /// Every token, without secrets (GET /api/v1/tokens).
    List(RemoteArgs),
    /// One token by id or name (GET /api/v1/tokens/{id}).
    Get(IdArgs),
    /// Delete a token by id or name (DELETE /api/v1/tokens/{id}): refused at once on the
    /// replica you reach, within 5 s on the others.
    #[command(visible_alias = "delete")]
    Revoke(IdArgs),
}

/// Flags of `portico token create`.
#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// The token's name (1-63 letters, digits, `-`, `_`, `.`).
    pub name: String,

    /// `admin` (the admin API and every cluster) or `user` (the clusters of its grants).
    #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
    pub role: String,

    /// A grant `CLUSTER=read|write[,impersonate]`; `*` is every cluster (repeatable).
    #[arg(long = "grant", short = 'g', value_name = "CLUSTER=ACCESS")]
    pub grants: Vec<String>,

    /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90d`).
    #[arg(long, conflicts_with = "expires_at")]
    pub ttl: Option<String>,

    /// Expiry as an RFC 3339 time.
    #[arg(long)]
    pub expires_at: Option<String>,

    /// The user impersonating grants send (default: the token's name).
    #[arg(long)]
    pub impersonate_user: Option<String>,

    /// A group impersonating grants send (repeatable).
    #[arg(long = "impersonate-group")]
    pub impersonate_groups: Vec<String>,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Every grant for people and groups (GET /api/v1/grants).
    List(RemoteArgs),
    /// Grant an OIDC user or group access (POST /api/v1/grants).
    Create(GrantCreateArgs),
    /// Delete a grant by id (DELETE /api/v1/grants/{id}).
    Delete(GrantDeleteArgs),
}

/// Flags of `portico grant create`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["user", "group"])))]
#[command(group(clap::ArgGroup::new("clusters").required(true).args(["cluster", "selector"])))]
pub struct GrantCreateArgs {
    /// The user, as the gateway names them (after `--oidc-username-prefix`).
    #[arg(long)]
    pub user: Option<String>,

    /// The group, as the gateway names it (after `--oidc-groups-prefix`).
    #[arg(long)]
    pub group: Option<String>,

    /// A cluster id, or `*` for every cluster.
    #[arg(long)]
    pub cluster: Option<String>,

    /// A cluster label selector (`env=prod,team in (a,b)`).
    #[arg(long)]
    pub selector: Option<String>,

    /// `read`, `write`, or `admin` (on `*`: the Portico admin role; elsewhere: write).
    #[arg(long, value_parser = ["read", "write", "admin"])]
    pub access: String,

    /// Send the person's name and groups as `Impersonate-User`/`Impersonate-Group`, so the
    /// cluster's own RBAC decides.
    #[arg(long)]
    pub impersonate: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags of `portico grant delete`.
#[derive(Debug, Clone, Args)]
pub struct GrantDeleteArgs {
    /// The grant's id (from `portico grant list`).
    pub id: String,

    #[command(flatten)]
    pub remote: RemoteArgs,
}
