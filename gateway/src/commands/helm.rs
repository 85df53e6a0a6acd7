//! `portico helm repo …` and `portico chart search` through the admin API.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::clusters::{deleted, read_input};
use super::output::{Output, fields, items, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{
    ChartCommand, ChartSearchArgs, HelmAuthArgs, HelmCommand, HelmRepoCommand, HelmRepoSyncArgs,
};

/// How often `helm repo sync` looks at its runs.
const POLL: Duration = Duration::from_millis(250);

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
