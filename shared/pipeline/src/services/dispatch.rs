//! The dispatcher's side of distributed mode: plan the job's tasks against the store, record
//! the job, publish with confirms, and follow the job until the reducer closes it.

use std::time::Duration;

use super::Shutdown;
use crate::ClipTask;
use crate::ResultSink;
use crate::SinkError;
use crate::queue::topology::CLIPS;
use crate::queue::{BrokerError, Connect, Outgoing, encode, task_envelope, task_headers};
use crate::source::{ClipSource, DateRange, SourceError};
use crate::{JobRow, NewJob};

/// Publishing is retried this many times (reconnecting in between) before the job is failed.
const PUBLISH_ROUNDS: usize = 3;

/// Tasks published between two updates of the job's total.
const PUBLISH_CHUNK: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] SinkError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{published} of {planned} clip(s) were published; the rest could not be: {last_error}")]
    Incomplete {
        published: usize,
        planned: usize,
        last_error: String,
    },
}

pub struct Plan {
    pub tasks: Vec<ClipTask>,
    /// Clips that already have a completed result (not re-done without `force`).
    pub skipped: usize,
}

/// The tasks of every day of `dates`, less the clips the store already has a completed result
/// for (unless `force`).
pub async fn plan(
    source: &dyn ClipSource,
    store: &dyn ResultSink,
    location: &str,
    dates: &DateRange,
    job_id: &str,
    force: bool,
) -> Result<Plan, DispatchError> {
    let mut clips = Vec::new();
    for day in dates.days() {
        clips.extend(source.list_clips(location, day).await?);
    }
    let done = if force || clips.is_empty() {
        Default::default()
    } else {
        let keys: Vec<String> = clips.iter().map(|c| c.key.clone()).collect();
        store.completed_clips(&keys).await?
    };
    let before = clips.len();
    let tasks: Vec<ClipTask> = clips
        .into_iter()
        .filter(|c| !done.contains(&c.key))
        .map(|clip| ClipTask {
            job_id: job_id.to_string(),
            location_id: location.to_string(),
            clip,
            attempt: 1,
            transcript_id: None,
        })
        .collect();
    Ok(Plan {
        skipped: before - tasks.len(),
        tasks,
    })
}

/// Records the job and publishes its tasks; a task counts only once the broker confirmed it.
/// Returns how many were published. If some never could be, the job's total is cut to what
/// was published (so the job can still close) and the error says how many are missing.
pub async fn publish_job(
    queues: &dyn Connect,
    store: &dyn ResultSink,
    plan: &Plan,
    location: &str,
    dates: &DateRange,
) -> Result<usize, DispatchError> {
    let Some(first) = plan.tasks.first() else {
        return Ok(0);
    };
    let job_id = first.job_id.as_str();
    let (from, to) = (dates.start.to_string(), dates.end.to_string());
    let handed = store
        .create_job(&NewJob {
            job_id,
            location_id: location,
            date_from: &from,
            date_to: &to,
            planned: i32::try_from(plan.tasks.len()).unwrap_or(i32::MAX),
            skipped: i32::try_from(plan.skipped).unwrap_or(i32::MAX),
        })
        .await?;
    for earlier in &handed {
        tracing::warn!(job = %earlier, to = job_id, "a job still running for this location and these days hands its clips over to this one");
    }

    let bodies = plan
        .tasks
        .iter()
        .map(encode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(BrokerError::from)?;
    let mut pending: Vec<usize> = (0..plan.tasks.len()).collect();
    let mut last_error = String::new();
    let name = format!("voice-dispatcher-{}", std::process::id());
    for round in 0..PUBLISH_ROUNDS {
        let broker = match queues.connect(&name, Some(3)).await {
            Ok(b) => b,
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        // In chunks, each counted into the job's total once the broker confirmed it: a
        // dispatcher killed mid-publish leaves the total it really published.
        let mut failed = Vec::new();
        for chunk in pending.chunks(PUBLISH_CHUNK) {
            let outcomes = broker
                .publish_all(
                    chunk
                        .iter()
                        .map(|&i| {
                            let task = &plan.tasks[i];
                            let envelope = task_envelope(task, task_headers(task, None));
                            Outgoing::to_queue(CLIPS, &bodies[i], envelope)
                        })
                        .collect(),
                )
                .await;
            let mut confirmed = 0;
            for (i, outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => confirmed += 1,
                    Err(e) => {
                        last_error = e.to_string();
                        failed.push(*i);
                    }
                }
            }
            store.add_published(job_id, confirmed).await?;
        }
        // What the workers have in front of them now (the metric "queue depth seen by the
        // dispatcher"); only informative, so a failure to read it is not an error.
        if let Ok(depth) = broker.queue_depth(CLIPS).await {
            ops::metrics()
                .queue_depth
                .with_label_values(&[CLIPS])
                .set(i64::from(depth));
            tracing::info!(queue = CLIPS, depth, "queue depth after publishing");
        }
        broker.close().await;
        if !failed.is_empty() {
            tracing::warn!(round, failed = failed.len(), error = %last_error, "some clips were not confirmed; publishing them again");
        }
        pending = failed;
        if pending.is_empty() {
            break;
        }
    }
    let published = plan.tasks.len() - pending.len();
    // Failed before publishing is declared over: a total of 0 would close the job as completed.
    if published == 0 {
        store.end_job(job_id, "failed", &last_error).await?;
    }
    store.finish_publishing(job_id).await?;
    if pending.is_empty() {
        return Ok(published);
    }
    Err(DispatchError::Incomplete {
        published,
        planned: plan.tasks.len(),
        last_error,
    })
}

/// Polls the job until it is closed (or `shutdown`), calling `progress` whenever its counters
/// move. A database that is briefly away is waited for, not an error.
pub async fn wait_for_job(
    store: &dyn ResultSink,
    job_id: &str,
    shutdown: &Shutdown,
    mut progress: impl FnMut(&JobRow),
) -> Result<Option<JobRow>, SinkError> {
    let mut last: Option<JobRow> = None;
    let mut failures = 0u32;
    loop {
        match store.job(job_id).await {
            Ok(Some(job)) => {
                failures = 0;
                if last.as_ref() != Some(&job) {
                    progress(&job);
                }
                if !job.is_open() {
                    return Ok(Some(job));
                }
                last = Some(job);
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "reading the job's progress failed; still waiting");
                if failures > 120 {
                    return Err(e);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = shutdown.wait() => return Ok(last),
        }
    }
}
