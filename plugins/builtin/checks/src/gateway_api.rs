//! The few Gateway API (`gateway.networking.k8s.io/v1`) fields the checks read. k8s-openapi
//! has only the built-in kinds, and the `gateway-api` crate brings kube-rs with it, much more
//! than a plugin built for wasm32 needs: these records follow the v1 API reference
//! (<https://gateway-api.sigs.k8s.io/reference/spec/>), defaults included.

use portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// The API version of every kind here.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// The API group, the default of parent references.
pub const GROUP: &str = "gateway.networking.k8s.io";

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayClass {
    pub metadata: ObjectMeta,
    pub status: Status,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    pub metadata: ObjectMeta,
    pub spec: GatewaySpec,
    pub status: Status,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewaySpec {
    pub gateway_class_name: String,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Listener {
    pub name: String,
    pub port: Option<i32>,
    pub allowed_routes: Option<AllowedRoutes>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedRoutes {
    pub namespaces: Option<RouteNamespaces>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteNamespaces {
    /// `All`, `Same` (the default) or `Selector`.
    pub from: Option<String>,
    /// Namespace labels, when `from` is `Selector`.
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    pub metadata: ObjectMeta,
    pub spec: HttpRouteSpec,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentReference>,
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParentReference {
    /// Default `gateway.networking.k8s.io`.
    pub group: Option<String>,
    /// Default `Gateway`.
    pub kind: Option<String>,
    /// Default: the route's namespace.
    pub namespace: Option<String>,
    pub name: String,
    /// One listener of the Gateway, by name.
    pub section_name: Option<String>,
    /// Listeners on this port.
    pub port: Option<i32>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRule {
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendRef {
    /// Default `""` (the core group).
    pub group: Option<String>,
    /// Default `Service`.
    pub kind: Option<String>,
    pub name: String,
    /// Default: the route's namespace.
    pub namespace: Option<String>,
    /// Required when the backend is a Service.
    pub port: Option<i32>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    pub conditions: Vec<Condition>,
}

/// A `metav1.Condition`, every field optional: a controller that wrote a partial condition must
/// not make the whole list unreadable.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Status {
    /// The conditions among `types` whose status is `False`.
    pub fn false_conditions(&self, types: &[&str]) -> Vec<&Condition> {
        self.conditions
            .iter()
            .filter(|c| types.contains(&c.type_.as_str()) && c.status == "False")
            .collect()
    }
}
