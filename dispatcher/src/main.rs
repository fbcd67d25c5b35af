//! The dispatcher: CLI entry point. Parses arguments, sets up logging, runs one command, and turns
//! its outcome into the exit code (DESIGN §3): 0 done, 1 failed, 2 bad input, 3 validation failed,
//! 124 timed out.

mod cli;
mod enroll;
mod eval;
mod health;
mod progress;
mod publish;
mod report;
mod run;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// A failure with the exit code it deserves; everything else is exit 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    TimedOut(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Validate(args) => validate::run(cli.config.as_deref(), &args),
        Command::Health(args) => health::run(&args),
        Command::Report(args) => report::run(cli.config.as_deref(), &args),
        Command::Enroll(args) => enroll::run(cli.config.as_deref(), &args),
        Command::Eval(args) => eval::run(cli.config.as_deref(), &args),
        Command::Run(args) => run::run(cli.config.as_deref(), &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = match error.downcast_ref::<Failure>() {
                Some(Failure::Usage(_)) => 2,
                Some(Failure::Validation(_)) => 3,
                Some(Failure::TimedOut(_)) => 124,
                None => 1,
            };
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}
