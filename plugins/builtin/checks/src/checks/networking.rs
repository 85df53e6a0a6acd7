//! Services, Ingresses and NetworkPolicies.

use std::collections::BTreeMap;

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::core::v1::Secret;
use portico_plugin_sdk::k8s::api::networking::v1::IngressBackend;
use portico_plugin_sdk::prelude::*;

use crate::report::{Check, Report};
use crate::selector;
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "service-no-pods",
        severity: Severity::Medium,
        passes: "every Service selector matches a pod",
    },
    Check {
        id: "ingress-missing-service",
        severity: Severity::High,
        passes: "every Ingress backend Service exists",
    },
    Check {
        id: "ingress-class-missing",
        severity: Severity::Medium,
        passes: "every Ingress names an existing IngressClass",
    },
    Check {
        id: "ingress-missing-tls-secret",
        severity: Severity::High,
        passes: "every Secret named in an Ingress's TLS section exists",
    },
    Check {
        id: "networkpolicy-no-pods",
        severity: Severity::Low,
        passes: "every NetworkPolicy with a pod selector selects a pod",
    },
];

/// The deprecated annotation Ingress controllers still honour in place of `ingressClassName`.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the IngressClass that new Ingresses without a class get at admission.
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

pub fn run(s: &Snapshot, report: &mut Report) -> Result<(), Error> {
    services(s, report);
    ingresses(s, report)?;
    network_policies(s, report);
    Ok(())
}

fn services(s: &Snapshot, report: &mut Report) {
    for service in &s.services {
        let Some(selector) = service
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .filter(|sel| !sel.is_empty())
        else {
            continue; // no selector: endpoints are managed by hand
        };
        if service.spec.as_ref().and_then(|spec| spec.type_.as_deref()) == Some("ExternalName") {
            continue;
        }
        let namespace = service.metadata.namespace.as_deref();
        let matches =
            s.pods.iter().any(|pod| {
                pod.metadata.namespace.as_deref() == namespace
                    && pod.metadata.labels.as_ref().is_some_and(|labels| {
                        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
            });
        if !matches {
            let selector_text: Vec<String> =
                selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            report.fail(
                "service-no-pods",
                service,
                format!("selector {} matches no pod", selector_text.join(",")),
                json!({ "selector": selector }),
            );
        }
    }
}

fn ingresses(s: &Snapshot, report: &mut Report) -> Result<(), Error> {
    let default_classes: Vec<&str> = s
        .ingress_classes
        .iter()
        .filter(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .map(String::as_str)
                == Some("true")
        })
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    // Secrets are read one by one, by name, only for the Ingresses reported on: listing them
    // would copy every secret of the cluster into the plugin.
    let mut secrets: BTreeMap<(String, String), bool> = BTreeMap::new();
    for ingress in &s.ingresses {
        let namespace = ingress.metadata.namespace.as_deref();
        let Some(spec) = &ingress.spec else { continue };
        let backends = spec.default_backend.iter().chain(
            spec.rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter().map(|p| &p.backend)),
        );
        let mut missing: Vec<String> = backends
            .filter_map(|b: &IngressBackend| b.service.as_ref().map(|svc| svc.name.clone()))
            .filter(|name| {
                !s.services.iter().any(|svc| {
                    svc.metadata.namespace.as_deref() == namespace
                        && svc.metadata.name.as_deref() == Some(name.as_str())
                })
            })
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            report.fail(
                "ingress-missing-service",
                ingress,
                format!("backends refer to missing Services: {}", missing.join(", ")),
                json!({ "services": missing }),
            );
        }

        let annotation = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLASS_ANNOTATION));
        let class_exists = |class: &str| {
            s.ingress_classes
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(class))
        };
        match spec.ingress_class_name.as_deref() {
            Some(class) if !class_exists(class) => report.fail(
                "ingress-class-missing",
                ingress,
                format!("IngressClass {class} does not exist: no controller serves this Ingress"),
                json!({ "ingressClassName": class }),
            ),
            None if annotation.is_none() => report.fail(
                "ingress-class-missing",
                ingress,
                match default_classes.as_slice() {
                    [] => "no ingressClassName, no kubernetes.io/ingress.class annotation and no default IngressClass: no controller is bound to serve this Ingress".to_owned(),
                    defaults => format!(
                        "no ingressClassName and no kubernetes.io/ingress.class annotation: the default class ({}) is assigned only when an Ingress is created, so no controller is bound to serve this one",
                        defaults.join(", ")
                    ),
                },
                json!({ "defaultClasses": default_classes }),
            ),
            _ => {}
        }

        if !report.enabled("ingress-missing-tls-secret") || !report.in_scope(namespace) {
            continue;
        }
        let mut missing_secrets = Vec::new();
        for name in spec
            .tls
            .iter()
            .flatten()
            .filter_map(|t| t.secret_name.as_deref())
        {
            let ns = namespace.unwrap_or_default().to_owned();
            let key = (ns.clone(), name.to_owned());
            let exists = match secrets.get(&key) {
                Some(exists) => *exists,
                None => {
                    let exists = kube::get::<Secret>(Some(&ns), name)?.is_some();
                    secrets.insert(key, exists);
                    exists
                }
            };
            if !exists && !missing_secrets.contains(&name) {
                missing_secrets.push(name);
            }
        }
        if !missing_secrets.is_empty() {
            report.fail(
                "ingress-missing-tls-secret",
                ingress,
                format!(
                    "TLS Secrets do not exist: {}; the controller serves those hosts with its default certificate or not at all",
                    missing_secrets.join(", ")
                ),
                json!({ "secrets": missing_secrets }),
            );
        }
    }
    Ok(())
}

/// An empty `podSelector` selects every pod of the namespace (default-deny policies use it):
/// only a non-empty selector that matches nothing is reported.
fn network_policies(s: &Snapshot, report: &mut Report) {
    for policy in &s.network_policies {
        let Some(sel) = policy.spec.as_ref().and_then(|sp| sp.pod_selector.as_ref()) else {
            continue;
        };
        let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty());
        if empty {
            continue;
        }
        let namespace = policy.metadata.namespace.as_deref();
        let any = s.pods.iter().any(|pod| {
            pod.metadata.namespace.as_deref() == namespace
                && selector::matches(sel, pod.metadata.labels.as_ref())
        });
        if !any {
            report.fail(
                "networkpolicy-no-pods",
                policy,
                format!(
                    "podSelector {} selects no pod: the policy has no effect",
                    selector::describe(sel)
                ),
                json!({ "podSelector": selector::describe(sel) }),
            );
        }
    }
}
