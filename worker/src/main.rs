//! The worker: consumes clip tasks from RabbitMQ, decodes, finds speaker turns, embeds and
//! decides, and publishes one result per clip.
//!
//! It checks its model and runtime before anything else, so a pod without them fails at start.
//! Exit codes: 0 after SIGTERM/SIGINT (clips in flight finished or handed back), 1 a fatal
//! error, 2 bad settings.

use std::process::ExitCode;

use app::service::{ServiceArgs, run_service};
use clap::Parser;

/// Takes clip tasks from RabbitMQ (AMQP_URL), finds who speaks in each clip, matches the voices
/// against the location's employees and publishes one result per clip.
///
/// Settings come from the environment or a settings file (see the README): the clip source,
/// the speaker model, AssemblyAI. SIGTERM stops it cleanly: the clips in hand are finished, or
/// handed back to the queue.
#[derive(Debug, Parser)]
#[command(name = "worker", version)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    app::exit(run_service(&cli.service, app::run_worker))
}
