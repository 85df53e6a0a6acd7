//! Image references: pinned, from an allowed registry, pulled sensibly.

use portico_plugin_sdk::json;
use portico_plugin_sdk::prelude::*;

use super::containers::all_containers;
use crate::image_ref::ImageRef;
use crate::report::{Check, Report};
use crate::settings::Settings;
use crate::snapshot::Snapshot;

pub const CHECKS: &[Check] = &[
    Check {
        id: "image-latest-tag",
        severity: Severity::Low,
        passes: "every image has an explicit, non-latest tag",
    },
    Check {
        id: "image-registry-not-allowed",
        severity: Severity::Medium,
        passes: "every image comes from an allowed registry",
    },
    Check {
        id: "image-pull-always-digest",
        severity: Severity::Low,
        passes: "no digest-pinned image is pulled with imagePullPolicy Always",
    },
];

pub fn run(s: &Snapshot, settings: &Settings, report: &mut Report) {
    for pod in &s.pods {
        let Some(spec) = &pod.spec else { continue };
        let images: Vec<(&str, &str)> = all_containers(spec)
            .filter_map(|c| Some((c.name.as_str(), c.image.as_deref()?)))
            .collect();

        let unpinned: Vec<&str> = images
            .iter()
            .map(|(_, image)| *image)
            .filter(|image| !ImageRef::parse(image).pinned())
            .collect();
        if !unpinned.is_empty() {
            report.fail(
                "image-latest-tag",
                pod,
                format!("images without a pinned tag: {}", unpinned.join(", ")),
                json!({ "images": unpinned }),
            );
        }

        if !settings.allowed_registries.is_empty() {
            let outside: Vec<_> = images
                .iter()
                .filter_map(|(container, image)| {
                    let parsed = ImageRef::parse(image);
                    let allowed = settings
                        .allowed_registries
                        .iter()
                        .any(|entry| parsed.allowed_by(entry));
                    (!allowed).then(|| {
                        json!({"container": container, "image": image, "registry": parsed.registry})
                    })
                })
                .collect();
            if !outside.is_empty() {
                let list: Vec<String> = outside
                    .iter()
                    .map(|o| {
                        format!(
                            "{} ({})",
                            o["image"].as_str().unwrap_or_default(),
                            o["registry"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                report.fail(
                    "image-registry-not-allowed",
                    pod,
                    format!(
                        "images from registries outside allowed-registries: {}",
                        list.join(", ")
                    ),
                    json!({ "containers": outside, "allowed": settings.allowed_registries }),
                );
            }
        }

        // With a digest the reference names one immutable image: `Always` only makes every
        // container start wait on the registry (the kubelet resolves the name on each start).
        let always: Vec<_> = all_containers(spec)
            .filter(|c| c.image_pull_policy.as_deref() == Some("Always"))
            .filter_map(|c| {
                let image = c.image.as_deref()?;
                ImageRef::parse(image)
                    .digest
                    .is_some()
                    .then(|| json!({"container": c.name, "image": image}))
            })
            .collect();
        if !always.is_empty() {
            let names: Vec<&str> = always
                .iter()
                .filter_map(|a| a["container"].as_str())
                .collect();
            report.fail(
                "image-pull-always-digest",
                pod,
                format!(
                    "imagePullPolicy Always on digest-pinned images (containers {}): every start contacts the registry for an image that cannot change; use IfNotPresent",
                    names.join(", ")
                ),
                json!({ "containers": always }),
            );
        }
    }
}
