//! The `portico` command.
//!
//! Exit codes: 0 success, 1 failed, 2 usage, 3 gateway unreachable, 4 not authenticated,
//! 5 forbidden, 6 not found, 7 conflict (`portico::commands::exit`).

use std::process::ExitCode;

use portico::cli::{Cli, ClusterCommand, Command, LogFormat, PluginCommand};
use portico::commands::{self, CommandError, Imported, exit};
use portico::config::Config;
use portico::server::{self, Gateway};
use portico::telemetry;

/// mimalloc instead of glibc malloc: the proxy allocates and frees on every request from both
/// runtime threads, where mimalloc's thread-local heaps cost fewer cycles (see `bench/`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_process();
    if let Command::Completion(args) = &cli.command {
        print!("{}", commands::completion(args.shell));
        return ExitCode::SUCCESS;
    }
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
                    return ExitCode::from(exit::USAGE);
                }
            };
            if let Err(e) = telemetry::init_tracing(&config.log, config.log_format) {
                eprintln!("error: {e}");
                return ExitCode::from(exit::USAGE);
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
                        ExitCode::from(exit::FAILED)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => fail(&e),
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
                return ExitCode::from(exit::USAGE);
            }
            match runtime.block_on(commands::run_plugin(&args)) {
                Ok(run) => {
                    print!("{}", run.output(args.output).render());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        command => match runtime.block_on(commands::run(&command)) {
            Ok(output) => {
                print!("{}", output.render());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

/// Prints the error and returns its class's exit code.
fn fail(e: &CommandError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
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
