//! The `portico` command's one-shot subcommands (`login`, `credential`, and the rest that
//! `portico_e2e` tests run as a separate process), built with the test crate so that
//! `cargo test -p portico-e2e` has a binary for kubectl's exec credential plugin without
//! building the gateway's own `portico` binary. It dispatches as `gateway/src/main.rs` does for
//! these commands: the same `Cli` parse, `commands::run`, output and exit codes.

use std::process::ExitCode;

use portico::cli::Cli;
use portico::commands;

fn main() -> ExitCode {
    let cli = Cli::parse_process();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(&cli.command)) {
        Ok(output) => {
            print!("{}", output.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
