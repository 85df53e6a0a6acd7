//! Node conditions.

use portico_plugin_sdk::prelude::*;
use portico_plugin_sdk::{Value, json};

use crate::report::{Check, Report};
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "node-not-ready",
        severity: Severity::Critical,
        passes: "every node is Ready",
    },
    Check {
        id: "node-pressure",
        severity: Severity::High,
        passes: "no node reports memory, disk or PID pressure",
    },
    Check {
        id: "node-condition-abnormal",
        severity: Severity::High,
        passes: "no node reports another problem condition (NetworkUnavailable, node-problem-detector's)",
    },
];

const PRESSURE: &[&str] = &["MemoryPressure", "DiskPressure", "PIDPressure"];

/// Conditions whose `True` is the healthy state, besides `Ready`: k3s reports `EtcdIsVoter`.
const TRUE_IS_HEALTHY: &[&str] = &["Ready", "EtcdIsVoter"];

pub fn run(s: &Snapshot, report: &mut Report) {
    for node in &s.nodes {
        let conditions = node
            .status
            .as_ref()
            .and_then(|st| st.conditions.clone())
            .unwrap_or_default();
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        if ready != Some("True") {
            report.fail(
                "node-not-ready",
                node,
                format!("node is not Ready (Ready={})", ready.unwrap_or("missing")),
                Value::Null,
            );
        }
        let pressures: Vec<&str> = conditions
            .iter()
            .filter(|c| PRESSURE.contains(&c.type_.as_str()) && c.status == "True")
            .map(|c| c.type_.as_str())
            .collect();
        if !pressures.is_empty() {
            report.fail(
                "node-pressure",
                node,
                format!("node reports {}", pressures.join(", ")),
                json!({ "conditions": pressures }),
            );
        }
        // Other node conditions (the kubelet's NetworkUnavailable, node-problem-detector's
        // KernelDeadlock, ReadonlyFilesystem, …) are problems when True; Unknown means nobody
        // reports them any more.
        let abnormal: Vec<_> = conditions
            .iter()
            .filter(|c| {
                !TRUE_IS_HEALTHY.contains(&c.type_.as_str())
                    && !PRESSURE.contains(&c.type_.as_str())
                    && c.status != "False"
            })
            .collect();
        if !abnormal.is_empty() {
            let text: Vec<String> = abnormal
                .iter()
                .map(|c| {
                    format!(
                        "{}={}{}",
                        c.type_,
                        c.status,
                        c.reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let details: Vec<_> = abnormal
                .iter()
                .map(|c| {
                    json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message})
                })
                .collect();
            report.fail(
                "node-condition-abnormal",
                node,
                format!("node reports {}", text.join(", ")),
                json!({ "conditions": details }),
            );
        }
    }
}
