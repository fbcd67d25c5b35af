//! `dispatcher run`: a location's clips for a date or range. Without AMQP_URL the dispatcher,
//! worker and reducer services run here, over in-process queues (standalone mode); with it,
//! the clips are published for the workers (see `publish.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use shared::config::Settings;
use shared::distributed::Shutdown;
use shared::distributed::dispatch::plan;
use shared::distributed::in_process::{InProcess, JobEnd};
use shared::distributed::reducer::ReducerService;
use shared::distributed::worker::WorkerService;
use shared::ops::health::database_check;
use shared::ops::{Alert, Alerter, Health, Level, metrics};
use shared::pipeline::{ClipTask, FolderSink, ResultSink, Summary};
use shared::queue::MemoryBroker;
use shared::source::{DateRange, is_uuid, new_job_id};
use shared::store::{JobRow, Store};

use crate::Failure;
use crate::cli::RunArgs;
use crate::progress::Progress;

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
    // Standalone: the same stages in this process, over in-process queues, with any source,
    // transcriber and store (Postgres with DATABASE_URL, else the output folder).
    let source = settings
        .clip_source()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = match &settings.database_url {
        Some(_) => Some(crate::publish::connect_store(&settings)?),
        None => None,
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&location));
    let (sink, folder): (Arc<dyn ResultSink>, _) = match &store {
        Some(store) => (Arc::new(store.clone()), None),
        None => {
            let folder = Arc::new(FolderSink::open(&out_dir)?);
            (Arc::clone(&folder) as Arc<dyn ResultSink>, Some(folder))
        }
    };
    let results_place = match &store {
        Some(_) => "Postgres (voice_clip_results)".to_string(),
        None => out_dir.join("results.jsonl").display().to_string(),
    };
    let deadline = Instant::now() + timeout(&settings, args);
    let ops = Operations::start(&settings, args, store.clone())?;
    ops.block_on(async {
        if let Some(store) = &store {
            store.migrate().await.context("preparing the database")?;
        }
        let job_id = new_job_id();
        let plan = plan(&*source, &*sink, &location, &dates, &job_id, args.force).await?;
        if args.dry_run {
            print_dry_run(&plan.tasks, plan.skipped, "written");
            return Ok(());
        }
        let started = Instant::now();
        let job = Job {
            id: &job_id,
            location: &location,
            dates: &dates,
            results: &results_place,
        };
        if plan.tasks.is_empty() {
            let summary = Summary {
                skipped: plan.skipped,
                ..Summary::default()
            };
            print_summary(&summary, &job);
            return Ok(());
        }
        tracing::info!(job = %job_id, location = %location, dates = %dates, "job started");
        ops.job_started(&job_id, &location, &dates.to_string())
            .await;
        let queues = MemoryBroker::new();
        let (mut worker, _batcher) = WorkerService::from_settings(
            &settings,
            Arc::new(queues.clone()),
            Arc::clone(&source),
            store.clone(),
            ops.alerter(),
        )?;
        worker.sink = Some(Arc::clone(&sink));
        worker.quiet = true;
        // Enrolled before anything is published: a location nobody can be matched against is
        // a mistake, not a day of `no_profiles` results.
        let enrolled = match worker.enroll(&job_id, &location).await {
            Ok(enrolled) => enrolled,
            Err(e) => {
                ops.job_failed(&job_id, "error", &e.to_string()).await;
                return Err(anyhow::Error::new(e).context("enrolling the location's voices"));
            }
        };
        if let Some(folder) = &folder {
            folder
                .with_output(|out| out.write_profiles(&enrolled.profiles))
                .with_context(|| format!("writing {}", out_dir.display()))?;
        }
        let mut reducer = ReducerService::new(Arc::new(queues.clone()), Arc::clone(&sink));
        reducer.alerter = ops.alerter();
        reducer.min_success_rate = settings.min_success_rate;
        reducer.max_job_duration = Duration::from_secs(settings.max_job_duration);
        let in_process = InProcess {
            queues,
            worker: Arc::new(worker),
            reducer,
            sink,
        };
        let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
        let mut bar = Progress::new();
        let ran = in_process
            .run(&plan, &location, &dates, deadline, &shutdown, |job| {
                bar.show(job);
            })
            .await;
        bar.finish();
        let (end, results) = ran?;
        let mut summary = Summary {
            skipped: plan.skipped,
            ..Summary::default()
        };
        results.iter().for_each(|r| summary.add(r));
        summary.wall_s = started.elapsed().as_secs_f64();
        print_summary(&summary, &job);
        match end {
            // The reducer sent the alert, if any, as it closed the job.
            JobEnd::Closed(row) if row.status == "completed" => check_success_rate(&row, &settings),
            JobEnd::Closed(row) => anyhow::bail!("job {job_id} ended {}", row.status),
            JobEnd::TimedOut => {
                let text = format!(
                    "job {job_id} timed out after {:?}: {} of {} clip(s) done",
                    timeout(&settings, args),
                    summary.clips,
                    plan.tasks.len()
                );
                ops.job_failed(&job_id, "timed_out", &text).await;
                Err(Failure::TimedOut(text).into())
            }
            JobEnd::Stopped => anyhow::bail!("stopped before job {job_id} finished"),
        }
    })
}

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

    pub fn alerter(&self) -> Alerter {
        self.alerter.clone()
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

/// The job a summary is about, and where its results are.
struct Job<'a> {
    id: &'a str,
    location: &'a str,
    dates: &'a DateRange,
    results: &'a str,
}

fn print_summary(s: &Summary, job: &Job) {
    println!();
    println!(
        "job {}  location {}  dates {}",
        job.id, job.location, job.dates
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
    println!("  results        {}", job.results);
}
