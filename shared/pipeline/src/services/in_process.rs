//! A whole job in one process (standalone mode): the dispatcher's plan and publish, the worker
//! service and the reducer service, exactly as in distributed mode, over in-process queues
//! ([`MemoryBroker`]) instead of RabbitMQ. The same retries, delay queues, dead letters and job
//! row; the results go to whichever [`ResultSink`] the run has (Postgres or an output folder).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Shutdown;
use super::dispatch::{DispatchError, Plan, publish_job, wait_for_job};
use super::reducer::ReducerService;
use super::worker::WorkerService;
use crate::JobRow;
use crate::queue::MemoryBroker;
use crate::source::DateRange;
use crate::{ClipResult, ResultSink};

/// What became of an in-process job.
pub enum JobEnd {
    /// The job closed (completed, or failed with nothing published): its row.
    Closed(JobRow),
    /// The deadline came first; the job is marked `timed_out`, what was stored stays.
    TimedOut,
    /// Asked to stop (SIGTERM, SIGINT) before the job closed.
    Stopped,
}

/// The services of one in-process job, wired to the same queues and sink.
pub struct InProcess {
    pub queues: MemoryBroker,
    pub worker: Arc<WorkerService>,
    pub reducer: ReducerService,
    pub sink: Arc<dyn ResultSink>,
}

impl InProcess {
    /// Publishes `plan` and runs the services until its job closes, `deadline` passes or
    /// `shutdown` is asked for. `progress` sees the job's row whenever its counts move; the
    /// results stored are returned beside the end.
    pub async fn run(
        self,
        plan: &Plan,
        location: &str,
        dates: &DateRange,
        deadline: Instant,
        shutdown: &Shutdown,
        progress: impl FnMut(&JobRow),
    ) -> Result<(JobEnd, Vec<ClipResult>), DispatchError> {
        let Some(job_id) = plan.tasks.first().map(|t| t.job_id.clone()) else {
            return Ok((JobEnd::Stopped, Vec::new()));
        };
        let stored: Arc<Mutex<BTreeMap<String, ClipResult>>> = Arc::default();
        let mut reducer = self.reducer;
        let kept = Arc::clone(&stored);
        reducer.on_stored = Some(Box::new(move |result: &ClipResult| {
            if let Ok(mut kept) = kept.lock() {
                kept.insert(result.clip_key.clone(), result.clone());
            }
        }));
        let (stop, services_shutdown) = Shutdown::manual();
        let worker = Arc::clone(&self.worker);
        let worker_shutdown = services_shutdown.clone();
        let worker_task = tokio::spawn(async move { worker.run(worker_shutdown).await });
        let reducer_task = tokio::spawn(async move { reducer.run(services_shutdown).await });

        let published = publish_job(&self.queues, &*self.sink, plan, location, dates).await;
        let end = match published {
            Err(e) => Err(e),
            Ok(_) => {
                let waited = tokio::time::timeout_at(
                    deadline.into(),
                    wait_for_job(&*self.sink, &job_id, shutdown, progress),
                )
                .await;
                match waited {
                    Ok(Ok(Some(row))) if !row.is_open() => Ok(JobEnd::Closed(row)),
                    Ok(Ok(_)) => Ok(JobEnd::Stopped),
                    Ok(Err(e)) => Err(DispatchError::Store(e)),
                    Err(_) => self
                        .sink
                        .end_job(&job_id, "timed_out", "the run's timeout passed")
                        .await
                        .map(|()| JobEnd::TimedOut)
                        .map_err(DispatchError::Store),
                }
            }
        };
        let _ = stop.send(true);
        if matches!(end, Ok(JobEnd::Closed(_))) {
            // Nothing is in flight any more: both stop at once.
            let _ = worker_task.await;
            let _ = reducer_task.await;
        } else {
            // Clips in hand are left unfinished: the process is about to exit.
            worker_task.abort();
            reducer_task.abort();
        }
        let results = stored
            .lock()
            .map(|kept| kept.values().cloned().collect())
            .unwrap_or_default();
        end.map(|end| (end, results))
    }
}
