//! Admission webhooks (`admissionregistration.k8s.io/v1`) served by in-cluster Services.

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::admissionregistration::v1::WebhookClientConfig;
use portico_plugin_sdk::prelude::*;

use crate::report::{Check, Report, Target};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[Check {
    id: "webhook-service-unavailable",
    severity: Severity::High,
    passes: "every admission webhook's Service exists and has a ready endpoint",
}];

/// EndpointSlices name their Service in this label.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One webhook of a configuration, whatever its kind.
struct Webhook<'a> {
    name: &'a str,
    client: &'a WebhookClientConfig,
    failure_policy: Option<&'a str>,
}

pub fn run(s: &Snapshot, report: &mut Report) {
    for config in &s.validating_webhooks {
        let hooks = config.webhooks.iter().flatten().map(|w| Webhook {
            name: &w.name,
            client: &w.client_config,
            failure_policy: w.failure_policy.as_deref(),
        });
        check(
            s,
            report,
            "ValidatingWebhookConfiguration",
            config.metadata.name.as_deref().unwrap_or_default(),
            hooks.collect(),
        );
    }
    for config in &s.mutating_webhooks {
        let hooks = config.webhooks.iter().flatten().map(|w| Webhook {
            name: &w.name,
            client: &w.client_config,
            failure_policy: w.failure_policy.as_deref(),
        });
        check(
            s,
            report,
            "MutatingWebhookConfiguration",
            config.metadata.name.as_deref().unwrap_or_default(),
            hooks.collect(),
        );
    }
}

fn check(s: &Snapshot, report: &mut Report, kind: &str, name: &str, hooks: Vec<Webhook<'_>>) {
    let mut problems = Vec::new();
    for hook in hooks {
        let Some(service_ref) = &hook.client.service else {
            continue; // a URL outside the cluster
        };
        let ns = service_ref.namespace.as_str();
        // "Default to 443 for backward compatibility."
        let port = service_ref.port.unwrap_or(443);
        let service = s.services.iter().find(|svc| {
            svc.metadata.namespace.as_deref() == Some(ns)
                && svc.metadata.name.as_deref() == Some(service_ref.name.as_str())
        });
        let problem = match service {
            None => Some("Service does not exist".to_owned()),
            Some(svc) => {
                let spec = svc.spec.clone().unwrap_or_default();
                let ports: Vec<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
                if spec.type_.as_deref() == Some("ExternalName") {
                    None
                } else if !ports.contains(&port) {
                    Some(format!("Service has no port {port} (ports: {ports:?})"))
                } else if !ready_endpoint(s, ns, &service_ref.name) {
                    Some("Service has no ready endpoint".to_owned())
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            // failurePolicy defaults to Fail in admissionregistration.k8s.io/v1.
            let policy = hook.failure_policy.unwrap_or("Fail");
            problems.push(json!({
                "webhook": hook.name,
                "service": format!("{ns}/{}", service_ref.name),
                "port": port,
                "failurePolicy": policy,
                "problem": problem,
            }));
        }
    }
    if problems.is_empty() {
        return;
    }
    let text: Vec<String> = problems
        .iter()
        .map(|p| {
            let effect = if p["failurePolicy"] == "Ignore" {
                "calls are skipped"
            } else {
                "matching API requests are rejected"
            };
            format!(
                "{} ({}): {}; {effect}",
                p["webhook"].as_str().unwrap_or_default(),
                p["service"].as_str().unwrap_or_default(),
                p["problem"].as_str().unwrap_or_default()
            )
        })
        .collect();
    report.fail_on(
        "webhook-service-unavailable",
        Target {
            kind,
            namespace: None,
            name,
        },
        text.join("; "),
        json!({ "webhooks": problems }),
    );
}

/// Whether an EndpointSlice of the Service has a ready endpoint; "a nil value [of ready]
/// should be interpreted as true" (discovery/v1 EndpointConditions).
fn ready_endpoint(s: &Snapshot, namespace: &str, service: &str) -> bool {
    s.endpoint_slices
        .iter()
        .filter(|slice| {
            slice.metadata.namespace.as_deref() == Some(namespace)
                && slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str)
                    == Some(service)
        })
        .flat_map(|slice| slice.endpoints.iter().flatten())
        .any(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
}
