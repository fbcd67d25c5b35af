//! The dispatcher: CLI entry point. Parses arguments, sets up logging, runs one command, and turns
//! its outcome into the exit code (DESIGN §3): 0 done, 1 failed, 2 bad input, 3 validation failed,
//! 124 timed out.

mod cli;
mod enroll;
mod eval;
mod health;
mod job;
mod progress;
mod publish;
mod report;
mod run;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

pub use app::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    app::telemetry::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Validate(args) => validate::run(cli.config.as_deref(), &args),
        Command::Health(args) => health::run(&args),
        Command::Report(args) => report::run(cli.config.as_deref(), &args),
        Command::Enroll(args) => enroll::run(cli.config.as_deref(), &args),
        Command::Eval(args) => eval::run(cli.config.as_deref(), &args),
        Command::Run(args) => run::run(cli.config.as_deref(), &args),
    };
    app::exit(result.map_err(Failure::from_error))
}
