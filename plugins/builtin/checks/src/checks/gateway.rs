//! Gateway API (`gateway.networking.k8s.io/v1`): classes, Gateways and HTTPRoutes. A cluster
//! without the Gateway API CRDs has none of these, and every check passes.

use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::gateway_api::{self, Gateway, HttpRoute, Listener, Status};
use crate::report::{Check, Report, Target};
use crate::selector;
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "gatewayclass-not-accepted",
        severity: Severity::Medium,
        passes: "every GatewayClass is accepted by its controller",
    },
    Check {
        id: "gateway-missing-class",
        severity: Severity::High,
        passes: "every Gateway's GatewayClass exists",
    },
    Check {
        id: "gateway-not-accepted",
        severity: Severity::High,
        passes: "every Gateway is accepted and programmed",
    },
    Check {
        id: "httproute-missing-parent",
        severity: Severity::High,
        passes: "every HTTPRoute's parent Gateway exists and lets the route attach",
    },
    Check {
        id: "httproute-missing-backend",
        severity: Severity::High,
        passes: "every HTTPRoute backend Service exists and has the referenced port",
    },
];

pub fn run(s: &Snapshot, report: &mut Report) {
    for class in &s.gateway_classes {
        let name = class.metadata.name.as_deref().unwrap_or_default();
        let target = Target {
            kind: "GatewayClass",
            namespace: None,
            name,
        };
        conditions(
            report,
            "gatewayclass-not-accepted",
            target,
            &class.status,
            &["Accepted"],
        );
    }
    for gateway in &s.gateways {
        let namespace = gateway.metadata.namespace.as_deref();
        let name = gateway.metadata.name.as_deref().unwrap_or_default();
        let target = || Target {
            kind: "Gateway",
            namespace,
            name,
        };
        let class = gateway.spec.gateway_class_name.as_str();
        if !s
            .gateway_classes
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(class))
        {
            report.fail_on(
                "gateway-missing-class",
                target(),
                format!(
                    "GatewayClass {class} does not exist: no controller implements this Gateway"
                ),
                json!({ "gatewayClassName": class }),
            );
        }
        conditions(
            report,
            "gateway-not-accepted",
            target(),
            &gateway.status,
            &["Accepted", "Programmed"],
        );
    }
    for route in &s.http_routes {
        parents(s, route, report);
        backends(s, route, report);
    }
}

/// Reports the conditions among `types` whose status is False.
fn conditions(
    report: &mut Report,
    check: &'static str,
    target: Target<'_>,
    status: &Status,
    types: &[&str],
) {
    let bad = status.false_conditions(types);
    if bad.is_empty() {
        return;
    }
    let text: Vec<String> = bad
        .iter()
        .map(|c| format!("{}=False ({}): {}", c.type_, c.reason, c.message))
        .collect();
    let details: Vec<_> = bad
        .iter()
        .map(|c| json!({"type": c.type_, "reason": c.reason, "message": c.message}))
        .collect();
    report.fail_on(
        check,
        target,
        text.join("; "),
        json!({ "conditions": details }),
    );
}

fn parents(s: &Snapshot, route: &HttpRoute, report: &mut Report) {
    let route_ns = route.metadata.namespace.as_deref().unwrap_or_default();
    let mut problems = Vec::new();
    for parent in &route.spec.parent_refs {
        let group = parent.group.as_deref().unwrap_or(gateway_api::GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        if group != gateway_api::GROUP || kind != "Gateway" {
            continue; // another kind of parent (a Service, for GAMMA mesh routing)
        }
        let ns = parent.namespace.as_deref().unwrap_or(route_ns);
        let Some(gateway) = s.gateways.iter().find(|g| {
            g.metadata.namespace.as_deref() == Some(ns)
                && g.metadata.name.as_deref() == Some(parent.name.as_str())
        }) else {
            problems.push(json!({
                "gateway": format!("{ns}/{}", parent.name),
                "problem": "Gateway does not exist",
            }));
            continue;
        };
        let listeners: Vec<&Listener> = gateway
            .spec
            .listeners
            .iter()
            .filter(|l| parent.section_name.as_ref().is_none_or(|n| *n == l.name))
            .filter(|l| parent.port.is_none_or(|p| l.port == Some(p)))
            .collect();
        let problem = if listeners.is_empty() {
            Some(match (&parent.section_name, parent.port) {
                (Some(section), _) => format!("Gateway has no listener {section}"),
                (None, Some(port)) => format!("Gateway has no listener on port {port}"),
                (None, None) => "Gateway has no listeners".to_owned(),
            })
        } else if !listeners.iter().any(|l| admits(s, gateway, l, route_ns)) {
            Some(format!(
                "no listener allows routes from namespace {route_ns} (allowedRoutes)"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            problems.push(json!({
                "gateway": format!("{ns}/{}", parent.name),
                "problem": problem,
            }));
        }
    }
    let failure = RouteFailure {
        check: "httproute-missing-parent",
        lead: "route cannot attach",
        key: "gateway",
        list: "parents",
    };
    failure.report(report, route, problems);
}

/// Whether `listener` lets routes from `route_ns` attach: `allowedRoutes.namespaces.from` is
/// `Same` (the default), `All`, or `Selector` over the namespace's labels.
fn admits(s: &Snapshot, gateway: &Gateway, listener: &Listener, route_ns: &str) -> bool {
    let namespaces = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Same" => gateway.metadata.namespace.as_deref() == Some(route_ns),
        "Selector" => {
            let Some(sel) = namespaces.and_then(|n| n.selector.as_ref()) else {
                return false;
            };
            let labels = s
                .namespaces
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(route_ns))
                .and_then(|n| n.metadata.labels.as_ref());
            selector::matches(sel, labels)
        }
        _ => false,
    }
}

fn backends(s: &Snapshot, route: &HttpRoute, report: &mut Report) {
    let route_ns = route.metadata.namespace.as_deref().unwrap_or_default();
    let mut problems = Vec::new();
    for backend in route.spec.rules.iter().flat_map(|r| r.backend_refs.iter()) {
        let group = backend.group.as_deref().unwrap_or("");
        let kind = backend.kind.as_deref().unwrap_or("Service");
        if !group.is_empty() || kind != "Service" {
            continue; // an implementation-specific backend kind
        }
        let ns = backend.namespace.as_deref().unwrap_or(route_ns);
        let service = s.services.iter().find(|svc| {
            svc.metadata.namespace.as_deref() == Some(ns)
                && svc.metadata.name.as_deref() == Some(backend.name.as_str())
        });
        let problem = match (service, backend.port) {
            (None, _) => Some("Service does not exist".to_owned()),
            // "Port is required when the referent is a Kubernetes Service."
            (Some(_), None) => Some("no port given; it is required for a Service".to_owned()),
            (Some(svc), Some(port)) => {
                let ports: Vec<i32> = svc
                    .spec
                    .iter()
                    .flat_map(|sp| sp.ports.iter().flatten())
                    .map(|p| p.port)
                    .collect();
                (!ports.contains(&port))
                    .then(|| format!("Service has no port {port} (ports: {ports:?})"))
            }
        };
        if let Some(problem) = problem {
            problems.push(json!({
                "service": format!("{ns}/{}", backend.name),
                "port": backend.port,
                "problem": problem,
            }));
        }
    }
    let failure = RouteFailure {
        check: "httproute-missing-backend",
        lead: "backends unusable",
        key: "service",
        list: "backends",
    };
    failure.report(report, route, problems);
}

/// One failed finding on a route for all of its problems (each a JSON object naming what it is
/// about under `key`, and the `problem`).
struct RouteFailure {
    check: &'static str,
    lead: &'static str,
    key: &'static str,
    /// Where the problems go in `extra`.
    list: &'static str,
}

impl RouteFailure {
    fn report(&self, report: &mut Report, route: &HttpRoute, problems: Vec<Value>) {
        if problems.is_empty() {
            return;
        }
        let text: Vec<String> = problems
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p[self.key].as_str().unwrap_or_default(),
                    p["problem"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let mut extra = serde_json::Map::new();
        extra.insert(self.list.to_owned(), Value::Array(problems));
        report.fail_on(
            self.check,
            Target {
                kind: "HTTPRoute",
                namespace: route.metadata.namespace.as_deref(),
                name: route.metadata.name.as_deref().unwrap_or_default(),
            },
            format!("{}: {}", self.lead, text.join("; ")),
            Value::Object(extra),
        );
    }
}
