use serde_json::json;

use super::*;
use crate::cli::OutputFormat;

#[test]
fn the_built_in_column_appears_when_the_field_does() {
    let old = plugins_table(&[json!({"name": "a", "enabled": true})]);
    assert!(!old.contains("BUILT-IN"), "{old}");
    let new = plugins_table(&[json!({"name": "a", "enabled": true, "builtIn": true})]);
    let header: Vec<&str> = new.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "VERSION",
            "WORLD",
            "SOURCE",
            "ENABLED",
            "BUILT-IN",
            "DESCRIPTION"
        ]
    );
    let row: Vec<&str> = new.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[4..6], ["yes", "yes"], "{new}");
}

#[test]
fn install_finds_the_manifest_beside_the_component() {
    let args = |path: &str| PluginInstallArgs {
        path: Some(PathBuf::from(path)),
        manifest: None,
        component: None,
        replace: false,
        remote: crate::cli::RemoteArgs {
            gateway: Default::default(),
            output: OutputFormat::Table,
        },
    };
    for given in ["dir/x.toml", "dir/x.wasm", "dir/x"] {
        let (manifest, component) = plugin_files(&args(given));
        assert_eq!(manifest, PathBuf::from("dir/x.toml"), "{given}");
        assert_eq!(component, PathBuf::from("dir/x.wasm"), "{given}");
    }
}
