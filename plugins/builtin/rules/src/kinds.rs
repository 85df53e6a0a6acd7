//! The built-in kinds a rule can name by resource (`deployments`) or by kind without an
//! apiVersion: made from k8s-openapi's [`Resource`] constants, as the gateway's own table
//! (`gateway/src/plugin/kube/kinds.rs`), so no plural or version is kept by hand. Custom
//! resources are named with `apiVersion` and `kinds`: without discovery (which the plugin
//! cannot reach) there is no way from a plural to its kind.

use portico_plugin_sdk::k8s::api;
use portico_plugin_sdk::k8s::{ClusterResourceScope, NamespaceResourceScope, Resource};

/// How one built-in kind is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinKind {
    /// API group; `""` for the core group.
    pub group: &'static str,
    /// The version k8s-openapi has (the newest stable one of the group).
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource (the collection's path segment), as ValidatingAdmissionPolicy rules name it.
    pub resource: &'static str,
    pub namespaced: bool,
}

impl BuiltinKind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        api_version(self.group, self.version)
    }
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

trait Scope {
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

const fn builtin<K>() -> BuiltinKind
where
    K: Resource,
    K::Scope: Scope,
{
    BuiltinKind {
        group: K::GROUP,
        version: K::VERSION,
        kind: K::KIND,
        resource: K::URL_PATH_SEGMENT,
        namespaced: <K::Scope as Scope>::NAMESPACED,
    }
}

macro_rules! builtins {
    ($($ty:path),* $(,)?) => {
        &[$(builtin::<$ty>()),*]
    };
}

/// The kinds worth auditing: every listable, stable kind of Kubernetes 1.37 that holds
/// objects (reviews, bindings and evictions are requests, not stored objects, and are left
/// out, as are alpha and beta kinds).
pub const BUILTIN: &[BuiltinKind] = builtins![
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    api::admissionregistration::v1::ValidatingAdmissionPolicy,
    api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    api::admissionregistration::v1::ValidatingWebhookConfiguration,
    api::apps::v1::ControllerRevision,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::certificates::v1::CertificateSigningRequest,
    api::coordination::v1::Lease,
    api::core::v1::ConfigMap,
    api::core::v1::Endpoints,
    api::core::v1::Event,
    api::core::v1::LimitRange,
    api::core::v1::Namespace,
    api::core::v1::Node,
    api::core::v1::PersistentVolume,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::Pod,
    api::core::v1::PodTemplate,
    api::core::v1::ReplicationController,
    api::core::v1::ResourceQuota,
    api::core::v1::Secret,
    api::core::v1::Service,
    api::core::v1::ServiceAccount,
    api::discovery::v1::EndpointSlice,
    api::events::v1::Event,
    api::networking::v1::Ingress,
    api::networking::v1::IngressClass,
    api::networking::v1::NetworkPolicy,
    api::node::v1::RuntimeClass,
    api::policy::v1::PodDisruptionBudget,
    api::rbac::v1::ClusterRole,
    api::rbac::v1::ClusterRoleBinding,
    api::rbac::v1::Role,
    api::rbac::v1::RoleBinding,
    api::scheduling::v1::PriorityClass,
    api::storage::v1::CSIDriver,
    api::storage::v1::CSINode,
    api::storage::v1::StorageClass,
    api::storage::v1::VolumeAttachment,
    portico_plugin_sdk::k8s::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
];

/// The built-in kinds of `group` whose resource matches `resource` (`*`: all of them).
pub fn by_resource<'a>(
    group: &'a str,
    resource: &'a str,
) -> impl Iterator<Item = &'static BuiltinKind> + 'a {
    BUILTIN.iter().filter(move |b| {
        (group == "*" || b.group == group) && (resource == "*" || b.resource == resource)
    })
}

/// The built-in kinds named `kind` in `group` (`None`: any group).
pub fn by_kind<'a>(
    group: Option<&'a str>,
    kind: &'a str,
) -> impl Iterator<Item = &'static BuiltinKind> + 'a {
    BUILTIN
        .iter()
        .filter(move |b| b.kind == kind && group.is_none_or(|g| g == "*" || b.group == g))
}
