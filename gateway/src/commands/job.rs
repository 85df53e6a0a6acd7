//! `portico job …` and `portico run …`: the jobs and runs API of a running gateway.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use super::output::{Output, fields, items, list, shown, table, text, time, yes_no};
use super::{CommandError, GatewayClient};
use crate::cli::{JobCommand, JobRunsArgs, OutputFormat, RunCommand};

/// What a `portico job` command got back (the API's JSON, and its table).
pub type JobOutput = Output;

/// Runs one `portico job` subcommand against the gateway.
pub async fn run_job_command(command: &JobCommand) -> Result<JobOutput, CommandError> {
    let format = command.output();
    match command {
        JobCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let jobs = client
                .json(Method::GET, client.url(&["jobs"]), None)
                .await?;
            let table = jobs_table(items(&jobs));
            Ok(Output::new(jobs, table, format))
        }
        JobCommand::Show(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let (_, job) = client.find("jobs", &args.id).await?;
            let table = job_fields(&job);
            Ok(Output::new(job, table, format))
        }
        JobCommand::Create(args) => {
            let body = read_job(&args.file)?;
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["jobs"]);
            let job = client.json(Method::POST, url, Some(&body)).await?;
            let table = job_fields(&job);
            Ok(Output::new(job, table, format))
        }
        JobCommand::Update(args) => {
            let body = read_job(&args.file)?;
            let client = GatewayClient::new(&args.gateway)?;
            let (id, _) = client.find("jobs", &args.id).await?;
            let url = client.url(&["jobs", &id]);
            let job = client.json(Method::PUT, url, Some(&body)).await?;
            let table = job_fields(&job);
            Ok(Output::new(job, table, format))
        }
        JobCommand::Delete(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let (id, job) = client.find("jobs", &args.id).await?;
            client
                .send(Method::DELETE, client.url(&["jobs", &id]), None)
                .await?;
            let name = shown(&job["name"]);
            Ok(Output::new(
                serde_json::json!({"deleted": "job", "id": id, "name": name}),
                format!("Job `{name}` ({id}) deleted.\n"),
                format,
            ))
        }
        JobCommand::Run(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let (id, _) = client.find("jobs", &args.id).await?;
            let url = client.url(&["jobs", &id, "run"]);
            let run = client.json(Method::POST, url, None).await?;
            let table = run_fields(&run);
            Ok(Output::new(run, table, format))
        }
        JobCommand::Runs(args) => list_runs(args).await,
    }
}

/// Runs one `portico run` subcommand.
pub async fn run_command(command: &RunCommand) -> Result<Output, CommandError> {
    match command {
        RunCommand::List(args) => list_runs(args).await,
        RunCommand::Get(args) => {
            let client = GatewayClient::new(&args.remote.gateway)?;
            let run = client
                .json(Method::GET, client.url(&["runs", &args.id]), None)
                .await?;
            let table = run_with_targets(&run);
            Ok(Output::new(run, table, args.remote.output))
        }
    }
}

/// `GET /api/v1/runs?job=&status=&limit=`, with job names for the table.
async fn list_runs(args: &JobRunsArgs) -> Result<Output, CommandError> {
    let client = GatewayClient::new(&args.gateway)?;
    let mut url = client.url(&["runs"]);
    {
        let mut query = url.query_pairs_mut();
        if let Some(job) = &args.job {
            query.append_pair("job", job);
        }
        if let Some(status) = &args.status {
            query.append_pair("status", status);
        }
        if let Some(limit) = args.limit {
            query.append_pair("limit", &limit.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let runs = client.json(Method::GET, url, None).await?;
    let table = if args.output == OutputFormat::Table {
        // Names for the table; the JSON keeps the API's ids.
        let jobs = client
            .json(Method::GET, client.url(&["jobs"]), None)
            .await?;
        let names = items(&jobs)
            .iter()
            .filter_map(|j| Some((text(&j["id"])?, text(&j["name"])?)))
            .collect();
        runs_table(items(&runs), &names)
    } else {
        String::new()
    };
    Ok(Output::new(runs, table, args.output))
}

/// The job file: JSON, checked here so a typo is reported before anything is sent.
fn read_job(path: &Path) -> Result<Value, CommandError> {
    let shown = path.display().to_string();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CommandError::Read(shown, e))?
    } else {
        std::fs::read_to_string(path).map_err(|e| CommandError::Read(shown, e))?
    };
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| CommandError::Usage(format!("`{}` is not JSON: {e}", path.display())))?;
    if !body.is_object() {
        return Err(CommandError::Usage(format!(
            "`{}` must hold a JSON object (the job)",
            path.display()
        )));
    }
    Ok(body)
}

fn jobs_table(jobs: &[Value]) -> String {
    let rows = jobs
        .iter()
        .map(|j| {
            vec![
                shown(&j["id"]),
                shown(&j["name"]),
                shown(&j["kind"]),
                shown(&j["cron"]),
                yes_no(&j["enabled"]),
                list(&j["plugins"]),
                targets(&j["targets"]),
            ]
        })
        .collect();
    table(
        &[
            "ID", "NAME", "KIND", "CRON", "ENABLED", "PLUGINS", "TARGETS",
        ],
        rows,
    )
}

fn runs_table(runs: &[Value], names: &BTreeMap<String, String>) -> String {
    let rows = runs
        .iter()
        .map(|r| {
            let job = text(&r["jobId"]).unwrap_or_default();
            vec![
                shown(&r["id"]),
                names.get(&job).cloned().unwrap_or(job),
                shown(&r["trigger"]),
                shown(&r["status"]),
                time(&r["startedAt"]),
                clusters(r),
                findings(r),
            ]
        })
        .collect();
    table(
        &[
            "ID", "JOB", "TRIGGER", "STATUS", "STARTED", "CLUSTERS", "FINDINGS",
        ],
        rows,
    )
}

fn job_fields(job: &Value) -> String {
    let webhooks = list(&job["webhooks"]);
    fields(&[
        ("id", shown(&job["id"])),
        ("name", shown(&job["name"])),
        ("kind", shown(&job["kind"])),
        ("cron", shown(&job["cron"])),
        ("enabled", yes_no(&job["enabled"])),
        ("plugins", list(&job["plugins"])),
        ("targets", targets(&job["targets"])),
        ("timeout", format!("{}s", shown(&job["timeoutSeconds"]))),
        (
            "webhooks",
            if webhooks.is_empty() {
                "-".to_owned()
            } else {
                webhooks
            },
        ),
        (
            "notify only on failure",
            yes_no(&job["notifyOnlyOnFailure"]),
        ),
        ("revision", shown(&job["revision"])),
        ("created", time(&job["createdAt"])),
        ("updated", time(&job["updatedAt"])),
    ])
}

pub(super) fn run_fields(run: &Value) -> String {
    let mut out = fields(&[
        ("id", shown(&run["id"])),
        ("job", shown(&run["jobId"])),
        ("trigger", shown(&run["trigger"])),
        ("status", shown(&run["status"])),
        ("instance", shown(&run["instanceId"])),
        ("started", time(&run["startedAt"])),
        ("finished", time(&run["finishedAt"])),
        ("clusters", clusters(run)),
        ("findings", findings(run)),
    ]);
    if let Some(error) = text(&run["error"]) {
        let _ = writeln!(out, "error: {error}");
    }
    out
}

/// `all`, `clusters a,b` or `selector env=prod`.
fn targets(value: &Value) -> String {
    if let Some(ids) = value.get("clusters") {
        format!("clusters {}", list(ids))
    } else if let Some(selector) = value.get("selector") {
        format!("selector {}", shown(selector))
    } else {
        shown(value)
    }
}

/// `3`, or `3 (1 failed, 1 skipped)`.
fn clusters(run: &Value) -> String {
    let mut notes = Vec::new();
    for (key, what) in [("clustersFailed", "failed"), ("clustersSkipped", "skipped")] {
        if let Some(n) = run[key].as_i64().filter(|n| *n > 0) {
            notes.push(format!("{n} {what}"));
        }
    }
    with_notes(shown(&run["clustersTotal"]), notes)
}

/// `12`, or `12 (2 failed)`.
fn findings(run: &Value) -> String {
    let notes = run["findingsFailed"]
        .as_i64()
        .filter(|n| *n > 0)
        .map(|n| format!("{n} failed"))
        .into_iter()
        .collect();
    with_notes(shown(&run["findingsTotal"]), notes)
}

fn with_notes(total: String, notes: Vec<String>) -> String {
    if notes.is_empty() {
        total
    } else {
        format!("{total} ({})", notes.join(", "))
    }
}

/// A run's fields, then a table of its per-cluster results.
fn run_with_targets(run: &Value) -> String {
    let mut out = run_fields(run);
    let targets = run["targets"].as_array().map_or(&[][..], Vec::as_slice);
    if !targets.is_empty() {
        let rows = targets
            .iter()
            .map(|t| {
                let failed = t["findingsFailed"].as_i64().filter(|n| *n > 0);
                vec![
                    shown(&t["clusterId"]),
                    shown(&t["status"]),
                    with_notes(
                        shown(&t["findingsTotal"]),
                        failed.map(|n| format!("{n} failed")).into_iter().collect(),
                    ),
                    shown(&t["error"]),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["CLUSTER", "STATUS", "FINDINGS", "ERROR"], rows));
    }
    out
}
