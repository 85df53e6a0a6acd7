//! Reading credential material: PEM certificates, base64 `*-data` fields, files a kubeconfig
//! names (as its [`Origin`] allows), and the pod's service account.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{ClusterSpec, Origin, RequestAuth, Result, SpecError};

/// Where Kubernetes mounts a pod's service account credentials.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The spec of the cluster this process's pod runs in, from the mounted service account and
/// the environment Kubernetes sets (see [`in_cluster`]).
pub fn this_pods_cluster() -> Result<ClusterSpec> {
    in_cluster(
        Path::new(SERVICE_ACCOUNT_DIR),
        std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
        std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
    )
}

/// The spec of the cluster this pod runs in: the service account's token (a path: it rotates)
/// and CA, and `KUBERNETES_SERVICE_HOST`/`_PORT`.
pub(super) fn in_cluster(
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
pub(super) fn decode_pem_data(field: &str, data: &str) -> Result<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| SpecError::Certificate(format!("{field} is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| SpecError::Certificate(format!("{field} does not decode to PEM text")))
}

pub(super) fn absolute(path: &str, base_dir: Option<&Path>) -> String {
    match base_dir {
        Some(dir) if Path::new(path).is_relative() => dir.join(path).to_string_lossy().into_owned(),
        _ => path.to_owned(),
    }
}

pub(super) fn read_file(what: &'static str, path: &str, origin: Origin<'_>) -> Result<String> {
    if !origin.allow_files {
        return Err(SpecError::Unsupported(format!(
            "{what} `{path}` is a file reference; a kubeconfig sent to the API must carry its \
             data inline (`*-data` fields, `token`), or be imported with `portico cluster import`"
        )));
    }
    let path = absolute(path, origin.base_dir);
    std::fs::read_to_string(&path).map_err(|source| SpecError::File { what, path, source })
}
