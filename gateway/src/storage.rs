//! Persistent state through sqlx: embedded SQLite by default, PostgreSQL when replicas share it.
//!
//! Both back ends run the same queries through sqlx's `Any` driver (`$N` placeholders work on
//! both) against the same schema; each has its own migration folder because column types differ
//! (`BLOB`/`BYTEA`, `INTEGER`/`BIGINT`). Timestamps are unix milliseconds in `BIGINT` columns,
//! flags are text, so the `Any` driver's small type set covers every column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;

use crate::config::DatabaseUrl;

pub mod audit;
pub mod clusters;
pub mod grants;
pub mod helm;
pub mod jobs;
pub mod leader_terms;
pub mod plugins;
pub mod runs;
pub mod settings;
pub mod tokens;
pub mod webhooks;

/// How long a query waits for a pooled connection (opening one included) before it fails with
/// [`StorageError::is_unavailable`]. While the database is down every query waits this long
/// (sqlx retries refused connections until then), so it bounds how long an outage holds each
/// request before its 503; a busy pool that cannot serve within it is overloaded anyway.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The SQLite folder could not be created.
    #[error("cannot create the database folder `{path}`: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A database file's mode could not be set.
    #[error("cannot make `{path}` private (mode 0600): {source}")]
    FileMode {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database could not be reached.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL without credentials.
        url: String,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row with the same unique key exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value is not what this version of Portico writes.
    #[error("corrupt stored value in {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StorageError {
    /// The database cannot be reached right now (down, restarting, refusing or dropping
    /// connections, or no pooled connection within the acquire timeout): a retry later may
    /// succeed, so callers answer 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Query(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: class 08 (connection exception), 57P01-57P03 (the server is
                // shutting down, crashed or starting), 53300 (too many connections).
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08")
                        || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a connection pool plus the engine it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Opens (for SQLite: creates, with its folder) the database and applies migrations.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self> {
        install_default_drivers();
        let (backend, conn_url, max_connections) = match url {
            DatabaseUrl::Sqlite(path) => {
                prepare_sqlite_files(path)?;
                let url = format!("sqlite://{}?mode=rwc", path.display());
                (Backend::Sqlite, url, 4)
            }
            DatabaseUrl::Postgres(url) => (Backend::Postgres, url.clone(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&conn_url)
            .await
            .map_err(|source| StorageError::Connect {
                url: url.redacted(),
                source,
            })?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while a writer commits; it persists in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
            if let DatabaseUrl::Sqlite(path) = url {
                // SQLite gives them the database file's mode; this catches older ones.
                tighten_sidecars(path)?;
            }
        }
        let db = Self { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The engine behind this database.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A trivial round trip, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that writes. On SQLite it takes the write lock at `BEGIN IMMEDIATE`
    /// (waiting for it up to the busy timeout): a plain `BEGIN` starts as a reader, and a
    /// reader that writes after another connection committed fails at once with "database is
    /// locked" (its snapshot is stale, so waiting cannot help).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// The data folder 0700 (created if missing), the database file 0600 (created empty if
/// missing, so SQLite opens a private file and gives its `-wal` and `-shm` files the same
/// mode), whatever the umask; looser modes left by earlier starts are tightened.
fn prepare_sqlite_files(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        crate::files::private_dir(dir, name.as_deref()).map_err(|source| {
            StorageError::CreateDir {
                path: dir.to_owned(),
                source,
            }
        })?;
    }
    crate::files::private_file(path).map_err(|source| StorageError::FileMode {
        path: path.to_owned(),
        source,
    })?;
    tighten_sidecars(path)
}

/// Tightens the database's `-wal`, `-shm` and `-journal` files that exist.
fn tighten_sidecars(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(suffix);
        let sidecar = PathBuf::from(sidecar);
        crate::files::tighten_file(&sidecar).map_err(|source| StorageError::FileMode {
            path: sidecar.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Maps a unique-key violation to [`StorageError::Conflict`] naming `what`.
fn conflict(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what()),
        _ => StorageError::Query(e),
    }
}

#[cfg(test)]
mod tests;
