//! The host-wide settings: the ceilings manifests are held to, the size of the instance pool,
//! the epoch tick and the compile cache.

use std::path::PathBuf;
use std::time::Duration;

use crate::plugin::manifest::LimitCeilings;

/// Host-wide settings: the ceilings manifests are held to and the size of the instance pool.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Calls running at once (the pooling allocator's instance count); more wait.
    pub max_concurrent_calls: u32,
    /// The most memory a manifest may ask for (and the pool's per-memory size).
    pub max_memory_mib: u64,
    /// The longest call timeout (and host-call timeout) a manifest may ask for.
    pub max_timeout: Duration,
    /// The largest `max-output-bytes` a manifest may ask for.
    pub max_output_bytes: usize,
    /// The largest `max-log-bytes` a manifest may ask for.
    pub max_log_bytes: usize,
    /// The largest `max-http-response-bytes` a manifest may ask for.
    pub max_http_response_bytes: usize,
    /// The largest `max-kube-response-bytes` a manifest may ask for.
    pub max_kube_response_bytes: usize,
    /// Let plugin HTTP reach loopback, link-local and unspecified addresses
    /// (`--plugin-http-allow-local`); refused by default.
    pub http_allow_local: bool,
    /// How often the engine's epoch advances (the granularity of deadlines).
    pub epoch_tick: Duration,
    /// Where compiled components are cached across restarts; `None`: no disk cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 16,
            max_memory_mib: 512,
            max_timeout: Duration::from_secs(600),
            // Ceilings on what one call may move through the host (docs/plugins.md, "Limits"):
            // each is a few times the default and above what the built-in plugins need, and
            // none exceeds a quarter of the memory ceiling, so a call's host-side buffers stay
            // of the order of the guest's own memory.
            max_output_bytes: 64 << 20,
            max_log_bytes: 1 << 20,
            max_http_response_bytes: 64 << 20,
            max_kube_response_bytes: 128 << 20,
            http_allow_local: false,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
        }
    }
}

impl HostSettings {
    /// The defaults, with the compile cache in `--plugin-cache-dir`, else in the data folder
    /// (SQLite) or the system's temporary folder (PostgreSQL: no data folder).
    pub fn for_config(config: &crate::config::Config) -> Self {
        let mut settings = Self::for_database(&config.database);
        if let Some(dir) = &config.plugin_cache_dir {
            settings.cache_dir = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
        }
        Self {
            http_allow_local: config.plugin_http_allow_local,
            ..settings
        }
    }

    /// The defaults, with the compile cache beside `database` as [`HostSettings::for_config`]
    /// puts it.
    pub fn for_database(database: &crate::config::DatabaseUrl) -> Self {
        let cache_dir = match database.data_dir() {
            Some(dir) => dir.join("plugin-cache"),
            None => std::env::temp_dir().join("portico-plugin-cache"),
        };
        // wasmtime's cache wants an absolute path; the default data folder is relative.
        let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
        Self {
            cache_dir: Some(cache_dir),
            ..Self::default()
        }
    }

    pub(crate) fn ceilings(&self) -> LimitCeilings {
        LimitCeilings {
            max_memory_mib: self.max_memory_mib,
            max_timeout: self.max_timeout,
            max_output_bytes: self.max_output_bytes,
            max_log_bytes: self.max_log_bytes,
            max_http_response_bytes: self.max_http_response_bytes,
            max_kube_response_bytes: self.max_kube_response_bytes,
        }
    }
}
