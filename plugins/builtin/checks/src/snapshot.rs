//! The objects the checks read, listed once per run, in every namespace: the checks report only
//! on objects outside `exclude-namespaces`, but may follow references into them (a webhook
//! served from `kube-system`).
//!
//! The kinds the first checks read (pods, nodes, workloads, …) must be readable. The kinds added
//! since may be outside a read-only credential's reach (RBAC objects, webhook configurations,
//! storage classes): when listing one is denied, the checks that need it do not run, and a
//! warning says so, rather than the whole inspection failing.

use std::collections::BTreeSet;

use portico_plugin_sdk::k8s::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use portico_plugin_sdk::k8s::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use portico_plugin_sdk::k8s::api::autoscaling::v2::HorizontalPodAutoscaler;
use portico_plugin_sdk::k8s::api::batch::v1::{CronJob, Job};
use portico_plugin_sdk::k8s::api::core::v1::{
    ConfigMap, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use portico_plugin_sdk::k8s::api::discovery::v1::EndpointSlice;
use portico_plugin_sdk::k8s::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use portico_plugin_sdk::k8s::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use portico_plugin_sdk::k8s::api::storage::v1::StorageClass;
use portico_plugin_sdk::prelude::*;
use serde::de::DeserializeOwned;

use crate::gateway_api::{self, Gateway, GatewayClass, HttpRoute};

pub struct Snapshot {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub pvs: Vec<PersistentVolume>,
    pub storage_classes: Vec<StorageClass>,
    pub deployments: Vec<Deployment>,
    pub replicasets: Vec<ReplicaSet>,
    pub statefulsets: Vec<StatefulSet>,
    pub daemonsets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cronjobs: Vec<CronJob>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub configmaps: Vec<ConfigMap>,
    pub ingresses: Vec<Ingress>,
    pub ingress_classes: Vec<IngressClass>,
    pub network_policies: Vec<NetworkPolicy>,
    pub validating_webhooks: Vec<ValidatingWebhookConfiguration>,
    pub mutating_webhooks: Vec<MutatingWebhookConfiguration>,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub gateway_classes: Vec<GatewayClass>,
    pub gateways: Vec<Gateway>,
    pub http_routes: Vec<HttpRoute>,
    /// Kinds whose list was denied.
    pub denied: BTreeSet<&'static str>,
}

/// The checks that cannot run without each kind that may be denied.
const NEEDED_BY: &[(&str, &[&str])] = &[
    ("Namespace", &["httproute-missing-parent"]),
    ("EndpointSlice", &["webhook-service-unavailable"]),
    ("PersistentVolume", &["pv-released", "pv-failed"]),
    (
        "StorageClass",
        &[
            "storageclass-multiple-default",
            "statefulset-missing-storage-class",
        ],
    ),
    (
        "ReplicaSet",
        &[
            "replicaset-failure",
            "hpa-missing-target",
            "hpa-target-no-requests",
        ],
    ),
    (
        "HorizontalPodAutoscaler",
        &[
            "hpa-not-scaling",
            "hpa-missing-target",
            "hpa-target-no-requests",
        ],
    ),
    ("IngressClass", &["ingress-class-missing"]),
    ("NetworkPolicy", &["networkpolicy-no-pods"]),
    (
        "ValidatingWebhookConfiguration",
        &["webhook-service-unavailable"],
    ),
    (
        "MutatingWebhookConfiguration",
        &["webhook-service-unavailable"],
    ),
    ("Role", &["rbac-wildcard-binding"]),
    ("ClusterRole", &["rbac-wildcard-binding"]),
    ("RoleBinding", &["rbac-wildcard-binding"]),
    ("ClusterRoleBinding", &["rbac-wildcard-binding"]),
    (
        "GatewayClass",
        &["gatewayclass-not-accepted", "gateway-missing-class"],
    ),
    (
        "Gateway",
        &[
            "gateway-not-accepted",
            "gateway-missing-class",
            "httproute-missing-parent",
        ],
    ),
    (
        "HTTPRoute",
        &["httproute-missing-parent", "httproute-missing-backend"],
    ),
];

impl Snapshot {
    pub fn read() -> Result<Self, Error> {
        let mut denied = BTreeSet::new();
        let d = &mut denied;
        Ok(Self {
            namespaces: may_deny(d, "Namespace", kube::list_all())?,
            pods: kube::list_all()?,
            services: kube::list_all()?,
            endpoint_slices: may_deny(d, "EndpointSlice", kube::list_all())?,
            nodes: kube::list_all()?,
            pvcs: kube::list_all()?,
            pvs: may_deny(d, "PersistentVolume", kube::list_all())?,
            storage_classes: may_deny(d, "StorageClass", kube::list_all())?,
            deployments: kube::list_all()?,
            replicasets: may_deny(d, "ReplicaSet", kube::list_all())?,
            statefulsets: kube::list_all()?,
            daemonsets: kube::list_all()?,
            jobs: kube::list_all()?,
            cronjobs: kube::list_all()?,
            hpas: may_deny(d, "HorizontalPodAutoscaler", kube::list_all())?,
            configmaps: kube::list_all()?,
            ingresses: kube::list_all()?,
            ingress_classes: may_deny(d, "IngressClass", kube::list_all())?,
            network_policies: may_deny(d, "NetworkPolicy", kube::list_all())?,
            validating_webhooks: may_deny(d, "ValidatingWebhookConfiguration", kube::list_all())?,
            mutating_webhooks: may_deny(d, "MutatingWebhookConfiguration", kube::list_all())?,
            roles: may_deny(d, "Role", kube::list_all())?,
            cluster_roles: may_deny(d, "ClusterRole", kube::list_all())?,
            role_bindings: may_deny(d, "RoleBinding", kube::list_all())?,
            cluster_role_bindings: may_deny(d, "ClusterRoleBinding", kube::list_all())?,
            gateway_classes: may_deny(d, "GatewayClass", optional_crd("GatewayClass"))?,
            gateways: may_deny(d, "Gateway", optional_crd("Gateway"))?,
            http_routes: may_deny(d, "HTTPRoute", optional_crd("HTTPRoute"))?,
            denied,
        })
    }

    /// The checks that cannot run because a kind they need could not be listed.
    pub fn blind_checks(&self) -> BTreeSet<String> {
        NEEDED_BY
            .iter()
            .filter(|(kind, _)| self.denied.contains(kind))
            .flat_map(|(_, checks)| checks.iter().map(|c| (*c).to_owned()))
            .collect()
    }
}

/// A list; empty, with `kind` noted in `denied`, when the credential may not list it.
fn may_deny<T>(
    denied: &mut BTreeSet<&'static str>,
    kind: &'static str,
    result: Result<Vec<T>, Error>,
) -> Result<Vec<T>, Error> {
    match result {
        Err(e) if e.kind == ErrorKind::Denied => {
            log::warn(format!("cannot list {kind}: {}", e.message));
            denied.insert(kind);
            Ok(Vec::new())
        }
        other => other,
    }
}

/// A Gateway API kind; none when the cluster does not serve it (its CRDs are not installed).
fn optional_crd<T: DeserializeOwned>(kind: &str) -> Result<Vec<T>, Error> {
    let values = match kube::list_dynamic(gateway_api::API_VERSION, kind, &ListParams::default()) {
        Ok(values) => values,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    values
        .into_iter()
        .map(|v| {
            serde_json::from_value(v).map_err(|e| Error::invalid(format!("decoding a {kind}: {e}")))
        })
        .collect()
}
