//! The dispatcher: CLI entry point. Parses arguments, sets up logging, runs one command, and turns
//! its outcome into the exit code (DESIGN §3): 0 done, 1 failed, 2 bad input, 3 validation failed.

mod cli;
mod enroll;
mod eval;
mod publish;
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
    shared::telemetry::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Enroll(args) => enroll::run(cli.config.as_deref(), &args),
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
