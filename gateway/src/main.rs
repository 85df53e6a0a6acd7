//! The `portico` command.

use std::process::ExitCode;

use portico::cli::{Cli, ClusterCommand, Command, LogFormat, OutputFormat, PluginCommand};
use portico::commands::{self, Imported};
use portico::config::Config;
use portico::server::{self, Gateway};
use portico::telemetry;

/// mimalloc instead of glibc malloc: the proxy allocates and frees on every request from both
/// runtime threads, where mimalloc's thread-local heaps cost fewer cycles (see `bench/`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_process();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_args(*args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = telemetry::init_tracing(&config.log, config.log_format) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            runtime.block_on(serve(config))
        }
        Command::Cluster(ClusterCommand::Import(args)) => {
            match runtime.block_on(commands::import_clusters(&args)) {
                Ok(results) => {
                    let mut failed = false;
                    for result in results {
                        match result {
                            Imported::Added { context, id } => {
                                println!("added    {id} (context {context})")
                            }
                            Imported::Exists { context, id } => {
                                println!("exists   {id} (context {context}): left unchanged")
                            }
                            Imported::Failed { context, error } => {
                                failed = true;
                                println!("failed   context {context}: {error}")
                            }
                        }
                    }
                    if failed {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugin(PluginCommand::Run(args)) => {
            // The plugin's own log lines (target `portico::plugin`) stream to stderr as it
            // runs; the rest of the gateway only speaks up with warnings.
            let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| {
                "warn,portico::plugin=trace,portico::plugin::registry=warn,\
                 portico::plugin::engine=error"
                    .to_owned()
            });
            if let Err(e) = telemetry::init_tracing(&filter, LogFormat::Text) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match runtime.block_on(commands::run_plugin(&args)) {
                Ok(run) => {
                    match args.output {
                        OutputFormat::Table => print!("{}", run.table()),
                        OutputFormat::Json => println!("{}", run.json()),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Kubeconfig(args) => match runtime.block_on(commands::fetch_kubeconfig(&args)) {
            Ok(kubeconfig) => {
                print!("{kubeconfig}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Job(command) => match runtime.block_on(commands::run_job_command(&command)) {
            Ok(output) => {
                match command.output() {
                    OutputFormat::Table => print!("{}", output.table()),
                    OutputFormat::Json => println!("{}", output.json()),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(config: Config) -> ExitCode {
    let gateway = match Gateway::start(config).await {
        Ok(gateway) => gateway,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(token) = gateway.generated_admin_token() {
        // Printed once, on stdout, and never logged: store it now.
        println!("Admin token (shown only on this first start; store it now):\n\n    {token}\n");
    }
    server::shutdown_signal().await;
    gateway.shutdown().await;
    ExitCode::SUCCESS
}
