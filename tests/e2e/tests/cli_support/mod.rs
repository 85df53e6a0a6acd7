//! What the CLI tests share: a `portico` run in-process with an environment of its own, and
//! readers of its tables.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use portico::cli::Cli;
use portico::commands::{self, CommandError, Output};
use portico_e2e::gateway::TestGateway;

/// Runs `portico …` commands with an environment of their own.
pub struct Portico {
    pub env: HashMap<String, String>,
}

impl Portico {
    /// A CLI whose config file is `config` and nothing else set.
    pub fn new(config: &Path) -> Self {
        Self {
            env: HashMap::from([("PORTICO_CONFIG".to_owned(), config.display().to_string())]),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Result<Output, CommandError> {
        let argv = std::iter::once("portico").chain(args.iter().copied());
        let cli = Cli::parse_with_env(argv, &self.env).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        commands::run(&cli.command).await
    }

    pub async fn ok(&self, args: &[&str]) -> Output {
        self.run(args)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    pub async fn err(&self, args: &[&str]) -> CommandError {
        match self.run(args).await {
            Ok(output) => panic!("{args:?} succeeded: {}", output.render()),
            Err(e) => e,
        }
    }
}

/// The gateway's generated CA, written to `dir`.
pub fn ca_file(gw: &TestGateway, dir: &Path) -> PathBuf {
    let ca = gw
        .gateway()
        .app()
        .tls
        .as_ref()
        .and_then(|t| t.ca_pem.clone());
    let path = dir.join("gateway-ca.crt");
    std::fs::write(&path, ca.expect("a generated CA")).unwrap();
    path
}

/// The table's row whose first cell is `first`, split into cells (two spaces or more apart).
pub fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row `{first}` in\n{table}"))
}

pub fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// A CLI that reaches `gw` through `PORTICO_SERVER`, `PORTICO_TOKEN` (admin) and
/// `PORTICO_CA_FILE`, with a config file in `dir` that holds no context.
pub fn with_variables(gw: &TestGateway, dir: &Path) -> Portico {
    let mut cli = Portico::new(&dir.join("config.yaml"));
    let ca = ca_file(gw, dir);
    cli.env.extend([
        ("PORTICO_SERVER".to_owned(), gw.url.clone()),
        (
            "PORTICO_TOKEN".to_owned(),
            gw.admin_token.clone().expect("an admin token"),
        ),
        ("PORTICO_CA_FILE".to_owned(), ca.display().to_string()),
    ]);
    cli
}
