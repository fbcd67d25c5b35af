//! The reducer service: consumes `voice.results` in batches, upserts each batch in one
//! transaction, recounts the jobs it touched (closing those with all their results), and acks
//! the batch only after the commit. While the database is away it keeps the batch unacked and
//! retries; while the broker is away it reconnects. Either way no result is lost, and one
//! delivered twice changes nothing.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::dead::{self, DeadTask};
use super::worker::CONNECTION_CHECK;
use super::{Shutdown, poison, reconnecting};
use crate::JobRow;
use crate::ResultSink;
use crate::SinkError;
use crate::queue::topology::{DEAD_CLIPS, RESULTS};
use crate::queue::{BrokerError, Connect, Deliveries, Received, Transport, dead_letter, decode};
use crate::{ClipResult, ClipTask};
use ops::{Alert, Alerter, Level, metrics};

/// What sees each stored result.
pub type Observer = Box<dyn Fn(&ClipResult) + Send + Sync>;

mod jobs;

pub use jobs::job_alert;

pub struct ReducerService {
    /// RabbitMQ (AMQP_URL), or a standalone run's in-process queues.
    pub queues: Arc<dyn Connect>,
    /// Postgres, or a standalone run's output folder.
    pub store: Arc<dyn ResultSink>,
    /// Results per transaction at most.
    pub batch: usize,
    /// How long a batch waits to fill once its first result is in.
    pub linger: Duration,
    pub alerter: Alerter,
    /// A closed job with a smaller share of clips that did not fail is a failed job.
    pub min_success_rate: f64,
    /// Running jobs older than this are marked `timed_out` (MAX_JOB_DURATION).
    pub max_job_duration: Duration,
    /// Sees each result once it is stored (a standalone run's summary).
    pub on_stored: Option<Observer>,
    /// Job alerts on their way, sent off the ack path and waited for before `run` returns.
    alerts: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

/// A job whose dispatcher showed no sign of life (a confirmed chunk) for this long while
/// publishing is taken to have lost it.
const PUBLISH_LEASE: Duration = Duration::from_secs(120);

/// How often running jobs are checked against `max_job_duration`.
const TIMEOUT_SWEEP: Duration = Duration::from_secs(30);

impl ReducerService {
    pub fn new(queues: Arc<dyn Connect>, store: Arc<dyn ResultSink>) -> Self {
        Self {
            queues,
            store,
            batch: 1000,
            linger: Duration::from_millis(20),
            alerter: Alerter::none("reducer"),
            min_success_rate: 0.0,
            max_job_duration: Duration::from_secs(6 * 3600),
            on_stored: None,
            alerts: std::sync::Mutex::default(),
        }
    }

    /// Consumes until `shutdown`, reconnecting to the broker whenever it goes away; meanwhile
    /// times out jobs that run too long.
    pub async fn run(&self, shutdown: Shutdown) {
        let name = format!("voice-reducer-{}", std::process::id());
        let consume = reconnecting(&*self.queues, &name, &shutdown, |broker| {
            let (name, shutdown) = (name.clone(), shutdown.clone());
            async move { self.consume(&*broker, &name, &shutdown).await }
        });
        tokio::select! {
            () = consume => {}
            () = self.sweep_timeouts() => {}
        }
        let mut alerts = std::mem::take(
            &mut *self
                .alerts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let sent = tokio::time::timeout(ALERTS_AT_EXIT, async {
            while alerts.join_next().await.is_some() {}
        });
        if sent.await.is_err() {
            tracing::warn!("stopping with job alerts still unsent");
        }
    }

    fn observe(&self, results: &[ClipResult]) {
        if let Some(observe) = &self.on_stored {
            results.iter().for_each(observe);
        }
    }

    /// Results, and the dead-lettered tasks that become results, until shutdown or the broker
    /// goes away.
    async fn consume(
        &self,
        broker: &dyn Transport,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let results = self.consume_results(broker, tag, shutdown);
        let dead_tag = format!("{tag}-dead");
        let dead = self.consume_dead(broker, &dead_tag, shutdown);
        tokio::try_join!(results, dead).map(|_| ())
    }

    /// Each dead-lettered task as a `failed` result with the reason, so that its job closes.
    async fn consume_dead(
        &self,
        broker: &dyn Transport,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let mut consumer = broker.consume(DEAD_CLIPS, 16, tag).await?;
        loop {
            let delivery = tokio::select! {
                () = shutdown.wait() => return Ok(()),
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(e)) => return Err(e),
                    None => return Err(BrokerError::Cancelled),
                },
            };
            match dead::judge(&delivery) {
                DeadTask::Failed(result) => {
                    tracing::warn!(clip = %result.clip_key, job = %result.job_id, kind = result.error_kind.as_deref().unwrap_or("-"), "a dead-lettered task is stored as a failed result");
                    let jobs = match self.write(std::slice::from_ref(&*result), shutdown).await {
                        Written::Stored(jobs) => jobs,
                        Written::Shutdown => return Ok(()),
                        Written::Refused(e) => {
                            tracing::error!(error = %e, "the database refuses the dead-lettered task's failed result: only the dead-letter queue keeps it");
                            Vec::new()
                        }
                    };
                    metrics().results_stored.inc();
                    self.observe(std::slice::from_ref(&*result));
                    for (job, _) in jobs.iter().filter(|(_, closed_now)| *closed_now) {
                        self.closed(job);
                    }
                }
                DeadTask::AlreadyResulted => {}
                DeadTask::Unattributable(why) => {
                    tracing::error!(%why, "a dead-lettered task names no job or clip: only the dead-letter queue keeps it");
                }
            }
            delivery.ack().await?;
        }
    }

    async fn consume_results(
        &self,
        broker: &dyn Transport,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let prefetch = u16::try_from(self.batch * 2).unwrap_or(u16::MAX);
        let mut consumer = broker.consume(RESULTS, prefetch, tag).await?;
        tracing::info!(batch = self.batch, "consuming {RESULTS}");
        let mut watch = tokio::time::interval(CONNECTION_CHECK);
        loop {
            let first = tokio::select! {
                () = shutdown.wait() => return Ok(()),
                next = consumer.next() => next,
                _ = watch.tick() => {
                    if broker.is_connected() {
                        continue;
                    }
                    return Err(BrokerError::Cancelled);
                }
            };
            let mut batch = match first {
                Some(Ok(delivery)) => vec![delivery],
                Some(Err(e)) => return Err(e),
                None => return Err(BrokerError::Cancelled),
            };
            let lost = self.fill(&mut *consumer, &mut batch).await;
            if !self.settle(broker, &batch, shutdown).await? {
                // Shutting down before the commit: the broker hands the batch out again.
                return Ok(());
            }
            if let Some(e) = lost {
                return Err(e);
            }
        }
    }

    /// Adds what arrives within `linger`, up to `batch`; returns why the stream ended, if it did.
    async fn fill(
        &self,
        consumer: &mut dyn Deliveries,
        batch: &mut Vec<Received>,
    ) -> Option<BrokerError> {
        let deadline = tokio::time::Instant::now() + self.linger;
        let mut bytes: usize = batch.iter().map(|d| d.data.len()).sum();
        while batch.len() < self.batch && bytes < BATCH_BYTES {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(delivery))) => {
                    bytes += delivery.data.len();
                    batch.push(delivery);
                }
                Ok(Some(Err(e))) => return Some(e),
                Ok(None) => return Some(BrokerError::Cancelled),
            }
        }
        None
    }

    /// Stores the batch and acks it: `Ok(true)` when done, `Ok(false)` when shutdown came first.
    async fn settle(
        &self,
        broker: &dyn Transport,
        batch: &[Received],
        shutdown: &Shutdown,
    ) -> Result<bool, BrokerError> {
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        let mut results = Vec::with_capacity(batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for delivery in batch {
            match decode::<ClipResult>(&delivery.data) {
                Ok(result) => {
                    results.push(result);
                    deliveries.push(delivery);
                }
                Err(e) => poison::settle(broker, delivery, RESULTS, &e).await?,
            }
        }
        let Some(jobs) = self
            .store_all(broker, &deliveries, &results, shutdown)
            .await?
        else {
            return Ok(false);
        };
        metrics().results_stored.inc_by(results.len() as u64);
        self.observe(&results);
        for (job, _) in jobs.iter().filter(|(_, closed_now)| *closed_now) {
            self.closed(job);
        }
        // One ack for the whole batch: every delivery up to the last one on this channel.
        last.ack_up_to().await?;
        Ok(true)
    }

    /// Stores `results` (received as `deliveries`). A batch the database refuses for good is
    /// split in halves until the result it refuses is alone; that one goes to the dead-letter
    /// queue with the database's reason and is stored as a bare `failed` result, so that its job
    /// still closes. `None` when shutdown came first.
    async fn store_all(
        &self,
        broker: &dyn Transport,
        deliveries: &[&Received],
        results: &[ClipResult],
        shutdown: &Shutdown,
    ) -> Result<Option<Vec<(JobRow, bool)>>, BrokerError> {
        let mut jobs = Vec::new();
        let mut parts: Vec<std::ops::Range<usize>> = Vec::new();
        parts.push(0..results.len());
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            match self.write(&results[part.clone()], shutdown).await {
                Written::Stored(stored) => jobs.extend(stored),
                Written::Shutdown => return Ok(None),
                Written::Refused(_) if part.len() > 1 => {
                    let middle = part.start + part.len() / 2;
                    parts.push(middle..part.end);
                    parts.push(part.start..middle);
                }
                Written::Refused(e) => {
                    let (delivery, result) = (deliveries[part.start], &results[part.start]);
                    let error = e.to_string();
                    tracing::error!(clip = %result.clip_key, %error, "the database refuses this result: dead-lettered, stored as a bare failed result");
                    dead_letter(broker, delivery, RESULTS, "refused_by_database", &error).await?;
                    let bare = bare_failed(result, &error);
                    match self.write(std::slice::from_ref(&bare), shutdown).await {
                        Written::Stored(stored) => jobs.extend(stored),
                        Written::Shutdown => return Ok(None),
                        Written::Refused(e) => {
                            tracing::error!(clip = %result.clip_key, error = %e, "even a bare failed result is refused: only the dead-letter queue keeps it");
                        }
                    }
                }
            }
        }
        Ok(Some(jobs))
    }

    /// Writes until it succeeds (the database may be restarting, a statement may hang past
    /// [`WRITE_TIMEOUT`]), until the database refuses the rows themselves, or until shutdown.
    async fn write(&self, results: &[ClipResult], shutdown: &Shutdown) -> Written {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let written = tokio::time::timeout(WRITE_TIMEOUT, self.store.write_results(results))
                .await
                .unwrap_or_else(|_| {
                    Err(SinkError::transient(format!(
                        "no answer within {} s",
                        WRITE_TIMEOUT.as_secs()
                    )))
                });
            match written {
                Ok(jobs) => return Written::Stored(jobs),
                Err(e) if e.is_permanent() => return Written::Refused(e),
                Err(e) => {
                    let wait = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, results = results.len(), retry_in = ?wait, "storing results failed; they stay unacknowledged");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.wait() => return Written::Shutdown,
                    }
                }
            }
        }
    }
}

/// What became of a write.
enum Written {
    Stored(Vec<(JobRow, bool)>),
    /// The database refuses these rows for good (a data error, a violated constraint).
    Refused(SinkError),
    Shutdown,
}

/// How long a stopping reducer waits for the job alerts still being sent.
const ALERTS_AT_EXIT: Duration = Duration::from_secs(10);

/// A statement that takes longer is abandoned and tried again.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// A batch holds at most this many bytes of results (one JSONB parameter), whatever `batch`.
const BATCH_BYTES: usize = 16 << 20;

/// `result` with only its identity and the database's reason: what can still be stored of a
/// result the database refused.
fn bare_failed(result: &ClipResult, error: &str) -> ClipResult {
    let mut task = ClipTask::identity(
        result.job_id.clone(),
        result.location_id.clone(),
        result.clip_key.clone(),
        result.clip.clone(),
        result.date.clone(),
        result.attempts,
    );
    // The refused field may be this very one.
    task.clip.transaction_id = None;
    ClipResult::failed(
        &task,
        &result.model,
        "refused_by_database",
        format!("the database refused the result: {error}"),
    )
}
