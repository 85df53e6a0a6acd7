//! `portico job …` against a standalone gateway, in-process: flags and `PORTICO_*` variables
//! parsed as the binary parses them (from a map, not the process environment), the command run,
//! its table and JSON checked.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use portico::cli::{Cli, Command, OutputFormat};
use portico::commands::{self, CommandError, JobOutput};
use portico_e2e::gateway::TestGateway;
use portico_e2e::plugins::{gateway_builder, plugin_dir};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// The environment the CLI would see; the gateway's CA is written to `dir`.
fn environment(gw: &TestGateway, dir: &Path) -> HashMap<String, String> {
    let ca = gw
        .gateway()
        .app()
        .tls
        .as_ref()
        .and_then(|t| t.ca_pem.clone());
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.expect("a generated CA")).unwrap();
    HashMap::from([
        ("PORTICO_URL".to_owned(), gw.url.clone()),
        (
            "PORTICO_TOKEN".to_owned(),
            gw.admin_token.clone().expect("generated at first start"),
        ),
        ("PORTICO_CA_FILE".to_owned(), ca_file.display().to_string()),
    ])
}

/// Parses `portico job <args…>` with `env` and runs it.
async fn job(
    env: &HashMap<String, String>,
    args: &[&str],
) -> Result<(JobOutput, OutputFormat), CommandError> {
    let argv = ["portico", "job"].iter().chain(args);
    let cli = Cli::parse_with_env(argv, env).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Command::Job(command) = cli.command else {
        unreachable!("a `job` command was parsed")
    };
    let output = commands::run_job_command(&command).await?;
    Ok((output, command.output()))
}

async fn ok(env: &HashMap<String, String>, args: &[&str]) -> JobOutput {
    let (output, _) = job(env, args)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_commands_list_create_show_run_and_list_runs() {
    let gw = gateway_builder("jobs-cli")
        .args(["--plugin-dir", plugin_dir().to_str().unwrap()])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let env = environment(&gw, dir.path());

    // Create from a file; the table shows the job field by field.
    let file = dir.path().join("job.json");
    std::fs::write(
        &file,
        json!({"name": "nightly", "plugins": ["builtin-checks"], "cron": "0 3 * * *",
               "targets": {"selector": "env=prod"}, "notifyOnlyOnFailure": true})
        .to_string(),
    )
    .unwrap();
    let (created, format) = job(&env, &["create", "--file", file.to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(format, OutputFormat::Table);
    let id = created.value()["id"].as_str().unwrap().to_owned();
    let table = created.table();
    for line in [
        format!("id: {id}").as_str(),
        "name: nightly",
        "cron: 0 3 * * *",
        "plugins: builtin-checks",
        "targets: selector env=prod",
        "notify only on failure: yes",
    ] {
        let found = table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line);
        assert!(found, "no `{line}` in\n{table}");
    }

    // List: the JSON is the API's; the table has a header and a row for the job.
    let (listed, format) = job(&env, &["list", "-o", "json"]).await.unwrap();
    assert_eq!(format, OutputFormat::Json);
    let parsed: Value = serde_json::from_str(&listed.json()).unwrap();
    let items = parsed["items"].as_array().unwrap();
    assert!(items.iter().any(|j| j["id"] == id.as_str()), "{parsed}");
    let table = ok(&env, &["list"]).await.table();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "NAME", "KIND", "CRON", "ENABLED", "PLUGINS", "TARGETS"
        ]
    );
    let row = lines
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id} in\n{table}"));
    for cell in [
        "nightly",
        "inspection",
        "0 3 * * *",
        "yes",
        "builtin-checks",
    ] {
        assert!(row.contains(cell), "no `{cell}` in `{row}`");
    }

    // Show, as JSON: the job as created.
    let shown = ok(&env, &["show", &id, "-o", "json"]).await;
    assert_eq!(shown.value()["name"], "nightly");
    assert_eq!(shown.value()["targets"], json!({"selector": "env=prod"}));

    // Run now: no cluster matches, so the run ends `skipped`.
    let run = ok(&env, &["run", &id]).await;
    let run_id = run.value()["id"].as_str().unwrap().to_owned();
    assert!(run.table().contains(&run_id), "{}", run.table());
    assert_eq!(run.value()["trigger"], "manual");
    let deadline = tokio::time::Instant::now() + WAIT;
    let runs = loop {
        let runs = ok(&env, &["runs", "--job", &id, "-o", "json"]).await;
        let done = runs.value()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run_id.as_str() && r["status"] != "running");
        if done {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        runs.value()["items"][0]["status"],
        "skipped",
        "{}",
        runs.json()
    );
    // The runs table names the job.
    let table = ok(&env, &["runs", "--job", &id, "--limit", "10"])
        .await
        .table();
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "JOB", "TRIGGER", "STATUS", "STARTED", "CLUSTERS", "FINDINGS"
        ]
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&run_id))
        .unwrap_or_else(|| panic!("no row for {run_id} in\n{table}"));
    for cell in ["nightly", "manual", "skipped"] {
        assert!(row.contains(cell), "no `{cell}` in `{row}`");
    }

    // Errors: the API's message, a bad file before anything is sent, a wrong token.
    let err = job(&env, &["show", "nope"]).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(err.to_string().contains("no job with id `nope`"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let err = job(&env, &["create", "-f", bad.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Usage(_)), "{err}");
    std::fs::write(&bad, r#"{"name": "x", "plugins": [], "cron": "nope"}"#).unwrap();
    let err = job(&env, &["create", "-f", bad.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let err = job(&env, &["list", "--token", "wrong"]).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    gw.stop().await;
}
