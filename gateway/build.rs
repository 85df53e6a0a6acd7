//! Build facts for `portico --version` and `GET /version`: the git commit, the wasmtime version
//! (from the workspace's `Cargo.lock`) and the WIT package (`wit/*.wit`). A fact that cannot be
//! read (a source archive without `.git`, a crate built outside the workspace) is `unknown`;
//! `PORTICO_GIT_COMMIT` gives the commit where there is no repository (container builds).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
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
