//! A standalone job (`dispatcher run` without AMQP_URL): the seed's one process per location and
//! day. The dispatcher's plan, the worker and the reducer services over in-process queues, with
//! the settings' source, transcriber and store (Postgres with DATABASE_URL, else an output
//! folder): the same stages, retries and job row as over RabbitMQ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::local::{FolderSink, Summary};
use adapters::store::Store;
use anyhow::Context;
use ops::{Alert, Alerter, Level, metrics};
use pipeline::queue::MemoryBroker;
use pipeline::services::Shutdown;
use pipeline::services::dispatch::{Plan, plan};
use pipeline::services::in_process::{InProcess, JobEnd};
use pipeline::services::reducer::ReducerService;
use pipeline::source::{DateRange, new_job_id};
use pipeline::{JobRow, ResultSink};

use crate::config::Settings;
use crate::exit::Failure;

/// What a standalone job is asked to do.
pub struct JobRequest {
    pub location: String,
    pub dates: DateRange,
    /// Postgres (DATABASE_URL): results, the job row and the profiles go there.
    pub store: Option<Store>,
    /// Where results and profiles go without a store.
    pub out_dir: PathBuf,
    /// Redo clips that already have a completed result.
    pub force: bool,
    /// Plan only: nothing is processed, stored or sent.
    pub dry_run: bool,
    pub timeout: Duration,
}

/// What a standalone job came to.
pub enum JobOutcome {
    /// A dry run: the clips that would be processed.
    Planned(Plan),
    /// Nothing to do: every clip (this many) already has a completed result.
    NothingToDo {
        skipped: usize,
    },
    Ran(Box<JobRun>),
}

/// A job that ran: how it ended and what it stored.
pub struct JobRun {
    pub job_id: String,
    pub end: JobEnd,
    /// Clips published, and clips left alone (already done).
    pub tasks: usize,
    pub summary: Summary,
    /// Where the results are, for the user.
    pub results_place: String,
    pub timeout: Duration,
}

impl JobRun {
    /// What a job that ran out of time says (its alert, and the error it exits with).
    pub fn timed_out_text(&self) -> String {
        format!(
            "job {} timed out after {:?}: {} of {} clip(s) done",
            self.job_id, self.timeout, self.summary.clips, self.tasks
        )
    }
}

/// The alerts of a job's life: started (when NOTIFY_JOB_START asks), failed, timed out.
#[derive(Clone)]
pub struct JobAlerts {
    alerter: Alerter,
    notify_start: bool,
}

impl JobAlerts {
    pub fn new(settings: &Settings, service: &'static str) -> Result<Self, Failure> {
        Ok(Self {
            alerter: settings.alerter(service).map_err(Failure::usage)?,
            notify_start: settings.notify_job_start,
        })
    }

    /// The channels, for the services of the job.
    pub fn alerter(&self) -> Alerter {
        self.alerter.clone()
    }

    pub async fn job_started(&self, job_id: &str, location: &str, dates: &str) {
        metrics().jobs_started.inc();
        if self.notify_start {
            self.alerter
                .send(&Alert {
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
        let event = if reason == "timed_out" {
            "job_timed_out"
        } else {
            "job_failed"
        };
        self.alerter
            .send(&Alert {
                event,
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
}

/// Runs `request`'s job in this process until it closes, its time is up or `shutdown` comes.
/// `progress` sees the job's row whenever its counts move.
pub async fn run_job(
    settings: &Settings,
    request: JobRequest,
    alerts: &JobAlerts,
    shutdown: &Shutdown,
    progress: impl FnMut(&JobRow),
) -> anyhow::Result<JobOutcome> {
    let deadline = Instant::now() + request.timeout;
    let location = request.location.as_str();
    let source = settings.clip_source().map_err(Failure::usage)?;
    let store = request.store.clone();
    let (sink, folder): (Arc<dyn ResultSink>, _) = match &store {
        Some(store) => (Arc::new(store.clone()), None),
        None => {
            let folder = Arc::new(FolderSink::open(&request.out_dir)?);
            (Arc::clone(&folder) as Arc<dyn ResultSink>, Some(folder))
        }
    };
    let results_place = match &store {
        Some(_) => "Postgres (voice_clip_results)".to_string(),
        None => request.out_dir.join("results.jsonl").display().to_string(),
    };
    if let Some(store) = &store {
        store.migrate().await.context("preparing the database")?;
    }
    let job_id = new_job_id();
    let dates = &request.dates;
    let plan = plan(&*source, &*sink, location, dates, &job_id, request.force).await?;
    if request.dry_run {
        return Ok(JobOutcome::Planned(plan));
    }
    if plan.tasks.is_empty() {
        return Ok(JobOutcome::NothingToDo {
            skipped: plan.skipped,
        });
    }
    let started = Instant::now();
    tracing::info!(job = %job_id, location, dates = %dates, "job started");
    alerts
        .job_started(&job_id, location, &dates.to_string())
        .await;
    let queues = MemoryBroker::new();
    let (mut worker, _batcher) = crate::wiring::worker_service(
        settings,
        Arc::new(queues.clone()),
        Arc::clone(&source),
        store.clone(),
        alerts.alerter(),
    )?;
    worker.sink = Some(Arc::clone(&sink));
    worker.quiet = true;
    // Enrolled before anything is published: a location nobody can be matched against is a
    // mistake, not a day of `no_profiles` results.
    let enrolled = match worker.enroll(&job_id, location).await {
        Ok(enrolled) => enrolled,
        Err(e) => {
            alerts.job_failed(&job_id, "error", &e.to_string()).await;
            return Err(anyhow::Error::new(e).context("enrolling the location's voices"));
        }
    };
    if let Some(folder) = &folder {
        folder
            .with_output(|out| out.write_profiles(&enrolled.profiles))
            .with_context(|| format!("writing {}", request.out_dir.display()))?;
    }
    let mut reducer = ReducerService::new(Arc::new(queues.clone()), Arc::clone(&sink));
    reducer.alerter = alerts.alerter();
    reducer.min_success_rate = settings.min_success_rate;
    reducer.max_job_duration = Duration::from_secs(settings.max_job_duration);
    let in_process = InProcess {
        queues,
        worker: Arc::new(worker),
        reducer,
        sink,
    };
    let (end, results) = in_process
        .run(&plan, location, dates, deadline, shutdown, progress)
        .await?;
    let mut summary = Summary {
        skipped: plan.skipped,
        ..Summary::default()
    };
    results.iter().for_each(|r| summary.add(r));
    summary.wall_s = started.elapsed().as_secs_f64();
    let run = JobRun {
        job_id,
        end,
        tasks: plan.tasks.len(),
        summary,
        results_place,
        timeout: request.timeout,
    };
    if matches!(run.end, JobEnd::TimedOut) {
        alerts
            .job_failed(&run.job_id, "timed_out", &run.timed_out_text())
            .await;
    }
    Ok(JobOutcome::Ran(Box::new(run)))
}
