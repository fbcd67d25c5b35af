//! `dispatcher run`: a location's clips for a date or range. Without AMQP_URL the dispatcher,
//! worker and reducer stages run here, over channels (standalone mode); with it, the clips are
//! published for the workers (see `publish.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use shared::config::Settings;
use shared::distributed::Shutdown;
use shared::matching::ProfileSet;
use shared::model::Manifest;
use shared::ops::health::database_check;
use shared::ops::{Alert, Alerter, Health, Level, enrollment_alert, metrics};
use shared::pipeline::{
    ClipResult, ClipTask, OutputDir, RunOptions, StandaloneError, Summary, plan_tasks,
    run_standalone,
};
use shared::source::{DateRange, LocalSource, is_uuid, new_job_id};
use shared::store::Store;

use crate::Failure;
use crate::cli::RunArgs;

pub fn run(config: Option<&Path>, args: &RunArgs) -> anyhow::Result<()> {
    // Every argument is checked before anything is read or contacted.
    if !is_uuid(&args.location_id) {
        return Err(
            Failure::Usage(format!("LOCATION_ID `{}` is not a UUID", args.location_id)).into(),
        );
    }
    let dates = DateRange::parse(&args.dates).map_err(|e| Failure::Usage(format!("DATE {e}")))?;
    let settings = Settings::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    if !settings.clips_folder_is_dated() && dates.days().len() > 1 {
        return Err(Failure::Usage(
            "VOICE_CLIPS_FOLDER has no {date}, so it cannot tell one day's clips from another's: \
             give one DATE, or a pattern such as Clips_{date}_*"
                .into(),
        )
        .into());
    }
    let location = args.location_id.to_ascii_lowercase();
    if settings.amqp_url.is_some() {
        // A missing DATABASE_URL is a usage error (exit 2), told before the checks fail on it.
        crate::publish::database_url(&settings)?;
    }
    if !args.skip_validation && !args.dry_run {
        crate::validate::before_run(&settings)?;
    }
    if let Some(broker) = settings
        .broker()
        .map_err(|e| Failure::Usage(e.to_string()))?
    {
        let source = settings
            .clip_source()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        return crate::publish::run(&settings, broker, source, &location, dates, args);
    }
    if settings.voice_source != "local" {
        return Err(Failure::Usage(format!(
            "VOICE_SOURCE={} needs the workers: set AMQP_URL (standalone mode reads VOICE_LOCAL_ROOT)",
            settings.voice_source
        ))
        .into());
    }
    let source = LocalSource::new(&settings.voice_local_root);
    let manifest = Manifest::load(&settings.model_path()).context("reading the model manifest")?;
    let opts = RunOptions {
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(&location)),
        location_id: location,
        dates,
        force: args.force,
        parallel: settings.voice_parallel_workers,
        prior: settings.prior(&manifest),
        min_utterance_ms: settings.voice_min_utterance_ms,
        max_clip_bytes: settings.max_clip_bytes(),
        job_id: new_job_id(),
        deadline: Some(Instant::now() + timeout(&settings, args)),
    };

    if args.dry_run {
        let out = OutputDir::open(&opts.out_dir)
            .with_context(|| format!("reading {}", opts.out_dir.display()))?;
        let (tasks, skipped) = plan_tasks(&source, &opts, &out)?;
        print_dry_run(&tasks, skipped, "written");
        return Ok(());
    }

    let encoders = settings.encoders().context("loading the speaker model")?;
    let ops = Operations::start(&settings, args, None)?;
    tracing::info!(job = %opts.job_id, location = %opts.location_id, dates = %opts.dates, "job started");
    ops.block_on(ops.job_started(&opts.job_id, &opts.location_id, &opts.dates.to_string()));
    let enrolled = |voices: &ProfileSet| {
        if voices.calibration.has_issues() {
            ops.block_on(ops.send(enrollment_alert(
                &opts.job_id,
                &opts.location_id,
                &voices.calibration,
            )));
        }
    };
    let summary = match run_standalone(&source, encoders, &opts, enrolled, record_result) {
        Ok(summary) => summary,
        Err(StandaloneError::TimedOut { summary, planned }) => {
            print_summary(&summary, &opts);
            let text = format!(
                "job {} timed out after {:?}: {} of {planned} clip(s) done",
                opts.job_id,
                timeout(&settings, args),
                summary.clips
            );
            ops.block_on(ops.job_failed(&opts.job_id, "timed_out", &text));
            return Err(Failure::TimedOut(text).into());
        }
        Err(e) => {
            ops.block_on(ops.job_failed(&opts.job_id, "error", &e.to_string()));
            return Err(e.into());
        }
    };
    print_summary(&summary, &opts);
    // As for a distributed job: the clips already done (skipped) count as processed.
    let all = summary.clips + summary.skipped;
    let rate = if all == 0 {
        1.0
    } else {
        (all - summary.failed) as f64 / all as f64
    };
    if rate < settings.min_success_rate {
        let text = format!(
            "job {}: {:.0} % of the clips were processed, under MIN_SUCCESS_RATE {:.0} %",
            opts.job_id,
            100.0 * rate,
            100.0 * settings.min_success_rate
        );
        ops.block_on(ops.job_failed(&opts.job_id, "low_success_rate", &text));
        anyhow::bail!(text);
    }
    metrics().jobs_completed.inc();
    Ok(())
}

fn record_result(result: &ClipResult) {
    result.log();
    metrics()
        .clips
        .with_label_values(&[result.status.as_str()])
        .inc();
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
    alerter: Alerter,
    notify_start: bool,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Operations {
    pub fn start(
        settings: &Settings,
        args: &RunArgs,
        store: Option<Store>,
    ) -> anyhow::Result<Self> {
        let runtime = shared::service::runtime().context("starting the async runtime")?;
        let alerter = settings
            .alerter("dispatcher")
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let (stop, shutdown) = Shutdown::manual();
        if args.enable_health_check {
            let mut health = Health::new("dispatcher", settings.limits());
            if let Some(store) = &store {
                health = health.check("database", database_check(store));
            }
            runtime.block_on(shared::service::operate(
                health,
                args.health_check_port,
                alerter.clone(),
                settings,
                shutdown,
            ));
        }
        Ok(Self {
            runtime,
            alerter,
            notify_start: settings.notify_job_start,
            _stop: stop,
        })
    }

    pub async fn job_started(&self, job_id: &str, location: &str, dates: &str) {
        metrics().jobs_started.inc();
        if self.notify_start {
            self.send(Alert {
                event: "job_started",
                level: Level::Info,
                title: format!("voice diarization: job {job_id} started"),
                text: format!("location {location}, {dates}"),
                fields: vec![
                    ("job".into(), job_id.into()),
                    ("location".into(), location.into()),
                    ("dates".into(), dates.into()),
                ],
            })
            .await;
        }
    }

    pub async fn job_failed(&self, job_id: &str, reason: &str, text: &str) {
        metrics().jobs_failed.with_label_values(&[reason]).inc();
        self.send(Alert {
            event: if reason == "timed_out" {
                "job_timed_out"
            } else {
                "job_failed"
            },
            level: Level::Critical,
            title: format!("voice diarization: job {job_id} failed"),
            text: text.to_string(),
            fields: vec![
                ("job".into(), job_id.into()),
                ("reason".into(), reason.into()),
            ],
        })
        .await;
    }

    pub async fn send(&self, alert: Alert) {
        self.alerter.send(&alert).await;
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

fn print_summary(s: &Summary, opts: &RunOptions) {
    println!();
    println!(
        "job {}  location {}  dates {}",
        opts.job_id, opts.location_id, opts.dates
    );
    println!(
        "  clips          {:>6}   (skipped, already done: {})",
        s.clips, s.skipped
    );
    print_outcomes([s.matched, s.no_match, s.no_speech, s.failed]);
    for (worker, n) in &s.per_worker {
        println!("    {worker:<20} {n:>4}");
    }
    println!("  audio          {:>9.3} h", s.audio_s / 3600.0);
    println!(
        "  wall time      {:>9.1} s  ({:.0}x real time)",
        s.wall_s,
        s.speed()
    );
    println!(
        "  results        {}",
        opts.out_dir.join("results.jsonl").display()
    );
}
