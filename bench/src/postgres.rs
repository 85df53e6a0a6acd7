//! A throwaway PostgreSQL for the coordination benchmark: the test harness's, kept running
//! until the caller closes our stdin.

use anyhow::Context;
use portico_e2e::postgres::TestPostgres;
use tokio::io::AsyncReadExt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Databases to create (repeatable).
    #[arg(long = "database", required = true)]
    databases: Vec<String>,
}

/// Prints `{"urls": {name: url}}` at once (not as the final output: the caller reads it while we run),
/// then waits for stdin to close and stops the server.
pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let pg = TestPostgres::start_or_skip("bench")
        .context("no PostgreSQL binaries (initdb, pg_ctl): install PostgreSQL or set PG_BIN")?;
    let mut urls = serde_json::Map::new();
    for name in &args.databases {
        urls.insert(name.clone(), pg.create_database(name)?.into());
    }
    println!("{}", serde_json::json!({ "urls": urls }));
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    drop(pg);
    Ok(serde_json::json!({ "stopped": true }))
}
