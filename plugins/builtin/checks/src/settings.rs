//! The plugin's configuration (JSON, every key optional; defaults also in `manifest.toml`).

use std::collections::BTreeSet;

use portico_plugin_sdk::prelude::*;

/// The apiserver refuses a ConfigMap whose values (`data` plus decoded `binaryData`) add up to
/// more than this (`ValidateConfigMap` against `MaxSecretSize`).
pub const CONFIGMAP_LIMIT_BYTES: u64 = 1024 * 1024;

/// Tail lines read per container when `log-tail-lines` is larger: the log check must stay
/// within the run's time and output budget.
pub const MAX_LOG_TAIL_LINES: u32 = 10_000;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Settings {
    /// Namespaces whose objects are not reported on.
    pub exclude_namespaces: BTreeSet<String>,
    /// Check ids that do not run.
    pub disabled_checks: BTreeSet<String>,
    /// Registries (`registry.example.com`) or repository prefixes
    /// (`registry.example.com/team`) images may come from; empty: `image-registry-not-allowed`
    /// does not run.
    pub allowed_registries: Vec<String>,
    /// Regular expression searched in recent container logs; empty: `pod-log-pattern` does
    /// not run.
    pub log_pattern: String,
    /// Lines read from the end of each container's log (1 to 10,000).
    pub log_tail_lines: u32,
    /// At most this many pods have their logs read per run.
    pub log_max_pods: usize,
    /// Label selector for the pods whose logs are read (`app=web`); empty: every running pod.
    pub log_selector: String,
    /// `configmap-too-large` fires above this many bytes (values, as the apiserver counts
    /// them).
    pub configmap_warn_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            exclude_namespaces: ["kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            disabled_checks: BTreeSet::new(),
            allowed_registries: Vec::new(),
            log_pattern: String::new(),
            log_tail_lines: 200,
            log_max_pods: 100,
            log_selector: String::new(),
            // 90 % of the apiserver's limit: a ConfigMap above the limit cannot be stored, so
            // the useful warning is the one that comes before it.
            configmap_warn_bytes: CONFIGMAP_LIMIT_BYTES * 9 / 10,
        }
    }
}

impl Settings {
    /// Reads and validates the configuration.
    pub fn load() -> Result<Self, Error> {
        let settings: Self = config::get()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_LOG_TAIL_LINES).contains(&self.log_tail_lines) {
            return Err(Error::invalid(format!(
                "log-tail-lines must be between 1 and {MAX_LOG_TAIL_LINES}, not {}",
                self.log_tail_lines
            )));
        }
        if self.allowed_registries.iter().any(|r| r.trim().is_empty()) {
            return Err(Error::invalid("allowed-registries has an empty entry"));
        }
        Ok(())
    }

    /// Checks whose configuration leaves nothing to check, plus `disabled-checks`.
    pub fn disabled(&self) -> BTreeSet<String> {
        let mut disabled = self.disabled_checks.clone();
        if self.allowed_registries.is_empty() {
            disabled.insert("image-registry-not-allowed".to_owned());
        }
        if self.log_pattern.is_empty() {
            disabled.insert("pod-log-pattern".to_owned());
        }
        disabled
    }
}
