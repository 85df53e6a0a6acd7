//! The kube client for the host cluster, the one that holds the coordination leases: from a
//! registered cluster, the pod's service account or a kubeconfig file.

use super::CoordError;
use crate::cluster::ClusterManager;
use crate::cluster::spec::{self, Origin};
use crate::config::{Config, HostCluster};

/// A kube client for the host cluster from the configuration's choice.
pub(super) async fn host_client(
    config: &Config,
    clusters: &ClusterManager,
) -> Result<kube::Client, CoordError> {
    let host = |e: String| CoordError::Host(e);
    let spec = match &config.host {
        HostCluster::Standalone => return Err(host("standalone has no host cluster".to_owned())),
        HostCluster::ClusterId(id) => {
            let record = clusters
                .record(id)
                .await
                .map_err(|e| host(format!("--host-cluster-id `{id}`: {e} (register it first)")))?;
            clusters.open(&record)?
        }
        HostCluster::InCluster => spec::this_pods_cluster().map_err(|e| host(e.to_string()))?,
        HostCluster::Kubeconfig(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| host(format!("--host-kubeconfig `{}`: {e}", path.display())))?;
            let kubeconfig = spec::parse_kubeconfig(&text).map_err(|e| host(e.to_string()))?;
            let origin = Origin {
                base_dir: path.parent(),
                allow_files: true,
                allow_exec: true,
            };
            spec::resolve(&kubeconfig, None, origin)
                .map_err(|e| host(e.to_string()))?
                .spec
        }
    };
    kube_client(&spec, &config.lease_namespace).map_err(|e| host(e.to_string()))
}

/// Why a kube client for the host cluster cannot be built from its spec.
#[derive(Debug, thiserror::Error)]
pub(super) enum KubeClientError {
    #[error("server URL: {0}")]
    ServerUrl(#[source] http::uri::InvalidUri),
    #[error(transparent)]
    Certificate(#[from] spec::SpecError),
    #[error(transparent)]
    Client(#[from] kube::Error),
}

/// A kube client from a cluster spec (same credentials model as the proxy).
fn kube_client(spec: &spec::ClusterSpec, namespace: &str) -> Result<kube::Client, KubeClientError> {
    use base64::Engine;
    use kube::config::{AuthInfo, ExecConfig};
    use secrecy::SecretString;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);

    let url = spec.server.parse().map_err(KubeClientError::ServerUrl)?;
    let mut config = kube::Config::new(url);
    config.default_namespace = namespace.to_owned();
    config.accept_invalid_certs = spec.insecure_skip_tls_verify;
    config.tls_server_name = spec.tls_server_name.clone();
    if let Some(pem) = &spec.ca_pem {
        let certs = spec::parse_certs(pem, "certificate-authority")?;
        config.root_cert = Some(certs.iter().map(|c| c.to_vec()).collect());
    }
    let mut auth = AuthInfo::default();
    if let Some(cert) = &spec.client_cert {
        auth.client_certificate_data = Some(b64(&cert.cert_pem));
        auth.client_key_data = Some(SecretString::from(b64(&cert.key_pem)));
    }
    match &spec.auth {
        spec::RequestAuth::None => {}
        spec::RequestAuth::Token { token } => auth.token = Some(SecretString::from(token.clone())),
        spec::RequestAuth::TokenFile { path } => auth.token_file = Some(path.clone()),
        spec::RequestAuth::Basic { username, password } => {
            auth.username = Some(username.clone());
            auth.password = Some(SecretString::from(password.clone()));
        }
        spec::RequestAuth::Exec(exec) => {
            auth.exec = Some(ExecConfig {
                api_version: Some(exec.api_version.clone()),
                command: Some(exec.command.clone()),
                args: Some(exec.args.clone()),
                env: Some(
                    exec.env
                        .iter()
                        .map(|(k, v)| {
                            std::collections::HashMap::from([
                                ("name".to_owned(), k.clone()),
                                ("value".to_owned(), v.clone()),
                            ])
                        })
                        .collect(),
                ),
                drop_env: None,
                install_hint: None,
                interactive_mode: None,
                provide_cluster_info: false,
                cluster: None,
                other: Default::default(),
            })
        }
    }
    config.auth_info = auth;
    Ok(kube::Client::try_from(config)?)
}
