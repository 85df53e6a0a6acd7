//! The CLI's config file: named contexts (a gateway, a credential, the CA to trust) and the
//! current one, like a kubeconfig; `login`, `logout`, `context …`, and how every remote
//! command finds its gateway.
//!
//! ```yaml
//! currentContext: prod
//! contexts:
//! - name: prod
//!   server: https://portico.example.com
//!   certificateAuthority: |
//!     -----BEGIN CERTIFICATE-----
//!     …
//!   credential:
//!     kind: token
//!     token: pt_…
//! ```
//!
//! The file is 0600 in a 0700 folder: it holds tokens. A credential is tagged by `kind`, so a
//! later kind (an OIDC login's refresh token) can sit beside tokens; one this version does not
//! know is kept as it is when the file is rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CommandError;
use crate::cli::{ConfigLocation, GatewayArgs};

/// The gateway when neither a flag nor a context names one.
pub const DEFAULT_SERVER: &str = "https://localhost:3618";

/// The config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

/// A named gateway and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub name: String,
    pub server: String,
    /// PEM of the CA to trust for the server (besides the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    /// `None` after `logout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// How a context authenticates, tagged by `kind`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Credential {
    /// A Portico API token, sent as a bearer token.
    Token { token: String },
    /// A single sign-on (`portico login --sso`): the provider and client; the ID and refresh
    /// tokens are in the token cache, not here.
    #[serde(rename_all = "camelCase")]
    Oidc {
        issuer_url: String,
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_cache_dir: Option<String>,
    },
    /// A kind a newer version wrote (kept as it is, never used).
    #[serde(untagged)]
    Other(Value),
}

impl std::fmt::Debug for Credential {
    // Secrets stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.kind())
    }
}

impl Credential {
    /// `token`, or the unknown kind's name.
    pub fn kind(&self) -> String {
        match self {
            Self::Token { .. } => "token".to_owned(),
            Self::Oidc { .. } => "oidc".to_owned(),
            Self::Other(value) => value["kind"].as_str().unwrap_or("unknown").to_owned(),
        }
    }
}

/// Where a command goes: the server, the token and the CA.
#[derive(Clone)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The config file's path.
pub(super) fn path(location: &ConfigLocation) -> Result<PathBuf, CommandError> {
    location.path().ok_or_else(|| {
        CommandError::Usage(
            "no place for the config file: set PORTICO_CONFIG, XDG_CONFIG_HOME or HOME".to_owned(),
        )
    })
}

/// Reads the config file; a missing file is an empty one.
pub fn load(path: &Path) -> Result<ConfigFile, CommandError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(CommandError::Read(path.display().to_string(), e)),
    };
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_saphyr::from_str(&text).map_err(|e| CommandError::ConfigFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes the config file whole, 0600, in a folder made 0700 when it is created.
pub fn save(path: &Path, config: &ConfigFile) -> Result<(), CommandError> {
    let failed = |e: std::io::Error| CommandError::ConfigFile {
        path: path.display().to_string(),
        reason: format!("cannot write it: {e}"),
    };
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(failed)?;
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(failed)?;
    }
    let text = serde_saphyr::to_string(config).map_err(|e| CommandError::ConfigFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    // A temporary file (0600) beside it, renamed over it: never a half-written file.
    let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    #[cfg(unix)]
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

impl ConfigFile {
    pub(super) fn get(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut Context> {
        self.contexts.iter_mut().find(|c| c.name == name)
    }

    /// The context `name`, else the current one; an unknown `name` is an error.
    fn pick(&self, name: Option<&str>, path: &Path) -> Result<Option<&Context>, CommandError> {
        match name {
            Some(name) => self
                .get(name)
                .map(Some)
                .ok_or_else(|| no_context(name, path)),
            None => Ok(self
                .current_context
                .as_deref()
                .and_then(|current| self.get(current))),
        }
    }
}

pub(super) fn no_context(name: &str, path: &Path) -> CommandError {
    CommandError::Usage(format!(
        "no context `{name}` in {} (see `portico context list`)",
        path.display()
    ))
}

/// Whether two server URLs name the same gateway.
pub(super) fn same_server(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        }
        _ => a.trim_end_matches('/') == b.trim_end_matches('/'),
    }
}

pub(super) fn read_pem(file: &Path) -> Result<String, CommandError> {
    std::fs::read_to_string(file).map_err(|e| CommandError::Read(file.display().to_string(), e))
}

/// The gateway of a remote command: `--server`/`--token`/`--ca-file` (or their variables), else
/// the context's (`--context`, else the current one). A `--server` other than the context's
/// takes nothing from the context: its token is never sent to another server.
pub fn resolve(args: &GatewayArgs) -> Result<Target, CommandError> {
    let flag_server = args.server();
    let complete = flag_server.is_some() && args.token.is_some() && args.ca_file.is_some();
    let file = if args.context.is_some() || !complete {
        match args.config.path() {
            Some(path) => Some((load(&path)?, path)),
            // No home and no file: no contexts, unless one was asked for.
            None if args.context.is_none() => None,
            None => return Err(path(&args.config).unwrap_err()),
        }
    } else {
        None
    };
    let context = match &file {
        Some((config, path)) => config.pick(args.context.as_deref(), path)?,
        None => None,
    };
    let context = context.filter(|c| flag_server.is_none_or(|s| same_server(s, &c.server)));
    let server = flag_server
        .map(str::to_owned)
        .or_else(|| context.map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let token = match (&args.token, context.and_then(|c| c.credential.as_ref())) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(Credential::Token { token })) => Some(token.clone()),
        (
            None,
            Some(Credential::Oidc {
                issuer_url,
                client_id,
                token_cache_dir: Some(dir),
                ..
            }),
        ) => Some(super::sso::cached_id_token(
            issuer_url,
            client_id,
            Path::new(dir),
        )?),
        (None, Some(other)) => {
            return Err(CommandError::Usage(format!(
                "context `{}` holds a `{}` credential, which this version of portico cannot \
                 use; log in again or pass --token",
                context.map(|c| c.name.as_str()).unwrap_or_default(),
                other.kind()
            )));
        }
        (None, None) => None,
    };
    let ca_pem = match &args.ca_file {
        Some(file) => Some(read_pem(file)?),
        None => context.and_then(|c| c.certificate_authority.clone()),
    };
    Ok(Target {
        server,
        token,
        ca_pem,
    })
}

#[cfg(test)]
mod tests;
