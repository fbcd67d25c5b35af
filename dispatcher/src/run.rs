//! `dispatcher run`: a location's clips for a date or range. Without AMQP_URL the whole job runs
//! here ([`app::run::run_job`]: the dispatcher, worker and reducer services over in-process
//! queues); with it, the clips are published for the workers (see `publish.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use app::config::Settings;
use app::run::{JobOutcome, JobRequest, JobRun, run_job};
use pipeline::services::Shutdown;
use pipeline::services::in_process::JobEnd;
use pipeline::source::{DateRange, is_uuid};

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
    let store = match &settings.database_url {
        Some(_) => Some(crate::job::connect_store(&settings)?),
        None => None,
    };
    let request = JobRequest {
        location: location.clone(),
        dates,
        store: store.clone(),
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(&location)),
        force: args.force,
        dry_run: args.dry_run,
        timeout: timeout(&settings, args),
    };
    let ops = Operations::start(&settings, args, store)?;
    ops.block_on(async {
        let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
        let mut bar = Progress::new();
        let ran = run_job(&settings, request, ops.alerts(), &shutdown, |job| bar.show(job)).await;
        bar.finish();
        let run = match ran? {
            JobOutcome::Planned(plan) => {
                print_dry_run(&plan.tasks, plan.skipped, "written");
                return Ok(());
            }
            JobOutcome::NothingToDo { skipped } => {
                println!(
                    "nothing to do: no clips for {dates}, or all {skipped} already done (--force redoes them)"
                );
                return Ok(());
            }
            JobOutcome::Ran(run) => run,
        };
        print_summary(&run, &location, &dates);
        match &run.end {
            // The reducer sent the alert, if any, as it closed the job.
            JobEnd::Closed(row) if row.status == "completed" => check_success_rate(row, &settings),
            JobEnd::Closed(row) => anyhow::bail!("job {} ended {}", run.job_id, row.status),
            JobEnd::TimedOut => Err(Failure::TimedOut(run.timed_out_text()).into()),
            JobEnd::Stopped => anyhow::bail!("stopped before job {} finished", run.job_id),
        }
    })
}

fn print_summary(run: &JobRun, location: &str, dates: &DateRange) {
    let s = &run.summary;
    println!();
    println!("job {}  location {location}  dates {dates}", run.job_id);
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
    println!("  results        {}", run.results_place);
}
