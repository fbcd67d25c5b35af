//! What the long-running binaries (worker, reducer) share at start: their flags, logging and
//! settings. Exit codes: 0 after SIGTERM/SIGINT, 1 a fatal error, 2 bad settings.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Settings;
use crate::exit::Failure;
use engine::system;
use ops::health::{API_FAILURE_WINDOW, serve, set_api_failures_in_window};
use ops::{Alert, Alerter, Health, Level, metrics};
use pipeline::services::Shutdown;

// The flags of every service binary (DESIGN §3).
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

/// A long-running binary's life: logging, its settings, the runtime and the signal handlers,
/// then `run` until it ends or a signal stops it.
pub fn run_service<F>(args: &ServiceArgs, run: F) -> Result<(), Failure>
where
    F: AsyncFnOnce(&Settings, u16, Shutdown) -> Result<(), Failure>,
{
    crate::telemetry::init_logging(args.verbose);
    let settings = Settings::load(args.config.as_deref()).map_err(Failure::usage)?;
    runtime()
        .context("starting the async runtime")?
        .block_on(async {
            let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
            run(&settings, args.health_check_port, shutdown).await
        })
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
        let mut window = FailureWindow::new(API_FAILURE_WINDOW);
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
            let failures = window.record(Instant::now(), metrics().api_failures());
            set_api_failures_in_window(failures);
            let over = limits.max_api_failures.is_some_and(|max| failures > max);
            if over && !api_over {
                alerter
                    .send(&Alert {
                        event: "api_failures",
                        level: Level::Critical,
                        title: "voice diarization: API failures over MAX_API_FAILURES".into(),
                        text: format!(
                            "{failures} calls to AssemblyAI or Google Drive failed after their retries in the last {} min",
                            API_FAILURE_WINDOW.as_secs() / 60
                        ),
                        fields: Vec::new(),
                    })
                    .await;
            }
            // Alerts again only after the rate has come back under the limit.
            api_over = over;
            tokio::select! {
                () = tokio::time::sleep(SAMPLE_EVERY) => {}
                () = shutdown.wait() => return,
            }
        }
    });
}

/// How often memory and API failures are looked at.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Failed calls within a sliding window, from samples of the ever-growing counter.
struct FailureWindow {
    span: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl FailureWindow {
    fn new(span: Duration) -> Self {
        Self {
            span,
            samples: VecDeque::new(),
        }
    }

    /// Records the counter's value `total` at `now`; returns the failures since `now - span`.
    fn record(&mut self, now: Instant, total: u64) -> u64 {
        self.samples.push_back((now, total));
        // Keep one sample at or before the window's start: the baseline to count from.
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= self.span)
        {
            self.samples.pop_front();
        }
        let baseline = self.samples.front().map_or(total, |(_, t)| *t);
        total.saturating_sub(baseline)
    }
}

/// The async runtime the services run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_within_the_window_only() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut w = FailureWindow::new(Duration::from_secs(300));
        assert_eq!(w.record(at(0), 0), 0);
        assert_eq!(w.record(at(10), 11), 11);
        assert_eq!(w.record(at(200), 15), 15);
        // The 11 of the first minute leave the window; the 4 since stay.
        assert_eq!(w.record(at(320), 15), 4);
        assert_eq!(w.record(at(600), 15), 0);
        // A process that starts with failures already counted (a restart) starts from them.
        let mut w = FailureWindow::new(Duration::from_secs(300));
        assert_eq!(w.record(at(0), 40), 0);
    }
}
