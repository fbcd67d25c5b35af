//! The dispatcher: CLI entry point. Parses arguments, sets up logging, runs one command, and turns
//! its outcome into the exit code (DESIGN §3): 0 done, 1 failed, 2 bad input, 3 validation failed.

mod cli;
mod eval;
mod run;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// A failure with the exit code it deserves; everything else is exit 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Eval(args) => eval::run(cli.config.as_deref(), &args),
        Command::Run(args) => run::run(cli.config.as_deref(), &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = match error.downcast_ref::<Failure>() {
                Some(Failure::Usage(_)) => 2,
                None => 1,
            };
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
