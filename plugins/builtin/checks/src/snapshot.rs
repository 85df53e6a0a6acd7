//! The objects the checks read, listed once per run, in every namespace: the checks report only
//! on objects outside `exclude-namespaces`, but may follow references into them (a webhook
//! served from `kube-system`).

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
}

impl Snapshot {
    pub fn read() -> Result<Self, Error> {
        Ok(Self {
            namespaces: kube::list_all()?,
            pods: kube::list_all()?,
            services: kube::list_all()?,
            endpoint_slices: kube::list_all()?,
            nodes: kube::list_all()?,
            pvcs: kube::list_all()?,
            pvs: kube::list_all()?,
            storage_classes: kube::list_all()?,
            deployments: kube::list_all()?,
            replicasets: kube::list_all()?,
            statefulsets: kube::list_all()?,
            daemonsets: kube::list_all()?,
            jobs: kube::list_all()?,
            cronjobs: kube::list_all()?,
            hpas: kube::list_all()?,
            configmaps: kube::list_all()?,
            ingresses: kube::list_all()?,
            ingress_classes: kube::list_all()?,
            network_policies: kube::list_all()?,
            validating_webhooks: kube::list_all()?,
            mutating_webhooks: kube::list_all()?,
            roles: kube::list_all()?,
            cluster_roles: kube::list_all()?,
            role_bindings: kube::list_all()?,
            cluster_role_bindings: kube::list_all()?,
            gateway_classes: optional_crd("GatewayClass")?,
            gateways: optional_crd("Gateway")?,
            http_routes: optional_crd("HTTPRoute")?,
        })
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
