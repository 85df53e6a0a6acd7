//! Probe parameters that cannot work as written, per the `core/v1` `Probe` reference:
//! `periodSeconds` (default 10), `timeoutSeconds` (default 1), `successThreshold` (default 1,
//! "must be 1 for liveness and startup") and `failureThreshold` (default 3) have a minimum of
//! 1, and exactly one handler (`exec`, `httpGet`, `tcpSocket`, `grpc`) is required. The
//! apiserver refuses most of these on create, so they show up only in objects that bypassed its
//! validation; a timeout longer than the period it accepts, but the kubelet's prober runs one
//! probe at a time on a ticker (`pkg/kubelet/prober/worker.go`), so a probe that hangs until
//! its timeout stretches the period to the timeout.

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::core::v1::Probe;
use portico_plugin_sdk::prelude::*;

use super::containers::all_containers;
use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[Check {
    id: "probe-misconfigured",
    severity: Severity::Medium,
    passes: "every probe has a handler and parameters the kubelet can honour",
}];

pub fn run(s: &Snapshot, report: &mut Report) {
    for pod in &s.pods {
        let Some(spec) = &pod.spec else { continue };
        let mut problems = Vec::new();
        for c in all_containers(spec) {
            let probes = [
                ("liveness", c.liveness_probe.as_ref()),
                ("readiness", c.readiness_probe.as_ref()),
                ("startup", c.startup_probe.as_ref()),
            ];
            for (kind, probe) in probes {
                let Some(probe) = probe else { continue };
                for problem in problems_of(kind, probe) {
                    problems.push(json!({
                        "container": c.name,
                        "probe": kind,
                        "problem": problem,
                    }));
                }
            }
        }
        if !problems.is_empty() {
            let text: Vec<String> = problems
                .iter()
                .map(|p| {
                    format!(
                        "{} {} probe: {}",
                        p["container"].as_str().unwrap_or_default(),
                        p["probe"].as_str().unwrap_or_default(),
                        p["problem"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            report.fail(
                "probe-misconfigured",
                pod,
                text.join("; "),
                json!({ "probes": problems }),
            );
        }
    }
}

/// What is wrong with one probe; `kind` is `liveness`, `readiness` or `startup`.
pub fn problems_of(kind: &str, probe: &Probe) -> Vec<String> {
    let mut problems = Vec::new();
    let handlers = [
        probe.exec.is_some(),
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.grpc.is_some(),
    ]
    .into_iter()
    .filter(|h| *h)
    .count();
    if handlers != 1 {
        problems.push(format!(
            "{handlers} handlers (exec, httpGet, tcpSocket, grpc); exactly one is required"
        ));
    }
    // Zero is "unset": the apiserver replaces it with the default.
    for (field, value) in [
        ("periodSeconds", probe.period_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
        ("initialDelaySeconds", probe.initial_delay_seconds),
    ] {
        if let Some(v) = value.filter(|v| *v < 0) {
            problems.push(format!("{field} is {v}; it cannot be negative"));
        }
    }
    let success = probe.success_threshold.filter(|v| *v > 0).unwrap_or(1);
    if kind != "readiness" && success != 1 {
        problems.push(format!(
            "successThreshold is {success}; it must be 1 for {kind} probes"
        ));
    }
    let period = probe.period_seconds.filter(|v| *v > 0).unwrap_or(10);
    let timeout = probe.timeout_seconds.filter(|v| *v > 0).unwrap_or(1);
    if timeout > period {
        problems.push(format!(
            "timeoutSeconds {timeout} is longer than periodSeconds {period}: a probe that hangs delays the next one, so it runs every {timeout}s, not every {period}s"
        ));
    }
    problems
}

#[cfg(test)]
mod tests;
