//! `portico-bench`: the measuring tools `bench/run` drives. Each subcommand prints one JSON
//! object on stdout; `bench/run` turns them into the results table.

use clap::{Parser, Subcommand};

mod plugins;
mod postgres;
mod stats;
mod watch;

#[derive(Debug, Parser)]
#[command(
    name = "portico-bench",
    about = "Measuring tools for Portico's benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch latency: a change made on the simulator, seen directly and through Portico.
    Watch(watch::Args),
    /// Plugin calls: instantiate + trivial call, an inspection, a Helm index sync.
    Plugins(plugins::Args),
    /// Start a throwaway PostgreSQL, print its URL, stop it when stdin closes.
    Postgres(postgres::Args),
    /// Where the release-built plugin directory is: `{"pluginDir"}`.
    Paths,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let output = match Cli::parse().command {
        Command::Watch(args) => watch::run(args).await?,
        Command::Plugins(args) => plugins::run(args).await?,
        Command::Postgres(args) => postgres::run(args).await?,
        Command::Paths => serde_json::json!({
            "pluginDir": portico_e2e::plugins::plugin_dir(),
        }),
    };
    println!("{}", serde_json::to_string(&output)?);
    Ok(())
}
