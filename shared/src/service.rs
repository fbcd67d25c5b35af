//! What the long-running binaries (worker, reducer) share at start: their flags, logging and
//! settings. Exit codes: 0 after SIGTERM/SIGINT, 1 a fatal error, 2 bad settings.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::distributed::Shutdown;
use crate::ops::health::serve;
use crate::ops::{Alert, Alerter, Health, Level, metrics, system};

/// The flags of every service binary (DESIGN §3).
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// A settings file (TOML) layered over config/default.toml and under the environment.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accepted for the predecessor's command lines: the services always serve /health,
    /// /ready and /metrics.
    #[arg(long)]
    pub enable_health_check: bool,
    /// Port of /health, /ready and /metrics (0: any free port, logged at start).
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
    Settings::load(args.config.as_deref()).map_err(|e| usage(&e.to_string()))
}

/// Serves `/health`, `/ready` and `/metrics` on `port` and watches memory and API failures,
/// alerting when they go over their limits, until `shutdown`. A port already taken is logged
/// and the service runs on without endpoints (its probes then say so).
pub async fn operate(
    health: Health,
    port: u16,
    alerter: Alerter,
    settings: &Settings,
    shutdown: Shutdown,
) {
    let stop = {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    };
    match serve(Arc::new(health), port, stop).await {
        Ok(address) => tracing::info!(%address, "serving /health, /ready and /metrics"),
        Err(e) => tracing::error!(port, error = %e, "cannot serve the health endpoints"),
    }
    let limits = settings.limits();
    tokio::spawn(async move {
        let (mut memory_over, mut api_over) = (false, false);
        loop {
            if let Some(rss) = system::rss_bytes() {
                metrics()
                    .memory_rss_bytes
                    .set(i64::try_from(rss).unwrap_or(i64::MAX));
                let over = limits.max_memory_bytes.is_some_and(|max| rss > max);
                if over && !memory_over {
                    alerter
                        .send(&Alert {
                            event: "memory",
                            level: Level::Warning,
                            title: "voice diarization: memory over MAX_MEMORY_GB".into(),
                            text: format!(
                                "resident memory is {:.2} GB, over {:.2} GB",
                                rss as f64 / 1e9,
                                limits.max_memory_bytes.unwrap_or(0) as f64 / 1e9
                            ),
                            fields: Vec::new(),
                        })
                        .await;
                }
                memory_over = over;
            }
            if let Some(gpu) = system::gpu() {
                metrics()
                    .gpu_memory_used_bytes
                    .set(i64::try_from(gpu.used_bytes).unwrap_or(i64::MAX));
            }
            let failures = metrics().api_failures();
            if limits.max_api_failures.is_some_and(|max| failures > max) && !api_over {
                api_over = true;
                alerter
                    .send(&Alert {
                        event: "api_failures",
                        level: Level::Critical,
                        title: "voice diarization: API failures over MAX_API_FAILURES".into(),
                        text: format!(
                            "{failures} calls to AssemblyAI or Google Drive failed after their retries"
                        ),
                        fields: Vec::new(),
                    })
                    .await;
            }
            tokio::select! {
                () = tokio::time::sleep(SAMPLE_EVERY) => {}
                () = shutdown.wait() => return,
            }
        }
    });
}

/// How often memory and API failures are looked at.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The async runtime the services run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
