//! How to reach one cluster: its apiserver, trust and credentials, taken from one kubeconfig
//! context (or the pod's service account).
//!
//! Registration turns a kubeconfig into a [`ClusterSpec`]: files it names (CA, client
//! certificate and key) are read and inlined so that every replica gets the same content from the
//! database; a `tokenFile` stays a path because such files rotate (projected service-account
//! tokens). The spec is what is sealed in the database.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod parse;
mod resolve;
mod server;
mod sources;

pub use parse::parse_kubeconfig;
pub use resolve::{context_names, resolve};
pub use server::{ServerPolicy, check_policy, ip_literal, local_address_kind, mask_url};
pub use sources::{parse_certs, this_pods_cluster};

/// Why a kubeconfig cannot be registered (a 400 naming the problem).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not YAML, or not a kubeconfig.
    #[error("malformed kubeconfig: {0}")]
    Malformed(String),
    /// The requested (or current) context is not there.
    #[error("context `{0}` not found in the kubeconfig (contexts: {1})")]
    MissingContext(String, String),
    /// No context chosen and no current-context.
    #[error("the kubeconfig has no current-context; choose one with `context` (contexts: {0})")]
    NoContext(String),
    /// The context names a cluster or user that is not defined.
    #[error("context `{context}` refers to {what} `{name}`, which the kubeconfig does not define")]
    Dangling {
        /// The context.
        context: String,
        /// "cluster" or "user".
        what: &'static str,
        /// The missing name.
        name: String,
    },
    /// A server URL that is not http(s).
    #[error("cluster server `{0}` is not an http:// or https:// URL")]
    Server(String),
    /// A server URL carrying credentials (user info, a query string): the URL is stored and
    /// logged in plain text, unlike the sealed credentials.
    #[error(
        "cluster server `{server}` has {what} in its URL, where credentials would be stored and \
         logged in plain text; give credentials in the kubeconfig's user (token, client \
         certificate) instead"
    )]
    ServerCredentials {
        /// The URL with the offending parts masked.
        server: String,
        /// What it carries.
        what: &'static str,
    },
    /// Credentials that would travel over plain HTTP.
    #[error(
        "cluster server `{server}` is plain http://, which would send the user's {credential} \
         unencrypted; use https://, or start the gateway with \
         --allow-insecure-cluster-credentials (ALLOW_INSECURE_CLUSTER_CREDENTIALS) to allow it"
    )]
    InsecureCredentials {
        /// The URL (masked as in [`SpecError::ServerCredentials`]).
        server: String,
        /// "bearer token", "basic auth password"…
        credential: &'static str,
    },
    /// A loopback, link-local or unspecified server with `--deny-local-cluster-servers`.
    #[error(
        "cluster server `{server}` is a {kind} address, refused by --deny-local-cluster-servers \
         (DENY_LOCAL_CLUSTER_SERVERS)"
    )]
    LocalServer {
        /// The URL (masked).
        server: String,
        /// "loopback", "link-local" or "unspecified".
        kind: &'static str,
    },
    /// A credential that cannot be sent (e.g. not a valid HTTP header value).
    #[error("unusable credential: {0}")]
    Credential(String),
    /// An auth method Portico cannot use on the user's behalf.
    #[error("unsupported authentication: {0}")]
    Unsupported(String),
    /// Certificates or keys that do not parse.
    #[error("bad certificate or key: {0}")]
    Certificate(String),
    /// A file the kubeconfig names cannot be read.
    #[error("cannot read {what} `{path}`: {source}")]
    File {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// Everything needed to connect to one cluster. Sealed at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// `https://host:port[/prefix]`, without a trailing slash.
    pub server: String,
    /// PEM bundle of CAs to trust; `None` trusts the public web PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<ClientCert>,
    /// What goes in `Authorization` upstream.
    #[serde(default)]
    pub auth: RequestAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The `Authorization` header source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum RequestAuth {
    /// Client certificate only, or an unauthenticated test cluster.
    #[default]
    None,
    Token {
        token: String,
    },
    /// Re-read periodically: projected tokens rotate.
    TokenFile {
        path: String,
    },
    Basic {
        username: String,
        password: String,
    },
    /// A client-go exec credential plugin (token output).
    Exec(ExecSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecSpec {
    pub api_version: String,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// One context of a kubeconfig, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedContext {
    pub context: String,
    /// The context's namespace, if it names one.
    pub namespace: Option<String>,
    pub spec: ClusterSpec,
    /// Problems worth a log line (e.g. TLS verification disabled).
    pub warnings: Vec<String>,
}

/// Where a kubeconfig came from, which decides what it may make the gateway do.
///
/// A kubeconfig posted to the API must not read the gateway's files or run its programs (that
/// would turn an API call into file access or command execution on the gateway host): file
/// references are refused, and exec plugins unless the operator allowed them
/// (`--allow-exec-credentials`). `portico cluster import` reads a local file as the operator, so
/// both are allowed, relative paths resolved against the kubeconfig's folder.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub base_dir: Option<&'a Path>,
    pub allow_files: bool,
    pub allow_exec: bool,
}

impl Origin<'_> {
    /// A kubeconfig received through the API.
    pub fn api(allow_exec: bool) -> Self {
        Self {
            base_dir: None,
            allow_files: false,
            allow_exec,
        }
    }
}

#[cfg(test)]
mod tests;
