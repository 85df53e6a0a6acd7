//! API Priority and Fairness response headers.
//!
//! The apiserver's APF filter (`k8s.io/apiserver/pkg/server/filters/priority-and-fairness.go`)
//! classifies every request it sees into a FlowSchema and a PriorityLevelConfiguration and sets
//! `X-Kubernetes-PF-FlowSchema-UID` and `X-Kubernetes-PF-PriorityLevel-UID` to their UIDs (not
//! their names, so as not to reveal them). It runs after authentication and impersonation, so a
//! 401 carries neither header; long-running requests other than watches (`exec`, `attach`,
//! `portforward`, `proxy`, `log`) skip the filter and carry neither either.
//!
//! The simulator does no queueing or rejection: it classifies with the default ("mandatory" and
//! "suggested") configuration objects, matching on groups only, and reports their UIDs. Real
//! clusters generate the UIDs when the objects are first created; here they are fixed.

use crate::server::User;

/// `X-Kubernetes-PF-FlowSchema-UID`.
pub const FLOW_SCHEMA_HEADER: &str = "x-kubernetes-pf-flowschema-uid";
/// `X-Kubernetes-PF-PriorityLevel-UID`.
pub const PRIORITY_LEVEL_HEADER: &str = "x-kubernetes-pf-prioritylevel-uid";

/// One default FlowSchema and the priority level it points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// FlowSchema name (`exempt`, `probes`, `global-default`, …).
    pub flow_schema: &'static str,
    /// Its UID.
    pub flow_schema_uid: &'static str,
    /// PriorityLevelConfiguration name.
    pub priority_level: &'static str,
    /// Its UID.
    pub priority_level_uid: &'static str,
}

const PL_EXEMPT: &str = "1027c930-ee44-4a2c-9800-020ee8dd1ec7";
const PL_SYSTEM: &str = "3ef4bc85-4351-40c6-864f-d323bb63ca24";
const PL_WORKLOAD_LOW: &str = "256c2722-d273-40d9-8f7e-0d0e3c0e937d";
const PL_GLOBAL_DEFAULT: &str = "a63fdfae-aacc-48ea-8afc-aa6f91d0e935";

/// `exempt`: `system:masters` (mandatory configuration).
pub const EXEMPT: Classification = Classification {
    flow_schema: "exempt",
    flow_schema_uid: "7c80e56d-b81e-4c9d-8493-380709328a7b",
    priority_level: "exempt",
    priority_level_uid: PL_EXEMPT,
};
/// `probes`: `/healthz`, `/readyz`, `/livez` for anyone (suggested configuration).
pub const PROBES: Classification = Classification {
    flow_schema: "probes",
    flow_schema_uid: "f8203c84-c341-4e3e-aeef-d34079278fba",
    priority_level: "exempt",
    priority_level_uid: PL_EXEMPT,
};
/// `system-nodes`: the `system:nodes` group.
pub const SYSTEM_NODES: Classification = Classification {
    flow_schema: "system-nodes",
    flow_schema_uid: "e16d0621-74a9-40c8-9974-190a6e6ccea1",
    priority_level: "system",
    priority_level_uid: PL_SYSTEM,
};
/// `service-accounts`: the `system:serviceaccounts` group.
pub const SERVICE_ACCOUNTS: Classification = Classification {
    flow_schema: "service-accounts",
    flow_schema_uid: "1c49dd72-85a6-4f52-8018-ed1efc1ee5f8",
    priority_level: "workload-low",
    priority_level_uid: PL_WORKLOAD_LOW,
};
/// `global-default`: every other authenticated (or anonymous) user.
pub const GLOBAL_DEFAULT: Classification = Classification {
    flow_schema: "global-default",
    flow_schema_uid: "9623558f-9fae-4fe7-aebe-1f998be1ff84",
    priority_level: "global-default",
    priority_level_uid: PL_GLOBAL_DEFAULT,
};

/// Subresources the apiserver's `BasicLongRunningRequestCheck` treats as long-running; they
/// bypass APF (watches do not).
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "proxy", "log", "portforward"];

/// Whether the path is a long-running non-watch request (no APF headers).
pub fn is_long_running(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let n = segs.len();
    // `/api/v1/namespaces/d/pods/p/log`: the subresource follows a resource and a name.
    matches!(segs.get(1), Some(&"api") | Some(&"apis"))
        && n >= 6
        && LONG_RUNNING_SUBRESOURCES.contains(&segs[n - 1])
        && matches!(segs[n - 3], "pods" | "services" | "nodes")
}

/// The default configuration's answer for a request: probes first (precedence 2), then
/// `exempt` (1 in precedence but only for `system:masters`), nodes, service accounts and the
/// global default, as the matching precedences order them.
pub fn classify(user: Option<&User>, path: &str) -> Classification {
    let groups: &[String] = user.map(|u| u.groups.as_slice()).unwrap_or(&[]);
    let has = |g: &str| groups.iter().any(|x| x == g);
    if has("system:masters") {
        return EXEMPT;
    }
    if matches!(path, "/healthz" | "/readyz" | "/livez")
        || ["/healthz/", "/readyz/", "/livez/"]
            .iter()
            .any(|p| path.starts_with(p))
    {
        return PROBES;
    }
    if has("system:nodes") {
        return SYSTEM_NODES;
    }
    if has("system:serviceaccounts") {
        return SERVICE_ACCOUNTS;
    }
    GLOBAL_DEFAULT
}

/// Sets both headers.
pub fn set_headers(headers: &mut http::HeaderMap, c: Classification) {
    headers.insert(
        FLOW_SCHEMA_HEADER,
        http::HeaderValue::from_static(c.flow_schema_uid),
    );
    headers.insert(
        PRIORITY_LEVEL_HEADER,
        http::HeaderValue::from_static(c.priority_level_uid),
    );
}

#[cfg(test)]
mod tests;
