//! `portico plugin …` (but `run`, in `plugin.rs`) through the admin API.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use super::clusters::{deleted, read_input};
use super::output::{Output, fields, items, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{PluginCommand, PluginConfigArgs, PluginInstallArgs};

/// Runs one `portico plugin` subcommand (not `run`, which `main` runs).
pub async fn plugin(command: &PluginCommand) -> Result<Output, CommandError> {
    match command {
        PluginCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let plugins = client
                .json(Method::GET, client.url(&["plugins"]), None)
                .await?;
            let table = plugins_table(items(&plugins));
            Ok(Output::new(plugins, table, args.output))
        }
        PluginCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["plugins", &args.id]);
            let plugin = client.json(Method::GET, url, None).await?;
            let table = plugin_fields(&plugin);
            Ok(Output::new(plugin, table, args.remote.output))
        }
        PluginCommand::Install(args) => install(args).await,
        PluginCommand::Enable(args) | PluginCommand::Disable(args) => {
            let action = match command {
                PluginCommand::Enable(_) => "enable",
                _ => "disable",
            };
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["plugins", &args.id, action]);
            let plugin = client.json(Method::POST, url, None).await?;
            let table = plugin_fields(&plugin);
            Ok(Output::new(plugin, table, args.remote.output))
        }
        PluginCommand::Config(args) => config(args).await,
        PluginCommand::Delete(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["plugins", &args.id]);
            client.send(Method::DELETE, url, None).await?;
            Ok(deleted("plugin", &args.id, &args.id, args.remote.output))
        }
        PluginCommand::New(args) => super::scaffold::new_plugin(args).await,
        PluginCommand::Run(_) => Err(CommandError::Usage(
            "`plugin run` runs in this process; `main` runs it".to_owned(),
        )),
    }
}

/// The manifest and component `install` uploads.
fn plugin_files(args: &PluginInstallArgs) -> (PathBuf, PathBuf) {
    let beside = |ext: &str| -> Option<PathBuf> {
        let path = args.path.as_ref()?;
        Some(match path.extension().and_then(|e| e.to_str()) {
            Some("toml" | "wasm") => path.with_extension(ext),
            _ => PathBuf::from(format!("{}.{ext}", path.display())),
        })
    };
    let manifest = args.manifest.clone().or_else(|| beside("toml"));
    let component = args.component.clone().or_else(|| beside("wasm"));
    (
        manifest.unwrap_or_else(|| PathBuf::from("plugin.toml")),
        component.unwrap_or_else(|| PathBuf::from("plugin.wasm")),
    )
}

async fn install(args: &PluginInstallArgs) -> Result<Output, CommandError> {
    let (manifest, component) = plugin_files(args);
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| CommandError::Read(manifest.display().to_string(), e))?;
    let bytes = std::fs::read(&component)
        .map_err(|e| CommandError::Read(component.display().to_string(), e))?;
    let file_name = component.file_name().map_or_else(
        || "plugin.wasm".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let form = reqwest::multipart::Form::new().text("manifest", text).part(
        "component",
        reqwest::multipart::Part::bytes(bytes).file_name(file_name),
    );
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut url = client.url(&["plugins"]);
    if args.replace {
        url.set_query(Some("replace=true"));
    }
    let plugin = client.multipart(url, form).await?;
    let table = plugin_fields(&plugin);
    Ok(Output::new(plugin, table, args.remote.output))
}

async fn config(args: &PluginConfigArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let url = client.url(&["plugins", &args.name, "config"]);
    let plugin = match (&args.value, args.reset) {
        (Some(value), _) => {
            let text = match value.strip_prefix('@') {
                Some(file) => read_input(Path::new(file))?,
                None if value == "-" => read_input(Path::new("-"))?,
                None => value.clone(),
            };
            let config: Value = serde_json::from_str(&text)
                .map_err(|e| CommandError::Usage(format!("the configuration is not JSON: {e}")))?;
            client.json(Method::PUT, url, Some(&config)).await?
        }
        (None, true) => client.json(Method::DELETE, url, None).await?,
        (None, false) => {
            let url = client.url(&["plugins", &args.name]);
            client.json(Method::GET, url, None).await?
        }
    };
    let config = plugin["config"].clone();
    let table = serde_json::to_string_pretty(&config).expect("a JSON value serializes");
    Ok(Output::new(config, table, args.remote.output))
}

fn plugins_table(plugins: &[Value]) -> String {
    // The BUILT-IN column only where the gateway says which plugins are built in.
    let built_in = plugins.iter().any(|p| p.get("builtIn").is_some());
    let rows = plugins
        .iter()
        .map(|p| {
            let mut row = vec![
                shown(&p["name"]),
                shown(&p["version"]),
                shown(&p["world"]),
                shown(&p["source"]),
                yes_no(&p["enabled"]),
            ];
            if built_in {
                row.push(yes_no(&p["builtIn"]));
            }
            row.push(shown(&p["description"]));
            row
        })
        .collect();
    let mut header = vec!["NAME", "VERSION", "WORLD", "SOURCE", "ENABLED"];
    if built_in {
        header.push("BUILT-IN");
    }
    header.push("DESCRIPTION");
    table(&header, rows)
}

fn compact(value: &Value) -> String {
    if value.is_null() {
        "-".to_owned()
    } else {
        value.to_string()
    }
}

fn plugin_fields(p: &Value) -> String {
    let mut rows = vec![
        ("name", shown(&p["name"])),
        ("version", shown(&p["version"])),
        ("world", shown(&p["world"])),
        ("description", shown(&p["description"])),
        ("source", shown(&p["source"])),
        ("enabled", yes_no(&p["enabled"])),
    ];
    if p.get("builtIn").is_some() {
        rows.push(("built-in", yes_no(&p["builtIn"])));
    }
    rows.extend([
        ("digest", shown(&p["digest"])),
        ("size", shown(&p["size"])),
        ("hook scope", shown(&p["hookScope"])),
        ("capabilities", compact(&p["capabilities"])),
        ("limits", compact(&p["limits"])),
        ("config", compact(&p["config"])),
        ("default config", compact(&p["defaultConfig"])),
        ("created", time(&p["createdAt"])),
        ("updated", time(&p["updatedAt"])),
    ]);
    fields(&rows)
}

#[cfg(test)]
mod tests;
