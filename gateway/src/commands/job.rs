//! `portico job`: the jobs API of a running gateway, as tables or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use super::{CommandError, GatewayClient};
use crate::cli::JobCommand;

/// What a `portico job` command got back: the API's JSON, and how to draw it as text.
#[derive(Debug, Clone)]
pub struct JobOutput {
    value: Value,
    shape: Shape,
    /// Job names by id, for the runs table.
    names: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Jobs,
    Job,
    Runs,
    Run,
}

/// Runs one `portico job` subcommand against the gateway.
pub async fn run_job_command(command: &JobCommand) -> Result<JobOutput, CommandError> {
    let output = |value, shape| JobOutput {
        value,
        shape,
        names: BTreeMap::new(),
    };
    match command {
        JobCommand::List(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let jobs = client
                .json(Method::GET, client.url(&["jobs"]), None)
                .await?;
            Ok(output(jobs, Shape::Jobs))
        }
        JobCommand::Show(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["jobs", &args.id]);
            Ok(output(
                client.json(Method::GET, url, None).await?,
                Shape::Job,
            ))
        }
        JobCommand::Create(args) => {
            let body = read_job(&args.file)?;
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["jobs"]);
            let job = client.json(Method::POST, url, Some(&body)).await?;
            Ok(output(job, Shape::Job))
        }
        JobCommand::Run(args) => {
            let client = GatewayClient::new(&args.gateway)?;
            let url = client.url(&["jobs", &args.id, "run"]);
            Ok(output(
                client.json(Method::POST, url, None).await?,
                Shape::Run,
            ))
        }
        JobCommand::Runs(args) => {
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
            // Names for the table; the JSON keeps the API's ids.
            let jobs = client
                .json(Method::GET, client.url(&["jobs"]), None)
                .await?;
            let names = items(&jobs)
                .iter()
                .filter_map(|j| Some((text(&j["id"])?, text(&j["name"])?)))
                .collect();
            Ok(JobOutput {
                value: runs,
                shape: Shape::Runs,
                names,
            })
        }
    }
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

impl JobOutput {
    /// The API's answer.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// One JSON document: the API's answer as it came.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.value).expect("a JSON value serializes")
    }

    /// A readable table (lists) or one field per line (a job, a run).
    pub fn table(&self) -> String {
        match self.shape {
            Shape::Jobs => jobs_table(items(&self.value)),
            Shape::Job => job_fields(&self.value),
            Shape::Runs => runs_table(items(&self.value), &self.names),
            Shape::Run => run_fields(&self.value),
        }
    }
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

fn run_fields(run: &Value) -> String {
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

fn items(value: &Value) -> &[Value] {
    value["items"].as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn shown(value: &Value) -> String {
    text(value).unwrap_or_else(|| "-".to_owned())
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(shown).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
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

/// Unix milliseconds as UTC, to the second.
fn time(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|ms| jiff::Timestamp::from_second(ms.div_euclid(1000)).ok())
        .map_or_else(|| "-".to_owned(), |t| t.to_string())
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

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `name: value` lines, the values aligned.
fn fields(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let _ = writeln!(out, "{:width$} {value}", format!("{key}:"));
    }
    out
}
