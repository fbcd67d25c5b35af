//! The reducer: consumes clip results from RabbitMQ and writes them to Postgres, idempotently,
//! in batches; keeps each job's counters and closes the job when its last result is in.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 1 a fatal error, 2 bad settings.

use std::process::ExitCode;

use app::service::{ServiceArgs, run_service};
use clap::Parser;

/// Stores the workers' results from RabbitMQ (AMQP_URL) in Postgres (DATABASE_URL), closes
/// each job once its clips are all in, and raises the job's alerts.
///
/// Settings come from the environment or a settings file (see the README). SIGTERM stops it
/// cleanly: a batch not yet stored stays in the queue for the next reducer.
#[derive(Debug, Parser)]
#[command(name = "reducer", version)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    app::exit(run_service(&cli.service, app::run_reducer))
}
