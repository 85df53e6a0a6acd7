//! kubeconfig files pointing at the simulator.

use base64::Engine as _;
use serde_json::json;

/// Credentials a kubeconfig user entry carries.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A bearer token.
    Token(String),
    /// A client certificate and key, PEM.
    ClientCert {
        /// Certificate PEM.
        cert_pem: String,
        /// Key PEM.
        key_pem: String,
    },
}

/// A kubeconfig (YAML) with one cluster, user and context named `name`, selected as current.
pub fn render(name: &str, server: &str, ca_pem: Option<&str>, creds: &Credentials) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = b64(ca).into();
    }
    let user = match creds {
        Credentials::Token(t) => json!({"token": t}),
        Credentials::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    });
    serde_yaml::to_string(&doc).expect("kubeconfig serialises")
}
