//! `portico cluster …` through the admin API, and what other command modules share: delete
//! messages and input files.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::output::{Output, fields, items, pairs, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{ClusterAddArgs, ClusterCommand, ClusterUpdateArgs, GatewayArgs, OutputFormat};

/// Runs one `portico cluster` subcommand (not `import`, which `main` runs).
pub async fn cluster(command: &ClusterCommand) -> Result<Output, CommandError> {
    match command {
        ClusterCommand::Add(args) => add(args).await,
        ClusterCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let clusters = client
                .json(Method::GET, client.url(&["clusters"]), None)
                .await?;
            let table = clusters_table(items(&clusters));
            Ok(Output::new(clusters, table, args.output))
        }
        ClusterCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["clusters", &args.id]);
            let view = client.json(Method::GET, url, None).await?;
            let table = cluster_fields(&view);
            Ok(Output::new(view, table, args.remote.output))
        }
        ClusterCommand::Update(args) => update(args).await,
        ClusterCommand::Connect(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["clusters", &args.id, "connect"]);
            let view = client.json(Method::POST, url, None).await?;
            if view["state"] == "failed" {
                return Err(CommandError::Failed(format!(
                    "cluster `{}` did not connect: {} (the gateway keeps retrying)",
                    args.id,
                    shown(&view["lastError"])
                )));
            }
            let table = cluster_fields(&view);
            Ok(Output::new(view, table, args.remote.output))
        }
        ClusterCommand::Disconnect(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["clusters", &args.id, "disconnect"]);
            let view = client.json(Method::POST, url, None).await?;
            let table = cluster_fields(&view);
            Ok(Output::new(view, table, args.remote.output))
        }
        ClusterCommand::Delete(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let url = client.url(&["clusters", &args.id]);
            client.send(Method::DELETE, url, None).await?;
            Ok(deleted("cluster", &args.id, &args.id, args.remote.output))
        }
        ClusterCommand::Kubeconfig(args) => {
            kubeconfig(&args.gateway, &args.id).await.map(Output::raw)
        }
        ClusterCommand::Import(_) => Err(CommandError::Usage(
            "`cluster import` opens the database; `main` runs it".to_owned(),
        )),
    }
}

/// The kubeconfig the gateway exports for cluster `id` and the caller's token.
pub async fn kubeconfig(gateway: &GatewayArgs, id: &str) -> Result<String, CommandError> {
    let client = GatewayClient::new(gateway)?;
    let url = client.url(&["clusters", id, "kubeconfig"]);
    client.send(Method::GET, url, None).await
}

/// The kubeconfig the gateway exports for every cluster the caller's token may reach.
pub async fn fleet_kubeconfig(
    gateway: &GatewayArgs,
    current: Option<&str>,
) -> Result<String, CommandError> {
    let client = GatewayClient::new(gateway)?;
    let mut url = client.url(&["kubeconfig"]);
    if let Some(current) = current {
        url.query_pairs_mut().append_pair("current", current);
    }
    client.send(Method::GET, url, None).await
}

/// What a delete prints.
pub(super) fn deleted(what: &str, id: &str, name: &str, format: OutputFormat) -> Output {
    let text = if id == name {
        format!("{what} `{id}` deleted\n")
    } else {
        format!("{what} `{name}` ({id}) deleted\n")
    };
    Output::new(
        json!({"deleted": what, "id": id, "name": name}),
        capitalized(&text),
        format,
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A file's text; `-` reads standard input.
pub(super) fn read_input(path: &Path) -> Result<String, CommandError> {
    let shown = path.display().to_string();
    if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CommandError::Read(shown, e))
    } else {
        std::fs::read_to_string(path).map_err(|e| CommandError::Read(shown, e))
    }
}

/// `KEY=VALUE` labels.
fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, CommandError> {
    labels
        .iter()
        .map(|label| {
            label
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CommandError::Usage(format!("label `{label}` is not KEY=VALUE")))
        })
        .collect()
}

async fn add(args: &ClusterAddArgs) -> Result<Output, CommandError> {
    let kubeconfig = read_input(&args.kubeconfig)?;
    let mut body = json!({"id": args.id, "kubeconfig": kubeconfig,
                          "labels": parse_labels(&args.labels)?});
    if let Some(context) = &args.kube_context {
        body["context"] = json!(context);
    }
    if let Some(namespace) = &args.namespace {
        body["namespace"] = json!(namespace);
    }
    if let Some(name) = &args.name {
        body["name"] = json!(name);
    }
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut view = client
        .json(Method::POST, client.url(&["clusters"]), Some(&body))
        .await?;
    if args.connect {
        let url = client.url(&["clusters", &args.id, "connect"]);
        let warnings = view["warnings"].take();
        view = client.json(Method::POST, url, None).await?;
        if !warnings.is_null() {
            view["warnings"] = warnings;
        }
        if view["state"] == "failed" {
            return Err(CommandError::Failed(format!(
                "cluster `{}` was added but did not connect: {} (the gateway keeps retrying)",
                args.id,
                shown(&view["lastError"])
            )));
        }
    }
    let table = cluster_fields(&view);
    Ok(Output::new(view, table, args.remote.output))
}

async fn update(args: &ClusterUpdateArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut body = Map::new();
    if let Some(name) = &args.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(file) = &args.kubeconfig {
        body.insert("kubeconfig".into(), json!(read_input(file)?));
    }
    if let Some(context) = &args.kube_context {
        body.insert("context".into(), json!(context));
    }
    if let Some(namespace) = &args.namespace {
        body.insert("namespace".into(), json!(namespace));
    }
    if !args.labels.is_empty() {
        // Labels are replaced whole by the API: start from the current ones.
        let url = client.url(&["clusters", &args.id]);
        let current = client.json(Method::GET, url, None).await?;
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(current["labels"].clone()).unwrap_or_default();
        for label in &args.labels {
            match label.strip_suffix('-').filter(|k| !k.contains('=')) {
                Some(key) => {
                    labels.remove(key);
                }
                None => labels.extend(parse_labels(std::slice::from_ref(label))?),
            }
        }
        body.insert("labels".into(), json!(labels));
    }
    if body.is_empty() {
        return Err(CommandError::Usage(
            "nothing to change: give --name, --kubeconfig, --kube-context, --namespace or --label"
                .to_owned(),
        ));
    }
    let url = client.url(&["clusters", &args.id]);
    let view = client
        .json(Method::PUT, url, Some(&Value::Object(body)))
        .await?;
    let table = cluster_fields(&view);
    Ok(Output::new(view, table, args.remote.output))
}

fn clusters_table(clusters: &[Value]) -> String {
    let rows = clusters
        .iter()
        .map(|c| {
            vec![
                shown(&c["id"]),
                shown(&c["name"]),
                shown(&c["server"]),
                shown(&c["desiredState"]),
                shown(&c["state"]),
                replicas_summary(&c["replicas"]),
                shown(&c["serverVersion"]),
                pairs(&c["labels"]),
            ]
        })
        .collect();
    table(
        &[
            "ID", "NAME", "SERVER", "DESIRED", "STATE", "REPLICAS", "VERSION", "LABELS",
        ],
        rows,
    )
}

/// `2/3 connected`: live replicas connected to the cluster out of live replicas that published
/// a state for it, then `, 1 stale` for replicas whose state is no longer kept fresh.
fn replicas_summary(replicas: &Value) -> String {
    let rows = replicas.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "-".to_owned();
    }
    let stale = rows.iter().filter(|r| r["stale"] == true).count();
    let live = rows.len() - stale;
    let connected = rows
        .iter()
        .filter(|r| r["stale"] != true && r["state"] == "connected")
        .count();
    let mut out = format!("{connected}/{live} connected");
    if stale > 0 {
        out.push_str(&format!(", {stale} stale"));
    }
    out
}

/// Each replica's state of a cluster, one line each.
fn replicas_table(replicas: &Value) -> String {
    let rows = replicas
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                shown(&r["instance"]),
                shown(&r["state"]),
                yes_no(&r["stale"]),
                time(&r["since"]),
                time(&r["updatedAt"]),
                shown(&r["error"]),
            ]
        })
        .collect();
    table(
        &["INSTANCE", "STATE", "STALE", "SINCE", "UPDATED", "ERROR"],
        rows,
    )
}

fn cluster_fields(c: &Value) -> String {
    let mut out = fields(&[
        ("id", shown(&c["id"])),
        ("name", shown(&c["name"])),
        ("server", shown(&c["server"])),
        ("context", shown(&c["context"])),
        ("namespace", shown(&c["namespace"])),
        ("labels", pairs(&c["labels"])),
        ("desired state", shown(&c["desiredState"])),
        ("state", shown(&c["state"])),
        ("last error", shown(&c["lastError"])),
        ("server version", shown(&c["serverVersion"])),
        ("lease holder", shown(&c["leaseHolder"])),
        ("revision", shown(&c["configRevision"])),
        ("created", time(&c["createdAt"])),
        ("updated", time(&c["updatedAt"])),
    ]);
    if c["replicas"].as_array().is_some_and(|r| !r.is_empty()) {
        out.push_str(&format!("replicas: {}\n", replicas_summary(&c["replicas"])));
        out.push_str(&replicas_table(&c["replicas"]));
    }
    for warning in c["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: {}\n", shown(warning)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_column_counts_live_connected_replicas_and_stale_ones() {
        assert_eq!(replicas_summary(&Value::Null), "-");
        assert_eq!(replicas_summary(&json!([])), "-");
        let replicas = json!([
            {"instance": "a", "state": "connected", "stale": false},
            {"instance": "b", "state": "failed", "stale": false, "error": "refused"},
            {"instance": "c", "state": "connected", "stale": false},
        ]);
        assert_eq!(replicas_summary(&replicas), "2/3 connected");
        let replicas = json!([
            {"instance": "a", "state": "connected", "stale": false},
            {"instance": "b", "state": "connected", "stale": true},
        ]);
        assert_eq!(replicas_summary(&replicas), "1/1 connected, 1 stale");
        let shown = cluster_fields(&json!({"id": "x", "replicas": replicas}));
        assert!(
            shown.contains("replicas: 1/1 connected, 1 stale"),
            "{shown}"
        );
        assert!(shown.contains("INSTANCE"), "{shown}");
    }

    #[test]
    fn labels_are_key_value() {
        let labels = parse_labels(&["env=prod".into(), "empty=".into()]).unwrap();
        assert_eq!(labels["env"], "prod");
        assert_eq!(labels["empty"], "");
        assert!(parse_labels(&["=x".into()]).is_err());
        assert!(parse_labels(&["novalue".into()]).is_err());
    }
}
