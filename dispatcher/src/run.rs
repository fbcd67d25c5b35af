//! `dispatcher run`: a location's clips for a date or range. Without AMQP_URL the dispatcher,
//! worker and reducer services run here, over in-process queues (standalone mode); with it,
//! the clips are published for the workers (see `publish.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::local::{FolderSink, Summary};
use anyhow::Context;
use app::config::Settings;
use pipeline::ResultSink;
use pipeline::queue::MemoryBroker;
use pipeline::services::Shutdown;
use pipeline::services::dispatch::plan;
use pipeline::services::in_process::{InProcess, JobEnd};
use pipeline::services::reducer::ReducerService;
use pipeline::source::{DateRange, is_uuid, new_job_id};

use crate::Failure;
use crate::cli::RunArgs;
use crate::job::{Operations, check_success_rate, print_dry_run, print_outcomes, timeout};
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
        crate::job::database_url(&settings)?;
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
        Some(_) => Some(crate::job::connect_store(&settings)?),
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
        let (mut worker, _batcher) = app::wiring::worker_service(
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
