//! Resolving one context of a parsed kubeconfig into a [`ClusterSpec`]: its cluster (server,
//! trust) and user (client certificate, token, exec plugin, basic auth).

use kube::config::{AuthInfo, Kubeconfig};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use super::server::check_server_url;
use super::sources::{absolute, decode_pem_data, parse_certs, read_file};
use super::{
    ClientCert, ClusterSpec, ExecSpec, Origin, RequestAuth, ResolvedContext, Result, SpecError,
};

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
        namespace: ctx.namespace.clone().filter(|n| !n.is_empty()),
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
