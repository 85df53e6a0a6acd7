//! `pod-log-pattern`: a regular expression searched in the recent log of every container of
//! running pods. Off until `log-pattern` is set; bounded by `log-tail-lines` per container and
//! `log-max-pods` per run (and by the host's response-size limit on each read).

use portico_plugin_sdk::json;
use portico_plugin_sdk::k8s::api::core::v1::Pod;
use portico_plugin_sdk::prelude::*;
use regex::RegexBuilder;

use crate::report::{Check, Report};
use crate::settings::Settings;
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[Check {
    id: "pod-log-pattern",
    severity: Severity::Medium,
    passes: "no recent container log line matches log-pattern",
}];

/// Matching lines kept per container, and their length: enough to see what matched.
const SAMPLE_LINES: usize = 5;
const SAMPLE_CHARS: usize = 300;

pub fn run(s: &Snapshot, settings: &Settings, report: &mut Report) -> Result<(), Error> {
    if !report.enabled("pod-log-pattern") {
        return Ok(());
    }
    let pattern = RegexBuilder::new(&settings.log_pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::invalid(format!("log-pattern: {e}")))?;
    // A selector is applied by the apiserver: no need to read every pod's labels here.
    let selected: Vec<Pod>;
    let pods: &[Pod] = if settings.log_selector.is_empty() {
        &s.pods
    } else {
        selected = kube::list(&ListParams::default().labels(settings.log_selector.clone()))?;
        &selected
    };
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| report.in_scope(p.metadata.namespace.as_deref()))
        .filter(|p| p.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Running"))
        .collect();
    if running.len() > settings.log_max_pods {
        log::warn(format!(
            "pod-log-pattern: {} running pods, reading the logs of the first {} (log-max-pods)",
            running.len(),
            settings.log_max_pods
        ));
    }
    for pod in running.into_iter().take(settings.log_max_pods) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let Some(spec) = &pod.spec else { continue };
        let mut matches = Vec::new();
        for container in &spec.containers {
            let text = match kube::pod_logs(
                namespace,
                name,
                Some(&container.name),
                Some(settings.log_tail_lines),
            ) {
                Ok(text) => text,
                // A container that has not started has no log yet: nothing to search.
                Err(e) => {
                    log::warn(format!(
                        "pod-log-pattern: logs of {namespace}/{name} container {}: {}",
                        container.name, e.message
                    ));
                    continue;
                }
            };
            let lines: Vec<&str> = text.lines().filter(|l| pattern.is_match(l)).collect();
            if !lines.is_empty() {
                let sample: Vec<String> = lines
                    .iter()
                    .take(SAMPLE_LINES)
                    .map(|l| l.chars().take(SAMPLE_CHARS).collect())
                    .collect();
                matches.push(json!({
                    "container": container.name,
                    "matchingLines": lines.len(),
                    "sample": sample,
                }));
            }
        }
        if !matches.is_empty() {
            let summary: Vec<String> = matches
                .iter()
                .map(|m| {
                    format!(
                        "{} ({} lines)",
                        m["container"].as_str().unwrap_or_default(),
                        m["matchingLines"]
                    )
                })
                .collect();
            report.fail(
                "pod-log-pattern",
                pod,
                format!(
                    "log lines matching {:?} in the last {} lines of: {}",
                    settings.log_pattern,
                    settings.log_tail_lines,
                    summary.join(", ")
                ),
                json!({
                    "pattern": settings.log_pattern,
                    "tailLines": settings.log_tail_lines,
                    "containers": matches,
                }),
            );
        }
    }
    Ok(())
}
