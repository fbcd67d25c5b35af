//! `dispatcher run` with a broker (AMQP_URL): record the job in Postgres, publish one task per
//! clip with confirms, and with `--wait` follow the job until the reducer closes it.

use std::sync::Arc;
use std::time::Instant;

use adapters::broker::BrokerConfig;
use adapters::store::Store;
use anyhow::Context;
use app::config::Settings;
use engine::model::Manifest;
use pipeline::ClipTask;
use pipeline::JobRow;
use pipeline::services::Shutdown;
use pipeline::services::dispatch::{plan, publish_job, wait_for_job};
use pipeline::services::profiles::{ProfileError, Profiles};
use pipeline::source::{ClipSource, DateRange, new_job_id};

use crate::Failure;
use crate::cli::RunArgs;
use crate::job::{
    Operations, check_success_rate, connect_store, print_dry_run, print_outcomes, timeout,
};
use crate::progress::Progress;

pub fn run(
    settings: &Settings,
    broker: BrokerConfig,
    source: Arc<dyn ClipSource>,
    location: &str,
    dates: DateRange,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let store = connect_store(settings)?;
    let ops = Operations::start(settings, args, Some(store.clone()))?;
    ops.block_on(async {
        store.migrate().await.context("preparing the database")?;
        // Before anything is published: a location nobody can be matched against is a mistake.
        check_workers(settings, &source, &store, location).await?;
        let job_id = new_job_id();
        let plan = plan(
            source.as_ref(),
            &store,
            location,
            &dates,
            &job_id,
            args.force,
        )
        .await?;
        report_unknown_transactions(&store, location, &plan.tasks).await;
        if args.dry_run {
            print_dry_run(&plan.tasks, plan.skipped, "published");
            return Ok(());
        }
        if plan.tasks.is_empty() {
            println!(
                "nothing to do: no clips for {dates}, or all {} already done (--force redoes them)",
                plan.skipped
            );
            return Ok(());
        }
        tracing::info!(job = %job_id, location, %dates, clips = plan.tasks.len(), "job started");
        let deadline = Instant::now() + timeout(settings, args);
        ops.alerts()
            .job_started(&job_id, location, &dates.to_string())
            .await;
        let published = match publish_job(&broker, &store, &plan, location, &dates).await {
            Ok(published) => published,
            Err(e) => {
                ops.alerts()
                    .job_failed(&job_id, "publish", &e.to_string())
                    .await;
                return Err(e.into());
            }
        };
        println!(
            "job {job_id}: {published} clip(s) published to voice.clips, {} already done",
            plan.skipped
        );
        if !args.wait {
            return Ok(());
        }
        let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
        let mut bar = Progress::new();
        let waited = tokio::time::timeout_at(
            deadline.into(),
            wait_for_job(&store, &job_id, &shutdown, |job| bar.show(job)),
        )
        .await;
        bar.finish();
        let Ok(job) = waited else {
            let text = format!(
                "job {job_id} did not finish within {:?}: marked timed out",
                timeout(settings, args)
            );
            store.end_job(&job_id, "timed_out", &text).await?;
            ops.alerts().job_failed(&job_id, "timed_out", &text).await;
            return Err(Failure::TimedOut(text).into());
        };
        match job? {
            Some(job) if job.status == "completed" => {
                print_job(&job);
                check_success_rate(&job, settings)
            }
            Some(job) if job.is_open() => {
                anyhow::bail!("stopped waiting; job {job_id} goes on without this dispatcher")
            }
            Some(job) => {
                print_job(&job);
                anyhow::bail!("job {job_id} ended {}", job.status)
            }
            None => anyhow::bail!("job {job_id} is no longer in voice_jobs"),
        }
    })
}

/// Exit 1, nothing published, when the location has no worker with a voice sample.
async fn check_workers(
    settings: &Settings,
    source: &Arc<dyn ClipSource>,
    store: &Store,
    location: &str,
) -> anyhow::Result<()> {
    let manifest = Manifest::load(&settings.model_path()).context("reading the model manifest")?;
    let profiles = Profiles::new(
        Arc::clone(source),
        Arc::new(store.clone()),
        settings.prior(&manifest),
    );
    let assignment = match profiles.assignment(location).await {
        Ok(a) => a,
        Err(ProfileError::NoRoster(_)) => anyhow::bail!(
            "location {location} has no workers in the `workers` table: nothing was published"
        ),
        Err(e) => return Err(e).context("listing the location's workers and voice samples"),
    };
    for owner in &assignment.unmatched {
        tracing::warn!(
            owner,
            "voice samples match no worker of the location; they are not used"
        );
    }
    if assignment.with_samples().next().is_none() {
        anyhow::bail!(
            "location {location} has no worker with a voice sample under {}: nothing was published",
            source.samples_place(location)
        );
    }
    Ok(())
}

/// A warning for clips whose transaction id is not one of the location's `transactions`.
async fn report_unknown_transactions(store: &Store, location: &str, tasks: &[ClipTask]) {
    let ids: Vec<String> = tasks
        .iter()
        .filter_map(|t| t.clip.transaction_id.clone())
        .collect();
    if ids.is_empty() {
        return;
    }
    match store.known_transactions(location, &ids).await {
        Ok(Some(known)) => {
            let unknown: Vec<&str> = ids
                .iter()
                .filter(|id| !known.contains(*id))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                tracing::warn!(
                    clips = unknown.len(),
                    first = unknown[0],
                    "clips name a transaction that is not in `transactions` for this location; they are processed all the same"
                );
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not check the clips' transactions"),
    }
}

fn print_job(job: &JobRow) {
    println!();
    println!("job {}  {}", job.job_id, job.status);
    println!(
        "  clips          {:>6}   (skipped, already done: {})",
        job.total, job.skipped
    );
    print_outcomes([job.matched, job.no_match, job.no_speech, job.failed]);
}
