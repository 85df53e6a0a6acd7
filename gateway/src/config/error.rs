//! Configuration errors: each names the flag and its environment variable.

use std::path::PathBuf;

use crate::crypto::KeyError;

/// A configuration value that cannot be used; the message names the flag and its variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An `--oidc-*` flag that cannot work (the message names it).
    #[error("OIDC: {0}")]
    Oidc(String),
    /// `--listen` is not `HOST:PORT`.
    #[error("--listen / LISTEN: `{0}` is not an address like 0.0.0.0:3618")]
    Listen(String),
    /// `--database-url` has a scheme other than sqlite or postgres.
    #[error(
        "--database-url / DATABASE_URL: `{0}` is neither sqlite://PATH nor postgres://USER@HOST/DB"
    )]
    DatabaseUrl(String),
    /// A shared database needs the key every replica encrypts with.
    #[error(
        "--secret-key / SECRET_KEY is required with PostgreSQL: every replica must share the key \
         that encrypts cluster credentials (generate one with `openssl rand -base64 32`)"
    )]
    SecretKeyRequired,
    /// The secret key cannot be decoded.
    #[error("--secret-key / SECRET_KEY: {0}")]
    SecretKey(#[from] KeyError),
    /// A duration flag that must be positive is zero.
    #[error("--{flag} / {env}: must be at least 1 second")]
    ZeroDuration {
        /// Flag name without dashes.
        flag: &'static str,
        /// Environment variable.
        env: &'static str,
    },
    /// A count flag that must be positive is zero.
    #[error("--{flag} / {env}: must be at least 1")]
    Zero {
        /// Flag name without dashes.
        flag: &'static str,
        /// Environment variable.
        env: &'static str,
    },
    /// `--metrics-listen` is not `HOST:PORT`.
    #[error("--metrics-listen / METRICS_LISTEN: `{0}` is not an address like 0.0.0.0:9464")]
    MetricsListen(String),
    /// Leader timings that client-go would reject as well.
    #[error("leader election timings: {0}")]
    LeaderTimings(String),
    /// A name that cannot prefix Kubernetes object names.
    #[error(
        "--product-name / PRODUCT_NAME: `{0}` must be 1-40 lower-case letters, digits or '-', \
         starting and ending with a letter or digit (it prefixes lease names)"
    )]
    ProductName(String),
    /// An empty or oversized instance id.
    #[error("--instance-id / INSTANCE_ID: `{0}` must be 1-128 printable characters without spaces")]
    InstanceId(String),
    /// Certificate files and plain HTTP at once.
    #[error("--plain-http / PLAIN_HTTP cannot be combined with --tls-cert-file/--tls-key-file")]
    TlsConflict,
    /// No way to serve HTTPS with a shared database.
    #[error(
        "with PostgreSQL, give --tls-cert-file and --tls-key-file (every replica serves the same \
         certificate), or --plain-http / PLAIN_HTTP when TLS terminates in front of the gateway"
    )]
    TlsRequired,
    /// A public URL that is not http(s).
    #[error("--public-url / PUBLIC_URL: `{0}` must start with http:// or https://")]
    PublicUrl(String),
    /// A supplied admin token too short to be safe.
    #[error("--admin-token / ADMIN_TOKEN: must be at least 16 characters")]
    AdminToken,
    /// Reading or creating a file the configuration refers to.
    #[error("{what} `{path}`: {source}")]
    Io {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
