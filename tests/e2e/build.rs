//! Passes the wasm plugins the tests use on (built by the `portico` crate's build script from
//! `plugins/`, its own workspace, for wasm32-wasip2):
//! - `PORTICO_PLUGIN_WASM_DIR`: every plugin's component, `<crate_name>.wasm`;
//! - `PORTICO_PLUGIN_DIR`: a ready plugin directory with the example plugins (`<name>.toml` +
//!   `<name>.wasm`), as `--plugin-dir` expects it. The built-in plugins are in the binary.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// Crates whose `manifest.toml` goes into the plugin directory.
const DIRECTORY_PLUGINS: &[&str] = &["examples/require-labels", "examples/connect-logger"];

fn main() {
    // The gateway's build script built every plugin (it embeds the built-in ones) and says
    // where (`links = "portico-plugins"` in gateway/Cargo.toml).
    let wasm_dir = PathBuf::from(
        env::var("DEP_PORTICO_PLUGINS_WASM_DIR").expect("set by the portico crate's build script"),
    );
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let plugins = manifest_dir
        .join("../../plugins")
        .canonicalize()
        .expect("plugins folder");
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
        println!(
            "cargo:rerun-if-changed={}",
            crate_dir.join("manifest.toml").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            wasm_dir.join(format!("{crate_name}.wasm")).display()
        );
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
