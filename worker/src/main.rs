//! The worker: consumes clip tasks from RabbitMQ, decodes, finds speaker turns, embeds and
//! decides, and publishes one result per clip.
//!
//! It checks its model and runtime before anything else, so a pod without them fails at start.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use shared::config::Settings;

#[derive(Debug, Parser)]
#[command(name = "worker", version)]
struct Cli {
    /// A settings file (TOML) layered over config/default.toml and under the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve /health, /ready and /metrics.
    #[arg(long)]
    enable_health_check: bool,
    #[arg(long, default_value_t = 8080)]
    health_check_port: u16,
    /// Debug logging.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let encoder = settings.encoder().context("loading the speaker model")?;
    tracing::info!(model = %encoder.manifest().id, "speaker model loaded");
    if settings.amqp_url.is_none() {
        eprintln!(
            "error: the worker consumes clip tasks from RabbitMQ: set AMQP_URL \
             (without a broker, `dispatcher run` processes clips in one process)"
        );
        return Ok(ExitCode::from(2));
    }
    anyhow::bail!("the RabbitMQ consumer is not part of this build yet (distributed mode)")
}
