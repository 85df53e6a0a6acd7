//! The kinds the simulator serves: names, scope, verbs and per-kind behaviour switches.

/// Everything the server needs to know about one resource type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version (`v1`).
    pub version: &'static str,
    /// Kind (`Pod`).
    pub kind: &'static str,
    /// Plural resource name used in paths (`pods`).
    pub plural: &'static str,
    /// Singular name (`pod`).
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl (`po`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Has a `status` subresource: the main resource ignores status changes and vice versa.
    pub status_subresource: bool,
    /// `metadata.generation` is set on create and bumped on spec changes.
    pub generation: bool,
    /// Updates must carry `metadata.resourceVersion` (`AllowUnconditionalUpdate() == false`).
    pub requires_resource_version: bool,
    /// A delete answers with the deleted object rather than a success `Status`.
    pub returns_deleted_object: bool,
    /// Has a `scale` subresource (`autoscaling/v1` `Scale` over `spec.replicas`).
    pub scale: bool,
    /// A create-only review (`SelfSubjectReview`, `SelfSubjectAccessReview`, …): nothing is
    /// stored, a POST answers with the computed status.
    pub review: bool,
    /// Field-selector fields beyond `metadata.name` / `metadata.namespace`, with the JSON path
    /// (dot separated) each one reads.
    pub fields: &'static [(&'static str, &'static str)],
}

impl ResourceInfo {
    /// `apiVersion` as written in objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `leases.coordination.k8s.io`: how the apiserver names the resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind of the list (`PodList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];
const GATEWAY_API: &[&str] = &["gateway-api"];
const NONE: &[&str] = &[];

macro_rules! res {
    ($group:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr, $short:expr, $cat:expr,
     status: $status:expr, generation: $gen:expr, rv: $rv:expr, returns: $ret:expr, fields: $fields:expr) => {
        ResourceInfo {
            group: $group,
            version: "v1",
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            status_subresource: $status,
            generation: $gen,
            requires_resource_version: $rv,
            returns_deleted_object: $ret,
            scale: matches!($plural, "deployments" | "replicasets" | "statefulsets"),
            review: $plural.starts_with("self"),
            fields: $fields,
        }
    };
}

const POD_FIELDS: &[(&str, &str)] = &[
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
];
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];
const NO_FIELDS: &[(&str, &str)] = &[];

/// The table of served resources, in discovery order.
pub fn all() -> &'static [ResourceInfo] {
    static TABLE: std::sync::OnceLock<Vec<ResourceInfo>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        vec![
            res!("", "Namespace", "namespaces", "namespace", false, &["ns"], NONE,
                status: true, generation: false, rv: false, returns: true,
                fields: &[("status.phase", "status.phase")]),
            res!("", "Pod", "pods", "pod", true, &["po"], ALL,
                status: true, generation: true, rv: false, returns: true, fields: POD_FIELDS),
            res!("", "Service", "services", "service", true, &["svc"], ALL,
                status: true, generation: false, rv: false, returns: true, fields: NO_FIELDS),
            res!("", "Endpoints", "endpoints", "endpoints", true, &["ep"], NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("", "ConfigMap", "configmaps", "configmap", true, &["cm"], NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("", "Secret", "secrets", "secret", true, NONE, NONE,
                status: false, generation: false, rv: false, returns: false,
                fields: &[("type", "type")]),
            res!("", "Node", "nodes", "node", false, &["no"], NONE,
                status: true, generation: false, rv: false, returns: false,
                fields: &[("spec.unschedulable", "spec.unschedulable")]),
            res!("", "Event", "events", "event", true, &["ev"], NONE,
                status: false, generation: false, rv: false, returns: false, fields: EVENT_FIELDS),
            res!("", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], NONE,
                status: false, generation: false, rv: false, returns: true, fields: NO_FIELDS),
            res!("", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim",
                true, &["pvc"], NONE,
                status: true, generation: false, rv: false, returns: true, fields: NO_FIELDS),
            res!("", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"],
                NONE, status: true, generation: false, rv: false, returns: true, fields: NO_FIELDS),
            res!("apps", "Deployment", "deployments", "deployment", true, &["deploy"], ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("apps", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("apps", "StatefulSet", "statefulsets", "statefulset", true, &["sts"], ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("apps", "DaemonSet", "daemonsets", "daemonset", true, &["ds"], ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("batch", "Job", "jobs", "job", true, NONE, ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("batch", "CronJob", "cronjobs", "cronjob", true, &["cj"], ALL,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("networking.k8s.io", "Ingress", "ingresses", "ingress", true, &["ing"], NONE,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("networking.k8s.io", "IngressClass", "ingressclasses", "ingressclass", false,
                NONE, NONE,
                status: false, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("networking.k8s.io", "NetworkPolicy", "networkpolicies", "networkpolicy", true,
                &["netpol"], NONE,
                status: false, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("discovery.k8s.io", "EndpointSlice", "endpointslices", "endpointslice", true,
                NONE, NONE,
                status: false, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            ResourceInfo {
                version: "v2",
                ..res!("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                    "horizontalpodautoscaler", true, &["hpa"], ALL,
                    status: true, generation: false, rv: false, returns: false, fields: NO_FIELDS)
            },
            res!("storage.k8s.io", "StorageClass", "storageclasses", "storageclass", false,
                &["sc"], NONE,
                status: false, generation: false, rv: false, returns: true, fields: NO_FIELDS),
            res!("admissionregistration.k8s.io", "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations", "validatingwebhookconfiguration", false, NONE,
                API_EXTENSIONS,
                status: false, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("admissionregistration.k8s.io", "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", false, NONE,
                API_EXTENSIONS,
                status: false, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("rbac.authorization.k8s.io", "Role", "roles", "role", true, NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", "clusterrole", false,
                NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", "rolebinding", true,
                NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings",
                "clusterrolebinding", false, NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            // Gateway API: CRDs in a real cluster (status subresource, generation, delete
            // answers with a Status).
            res!("gateway.networking.k8s.io", "GatewayClass", "gatewayclasses", "gatewayclass",
                false, &["gc"], GATEWAY_API,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("gateway.networking.k8s.io", "Gateway", "gateways", "gateway", true, &["gtw"],
                GATEWAY_API,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("gateway.networking.k8s.io", "HTTPRoute", "httproutes", "httproute", true, NONE,
                GATEWAY_API,
                status: true, generation: true, rv: false, returns: false, fields: NO_FIELDS),
            res!("coordination.k8s.io", "Lease", "leases", "lease", true, NONE, NONE,
                status: false, generation: false, rv: true, returns: false, fields: NO_FIELDS),
            res!("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview",
                false, NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                "selfsubjectaccessreview", false, NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
            res!("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                "selfsubjectrulesreview", false, NONE, NONE,
                status: false, generation: false, rv: false, returns: false, fields: NO_FIELDS),
        ]
    })
}

/// Looks a resource up by group, version and plural name.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    all()
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by `apiVersion` and `kind`, as written in an object.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    all()
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The versions of `group` served, in discovery order; the first is the preferred one.
pub fn versions(group: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in all().iter().filter(|r| r.group == group) {
        if !out.contains(&r.version) {
            out.push(r.version);
        }
    }
    out
}

/// The groups served under `/apis`, in discovery order.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in all() {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// Index of a resource in [`all`], the key the store uses.
pub fn index_of(res: &ResourceInfo) -> usize {
    let table = all();
    table
        .iter()
        .position(|r| std::ptr::eq(r, res))
        .or_else(|| table.iter().position(|r| r == res))
        .expect("resource is in the table")
}
