//! Findings of one run: failures per check, and a passed summary for each check without any.

use std::collections::{BTreeMap, BTreeSet};

use portico_plugin_sdk::Value;
use portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use portico_plugin_sdk::k8s::{Metadata, Resource};
use portico_plugin_sdk::prelude::*;

/// One check: its id, the severity of its failures, and what holds when it passes.
pub struct Check {
    /// Stable id (`pod-failed`), what `disabled-checks` names.
    pub id: &'static str,
    /// Severity of every failure of this check.
    pub severity: Severity,
    /// What holds when the check passes (the passed finding's message).
    pub passes: &'static str,
}

/// The object a finding is about when it is not a typed k8s-openapi object (Gateway API).
pub struct Target<'a> {
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// Failed findings per check, in check order.
pub struct Report {
    checks: Vec<&'static Check>,
    failures: BTreeMap<&'static str, Vec<Finding>>,
    /// Checks that do not run: `disabled-checks`, and checks whose configuration is empty.
    disabled: BTreeSet<String>,
    /// Objects in these namespaces are not reported on (they are still read: a cluster-scoped
    /// object may refer to them).
    excluded: BTreeSet<String>,
}

impl Report {
    pub fn new(
        checks: Vec<&'static Check>,
        disabled: BTreeSet<String>,
        excluded: BTreeSet<String>,
    ) -> Self {
        Self {
            checks,
            failures: BTreeMap::new(),
            disabled,
            excluded,
        }
    }

    /// Whether `check` runs at all; checks that cost host calls ask before making them.
    pub fn enabled(&self, check: &str) -> bool {
        !self.disabled.contains(check)
    }

    /// Whether objects in `namespace` are reported on.
    pub fn in_scope(&self, namespace: Option<&str>) -> bool {
        namespace.is_none_or(|ns| !self.excluded.contains(ns))
    }

    /// A failure of `check` about `object`; `extra` is omitted when null.
    pub fn fail<K>(&mut self, check: &'static str, object: &K, message: String, extra: Value)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let meta = object.metadata();
        self.fail_on(
            check,
            Target {
                kind: K::KIND,
                namespace: meta.namespace.as_deref(),
                name: meta.name.as_deref().unwrap_or_default(),
            },
            message,
            extra,
        );
    }

    /// A failure of `check` about `target`.
    pub fn fail_on(
        &mut self,
        check: &'static str,
        target: Target<'_>,
        message: String,
        extra: Value,
    ) {
        if !self.enabled(check) || !self.in_scope(target.namespace) {
            return;
        }
        let severity = self
            .checks
            .iter()
            .find(|c| c.id == check)
            .map(|c| c.severity)
            .unwrap_or_else(|| panic!("check {check} is not in the check table"));
        let mut finding = Finding::fail(check, severity, message).target(
            target.kind,
            target.namespace,
            target.name,
        );
        if !extra.is_null() {
            finding = finding.extra(extra);
        }
        self.failures.entry(check).or_default().push(finding);
    }

    /// Every failure, then one passed finding per enabled check that found nothing.
    pub fn finish(mut self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for check in &self.checks {
            if self.disabled.contains(check.id) {
                continue;
            }
            match self.failures.remove(check.id) {
                Some(failed) => findings.extend(failed),
                None => findings.push(Finding::pass(check.id, check.passes)),
            }
        }
        findings
    }
}
