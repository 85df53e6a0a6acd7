use std::path::Path;

use super::{default_memory_mib, new_plugin, render};
use crate::cli::{PluginLanguage, PluginNewArgs};
use crate::plugin::{HostSettings, Manifest};

/// A fake checkout: the files `is_checkout` looks for.
fn checkout(root: &Path) {
    for file in [
        "wit/worlds.wit",
        "plugins/sdk/Cargo.toml",
        "plugins/sdk-python/build.sh",
        "plugins/sdk-js/build.mjs",
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
}

fn args(name: &str, lang: PluginLanguage, dir: &Path, portico: Option<&Path>) -> PluginNewArgs {
    PluginNewArgs {
        name: name.to_owned(),
        lang,
        dir: Some(dir.to_owned()),
        portico: portico.map(Path::to_owned),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn rust_template_is_a_standalone_crate_pointing_at_the_sdk() {
    let root = tempfile::tempdir().unwrap();
    checkout(root.path());
    let dir = root.path().join("plugins/mine/label-check");
    new_plugin(&args("label-check", PluginLanguage::Rust, &dir, None))
        .await
        .expect("scaffold");

    let manifest = Manifest::parse(
        &read(&dir.join("label-check.toml")),
        HostSettings::default().ceilings(),
    )
    .expect("the manifest parses");
    assert_eq!(manifest.name, "label-check");
    assert_eq!(manifest.limits.memory_mib, 32);

    let cargo: toml::Value = toml::from_str(&read(&dir.join("Cargo.toml"))).expect("TOML");
    assert_eq!(cargo["package"]["name"].as_str(), Some("label-check"));
    assert!(cargo.get("workspace").is_some(), "its own workspace");
    assert_eq!(cargo["lib"]["crate-type"][0].as_str(), Some("cdylib"));
    let sdk = cargo["dependencies"]["portico-plugin-sdk"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(sdk, "../../../plugins/sdk");
    assert!(dir.join(sdk).join("Cargo.toml").is_file(), "{sdk} resolves");

    let lib = read(&dir.join("src/lib.rs"));
    assert!(lib.contains("portico_plugin_sdk::export_inspector!(Plugin);"));
    assert!(!lib.contains("{{"), "every placeholder is filled");
    let build = read(&dir.join("build.sh"));
    assert!(
        build.contains("/wasm32-wasip2/release/label_check.wasm\" label-check.wasm"),
        "{build}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "build.sh is executable");
    }
}

#[tokio::test]
async fn python_and_js_templates_point_at_their_sdk() {
    let root = tempfile::tempdir().unwrap();
    checkout(&root.path().join("portico"));
    let elsewhere = root.path().join("work");
    for (lang, source, sdk_path) in [
        (
            PluginLanguage::Python,
            "app.py",
            "../../portico/plugins/sdk-python/build.sh",
        ),
        (
            PluginLanguage::Js,
            "app.js",
            "../../portico/plugins/sdk-js/build.mjs",
        ),
    ] {
        let dir = elsewhere.join(source.replace('.', "-"));
        new_plugin(&args("p", lang, &dir, Some(&root.path().join("portico"))))
            .await
            .expect("scaffold");
        let manifest = Manifest::parse(
            &read(&dir.join("p.toml")),
            HostSettings::default().ceilings(),
        )
        .expect("the manifest parses");
        assert_eq!(
            u64::from(default_memory_mib(lang)),
            manifest.limits.memory_mib
        );
        let build = read(&dir.join("build.sh"));
        assert!(build.contains(sdk_path), "{build}");
        assert!(
            dir.join(sdk_path).is_file(),
            "{sdk_path} resolves from {}",
            dir.display()
        );
        assert!(!read(&dir.join(source)).contains("{{"));
    }
    let app = read(&elsewhere.join("app-js/app.js"));
    assert!(
        app.contains("from '../../portico/plugins/sdk-js/portico.js'"),
        "{app}"
    );
}

#[tokio::test]
async fn refusals() {
    let root = tempfile::tempdir().unwrap();
    checkout(root.path());
    let dir = root.path().join("x");
    // A name the manifest refuses.
    let error = new_plugin(&args("Bad_Name", PluginLanguage::Rust, &dir, None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("name `Bad_Name`"), "{error}");
    assert!(!dir.exists(), "nothing written");
    // A folder with something in it.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep"), "").unwrap();
    let error = new_plugin(&args("ok", PluginLanguage::Rust, &dir, None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not empty"), "{error}");
    // No checkout anywhere above.
    let lonely = tempfile::tempdir().unwrap();
    let error = new_plugin(&args(
        "ok",
        PluginLanguage::Js,
        &lonely.path().join("y"),
        None,
    ))
    .await
    .unwrap_err();
    assert!(error.to_string().contains("--portico"), "{error}");
}

#[test]
fn every_template_fills_every_placeholder() {
    for lang in [
        PluginLanguage::Rust,
        PluginLanguage::Python,
        PluginLanguage::Js,
    ] {
        for (path, text) in render("n", lang, "../..") {
            assert!(!text.contains("{{"), "{path} of {lang:?}");
        }
    }
}
