//! `portico plugin …` (but `run`), `portico helm repo …` and `portico chart search` through
//! the admin API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::clusters::{deleted, read_input};
use super::output::{Output, fields, items, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{
    ChartCommand, ChartSearchArgs, HelmAuthArgs, HelmCommand, HelmRepoCommand, HelmRepoSyncArgs,
    PluginCommand, PluginConfigArgs, PluginInstallArgs,
};

/// How often `helm repo sync` looks at its runs.
const POLL: Duration = Duration::from_millis(250);

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

/// Runs one `portico helm` subcommand.
pub async fn helm(command: &HelmCommand) -> Result<Output, CommandError> {
    let HelmCommand::Repo(command) = command;
    match command {
        HelmRepoCommand::Add(args) => {
            let mut body = json!({"name": args.name, "url": args.url});
            add_auth(&mut body, &args.auth)?;
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["helm", "repositories"]);
            let repo = client.json(Method::POST, url, Some(&body)).await?;
            let table = repo_fields(&repo);
            Ok(Output::new(repo, table, args.remote.output))
        }
        HelmRepoCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["helm", "repositories"]);
            let repos = client.json(Method::GET, url, None).await?;
            let table = repos_table(items(&repos));
            Ok(Output::new(repos, table, args.output))
        }
        HelmRepoCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["helm", "repositories", &args.id]);
            let repo = client.json(Method::GET, url, None).await?;
            let table = repo_fields(&repo);
            Ok(Output::new(repo, table, args.remote.output))
        }
        HelmRepoCommand::Update(args) => {
            let mut body = json!({});
            if let Some(name) = &args.name {
                body["name"] = json!(name);
            }
            if let Some(url) = &args.url {
                body["url"] = json!(url);
            }
            add_auth(&mut body, &args.auth)?;
            if args.no_auth {
                body["auth"] = Value::Null;
            }
            if args.no_repo_ca {
                body["caPem"] = Value::Null;
            }
            if body.as_object().is_none_or(Map::is_empty) {
                return Err(CommandError::Usage("nothing to change".to_owned()));
            }
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["helm", "repositories", &args.id]);
            let repo = client.json(Method::PUT, url, Some(&body)).await?;
            let table = repo_fields(&repo);
            Ok(Output::new(repo, table, args.remote.output))
        }
        HelmRepoCommand::Sync(args) => sync(args).await,
        HelmRepoCommand::Delete(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["helm", "repositories", &args.id]);
            client.send(Method::DELETE, url, None).await?;
            Ok(deleted(
                "Helm repository",
                &args.id,
                &args.id,
                args.remote.output,
            ))
        }
    }
}

/// `auth` and `caPem` of a repository body, from the flags given.
fn add_auth(body: &mut Value, auth: &HelmAuthArgs) -> Result<(), CommandError> {
    if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
        body["auth"] = json!({"basic": {"username": username, "password": password}});
    }
    if let Some(token) = &auth.bearer_token {
        body["auth"] = json!({"bearer": {"token": token}});
    }
    if let Some(file) = &auth.repo_ca_file {
        body["caPem"] = json!(read_input(file)?);
    }
    Ok(())
}

fn repos_table(repos: &[Value]) -> String {
    let rows = repos
        .iter()
        .map(|r| {
            vec![
                shown(&r["name"]),
                shown(&r["url"]),
                shown(&r["authType"]),
                time(&r["lastSyncAt"]),
                shown(&r["lastSyncStatus"]),
                shown(&r["lastError"]),
            ]
        })
        .collect();
    table(
        &["NAME", "URL", "AUTH", "LAST SYNC", "STATUS", "ERROR"],
        rows,
    )
}

fn repo_fields(r: &Value) -> String {
    fields(&[
        ("id", shown(&r["id"])),
        ("name", shown(&r["name"])),
        ("url", shown(&r["url"])),
        ("auth", shown(&r["authType"])),
        (
            "ca",
            if r["caPem"].is_string() { "yes" } else { "no" }.to_owned(),
        ),
        ("last sync", time(&r["lastSyncAt"])),
        ("last sync status", shown(&r["lastSyncStatus"])),
        ("last sync run", shown(&r["lastSyncRun"])),
        ("last error", shown(&r["lastError"])),
        ("created", time(&r["createdAt"])),
        ("updated", time(&r["updatedAt"])),
    ])
}

/// `helm repo sync`: the API syncs repositories only through repo-sync jobs, so this runs
/// each of them now and (unless `--no-wait`) waits for their runs.
async fn sync(args: &HelmRepoSyncArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let jobs = client
        .json(Method::GET, client.url(&["jobs"]), None)
        .await?;
    let sync_jobs: Vec<&Value> = items(&jobs)
        .iter()
        .filter(|j| j["kind"] == "repo-sync")
        .collect();
    if sync_jobs.is_empty() {
        return Err(CommandError::Failed(format!(
            "{} has no repo-sync job to run (the built-in `helm-repo-sync` is created when the \
             gateway first starts with the `helm-index` plugin)",
            client.server()
        )));
    }
    let mut runs = Vec::new();
    for job in sync_jobs {
        let id = shown(&job["id"]);
        let url = client.url(&["jobs", &id, "run"]);
        runs.push(client.json(Method::POST, url, None).await?);
    }
    if !args.no_wait {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
        for run in &mut runs {
            let id = shown(&run["id"]);
            while run["status"] == "running" {
                if tokio::time::Instant::now() >= deadline {
                    return Err(CommandError::Failed(format!(
                        "run {id} still running after {} s; see `portico run get {id}`",
                        args.timeout
                    )));
                }
                tokio::time::sleep(POLL).await;
                *run = client
                    .json(Method::GET, client.url(&["runs", &id]), None)
                    .await?;
            }
        }
    }
    let repos = client
        .json(Method::GET, client.url(&["helm", "repositories"]), None)
        .await?;
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| format!("run {} failed: {}", shown(&r["id"]), shown(&r["error"])))
        .chain(
            items(&repos)
                .iter()
                .filter(|r| r["lastSyncStatus"] == "failed")
                .map(|r| {
                    format!(
                        "repository `{}`: {}",
                        shown(&r["name"]),
                        shown(&r["lastError"])
                    )
                }),
        )
        .collect();
    if !args.no_wait && !failed.is_empty() {
        return Err(CommandError::Failed(format!(
            "the sync failed: {}",
            failed.join("; ")
        )));
    }
    let mut text = String::new();
    for run in &runs {
        text.push_str(&format!(
            "run {}: {}\n",
            shown(&run["id"]),
            shown(&run["status"])
        ));
    }
    text.push('\n');
    text.push_str(&repos_table(items(&repos)));
    let value = json!({"runs": runs, "repositories": repos["items"]});
    Ok(Output::new(value, text, args.remote.output))
}

/// Runs one `portico chart` subcommand.
pub async fn chart(command: &ChartCommand) -> Result<Output, CommandError> {
    let ChartCommand::Search(args) = command;
    search(args).await
}

async fn search(args: &ChartSearchArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut url = client.url(&["helm", "charts"]);
    {
        let mut query = url.query_pairs_mut();
        if let Some(repo) = &args.repo {
            query.append_pair("repository", repo);
        }
        if args.versions {
            query.append_pair("versions", "all");
        }
        if args.new {
            query.append_pair("new", "true");
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let charts = client.json(Method::GET, url, None).await?;
    let keyword = args.keyword.as_deref().map(str::to_lowercase);
    let matches = |c: &Value| -> bool {
        let Some(keyword) = &keyword else {
            return true;
        };
        let hit = |v: &Value| {
            v.as_str()
                .is_some_and(|s| s.to_lowercase().contains(keyword))
        };
        hit(&c["name"])
            || hit(&c["description"])
            || c["keywords"].as_array().is_some_and(|k| k.iter().any(hit))
    };
    let found: Vec<Value> = items(&charts)
        .iter()
        .filter(|c| matches(c))
        .cloned()
        .collect();
    let rows = found
        .iter()
        .map(|c| {
            vec![
                shown(&c["repository"]),
                shown(&c["name"]),
                shown(&c["version"]),
                shown(&c["appVersion"]),
                yes_no(&c["new"]),
                yes_no(&c["deprecated"]),
                shown(&c["description"]),
            ]
        })
        .collect();
    let header = [
        "REPOSITORY",
        "NAME",
        "VERSION",
        "APP VERSION",
        "NEW",
        "DEPRECATED",
        "DESCRIPTION",
    ];
    let text = table(&header, rows);
    Ok(Output::new(
        json!({"items": found}),
        text,
        args.remote.output,
    ))
}

#[cfg(test)]
mod tests;
