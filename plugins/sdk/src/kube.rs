//! Typed, read-only access to the target cluster (capability `kube`).

use k8s_openapi::Resource;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::portico::plugin::kube as host;

/// Which objects a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    namespace: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
}

impl ListParams {
    /// Only objects in `namespace` (default: every namespace).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only objects matching the label selector, e.g. `app=web,tier!=db`.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Only objects matching the field selector, e.g. `status.phase=Running`.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    fn to_wit(&self) -> host::ListOptions {
        host::ListOptions {
            namespace: self.namespace.clone(),
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
        }
    }
}

/// The objects of kind `K`.
pub fn list<K: Resource + DeserializeOwned>(params: &ListParams) -> Result<Vec<K>, Error> {
    host::list(K::API_VERSION, K::KIND, &params.to_wit())?
        .iter()
        .map(|json| decode::<K>(json))
        .collect()
}

/// Every object of kind `K` in every namespace.
pub fn list_all<K: Resource + DeserializeOwned>() -> Result<Vec<K>, Error> {
    list(&ListParams::default())
}

/// One object of kind `K`, `None` when it does not exist.
pub fn get<K: Resource + DeserializeOwned>(
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<K>, Error> {
    host::get(K::API_VERSION, K::KIND, namespace, name)?
        .map(|json| decode::<K>(&json))
        .transpose()
}

/// Objects of any kind (custom resources included) as JSON values.
pub fn list_dynamic(
    api_version: &str,
    kind: &str,
    params: &ListParams,
) -> Result<Vec<serde_json::Value>, Error> {
    host::list(api_version, kind, &params.to_wit())?
        .iter()
        .map(|json| Ok(serde_json::from_str(json)?))
        .collect()
}

/// The log of a pod's container, the last `tail_lines` lines when given.
pub fn pod_logs(
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    tail_lines: Option<u32>,
) -> Result<String, Error> {
    host::pod_logs(namespace, pod, container, tail_lines)
}

fn decode<K: Resource + DeserializeOwned>(json: &str) -> Result<K, Error> {
    serde_json::from_str(json).map_err(|e| Error::invalid(format!("decoding a {}: {e}", K::KIND)))
}
