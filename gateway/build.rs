//! The gateway's build script, two jobs:
//!
//! 1. **Built-in plugins.** Builds the plugin workspace (`plugins/`, its own workspace, for
//!    wasm32-wasip2, release) and embeds the built-in plugins (`plugins/builtin/*`) into the
//!    binary: `$OUT_DIR/builtin.rs` lists each one's manifest and component, copied into
//!    `$OUT_DIR/builtin/`. The folder with every plugin's component (examples and test plugins
//!    too) is handed to the build scripts of crates that depend on this one as
//!    `DEP_PORTICO_PLUGINS_WASM_DIR` (`links = "portico-plugins"` in Cargo.toml), so the
//!    workspace builds the plugins once.
//! 2. **Build facts** for `portico --version` and `GET /version`: the git commit, the wasmtime
//!    version (from the workspace's `Cargo.lock`) and the WIT package (`wit/*.wit`). A fact
//!    that cannot be read (a source archive without `.git`, a crate built outside the
//!    workspace) is `unknown`; `PORTICO_GIT_COMMIT` gives the commit where there is no
//!    repository (container builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The built-in plugins' crates, below `plugins/`.
const BUILTIN: &[&str] = &["builtin/checks", "builtin/helm-index", "builtin/rules"];

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
    "RUSTC_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_PATH",
    "CARGO_PROFILE_RELEASE_DEBUG",
    "CARGO_PROFILE_RELEASE_LTO",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
];

fn main() {
    build_facts();
    build_plugins();
}

/// Job 2: `PORTICO_BUILD_COMMIT`, `PORTICO_BUILD_WASMTIME`, `PORTICO_BUILD_WIT`.
fn build_facts() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.parent().unwrap_or(&manifest).to_path_buf();

    println!("cargo:rerun-if-env-changed=PORTICO_GIT_COMMIT");
    let commit = std::env::var("PORTICO_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .or_else(|| git_commit(&manifest))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PORTICO_BUILD_COMMIT={commit}");

    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let wasmtime = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "wasmtime"))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PORTICO_BUILD_WASMTIME={wasmtime}");

    let wit = root.join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let package = wit_package(&wit).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PORTICO_BUILD_WIT={package}");
}

/// Job 1: the plugin workspace, and `$OUT_DIR/builtin.rs`.
fn build_plugins() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("..")
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
            "building the wasm plugins failed ({}); the gateway embeds the built-in ones, so \
             the `wasm32-wasip2` target must be installed (`rustup target add wasm32-wasip2`):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wasm_dir = target_dir.join("wasm32-wasip2/release");
    println!("cargo:wasm_dir={}", wasm_dir.display());

    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let embedded = out.join("builtin");
    let _ = fs::remove_dir_all(&embedded);
    fs::create_dir_all(&embedded).expect("create the built-in plugin folder");
    let mut list = String::from(
        "/// Generated by `gateway/build.rs`: the built-in plugins.\npub(super) const BUILTIN: &[Builtin] = &[\n",
    );
    for krate in BUILTIN {
        let crate_dir = plugins.join(krate);
        let manifest = crate_dir.join("manifest.toml");
        let crate_name = crate_name(&crate_dir);
        let component = embedded.join(format!("{crate_name}.wasm"));
        fs::copy(wasm_dir.join(format!("{crate_name}.wasm")), &component)
            .unwrap_or_else(|e| panic!("copy {crate_name}.wasm: {e}"));
        let manifest_copy = embedded.join(format!("{crate_name}.toml"));
        fs::copy(&manifest, &manifest_copy)
            .unwrap_or_else(|e| panic!("copy {}: {e}", manifest.display()));
        list.push_str(&format!(
            "    Builtin {{\n        manifest: include_str!({:?}),\n        component: include_bytes!({:?}),\n    }},\n",
            manifest_copy.display().to_string(),
            component.display().to_string(),
        ));
    }
    list.push_str("];\n");
    fs::write(out.join("builtin.rs"), list).expect("write builtin.rs");
}

/// The crate's name with `-` as `_`, as the `.wasm` file is named.
fn crate_name(crate_dir: &Path) -> String {
    let text = fs::read_to_string(crate_dir.join("Cargo.toml")).expect("read Cargo.toml");
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")?
                .trim()
                .strip_prefix('=')
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .expect("package name")
        .replace('-', "_")
}

/// The short commit of `HEAD`; reruns when `HEAD` or its branch moves.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD and the branch it points at (in a worktree, `--git-path` finds both).
    if let Some(file) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={}", dir.join(file).display());
    }
    // The branch's own file, or `packed-refs` when the ref is packed (a path that does not
    // exist would rerun this script on every build).
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        for path in [branch.as_str(), "packed-refs"] {
            if let Some(file) = git(&["rev-parse", "--git-path", path])
                && dir.join(&file).exists()
            {
                println!("cargo:rerun-if-changed={}", dir.join(file).display());
                break;
            }
        }
    }
    Some(commit)
}

/// The version of package `name` in a `Cargo.lock`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

/// `portico:plugin@0.1.0` from the `package` line of the WIT files.
fn wit_package(dir: &Path) -> Option<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .collect();
    files.sort();
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|line| {
            let package = line.trim().strip_prefix("package ")?;
            Some(package.trim_end_matches(';').trim().to_owned())
        })
    })
}
