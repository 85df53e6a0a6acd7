//! How to reach one cluster: its apiserver, trust and credentials, taken from one kubeconfig
//! context (or the pod's service account).
//!
//! Registration turns a kubeconfig into a [`ClusterSpec`]: files it names (CA, client
//! certificate and key) are read and inlined so that every replica gets the same content from the
//! database; a `tokenFile` stays a path because such files rotate (projected service-account
//! tokens). The spec is what is sealed in the database.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use kube::config::{AuthInfo, Kubeconfig, KubeconfigError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

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

/// What the operator lets cluster servers be, checked at registration (and, for local
/// addresses, again at every connection: see [`super::upstream`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Credentials may go to an `http://` server (`--allow-insecure-cluster-credentials`).
    pub allow_insecure_credentials: bool,
    /// Loopback, link-local and unspecified servers are refused
    /// (`--deny-local-cluster-servers`).
    pub deny_local: bool,
}

/// Checks a resolved spec against the operator's policy.
pub fn check_policy(spec: &ClusterSpec, policy: ServerPolicy) -> Result<()> {
    let url: http::Uri = spec
        .server
        .parse()
        .map_err(|_| SpecError::Server(mask_url(&spec.server)))?;
    if url.scheme_str() == Some("http") && !policy.allow_insecure_credentials {
        let credential = match &spec.auth {
            RequestAuth::None => None,
            RequestAuth::Token { .. } => Some("bearer token"),
            RequestAuth::TokenFile { .. } => Some("bearer token (tokenFile)"),
            RequestAuth::Exec(_) => Some("bearer token (from its exec plugin)"),
            RequestAuth::Basic { .. } => Some("basic auth password"),
        };
        if let Some(credential) = credential {
            return Err(SpecError::InsecureCredentials {
                server: mask_url(&spec.server),
                credential,
            });
        }
    }
    if policy.deny_local
        && let Some(kind) = url.host().and_then(ip_literal).and_then(local_address_kind)
    {
        return Err(SpecError::LocalServer {
            server: mask_url(&spec.server),
            kind,
        });
    }
    Ok(())
}

/// The IP address of a URL host that is an IP literal (`10.0.0.1`, `[::1]`).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why `ip` counts as local for `--deny-local-cluster-servers`: loopback, link-local or
/// unspecified (IPv4-mapped IPv6 addresses count as their IPv4 address).
pub fn local_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        // 0.0.0.0/8 is "this host" (connecting to it reaches the local machine).
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        _ => None,
    }
}

/// A server URL fit for messages and logs: user info and anything after `?` or `#` masked.
pub fn mask_url(url: &str) -> String {
    let (scheme, authority, path, tail) = split_url(url);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.chars().next() {
        Some(c) => format!("{c}***"),
        None => String::new(),
    };
    format!("{scheme}{authority}{path}{tail}")
}

/// `scheme://`, authority, path, and the rest from the first `?` or `#`.
fn split_url(url: &str) -> (&str, &str, &str, &str) {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let (rest, tail) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (scheme, authority, path, tail)
}

/// Parses kubeconfig text. A parse error says where and what kind of problem, never the text
/// itself (a kubeconfig holds tokens and keys, and the message goes to API clients and logs).
pub fn parse_kubeconfig(text: &str) -> Result<Kubeconfig> {
    let config =
        Kubeconfig::from_yaml(text).map_err(|e| SpecError::Malformed(describe_parse_error(&e)))?;
    if config.clusters.is_empty() && config.contexts.is_empty() {
        return Err(SpecError::Malformed(
            "no clusters and no contexts: is this a kubeconfig?".to_owned(),
        ));
    }
    Ok(config)
}

fn describe_parse_error(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::Parse(error) => describe_yaml_error(error),
        // Merging the documents of a multi-document file: fixed texts.
        KubeconfigError::KindMismatch | KubeconfigError::ApiVersionMismatch => error.to_string(),
        _ => "not a kubeconfig".to_owned(),
    }
}

/// The kind and position of a YAML error. Every arm uses only what the schema or the parser
/// defines (expected types, field names), never a scalar from the input.
fn describe_yaml_error(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut error = error.without_snippet();
    if let E::AliasError { error: inner, .. } = error {
        error = inner.without_snippet();
    }
    let what = match error {
        E::ExternalMessage { .. } => "YAML syntax error".to_owned(),
        E::Eof { .. } => "unexpected end of the document".to_owned(),
        E::SerdeInvalidType { expected, .. } => {
            format!("value of the wrong type (expected {expected})")
        }
        E::SerdeInvalidValue { expected, .. } => format!("invalid value (expected {expected})"),
        E::SerdeInvalidLength { expected, .. } => {
            format!("wrong number of elements (expected {expected})")
        }
        E::SerdeUnknownVariant { expected, .. } => {
            format!("unknown variant (expected one of: {})", expected.join(", "))
        }
        E::SerdeUnknownField { .. } => "unknown field".to_owned(),
        E::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        E::DuplicateMappingKey { .. } => "duplicate key".to_owned(),
        E::Unexpected { expected, .. } => format!("value of the wrong type (expected {expected})"),
        E::NullIntoString { .. } => "null where text is expected".to_owned(),
        E::InvalidScalar { ty, .. } => format!("value that is not a valid {ty}"),
        E::InvalidUtf8Input => "input that is not UTF-8".to_owned(),
        E::UnknownAnchor { .. } => "alias of an unknown anchor".to_owned(),
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            "document too large or too deeply nested".to_owned()
        }
        _ => "invalid YAML or not a kubeconfig".to_owned(),
    };
    match error.location() {
        Some(at) if at.line() > 0 => {
            format!("{what} at line {}, column {}", at.line(), at.column())
        }
        _ => what,
    }
}

/// The names of every context, in file order.
pub fn context_names(config: &Kubeconfig) -> Vec<String> {
    config.contexts.iter().map(|c| c.name.clone()).collect()
}

/// Resolves `context` (default: the current context) into a spec.
pub fn resolve(
    config: &Kubeconfig,
    context: Option<&str>,
    origin: Origin<'_>,
) -> Result<ResolvedContext> {
    let names = || context_names(config).join(", ");
    let name = match context.or(config.current_context.as_deref()) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => return Err(SpecError::NoContext(names())),
    };
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| SpecError::MissingContext(name.clone(), names()))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| SpecError::Dangling {
            context: name.clone(),
            what: "cluster",
            name: ctx.cluster.clone(),
        })?;
    let user = match &ctx.user {
        Some(user) if !user.is_empty() => Some(
            config
                .auth_infos
                .iter()
                .find(|a| &a.name == user)
                .map(|a| a.auth_info.clone().unwrap_or_default())
                .ok_or_else(|| SpecError::Dangling {
                    context: name.clone(),
                    what: "user",
                    name: user.clone(),
                })?,
        ),
        _ => None,
    };

    let mut warnings = Vec::new();
    let server = cluster
        .server
        .as_deref()
        .map(|s| s.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    check_server_url(&server)?;
    if cluster.proxy_url.is_some() {
        return Err(SpecError::Unsupported(
            "`proxy-url` on the cluster (Portico connects to the apiserver directly)".to_owned(),
        ));
    }
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(decode_pem_data("certificate-authority-data", data)?),
        (None, Some(path)) => Some(read_file("certificate-authority", path, origin)?),
        (None, None) => None,
    };
    if let Some(pem) = &ca_pem {
        let certs = parse_certs(pem, "certificate-authority")?;
        if certs.is_empty() {
            return Err(SpecError::Certificate(
                "certificate-authority holds no PEM certificate".to_owned(),
            ));
        }
        // What the connection will trust: PEM blocks that are not X.509 certificates would
        // otherwise only fail the first connect.
        let total = certs.len();
        let (usable, _) = rustls::RootCertStore::empty().add_parsable_certificates(certs);
        if usable == 0 {
            return Err(SpecError::Certificate(
                "certificate-authority holds no usable CA certificate (its PEM blocks are not \
                 X.509 certificates)"
                    .to_owned(),
            ));
        }
        if usable < total {
            warnings.push(format!(
                "context `{name}`: {} of the {total} certificate-authority certificates do not \
                 parse and are ignored",
                total - usable
            ));
        }
    }
    let insecure_skip_tls_verify = cluster.insecure_skip_tls_verify.unwrap_or(false);
    if insecure_skip_tls_verify {
        warnings.push(format!(
            "context `{name}`: insecure-skip-tls-verify is set; the apiserver's certificate \
             will not be checked"
        ));
    }

    let (client_cert, auth) = match &user {
        Some(user) => user_credentials(user, origin)?,
        None => (None, RequestAuth::None),
    };
    Ok(ResolvedContext {
        context: name,
        spec: ClusterSpec {
            server,
            ca_pem,
            insecure_skip_tls_verify,
            tls_server_name: cluster.tls_server_name.clone(),
            client_cert,
            auth,
        },
        warnings,
    })
}

fn user_credentials(
    user: &AuthInfo,
    origin: Origin<'_>,
) -> Result<(Option<ClientCert>, RequestAuth)> {
    if let Some(provider) = &user.auth_provider {
        return Err(SpecError::Unsupported(format!(
            "auth-provider `{}` (removed from kubectl; use an exec plugin or a token)",
            provider.name
        )));
    }
    if user.impersonate.is_some() || user.impersonate_groups.is_some() {
        return Err(SpecError::Unsupported(
            "`as`/`as-groups` impersonation in the kubeconfig user (use a token grant with \
             impersonation instead)"
                .to_owned(),
        ));
    }
    let cert = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(data), _) => Some(decode_pem_data("client-certificate-data", data)?),
        (None, Some(path)) => Some(read_file("client-certificate", path, origin)?),
        (None, None) => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(data), _) => Some(decode_pem_data("client-key-data", data.expose_secret())?),
        (None, Some(path)) => Some(read_file("client-key", path, origin)?),
        (None, None) => None,
    };
    let client_cert = match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => {
            if parse_certs(&cert_pem, "client-certificate")?.is_empty() {
                return Err(SpecError::Certificate(
                    "client-certificate holds no PEM certificate".to_owned(),
                ));
            }
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
                SpecError::Certificate(format!("client-key is not a PEM private key: {e}"))
            })?;
            Some(ClientCert { cert_pem, key_pem })
        }
        (Some(_), None) => {
            return Err(SpecError::Certificate(
                "client-certificate without client-key".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(SpecError::Certificate(
                "client-key without client-certificate".to_owned(),
            ));
        }
        (None, None) => None,
    };

    let auth = if let Some(token) = &user.token {
        let token = token.expose_secret().trim().to_owned();
        header_safe_token("token", &token)?;
        RequestAuth::Token { token }
    } else if let Some(path) = &user.token_file {
        // Read once now so a wrong path fails registration, not the first request.
        let token = read_file("tokenFile", path, origin)?;
        header_safe_token("tokenFile", token.trim())?;
        RequestAuth::TokenFile {
            path: absolute(path, origin.base_dir),
        }
    } else if let Some(exec) = &user.exec {
        if !origin.allow_exec {
            return Err(SpecError::Unsupported(
                "exec credential plugins in a kubeconfig sent to the API (they would run a \
                 program on the gateway host); start the gateway with --allow-exec-credentials \
                 or use `portico cluster import`"
                    .to_owned(),
            ));
        }
        let command = exec
            .command
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SpecError::Malformed("exec without a command".to_owned()))?;
        // As client-go does: a relative path with a separator is relative to the kubeconfig.
        let command = if command.contains('/') {
            absolute(&command, origin.base_dir)
        } else {
            command
        };
        let env = exec
            .env
            .iter()
            .flatten()
            .filter_map(|pair| Some((pair.get("name")?.clone(), pair.get("value")?.clone())))
            .collect();
        RequestAuth::Exec(ExecSpec {
            api_version: exec
                .api_version
                .clone()
                .unwrap_or_else(|| "client.authentication.k8s.io/v1".to_owned()),
            command,
            args: exec.args.clone().unwrap_or_default(),
            env,
        })
    } else if let (Some(username), Some(password)) = (&user.username, &user.password) {
        RequestAuth::Basic {
            username: username.clone(),
            password: password.expose_secret().to_owned(),
        }
    } else {
        RequestAuth::None
    };
    if client_cert.is_none() && auth == RequestAuth::None {
        return Err(SpecError::Unsupported(
            "the user has no credentials Portico can use (token, tokenFile, client certificate, \
             exec or username/password)"
                .to_owned(),
        ));
    }
    Ok((client_cert, auth))
}

/// The server URL must be http(s) with a host, and carry no credentials: user info and query
/// strings are refused (the URL is stored and logged in plain text), and so are fragments.
fn check_server_url(server: &str) -> Result<()> {
    let (_, authority, _, tail) = split_url(server);
    let what = if authority.contains('@') {
        Some("user info (`user:password@`)")
    } else if tail.starts_with('?') {
        Some("a query string")
    } else if tail.starts_with('#') {
        Some("a fragment")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(SpecError::ServerCredentials {
            server: mask_url(server),
            what,
        });
    }
    let url: http::Uri = server
        .parse()
        .map_err(|_| SpecError::Server(mask_url(server)))?;
    if !matches!(url.scheme_str(), Some("https" | "http")) || url.host().is_none() {
        return Err(SpecError::Server(mask_url(server)));
    }
    Ok(())
}

/// A token goes into `Authorization: Bearer …`: refuse one that is not a valid header value
/// now rather than at the first connect. The message never shows the token.
fn header_safe_token(field: &str, token: &str) -> Result<()> {
    match http::HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(_) => Ok(()),
        Err(_) => Err(SpecError::Credential(format!(
            "the user's {field} contains characters not allowed in an HTTP header (control \
             characters such as line breaks, or non-ASCII text); check that it was copied whole"
        ))),
    }
}

/// The spec of the cluster this pod runs in: the service account's token (a path: it rotates)
/// and CA, and `KUBERNETES_SERVICE_HOST`/`_PORT`.
pub fn in_cluster(
    service_account_dir: &Path,
    host: Option<&str>,
    port: Option<&str>,
) -> Result<ClusterSpec> {
    let host = host
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SpecError::Malformed("KUBERNETES_SERVICE_HOST is not set".to_owned()))?;
    let port = port.filter(|p| !p.is_empty()).unwrap_or("443");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let token = service_account_dir.join("token");
    let token = token.to_string_lossy().into_owned();
    let local = Origin {
        base_dir: None,
        allow_files: true,
        allow_exec: false,
    };
    read_file("service account token", &token, local)?;
    let ca = service_account_dir.join("ca.crt");
    let ca_pem = read_file("service account CA", &ca.to_string_lossy(), local)?;
    parse_certs(&ca_pem, "service account CA")?;
    Ok(ClusterSpec {
        server: format!("https://{host}:{port}"),
        ca_pem: Some(ca_pem),
        insecure_skip_tls_verify: false,
        tls_server_name: None,
        client_cert: None,
        auth: RequestAuth::TokenFile { path: token },
    })
}

/// Parses a PEM bundle of certificates.
pub fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| SpecError::Certificate(format!("{what}: {e}")))
}

/// `*-data` fields are base64 of PEM.
fn decode_pem_data(field: &str, data: &str) -> Result<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| SpecError::Certificate(format!("{field} is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| SpecError::Certificate(format!("{field} does not decode to PEM text")))
}

fn absolute(path: &str, base_dir: Option<&Path>) -> String {
    match base_dir {
        Some(dir) if Path::new(path).is_relative() => dir.join(path).to_string_lossy().into_owned(),
        _ => path.to_owned(),
    }
}

fn read_file(what: &'static str, path: &str, origin: Origin<'_>) -> Result<String> {
    if !origin.allow_files {
        return Err(SpecError::Unsupported(format!(
            "{what} `{path}` is a file reference; a kubeconfig sent to the API must carry its \
             data inline (`*-data` fields, `token`), or be imported with `portico cluster import`"
        )));
    }
    let path = absolute(path, origin.base_dir);
    std::fs::read_to_string(&path).map_err(|source| SpecError::File { what, path, source })
}

#[cfg(test)]
mod tests;
