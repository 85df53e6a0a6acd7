//! Writes the `export_*!` helper macros: each expands, in the plugin's crate, to a
//! `wit_bindgen::generate!` call for one world with the WIT package inlined, so a plugin needs
//! no copy of `wit/` and embeds only its own world (a component must export everything its
//! embedded worlds export).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

const PACKAGE: &str = "portico:plugin@0.1.0";

/// Interfaces each world imports; the plugin's bindings reuse the SDK's for them.
const WORLDS: &[(&str, &str, &[&str])] = &[
    (
        "inspector",
        "__portico_bindings_inspector",
        &["types", "kube", "log", "config", "http"],
    ),
    (
        "repo-sync",
        "__portico_bindings_repo_sync",
        &["types", "log", "config", "http"],
    ),
    (
        "lifecycle-hook",
        "__portico_bindings_lifecycle_hook",
        &["types", "kube", "log", "config", "http"],
    ),
    // The same worlds with the optional `config-check` export.
    (
        "inspector-config-check",
        "__portico_bindings_inspector_config_check",
        &["types", "kube", "log", "config", "http"],
    ),
    (
        "repo-sync-config-check",
        "__portico_bindings_repo_sync_config_check",
        &["types", "log", "config", "http"],
    ),
    (
        "lifecycle-hook-config-check",
        "__portico_bindings_lifecycle_hook_config_check",
        &["types", "kube", "log", "config", "http"],
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let wit_dir = manifest_dir.join("../../wit");
    println!("cargo:rerun-if-changed={}", wit_dir.display());
    let wit = package_text(&wit_dir);

    let mut out = String::new();
    for (world, macro_name, imports) in WORLDS {
        let mut with = String::new();
        for interface in *imports {
            let module = interface.replace('-', "_");
            writeln!(
                with,
                "\"portico:plugin/{interface}@0.1.0\": \
                 ::portico_plugin_sdk::bindings::portico::plugin::{module},"
            )
            .expect("write to string");
        }
        writeln!(
            out,
            r####"
#[doc(hidden)]
#[macro_export]
macro_rules! {macro_name} {{
    () => {{
        ::portico_plugin_sdk::__private::wit_bindgen::generate!({{
            inline: r###"{wit}"###,
            world: "{world}",
            with: {{ {with} }},
            runtime_path: "::portico_plugin_sdk::__private::wit_bindgen::rt",
        }});
    }};
}}
"####
        )
        .expect("write to string");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    fs::write(out_dir.join("export_macros.rs"), out).expect("write export_macros.rs");
}

/// The package's `.wit` files as one document: one `package` line, then every file's body.
fn package_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("read dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    files.sort();
    let mut text = format!("package {PACKAGE};\n");
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let body =
            fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for line in body.lines() {
            if line.trim_start().starts_with("package ") {
                assert!(
                    line.contains(PACKAGE),
                    "{}: expected package {PACKAGE}",
                    file.display()
                );
                continue;
            }
            assert!(
                !line.contains("\"###"),
                "{}: `\"###` cannot be inlined",
                file.display()
            );
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}
