//! Builds the wasm plugins the tests use (`plugins/`, its own workspace, for wasm32-wasip2) and
//! passes their location on:
//! - `PORTICO_PLUGIN_WASM_DIR`: every plugin's component, `<crate_name>.wasm`;
//! - `PORTICO_PLUGIN_DIR`: a ready plugin directory with the built-in and example plugins
//!   (`<name>.toml` + `<name>.wasm`), as `--plugin-dir` expects it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Crates whose `manifest.toml` goes into the plugin directory.
const DIRECTORY_PLUGINS: &[&str] = &[
    "builtin/checks",
    "builtin/helm-index",
    "examples/require-labels",
    "examples/connect-logger",
];

/// What the outer build sets that must not reach the inner one: another target folder, host
/// flags that mean nothing (or harm) for wasm32, clippy's wrapper.
const CLEARED: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_PATH",
    "CARGO_PROFILE_RELEASE_DEBUG",
    "CARGO_PROFILE_RELEASE_LTO",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let plugins = root.join("plugins");
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "sdk",
        "builtin",
        "examples",
        "testdata",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(path).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let target_dir = plugins.join("target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in CLEARED {
        command.env_remove(var);
    }
    let output = command.output().expect("run cargo for plugins/");
    if !output.status.success() {
        panic!(
            "building the wasm plugins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let wasm_dir = target_dir.join("wasm32-wasip2/release");
    println!(
        "cargo:rustc-env=PORTICO_PLUGIN_WASM_DIR={}",
        wasm_dir.display()
    );

    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("plugin-dir");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create the plugin directory");
    for krate in DIRECTORY_PLUGINS {
        let crate_dir = plugins.join(krate);
        let manifest = fs::read_to_string(crate_dir.join("manifest.toml"))
            .unwrap_or_else(|e| panic!("{krate}/manifest.toml: {e}"));
        let name = manifest_name(&manifest).unwrap_or_else(|| panic!("{krate}: no name"));
        let crate_name = crate_name(&crate_dir);
        fs::write(out.join(format!("{name}.toml")), &manifest).expect("write manifest");
        fs::copy(
            wasm_dir.join(format!("{crate_name}.wasm")),
            out.join(format!("{name}.wasm")),
        )
        .unwrap_or_else(|e| panic!("copy {crate_name}.wasm: {e}"));
    }
    println!("cargo:rustc-env=PORTICO_PLUGIN_DIR={}", out.display());

    // Test gateways' databases; wasmtime's compile cache beside them is shared.
    let data = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("gateways");
    println!(
        "cargo:rustc-env=PORTICO_PLUGIN_TEST_DATA={}",
        data.display()
    );
}

/// The first `name = "…"` of a TOML file (a plugin manifest's, or a crate's `[package]`).
fn manifest_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")?
                .trim()
                .strip_prefix('=')
                .map(str::trim)
        })
        .map(|v| v.trim_matches('"').to_owned())
}

/// The crate's name with `-` as `_`, as the `.wasm` file is named.
fn crate_name(crate_dir: &Path) -> String {
    let text = fs::read_to_string(crate_dir.join("Cargo.toml")).expect("read Cargo.toml");
    manifest_name(&text)
        .expect("package name")
        .replace('-', "_")
}
