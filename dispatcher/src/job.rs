//! What both ways of running a job share (`run.rs` in one process, `publish.rs` over
//! RabbitMQ): its deadline, its operations (health endpoints, job alerts), the success check
//! and what it prints.

use std::time::Duration;

use anyhow::Context;

use adapters::store::Store;
use app::config::Settings;
use app::run::JobAlerts;
use ops::{Health, Secret};
use pipeline::services::Shutdown;
use pipeline::{ClipTask, JobRow};

use crate::Failure;
use crate::cli::RunArgs;

/// A completed job with too few of its clips processed is a failed run (exit 1).
pub fn check_success_rate(job: &JobRow, settings: &Settings) -> anyhow::Result<()> {
    if job.success_rate() < settings.min_success_rate {
        anyhow::bail!(
            "job {}: {:.0} % of the clips were processed, under MIN_SUCCESS_RATE {:.0} %",
            job.job_id,
            100.0 * job.success_rate(),
            100.0 * settings.min_success_rate
        );
    }
    Ok(())
}

/// `--timeout`, else MAX_JOB_DURATION.
pub fn timeout(settings: &Settings, args: &RunArgs) -> Duration {
    args.timeout
        .unwrap_or(Duration::from_secs(settings.max_job_duration))
}

/// What a run does besides its work: the health endpoints (`--enable-health-check`), the job
/// metrics, and alerts. Holds the runtime they need while the run lasts.
pub struct Operations {
    runtime: tokio::runtime::Runtime,
    alerts: JobAlerts,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Operations {
    pub fn start(
        settings: &Settings,
        args: &RunArgs,
        store: Option<Store>,
    ) -> anyhow::Result<Self> {
        let runtime = app::service::runtime().context("starting the async runtime")?;
        let alerts = JobAlerts::new(settings, "dispatcher")?;
        let (stop, shutdown) = Shutdown::manual();
        if args.enable_health_check {
            let mut health = Health::new("dispatcher", settings.limits());
            if let Some(store) = &store {
                health = health.check("database", store.health_check());
            }
            runtime.block_on(app::service::operate(
                health,
                args.health_check_port,
                alerts.alerter(),
                settings,
                shutdown,
            ));
        }
        Ok(Self {
            runtime,
            alerts,
            _stop: stop,
        })
    }

    /// The job's alerts (started, failed) and their channels.
    pub fn alerts(&self) -> &JobAlerts {
        &self.alerts
    }

    pub fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }
}

/// What `--dry-run` shows: clip, transaction, size; then what was left alone.
pub fn print_dry_run(tasks: &[ClipTask], skipped: usize, nothing: &str) {
    println!("{:<56} {:<38} {:>10}", "clip", "transaction", "bytes");
    for t in tasks {
        println!(
            "{:<56} {:<38} {:>10}",
            t.clip.name,
            t.clip.transaction_id.as_deref().unwrap_or("-"),
            t.clip.size
        );
    }
    println!(
        "{} clip(s) would be processed, {skipped} already done (--force redoes them); nothing was {nothing}",
        tasks.len()
    );
}

/// Clips per outcome: matched, no match, no speech, failed.
pub fn print_outcomes<N: std::fmt::Display>(counts: [N; 4]) {
    for (label, n) in ["matched", "no match", "no speech", "failed"]
        .iter()
        .zip(counts)
    {
        println!("  {label:<14} {n:>6}");
    }
}

/// DATABASE_URL, which distributed mode requires (exit 2 without it).
pub fn database_url(settings: &Settings) -> anyhow::Result<&Secret> {
    let Some(database_url) = &settings.database_url else {
        let hint = if settings.supabase_url.is_some() {
            " (SUPABASE_URL is the REST endpoint; the Postgres connection string is in \
             Supabase's Project settings → Database)"
        } else {
            ""
        };
        return Err(Failure::Usage(format!(
            "AMQP_URL is set, so DATABASE_URL is needed too: jobs, results and voice profiles \
             live in Postgres{hint}"
        ))
        .into());
    };
    Ok(database_url)
}

/// The store of distributed mode.
pub fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(
        database_url(settings)?,
        settings.database_ca_cert.as_deref(),
    )
    .map_err(|e| Failure::Usage(e.to_string()).into())
}
