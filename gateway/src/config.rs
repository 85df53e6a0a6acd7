//! Validated gateway configuration, built once from [`ServeArgs`].
//!
//! Every check happens here, at start, so a bad value stops the gateway with a message naming
//! the flag and its environment variable instead of surfacing later as odd behaviour.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{LogFormat, ServeArgs};
use crate::crypto::SecretKey;

mod database;
mod error;
mod identity;
mod oidc;
mod timings;

pub use database::DatabaseUrl;
pub use error::{ConfigError, Result};
use identity::{default_instance_id, valid_instance_id, valid_product_name};
pub use oidc::{OidcConfig, SIGNING_ALGS};
pub use timings::{LeaderTimings, LeaseTimings, ReplicaStateTimings};
use timings::{at_least_one, leader_timings, lease_timings, positive};

/// Which cluster holds the coordination leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCluster {
    /// No coordination: this replica is the leader and syncs no leases.
    Standalone,
    /// A registered cluster, by id.
    ClusterId(String),
    /// The cluster this pod runs in (service account).
    InCluster,
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
}

/// How the listener does TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Certificate chain and key from files.
    Files { cert: PathBuf, key: PathBuf },
    /// A private CA and certificate generated into the data folder.
    SelfSigned,
    /// Plain HTTP (TLS terminates in front).
    Off,
}

/// The gateway's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub admin_token: Option<String>,
    /// `None`: standalone default, read or generated in the data folder at start.
    pub secret_key: Option<SecretKey>,
    pub host: HostCluster,
    /// Register the cluster this pod runs in as `in-cluster` (service account credentials).
    pub in_cluster: bool,
    pub lease_namespace: String,
    pub lease: LeaseTimings,
    pub leader: LeaderTimings,
    pub resync_period: Duration,
    pub lease_cleanup_interval: Duration,
    /// Heartbeat and retention of the published per-replica connection states.
    pub replica_state: ReplicaStateTimings,
    pub connect_cluster: bool,
    pub product_name: String,
    pub instance_id: String,
    pub advertise_address: String,
    pub plugin_dir: PathBuf,
    /// wasmtime's compile cache (`--plugin-cache-dir`); `None`: beside the database.
    pub plugin_cache_dir: Option<PathBuf>,
    /// Plugin HTTP may reach loopback, link-local and unspecified addresses.
    pub plugin_http_allow_local: bool,
    pub log: String,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub upstream_timeout: Duration,
    /// Base URL for exported kubeconfigs, without a trailing slash.
    pub public_url: Option<String>,
    pub allow_exec_credentials: bool,
    /// Credentials may go to `http://` cluster servers.
    pub allow_insecure_cluster_credentials: bool,
    /// Loopback, link-local and unspecified cluster servers are refused.
    pub deny_local_cluster_servers: bool,
    pub tls: TlsMode,
    /// How webhooks are delivered.
    pub hook_delivery: DeliveryOptions,
    /// How often the leader's scheduler re-reads the jobs table.
    pub job_poll_interval: Duration,
    /// The plain-HTTP `/metrics` listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Header, idle and connection-count bounds of the listeners.
    pub connections: ConnectionLimits,
    /// Long-lived proxied requests per token at once.
    pub max_streams_per_token: usize,
    /// How long audit entries are kept.
    pub audit_retention: Duration,
    /// Console session lifetimes.
    pub console: ConsoleSettings,
    /// The identity provider whose ID tokens are accepted (`--oidc-*`), if any.
    pub oidc: Option<OidcConfig>,
    /// Values that were adjusted rather than rejected; logged once tracing is up.
    pub warnings: Vec<String>,
}

/// Console (`/ui`) session lifetimes.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// From sign-in to the session's end.
    pub session_ttl: Duration,
    /// Without a request for this long, the session ends.
    pub idle_timeout: Duration,
    /// Sign-in through the identity provider, when `--oidc-issuer-url` is set.
    pub sso: Option<ConsoleSso>,
}

/// The console's client at the identity provider.
#[derive(Debug, Clone)]
pub struct ConsoleSso {
    pub client_id: String,
    /// Absent: a public client (PKCE only).
    pub client_secret: Option<secrecy::SecretString>,
}

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Config {
    /// Validates `args` into a configuration.
    pub fn from_args(args: ServeArgs) -> Result<Self> {
        let mut warnings = Vec::new();
        let oidc = oidc::oidc_config(&args)?;
        let console_sso = oidc::console_sso(&args, oidc.as_ref())?;
        let listen: SocketAddr = args
            .listen
            .parse()
            .map_err(|_| ConfigError::Listen(args.listen.clone()))?;
        let database = DatabaseUrl::parse(&args.database_url)?;
        let secret_key = args
            .secret_key
            .as_deref()
            .map(SecretKey::parse)
            .transpose()?;
        if secret_key.is_none() && matches!(database, DatabaseUrl::Postgres(_)) {
            return Err(ConfigError::SecretKeyRequired);
        }
        if args.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::AdminToken);
        }

        let in_cluster = args.in_cluster;
        let host = match (args.host_cluster_id, args.in_cluster, args.host_kubeconfig) {
            (Some(id), _, _) if !id.is_empty() => HostCluster::ClusterId(id),
            (_, true, _) => HostCluster::InCluster,
            (_, _, Some(path)) if !path.as_os_str().is_empty() => HostCluster::Kubeconfig(path),
            _ => HostCluster::Standalone,
        };
        if host == HostCluster::Standalone && matches!(database, DatabaseUrl::Postgres(_)) {
            warnings.push(
                "standalone mode with a PostgreSQL database: if several replicas share it, give \
                 them a host cluster (--host-cluster-id, --in-cluster or --host-kubeconfig) so \
                 they coordinate"
                    .to_owned(),
            );
        }

        let lease_namespace = match args.lease_namespace.filter(|n| !n.is_empty()) {
            Some(ns) => ns,
            None => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .map(|ns| ns.trim().to_owned())
                .ok()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
        };

        let lease = lease_timings(
            args.lease_duration_seconds,
            args.lease_renew_interval_seconds,
            &mut warnings,
        )?;
        let leader = leader_timings(
            args.leader_lease_duration_seconds,
            args.leader_renew_deadline_seconds,
            args.leader_retry_period_seconds,
        )?;
        let resync_period = positive(
            args.resync_period_seconds,
            "resync-period-seconds",
            "RESYNC_PERIOD_SECONDS",
        )?;
        let shutdown_timeout = Duration::from_secs(args.shutdown_timeout_seconds);
        let console = ConsoleSettings {
            session_ttl: Duration::from_secs(
                positive(
                    args.console_session_ttl_minutes,
                    "console-session-ttl-minutes",
                    "CONSOLE_SESSION_TTL_MINUTES",
                )?
                .as_secs()
                    * 60,
            ),
            idle_timeout: Duration::from_secs(
                positive(
                    args.console_idle_timeout_minutes,
                    "console-idle-timeout-minutes",
                    "CONSOLE_IDLE_TIMEOUT_MINUTES",
                )?
                .as_secs()
                    * 60,
            ),
            sso: console_sso,
        };
        let lease_cleanup_interval = positive(
            args.lease_cleanup_interval_seconds,
            "lease-cleanup-interval-seconds",
            "LEASE_CLEANUP_INTERVAL_SECONDS",
        )?;
        let replica_state = timings::replica_state_timings(
            args.replica_state_interval_seconds,
            args.replica_state_retention_seconds,
        )?;
        let heartbeat_interval = positive(
            args.heartbeat_interval_seconds,
            "heartbeat-interval-seconds",
            "HEARTBEAT_INTERVAL_SECONDS",
        )?;
        let upstream_timeout = positive(
            args.upstream_timeout_seconds,
            "upstream-timeout-seconds",
            "UPSTREAM_TIMEOUT_SECONDS",
        )?;
        let public_url = match args.public_url.filter(|u| !u.is_empty()) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => return Err(ConfigError::PublicUrl(url)),
            None => None,
        };

        let metrics_listen = match args.metrics_listen.filter(|a| !a.is_empty()) {
            Some(addr) => Some(
                addr.parse::<SocketAddr>()
                    .map_err(|_| ConfigError::MetricsListen(addr.clone()))?,
            ),
            None => None,
        };
        let connections = ConnectionLimits {
            header_timeout: positive(
                args.http_header_timeout_seconds,
                "http-header-timeout-seconds",
                "HTTP_HEADER_TIMEOUT_SECONDS",
            )?,
            idle_timeout: positive(
                args.http_idle_timeout_seconds,
                "http-idle-timeout-seconds",
                "HTTP_IDLE_TIMEOUT_SECONDS",
            )?,
            max_connections: at_least_one(
                args.max_connections,
                "max-connections",
                "MAX_CONNECTIONS",
            )?,
        };
        let max_streams_per_token = at_least_one(
            args.max_streams_per_token,
            "max-streams-per-token",
            "MAX_STREAMS_PER_TOKEN",
        )?;
        if args.audit_retention_days == 0 {
            return Err(ConfigError::Zero {
                flag: "audit-retention-days",
                env: "AUDIT_RETENTION_DAYS",
            });
        }
        let audit_retention = Duration::from_secs(args.audit_retention_days.min(36_500) * 86_400);

        if !valid_product_name(&args.product_name) {
            return Err(ConfigError::ProductName(args.product_name));
        }
        let instance_id = match args.instance_id.filter(|i| !i.is_empty()) {
            Some(id) if valid_instance_id(&id) => id,
            Some(id) => return Err(ConfigError::InstanceId(id)),
            None => default_instance_id(),
        };
        let advertise_address = match (args.advertise_address, args.pod_ip) {
            (Some(addr), _) if !addr.is_empty() => addr,
            (_, Some(ip)) if !ip.is_empty() => {
                SocketAddr::new(ip.parse().unwrap_or(listen.ip()), listen.port()).to_string()
            }
            _ => listen.to_string(),
        };

        if args.webhook_max_attempts == 0 {
            warnings.push("--webhook-max-attempts 0 means no delivery at all; using 1".to_owned());
        }
        let hook_delivery = DeliveryOptions {
            max_attempts: args.webhook_max_attempts.max(1),
            retry_delay: Duration::from_millis(args.webhook_retry_delay_ms),
            timeout: positive(
                args.webhook_timeout_seconds,
                "webhook-timeout-seconds",
                "WEBHOOK_TIMEOUT_SECONDS",
            )?,
        };

        let tls = match (args.tls_cert_file, args.tls_key_file, args.plain_http) {
            (Some(cert), Some(key), false) => TlsMode::Files { cert, key },
            (Some(_), _, true) | (_, Some(_), true) => return Err(ConfigError::TlsConflict),
            (_, _, true) => TlsMode::Off,
            _ if database.data_dir().is_some() => TlsMode::SelfSigned,
            _ => return Err(ConfigError::TlsRequired),
        };

        Ok(Self {
            listen,
            database,
            admin_token: args.admin_token,
            secret_key,
            host,
            in_cluster,
            lease_namespace,
            lease,
            leader,
            resync_period,
            lease_cleanup_interval,
            replica_state,
            connect_cluster: args.connect_cluster,
            product_name: args.product_name,
            instance_id,
            advertise_address,
            plugin_dir: args.plugin_dir,
            plugin_cache_dir: args.plugin_cache_dir,
            plugin_http_allow_local: args.plugin_http_allow_local,
            log: args.log,
            log_format: args.log_format,
            shutdown_timeout,
            heartbeat_interval,
            upstream_timeout,
            public_url,
            allow_exec_credentials: args.allow_exec_credentials,
            allow_insecure_cluster_credentials: args
                .cluster_servers
                .allow_insecure_cluster_credentials,
            deny_local_cluster_servers: args.cluster_servers.deny_local_cluster_servers,
            tls,
            hook_delivery,
            job_poll_interval: Duration::from_millis(args.job_poll_interval_ms.clamp(10, 60_000)),
            metrics_listen,
            connections,
            max_streams_per_token,
            audit_retention,
            console,
            oidc,
            warnings,
        })
    }
}

/// How webhooks are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Attempts per delivery, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; it doubles after each further one.
    pub retry_delay: Duration,
    /// Bound on one request, connecting included.
    pub timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Bounds on the listeners' client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the connection's start, or a later request's first byte, to the end of its headers.
    pub header_timeout: Duration,
    /// No request in flight and no bytes either way for this long: the connection is closed.
    pub idle_timeout: Duration,
    /// Open connections at most (accepting pauses at the cap).
    pub max_connections: usize,
}

#[cfg(test)]
mod tests;
