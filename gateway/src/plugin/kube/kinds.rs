//! Which REST plural, and which scope, a kind has.
//!
//! Built-in kinds come from k8s-openapi: [`BUILTIN`] is made from its types' [`Resource`]
//! constants (`GROUP`, `KIND`, `URL_PATH_SEGMENT`) and their `Scope`, so there is no plural to
//! keep by hand. A kind is built-in when k8s-openapi knows it in the group asked for; the
//! version does not matter (a kind keeps its plural and scope across versions).
//!
//! Any other kind (a custom resource, or a kind k8s-openapi does not know) gets
//! [`guess_plural`] and no scope.

use k8s_openapi::api;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};

/// How a built-in kind is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Builtin {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub kind: &'static str,
    /// The collection's path segment.
    pub plural: &'static str,
    pub namespaced: bool,
}

/// The scopes a kind in [`BUILTIN`] may have. Subresources (`Scale`, policy/v1 `Eviction`,
/// `TokenRequest`: `SubResourceScope`) are not collections of their own and do not compile
/// into the table.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

const fn builtin<K>() -> Builtin
where
    K: Resource,
    K::Scope: Scope,
{
    Builtin {
        group: K::GROUP,
        kind: K::KIND,
        plural: K::URL_PATH_SEGMENT,
        namespaced: <K::Scope as Scope>::NAMESPACED,
    }
}

macro_rules! builtins {
    ($($ty:path),* $(,)?) => {
        &[$(builtin::<$ty>()),*]
    };
}

/// Every kind k8s-openapi (feature `v1_37`) has a collection for, one version per group
/// (the newest stable one, else the newest pre-release). Its meta types (`Status`,
/// `APIGroup`, ...) have no collection and are left out.
pub(super) const BUILTIN: &[Builtin] = builtins![
    api::admissionregistration::v1::MutatingAdmissionPolicy,
    api::admissionregistration::v1::MutatingAdmissionPolicyBinding,
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    api::admissionregistration::v1::ValidatingAdmissionPolicy,
    api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    api::admissionregistration::v1::ValidatingWebhookConfiguration,
    api::apiserverinternal::v1alpha1::StorageVersion,
    api::apps::v1::ControllerRevision,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::authentication::v1::SelfSubjectReview,
    api::authentication::v1::TokenReview,
    api::authorization::v1::LocalSubjectAccessReview,
    api::authorization::v1::SelfSubjectAccessReview,
    api::authorization::v1::SelfSubjectRulesReview,
    api::authorization::v1::SubjectAccessReview,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::certificates::v1::CertificateSigningRequest,
    api::certificates::v1::ClusterTrustBundle,
    api::certificates::v1::PodCertificateRequest,
    api::coordination::v1::Lease,
    api::coordination::v1beta1::LeaseCandidate,
    api::core::v1::Binding,
    api::core::v1::ComponentStatus,
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
    api::flowcontrol::v1::FlowSchema,
    api::flowcontrol::v1::PriorityLevelConfiguration,
    api::lifecycle::v1alpha1::Eviction,
    api::lifecycle::v1alpha1::EvictionRequest,
    api::networking::v1::IPAddress,
    api::networking::v1::Ingress,
    api::networking::v1::IngressClass,
    api::networking::v1::NetworkPolicy,
    api::networking::v1::ServiceCIDR,
    api::node::v1::RuntimeClass,
    api::policy::v1::PodDisruptionBudget,
    api::rbac::v1::ClusterRole,
    api::rbac::v1::ClusterRoleBinding,
    api::rbac::v1::Role,
    api::rbac::v1::RoleBinding,
    api::resource::v1::DeviceClass,
    api::resource::v1::DeviceTaintRule,
    api::resource::v1::ResourceClaim,
    api::resource::v1::ResourceClaimTemplate,
    api::resource::v1::ResourceSlice,
    api::resource::v1alpha3::ResourcePoolStatusRequest,
    api::scheduling::v1::PriorityClass,
    api::scheduling::v1alpha3::CompositePodGroup,
    api::scheduling::v1beta1::PodGroup,
    api::scheduling::v1beta1::Workload,
    api::storage::v1::CSIDriver,
    api::storage::v1::CSINode,
    api::storage::v1::CSIStorageCapacity,
    api::storage::v1::StorageClass,
    api::storage::v1::VolumeAttachment,
    api::storage::v1::VolumeAttributesClass,
    api::storagemigration::v1::StorageVersionMigration,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
];

/// The built-in `kind` of `group` (`""`: core), if k8s-openapi knows one.
pub(super) fn builtin_kind(group: &str, kind: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.group == group && b.kind == kind)
}

/// The plural of a kind k8s-openapi does not know: the lower-case kind with the English
/// plural ending, as custom resources usually declare it (controller-gen's default):
///
/// - `es` after `s`, `x`, `ch` or `sh` (`Class` → `classes`, `Box` → `boxes`);
/// - `ies` for `y` after a consonant (`Policy` → `policies`);
/// - `s` otherwise, `y` after a vowel included (`Gateway` → `gateways`, `Widget` →
///   `widgets`).
///
/// This is the apiserver's own guess (apimachinery's `UnsafeGuessKindToResource`: `s` →
/// `ses`, `y` → `ies`, else `s`) except where that guess breaks English: `gateways`, not
/// `gatewaies`; `boxes`, not `boxs`. Kinds whose plural follows neither (a CRD may declare
/// any plural) are out of reach without discovery, which would cost a round trip per call.
pub(super) fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn plural(group: &str, kind: &str) -> (&'static str, bool) {
        let b = builtin_kind(group, kind).unwrap_or_else(|| panic!("{group}/{kind} built-in"));
        (b.plural, b.namespaced)
    }

    #[test]
    fn irregular_built_in_plurals_come_from_k8s_openapi() {
        assert_eq!(plural("", "Endpoints"), ("endpoints", true));
        assert_eq!(plural("networking.k8s.io", "Ingress"), ("ingresses", true));
        assert_eq!(
            plural("networking.k8s.io", "NetworkPolicy"),
            ("networkpolicies", true)
        );
        assert_eq!(
            plural("scheduling.k8s.io", "PriorityClass"),
            ("priorityclasses", false)
        );
        assert_eq!(
            plural("storage.k8s.io", "StorageClass"),
            ("storageclasses", false)
        );
        assert_eq!(
            plural("storage.k8s.io", "CSIStorageCapacity"),
            ("csistoragecapacities", true)
        );
        assert_eq!(plural("", "ComponentStatus"), ("componentstatuses", false));
        assert_eq!(plural("events.k8s.io", "Event"), ("events", true));
        // The guess gets Endpoints wrong: the table is what keeps it right.
        assert_eq!(guess_plural("Endpoints"), "endpointses");
    }

    #[test]
    fn built_in_kinds_are_matched_on_group_and_kind() {
        assert!(builtin_kind("", "Pod").is_some());
        assert!(builtin_kind("apps", "Pod").is_none());
        assert!(builtin_kind("example.com", "Job").is_none());
        assert!(builtin_kind("", "pod").is_none());
        // Subresources and meta types are not collections.
        assert!(builtin_kind("autoscaling", "Scale").is_none());
        assert!(builtin_kind("policy", "Eviction").is_none());
        assert!(builtin_kind("", "Status").is_none());
    }

    #[test]
    fn the_table_is_well_formed() {
        let mut seen = BTreeSet::new();
        for b in BUILTIN {
            assert!(seen.insert((b.group, b.kind)), "{b:?} twice");
            assert!(
                !b.plural.is_empty()
                    && b.plural
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{b:?}"
            );
        }
        assert!(BUILTIN.len() > 70, "{}", BUILTIN.len());
    }

    #[test]
    fn the_table_keeps_every_kind_the_hand_written_one_had() {
        // The kinds (and plurals and scopes) Portico listed by hand before k8s-openapi's were
        // used: none may change.
        let before: &[(&str, &str, &str, bool)] = &[
            ("", "Pod", "pods", true),
            ("", "Service", "services", true),
            ("", "Endpoints", "endpoints", true),
            ("", "ConfigMap", "configmaps", true),
            ("", "Secret", "secrets", true),
            ("", "ServiceAccount", "serviceaccounts", true),
            ("", "PersistentVolumeClaim", "persistentvolumeclaims", true),
            ("", "PersistentVolume", "persistentvolumes", false),
            ("", "Node", "nodes", false),
            ("", "Namespace", "namespaces", false),
            ("", "Event", "events", true),
            ("", "ReplicationController", "replicationcontrollers", true),
            ("", "ResourceQuota", "resourcequotas", true),
            ("", "LimitRange", "limitranges", true),
            ("apps", "Deployment", "deployments", true),
            ("apps", "ReplicaSet", "replicasets", true),
            ("apps", "StatefulSet", "statefulsets", true),
            ("apps", "DaemonSet", "daemonsets", true),
            ("apps", "ControllerRevision", "controllerrevisions", true),
            ("batch", "Job", "jobs", true),
            ("batch", "CronJob", "cronjobs", true),
            ("networking.k8s.io", "Ingress", "ingresses", true),
            ("networking.k8s.io", "IngressClass", "ingressclasses", false),
            (
                "networking.k8s.io",
                "NetworkPolicy",
                "networkpolicies",
                true,
            ),
            ("discovery.k8s.io", "EndpointSlice", "endpointslices", true),
            ("coordination.k8s.io", "Lease", "leases", true),
            ("storage.k8s.io", "StorageClass", "storageclasses", false),
            (
                "storage.k8s.io",
                "VolumeAttachment",
                "volumeattachments",
                false,
            ),
            ("storage.k8s.io", "CSIDriver", "csidrivers", false),
            ("rbac.authorization.k8s.io", "Role", "roles", true),
            (
                "rbac.authorization.k8s.io",
                "RoleBinding",
                "rolebindings",
                true,
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                "clusterroles",
                false,
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
            ),
            (
                "autoscaling",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            ),
            (
                "policy",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
            ),
            (
                "scheduling.k8s.io",
                "PriorityClass",
                "priorityclasses",
                false,
            ),
            (
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            ),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
                false,
            ),
            (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                false,
            ),
        ];
        for &(group, kind, plural_was, namespaced_was) in before {
            assert_eq!(plural(group, kind), (plural_was, namespaced_was), "{kind}");
        }
    }

    #[test]
    fn unknown_kinds_get_the_english_plural() {
        assert_eq!(guess_plural("Widget"), "widgets");
        assert_eq!(guess_plural("Gateway"), "gateways");
        assert_eq!(guess_plural("Policy"), "policies");
        assert_eq!(guess_plural("Class"), "classes");
        assert_eq!(guess_plural("Box"), "boxes");
        assert_eq!(guess_plural("Batch"), "batches");
        assert_eq!(guess_plural("Mesh"), "meshes");
        assert_eq!(guess_plural("Key"), "keys");
        assert_eq!(guess_plural("VirtualService"), "virtualservices");
        assert_eq!(guess_plural("Certificate"), "certificates");
    }
}
