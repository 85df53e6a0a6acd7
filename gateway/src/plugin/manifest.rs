//! The plugin manifest: a TOML file beside each component (`foo.toml` + `foo.wasm`), or the
//! `manifest` part of an upload. See `docs/plugins.md` for the format.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::records::hooks::HookScope;

use super::{Error, Result};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `inspect(cluster) -> result<list<finding>, error>`.
    Inspector,
    /// `sync(repository) -> result<sync-outcome, error>`.
    RepoSync,
    /// `on-connect(cluster)`, `on-disconnect(cluster)`.
    LifecycleHook,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inspector => "inspector",
            Self::RepoSync => "repo-sync",
            Self::LifecycleHook => "lifecycle-hook",
        }
    }

    /// The functions a component of this world must export.
    pub fn exports(self) -> &'static [&'static str] {
        match self {
            Self::Inspector => &["inspect"],
            Self::RepoSync => &["sync"],
            Self::LifecycleHook => &["on-connect", "on-disconnect"],
        }
    }

    fn imports_kube(self) -> bool {
        !matches!(self, Self::RepoSync)
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for World {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "inspector" => Ok(Self::Inspector),
            "repo-sync" => Ok(Self::RepoSync),
            "lifecycle-hook" => Ok(Self::LifecycleHook),
            other => Err(Error::Manifest(format!(
                "unknown world `{other}` (inspector, repo-sync or lifecycle-hook)"
            ))),
        }
    }
}

/// What the plugin may call. An undeclared capability is refused with an `error` of kind
/// `denied`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Read-only access to the target cluster.
    pub kube: bool,
    /// Lines in the gateway's log.
    pub log: bool,
    /// The plugin's configuration.
    pub config: bool,
    /// Hosts the plugin may reach over HTTP(S): `host`, `host:port`, `*.domain`, or `*` for
    /// any. A host without a port matches every port. Absent: no HTTP.
    pub http: Option<Vec<String>>,
}

/// Hard limits of one call. Every field has a default and a ceiling ([`LimitCeilings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    rename_all(deserialize = "kebab-case", serialize = "camelCase")
)]
pub struct Limits {
    /// Wall-clock time of one call, host calls included (epoch deadline).
    pub timeout_ms: u64,
    /// All linear memories of the instance together.
    pub memory_mib: u64,
    /// One host call (a Kubernetes read, an HTTP request).
    pub host_call_timeout_ms: u64,
    /// The export's return value, in bytes of strings and lists.
    pub max_output_bytes: usize,
    /// Log lines and stdout/stderr together, per call; writing more fails the call.
    pub max_log_bytes: usize,
    /// One HTTP response body.
    pub max_http_response_bytes: usize,
    /// One Kubernetes response body.
    pub max_kube_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            memory_mib: 64,
            host_call_timeout_ms: 10_000,
            max_output_bytes: 4 << 20,
            max_log_bytes: 64 << 10,
            max_http_response_bytes: 8 << 20,
            max_kube_response_bytes: 32 << 20,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn host_call_timeout(&self) -> Duration {
        Duration::from_millis(self.host_call_timeout_ms)
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HookSection {
    scope: HookScope,
}

/// The manifest as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    name: String,
    version: String,
    world: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    capabilities: Capabilities,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    hook: Option<HookSection>,
    #[serde(default)]
    config: Option<toml::Table>,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub world: World,
    pub description: Option<String>,
    /// The component's file name beside the manifest (plugin directory only).
    #[serde(skip)]
    pub component: Option<String>,
    pub capabilities: Capabilities,
    pub limits: Limits,
    /// Lifecycle hooks only.
    pub hook_scope: Option<HookScope>,
    /// The default configuration, as JSON.
    pub config: serde_json::Value,
}

/// Bounds the host puts on what a manifest may ask for: a manifest asking for more is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitCeilings {
    pub max_memory_mib: u64,
    /// Bounds `timeout-ms` and `host-call-timeout-ms`.
    pub max_timeout: Duration,
    pub max_output_bytes: usize,
    pub max_log_bytes: usize,
    pub max_http_response_bytes: usize,
    pub max_kube_response_bytes: usize,
}

impl LimitCeilings {
    /// No ceiling at all: for reading back manifests stored before the ceilings were lowered,
    /// so they can still be listed (calls hold them to the host's ceilings).
    pub(super) const NONE: Self = Self {
        max_memory_mib: u64::MAX,
        max_timeout: Duration::MAX,
        max_output_bytes: usize::MAX,
        max_log_bytes: usize::MAX,
        max_http_response_bytes: usize::MAX,
        max_kube_response_bytes: usize::MAX,
    };
}

impl Limits {
    /// Checks every limit against `ceilings`: the first one out of range is an error naming
    /// the key, its value and the range allowed.
    fn check(&self, ceilings: &LimitCeilings) -> Result<()> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let checks: [(&str, u64, u64, &str); 7] = [
            (
                "timeout-ms",
                self.timeout_ms,
                millis(ceilings.max_timeout),
                "ms",
            ),
            (
                "memory-mib",
                self.memory_mib,
                ceilings.max_memory_mib,
                "MiB",
            ),
            (
                "host-call-timeout-ms",
                self.host_call_timeout_ms,
                millis(ceilings.max_timeout),
                "ms",
            ),
            (
                "max-output-bytes",
                self.max_output_bytes as u64,
                ceilings.max_output_bytes as u64,
                "bytes",
            ),
            (
                "max-log-bytes",
                self.max_log_bytes as u64,
                ceilings.max_log_bytes as u64,
                "bytes",
            ),
            (
                "max-http-response-bytes",
                self.max_http_response_bytes as u64,
                ceilings.max_http_response_bytes as u64,
                "bytes",
            ),
            (
                "max-kube-response-bytes",
                self.max_kube_response_bytes as u64,
                ceilings.max_kube_response_bytes as u64,
                "bytes",
            ),
        ];
        for (key, value, ceiling, unit) in checks {
            if value == 0 {
                return Err(Error::Manifest(format!("limits: {key} must be at least 1")));
            }
            if value > ceiling {
                return Err(Error::Manifest(format!(
                    "limits: {key} = {value} is over the host's ceiling of {ceiling} {unit}{}: \
                     {key} must be 1-{ceiling}",
                    human(ceiling, unit)
                )));
            }
        }
        Ok(())
    }
}

/// ` (N MiB)` for a byte count of whole MiB or KiB, else nothing.
fn human(value: u64, unit: &str) -> String {
    if unit != "bytes" {
        return String::new();
    }
    if value >= 1 << 20 && value.is_multiple_of(1 << 20) {
        format!(" ({} MiB)", value >> 20)
    } else if value >= 1 << 10 && value.is_multiple_of(1 << 10) {
        format!(" ({} KiB)", value >> 10)
    } else {
        String::new()
    }
}

impl Manifest {
    /// Parses and validates manifest text.
    pub fn parse(text: &str, ceilings: LimitCeilings) -> Result<Self> {
        let file: ManifestFile =
            toml::from_str(text).map_err(|e| Error::Manifest(e.message().to_owned()))?;
        if !valid_name(&file.name) {
            return Err(Error::Manifest(format!(
                "name `{}` must be 1-63 lower-case letters, digits or '-', starting with a letter",
                file.name
            )));
        }
        if file.version.is_empty() || file.version.len() > 64 {
            return Err(Error::Manifest(
                "version must be 1-64 characters".to_owned(),
            ));
        }
        let world: World = file.world.parse()?;
        if file.capabilities.kube && !world.imports_kube() {
            return Err(Error::Manifest(format!(
                "capability `kube` is not part of world `{world}`"
            )));
        }
        if let Some(hosts) = &file.capabilities.http {
            for host in hosts {
                super::http::validate_pattern(host).map_err(|e| Error::Manifest(e.to_string()))?;
            }
        }
        if file.hook.is_some() && world != World::LifecycleHook {
            return Err(Error::Manifest(
                "[hook] is only for world `lifecycle-hook`".to_owned(),
            ));
        }
        if let Some(component) = &file.component
            && (component.contains('/')
                || component.contains('\\')
                || !component.ends_with(".wasm"))
        {
            return Err(Error::Manifest(format!(
                "component `{component}` must be a `.wasm` file name beside the manifest"
            )));
        }
        let limits = file.limits;
        limits.check(&ceilings)?;
        let config = match file.config {
            Some(table) => {
                serde_json::to_value(table).map_err(|e| Error::Manifest(format!("config: {e}")))?
            }
            None => serde_json::Value::Object(Default::default()),
        };
        Ok(Self {
            name: file.name,
            version: file.version,
            world,
            description: file.description,
            component: file.component,
            capabilities: file.capabilities,
            limits,
            hook_scope: match world {
                World::LifecycleHook => Some(file.hook.unwrap_or_default().scope),
                _ => None,
            },
            config,
        })
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}
