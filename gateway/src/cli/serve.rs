//! Flags of `portico serve`, each with its environment variable, and the cluster-server
//! vetting flags `cluster import` shares.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use super::{LogFormat, parse_with_env};

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

    /// Heartbeat of this replica's published connection states; another replica shows them
    /// stale after three intervals without one.
    #[arg(long, env = "REPLICA_STATE_INTERVAL_SECONDS", default_value_t = 10)]
    pub replica_state_interval_seconds: u64,

    /// The leader deletes the published states of a replica silent this long.
    #[arg(long, env = "REPLICA_STATE_RETENTION_SECONDS", default_value_t = 600)]
    pub replica_state_retention_seconds: u64,

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

    /// Folder for compiled plugins (wasmtime's compile cache), so a restart does not compile
    /// them again. Default: `plugin-cache` in the SQLite data folder, else the system's
    /// temporary folder. Replicas and processes may share one.
    #[arg(long, env = "PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,

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

    /// On SIGTERM/SIGINT, how long in-flight requests, followed logs and upgraded streams
    /// (exec, attach, port-forward) may take to finish. Watches end at once: clients resume them.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 30)]
    pub shutdown_timeout_seconds: u64,

    /// Console (`/ui`) sessions end this long after sign-in, whatever the activity.
    #[arg(long, env = "CONSOLE_SESSION_TTL_MINUTES", default_value_t = 720)]
    pub console_session_ttl_minutes: u64,

    /// Console sessions end after this long without a request.
    #[arg(long, env = "CONSOLE_IDLE_TIMEOUT_MINUTES", default_value_t = 60)]
    pub console_idle_timeout_minutes: u64,

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

    /// OpenID Connect: ID tokens from this issuer are accepted as bearer tokens on the proxy
    /// and the API (kube-apiserver's flag). `https://` only; discovery is read from
    /// `{issuer}/.well-known/openid-configuration`.
    #[arg(long, env = "OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,

    /// The client id ID tokens must be issued for (their `aud`). Required with
    /// `--oidc-issuer-url`.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The claim that names the user.
    #[arg(long, env = "OIDC_USERNAME_CLAIM", default_value = "email")]
    pub oidc_username_claim: String,

    /// Prepended to user names. Unset: claims other than `email` get `{issuer-url}#`; `-`
    /// turns prefixing off.
    #[arg(long, env = "OIDC_USERNAME_PREFIX")]
    pub oidc_username_prefix: Option<String>,

    /// The claim that lists the user's groups (a string or an array of strings).
    #[arg(long, env = "OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// Prepended to every group name.
    #[arg(long, env = "OIDC_GROUPS_PREFIX", default_value = "")]
    pub oidc_groups_prefix: String,

    /// PEM CA bundle for the issuer's TLS certificate (default: the public web roots).
    #[arg(long, env = "OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,

    /// `key=value`: a claim that ID tokens must carry with exactly this string value
    /// (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "oidc-required-claim",
        env = "OIDC_REQUIRED_CLAIM",
        value_delimiter = ','
    )]
    pub oidc_required_claims: Vec<String>,

    /// Signing algorithms accepted on ID tokens, comma-separated (asymmetric ones only: RS256,
    /// RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA).
    #[arg(
        long,
        env = "OIDC_SIGNING_ALGS",
        value_delimiter = ',',
        default_value = "RS256"
    )]
    pub oidc_signing_algs: Vec<String>,

    /// The console's own client at the provider (its sign-in button: a server-side code flow
    /// with PKCE, redirecting to `{public URL}/ui/login/sso/callback`). Default:
    /// `--oidc-client-id`. The console's ID tokens must name this client as their audience.
    #[arg(long, env = "CONSOLE_OIDC_CLIENT_ID")]
    pub console_oidc_client_id: Option<String>,

    /// A file holding the console client's secret (a confidential client; sent with HTTP Basic
    /// authentication). Without it the console is a public client and proves itself with PKCE
    /// alone.
    #[arg(long, env = "CONSOLE_OIDC_CLIENT_SECRET_FILE")]
    pub console_oidc_client_secret_file: Option<PathBuf>,

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
        let ServeCli {
            command: ServeOnly::Serve(args),
        } = parse_with_env(argv, env)?;
        Ok(args)
    }
}

/// `portico serve` as the only command: the same program name, version and subcommand as
/// [`Cli`](super::Cli), so parsing, errors and help read the same, and the parsed command
/// cannot be another one.
#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version = super::version::VERSION,
    long_version = super::version::LONG_VERSION,
    propagate_version = true
)]
struct ServeCli {
    #[command(subcommand)]
    command: ServeOnly,
}

#[derive(Debug, Subcommand)]
enum ServeOnly {
    /// Run the gateway.
    Serve(ServeArgs),
}
