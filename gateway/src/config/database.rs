//! The database URL: embedded SQLite or shared PostgreSQL.

use std::path::{Path, PathBuf};

use super::{ConfigError, Result};

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// Embedded SQLite file (its folder is the data folder).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, shared by replicas.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH` or `postgres[ql]://…`.
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(ConfigError::DatabaseUrl(url.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(ConfigError::DatabaseUrl(url.to_owned()))
    }

    /// The folder of generated local state (SQLite only).
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path.parent().unwrap_or(Path::new("."))),
            Self::Postgres(_) => None,
        }
    }

    /// Human-readable form without credentials, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://***@{}", &url[..scheme], &url[at + 1..])
                }
                _ => url.clone(),
            },
        }
    }
}
