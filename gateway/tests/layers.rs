//! The import directions of `gateway/ARCHITECTURE.md`: every top-level module of `src` has a
//! layer there, and production code imports only modules of lower layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Layers as `gateway/ARCHITECTURE.md` lists them in its ```` ```layers ```` block.
fn layers(doc: &str) -> BTreeMap<String, u32> {
    let block = doc
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    let mut out = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (head, modules) = line.split_once(':').expect("`N name: modules`");
        let rank: u32 = head
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a layer line starts with its number");
        for module in modules.split_whitespace() {
            let previous = out.insert(module.to_owned(), rank);
            assert!(previous.is_none(), "`{module}` is listed twice");
        }
    }
    out
}

/// The production part of a source file: without `tests.rs` files, anything from the first
/// `#[cfg(test)]` on, and comments.
fn production(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level modules a file refers to: `crate::x`, `crate::{x, y::…}`, and `super::` chains
/// that climb out to the crate root (`depth`: folders between `src` and the file).
fn referenced(code: &str, depth: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 {
            let before = code.as_bytes()[at - 1];
            if before.is_ascii_alphanumeric() || before == b'_' || before == b'$' {
                continue;
            }
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    let climb = "super::".repeat(depth + 1);
    for (at, _) in code.match_indices(&climb) {
        let rest = &code[at + climb.len()..];
        if rest.starts_with("super::") {
            continue;
        }
        let name = ident(rest);
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import that breaks the rules, as readable lines.
fn violations(src: &Path, layers: &BTreeMap<String, u32>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
        let module = parts[0].trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&rank) = layers.get(&module) else {
            problems.push(format!(
                "module `{module}` has no layer in gateway/ARCHITECTURE.md"
            ));
            continue;
        };
        let code = production(&fs::read_to_string(&file).expect("readable source"));
        for dep in referenced(&code, parts.len() - 1) {
            if dep == module {
                continue;
            }
            match layers.get(&dep) {
                Some(&dep_rank) if dep_rank < rank => {}
                Some(&dep_rank) => problems.push(format!(
                    "{}: `{module}` (layer {rank}) imports `{dep}` (layer {dep_rank}); only lower \
                     layers may be imported",
                    rel.display()
                )),
                None => problems.push(format!(
                    "{}: `{module}` imports `{dep}`, which has no layer",
                    rel.display()
                )),
            }
        }
    }
    problems
}

#[test]
fn production_code_imports_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("gateway/ARCHITECTURE.md");
    let layers = layers(&doc);
    let problems = violations(&root.join("src"), &layers);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_upward_and_sideways_imports() {
    let layers = layers("```layers\n0 leaf: clock\n1 low: storage\n2 high: jobs api\n```\n");
    let dir = std::env::temp_dir().join(format!("portico-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("storage")).unwrap();
    fs::write(
        dir.join("clock.rs"),
        "// crate::jobs in a comment is fine\n",
    )
    .unwrap();
    fs::write(
        dir.join("storage.rs"),
        "use crate::clock;\nuse crate::{jobs::Job, clock::now};\n",
    )
    .unwrap();
    fs::write(dir.join("storage/rows.rs"), "use super::super::api::X;\n").unwrap();
    fs::write(
        dir.join("jobs.rs"),
        "use crate::api::Y;\n#[cfg(test)]\nmod t { use crate::api::Z; }\n",
    )
    .unwrap();
    fs::write(
        dir.join("api.rs"),
        "use crate::storage;\nuse crate::cache;\n",
    )
    .unwrap();
    fs::write(dir.join("extra.rs"), "").unwrap();
    let mut problems = violations(&dir, &layers);
    problems.sort();
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        problems,
        vec![
            "api.rs: `api` imports `cache`, which has no layer".to_owned(),
            "jobs.rs: `jobs` (layer 2) imports `api` (layer 2); only lower layers may be \
             imported"
                .to_owned(),
            "module `extra` has no layer in gateway/ARCHITECTURE.md".to_owned(),
            "storage.rs: `storage` (layer 1) imports `jobs` (layer 2); only lower layers may be \
             imported"
                .to_owned(),
            format!(
                "{}: `storage` (layer 1) imports `api` (layer 2); only lower layers may be \
                 imported",
                Path::new("storage").join("rows.rs").display()
            ),
        ]
    );
}
