//! `portico finding …`, `audit`, `instances`, `leader`, `version` and `completion`.

use clap::CommandFactory;
use reqwest::Method;
use serde_json::{Value, json};

use super::output::{Output, fields, items, shown, table, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::version::BUILD;
use crate::cli::{AuditArgs, Cli, FindingCommand, FindingListArgs, RemoteArgs, Shell, VersionArgs};

/// Runs one `portico finding` subcommand.
pub async fn finding(command: &FindingCommand) -> Result<Output, CommandError> {
    match command {
        FindingCommand::List(args) => findings(args).await,
        FindingCommand::Summary(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["findings", "summary"]);
            let summary = client.json(Method::GET, url, None).await?;
            let rows = items(&summary)
                .iter()
                .map(|t| {
                    vec![
                        shown(&t["clusterId"]),
                        shown(&t["status"]),
                        shown(&t["findingsTotal"]),
                        shown(&t["findingsFailed"]),
                        shown(&t["runId"]),
                        time(&t["finishedAt"]),
                        shown(&t["error"]),
                    ]
                })
                .collect();
            let text = table(
                &[
                    "CLUSTER", "STATUS", "FINDINGS", "FAILED", "RUN", "FINISHED", "ERROR",
                ],
                rows,
            );
            Ok(Output::new(summary, text, args.output))
        }
    }
}

async fn findings(args: &FindingListArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut url = client.url(&["findings"]);
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in [
            ("run", &args.run),
            ("cluster", &args.cluster),
            ("check", &args.check),
            ("severity", &args.severity),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        if args.failed || args.passed {
            query.append_pair("passed", if args.passed { "true" } else { "false" });
        }
        if let Some(limit) = args.limit {
            query.append_pair("limit", &limit.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let found = client.json(Method::GET, url, None).await?;
    let rows = items(&found)
        .iter()
        .map(|f| {
            let severity = if f["passed"] == true {
                "pass".to_owned()
            } else {
                shown(&f["severity"])
            };
            vec![
                severity,
                shown(&f["clusterId"]),
                shown(&f["checkId"]),
                target(&f["target"]),
                shown(&f["message"]),
            ]
        })
        .collect();
    let text = table(&["SEVERITY", "CLUSTER", "CHECK", "TARGET", "MESSAGE"], rows);
    Ok(Output::new(found, text, args.remote.output))
}

/// `Kind ns/name`, `Kind name` or `-`.
fn target(t: &Value) -> String {
    if t.is_null() {
        return "-".to_owned();
    }
    match t["namespace"].as_str() {
        Some(ns) => format!("{} {ns}/{}", shown(&t["kind"]), shown(&t["name"])),
        None => format!("{} {}", shown(&t["kind"]), shown(&t["name"])),
    }
}

/// `portico instances`.
pub async fn instances(args: &RemoteArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.gateway)?;
    let instances = client
        .json(Method::GET, client.url(&["instances"]), None)
        .await?;
    let rows = items(&instances)
        .iter()
        .map(|i| {
            vec![
                shown(&i["id"]),
                shown(&i["address"]),
                shown(&i["version"]),
                shown(&i["started"]),
                yes_no(&i["leader"]),
                shown(&i["clustersHeld"]),
                yes_no(&i["alive"]),
            ]
        })
        .collect();
    let text = table(
        &[
            "ID", "ADDRESS", "VERSION", "STARTED", "LEADER", "CLUSTERS", "ALIVE",
        ],
        rows,
    );
    Ok(Output::new(instances, text, args.output))
}

/// `portico leader`.
pub async fn leader(args: &RemoteArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.gateway)?;
    let leader = client
        .json(Method::GET, client.url(&["leader"]), None)
        .await?;
    let mut rows = vec![
        ("mode", shown(&leader["mode"])),
        ("holder", shown(&leader["holder"])),
        ("lease", shown(&leader["lease"])),
        ("term", shown(&leader["transitions"])),
        ("acquired", shown(&leader["acquireTime"])),
        ("renewed", shown(&leader["renewTime"])),
        ("answered by", shown(&leader["instanceId"])),
        ("answerer leads", yes_no(&leader["isLeader"])),
    ];
    if !leader["leaseError"].is_null() {
        rows.push(("lease error", shown(&leader["leaseError"])));
    }
    let text = fields(&rows);
    Ok(Output::new(leader, text, args.output))
}

/// `--before`: an RFC 3339 time or unix milliseconds, as milliseconds.
fn before_millis(before: &str) -> Result<i64, CommandError> {
    if let Ok(ms) = before.parse::<i64>() {
        return Ok(ms);
    }
    before
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            CommandError::Usage(format!(
                "--before `{before}` is neither unix milliseconds nor an RFC 3339 time: {e}"
            ))
        })
}

/// `portico audit`.
pub async fn audit(args: &AuditArgs) -> Result<Output, CommandError> {
    let before = args.before.as_deref().map(before_millis).transpose()?;
    let client = GatewayClient::new(&args.remote.gateway)?;
    let mut url = client.url(&["audit"]);
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in [
            ("kind", &args.kind),
            ("cluster", &args.cluster),
            ("token", &args.token_name),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        if let Some(limit) = args.limit {
            query.append_pair("limit", &limit.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let entries = client.json(Method::GET, url, None).await?;
    let rows = items(&entries)
        .iter()
        .map(|e| {
            vec![
                time(&e["at"]),
                shown(&e["kind"]),
                shown(&e["tokenName"]),
                shown(&e["cluster"]),
                shown(&e["verb"]),
                shown(&e["status"]),
                shown(&e["source"]),
                shown(&e["path"]),
            ]
        })
        .collect();
    let text = table(
        &[
            "TIME", "KIND", "TOKEN", "CLUSTER", "VERB", "STATUS", "SOURCE", "PATH",
        ],
        rows,
    );
    Ok(Output::new(entries, text, args.remote.output))
}

/// `0.1.0 (commit …, wasmtime …, wit …)`.
fn version_line(v: &Value) -> String {
    format!(
        "{} (commit {}, wasmtime {}, wit {})",
        shown(&v["version"]),
        shown(&v["commit"]),
        shown(&v["wasmtime"]),
        shown(&v["wit"])
    )
}

/// `portico version`: this program's build, and the gateway's (`GET /version`, no token
/// needed) unless `--client`.
pub async fn version(args: &VersionArgs) -> Result<Output, CommandError> {
    let client_info = serde_json::to_value(BUILD).expect("plain data");
    let mut value = json!({"client": client_info});
    let mut rows = vec![("client", version_line(&value["client"]))];
    if !args.client {
        let client = GatewayClient::anonymous(&args.remote.gateway)?;
        let server = client
            .json(Method::GET, client.root_url(&["version"]), None)
            .await?;
        rows.push(("server", version_line(&server)));
        rows.push(("server url", client.server().to_owned()));
        value["server"] = server;
    }
    let text = fields(&rows);
    Ok(Output::new(value, text, args.remote.output))
}

/// The completion script of `shell` for `portico`.
pub fn completion(shell: Shell) -> String {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "portico", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_takes_milliseconds_or_rfc3339() {
        assert_eq!(before_millis("1767225600000").unwrap(), 1_767_225_600_000);
        assert_eq!(
            before_millis("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600_000
        );
        assert!(before_millis("yesterday").is_err());
    }

    #[test]
    fn completions_name_the_commands_in_every_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let script = completion(shell);
            for word in ["cluster", "login", "webhook", "deliveries", "kubeconfig"] {
                assert!(script.contains(word), "{shell:?}: no `{word}`");
            }
        }
    }
}
