//! What the long-running binaries (worker, reducer) share at start: their flags, logging and
//! settings. Exit codes: 0 after SIGTERM/SIGINT, 1 a fatal error, 2 bad settings.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;

/// The flags of every service binary (DESIGN §3).
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// A settings file (TOML) layered over config/default.toml and under the environment.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve /health, /ready and /metrics.
    #[arg(long)]
    pub enable_health_check: bool,
    #[arg(long, default_value_t = 8080)]
    pub health_check_port: u16,
    /// Debug logging.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Exit code 2 with one line saying what is wrong.
pub fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Sets up logging and loads the settings; `Err` is the exit code to leave with.
pub fn start(args: &ServiceArgs) -> Result<Settings, ExitCode> {
    crate::telemetry::init_logging(args.verbose);
    let settings = Settings::load(args.config.as_deref()).map_err(|e| usage(&e.to_string()))?;
    if args.enable_health_check {
        tracing::warn!(
            port = args.health_check_port,
            "health endpoints are not part of this build yet"
        );
    }
    Ok(settings)
}

/// The async runtime the services run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
