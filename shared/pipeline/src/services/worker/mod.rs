//! The worker service: consumes `voice.clips`, runs each clip through the shared
//! [`ClipProcessor`], publishes the result on `voice.results` and only then acks the task.
//!
//! Up to `prefetch` clips are in flight at once, each in its own task; their embeddings share
//! the one batcher. A transient failure goes to a delay queue for a later try; a permanent one
//! is a `failed` result. On shutdown it stops consuming, hands back the clips still waiting on
//! AssemblyAI (with their transcript ids, so the next worker waits instead of paying again),
//! finishes the rest (or leaves it unacked, so the broker hands it to another worker) and returns.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

mod attempt;

use attempt::Outcome;

use super::profiles::{Enrolled, Origin, ProfileError, Profiles};
use super::{Shutdown, poison, reconnecting};
use crate::ResultSink;
use crate::profile_store::ProfileStore;
use crate::queue::topology::{CLIPS, RESULTS, retry_queue};
use crate::queue::{
    BrokerError, Connect, Headers, Outgoing, Received, Transport, dead_letter, decode, encode,
    result_headers, task_envelope, task_headers,
};
use crate::source::ClipSource;
use crate::transcript::{LocalTurns, Transcriber};
use crate::{ClipProcessor, ClipResult, ClipTask};
use engine::matching::Prior;
use ops::{Alerter, enrollment_alert, metrics};

/// How often the consume loop looks at the connection itself.
pub const CONNECTION_CHECK: Duration = Duration::from_secs(1);

/// How long a stopping worker waits for its clips in flight before leaving them to the broker.
/// Clips waiting on AssemblyAI do not count against it: they are handed back at once.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

pub struct WorkerService {
    /// RabbitMQ (AMQP_URL), or a standalone run's in-process queues.
    pub queues: Arc<dyn Connect>,
    pub source: Arc<dyn ClipSource>,
    pub processor: Arc<ClipProcessor>,
    /// Clips in flight (VOICE_PARALLEL_WORKERS): the consumer's prefetch.
    pub prefetch: u16,
    pub profiles: Profiles,
    /// Where a redelivered task learns that its clip is already done (DATABASE_URL, or a
    /// standalone run's output folder).
    pub sink: Option<Arc<dyn ResultSink>>,
    /// Where the speaker turns come from: the local diarizer unless set otherwise (AssemblyAI).
    pub transcriber: Arc<dyn Transcriber>,
    /// Delete each transcript from the service once its result is with the broker.
    pub delete_transcripts: bool,
    /// Where a fresh enrollment's issues (left-out samples, look-alike employees) are told.
    pub alerter: Alerter,
    /// Each clip's line at debug rather than info (a standalone run shows a progress bar).
    pub quiet: bool,
}

impl WorkerService {
    /// `store` holds the roster and the enrolled profiles (Postgres with DATABASE_URL; else a
    /// [`crate::profile_store::MemoryProfileStore`], and the source's own roster). `sink` tells
    /// a redelivered task that its clip is already done. Turns come from the local diarizer
    /// until [`Self::transcriber`] says otherwise.
    pub fn new(
        queues: Arc<dyn Connect>,
        source: Arc<dyn ClipSource>,
        store: Arc<dyn ProfileStore>,
        sink: Option<Arc<dyn ResultSink>>,
        processor: ClipProcessor,
        prior: Prior,
        prefetch: u16,
    ) -> Self {
        Self {
            queues,
            profiles: Profiles::new(Arc::clone(&source), store, prior),
            sink,
            source,
            transcriber: Arc::new(LocalTurns::new(processor.batcher.clone())),
            processor: Arc::new(processor),
            prefetch: prefetch.max(1),
            delete_transcripts: false,
            alerter: Alerter::none("worker"),
            quiet: false,
        }
    }

    /// Consumes until `shutdown`, reconnecting to the broker whenever it goes away.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let name = format!("voice-worker-{}", std::process::id());
        reconnecting(&*self.queues, &name, &shutdown, |broker| {
            let me = Arc::clone(&self);
            let (name, shutdown) = (name.clone(), shutdown.clone());
            async move { me.consume(&broker, &name, &shutdown).await }
        })
        .await;
    }

    /// One connection's life: `Ok` after a clean shutdown, `Err` when the broker went away.
    async fn consume(
        self: &Arc<Self>,
        broker: &Arc<dyn Transport>,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let mut consumer = broker.consume(CLIPS, self.prefetch, tag).await?;
        tracing::info!(prefetch = self.prefetch, "consuming {CLIPS}");
        let mut in_flight = JoinSet::new();
        let mut watch = tokio::time::interval(CONNECTION_CHECK);
        let lost = loop {
            tokio::select! {
                () = shutdown.wait() => break None,
                _ = watch.tick() => if !broker.is_connected() {
                    break Some(BrokerError::Cancelled);
                },
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let (me, broker) = (Arc::clone(self), Arc::clone(broker));
                        let shutdown = shutdown.clone();
                        in_flight.spawn(async move { me.handle(&*broker, delivery, &shutdown).await });
                    }
                    Some(Err(e)) => break Some(e),
                    None => break Some(BrokerError::Cancelled),
                },
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        };
        match lost {
            None => {
                // Stop taking new clips, then let those in hand finish.
                consumer.cancel().await;
                tracing::info!(in_flight = in_flight.len(), "draining the clips in flight");
                let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                    while in_flight.join_next().await.is_some() {}
                })
                .await;
                if drained.is_err() {
                    tracing::warn!(
                        left = in_flight.len(),
                        "drain timed out: the broker hands the rest to another worker"
                    );
                }
                // Closing the consumer hands what is left back to the queue.
                drop(consumer);
                Ok(())
            }
            Some(e) => {
                // Their acks cannot reach the broker any more: it redelivers those clips, and
                // the reducer's upsert makes any result published twice harmless.
                while in_flight.join_next().await.is_some() {}
                Err(e)
            }
        }
    }

    async fn handle(&self, broker: &dyn Transport, delivery: Received, shutdown: &Shutdown) {
        match self.settle(broker, &delivery, shutdown).await {
            Ok(()) => {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "ack failed: the clip will be delivered again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not hand the clip on: returning it to the queue");
                let _ = delivery.requeue().await;
            }
        }
    }

    /// Everything up to (not including) the ack: once this returns `Ok`, the clip's outcome is
    /// safely with the broker.
    async fn settle(
        &self,
        broker: &dyn Transport,
        delivery: &Received,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let task: ClipTask = match decode(&delivery.data) {
            Ok(task) => task,
            Err(e) => return poison::settle(broker, delivery, CLIPS, &e).await,
        };
        if self.needs_no_work(&task).await {
            return Ok(());
        }
        let model = self.processor.batcher.manifest().id.clone();
        let started = std::time::Instant::now();
        let result = match self.run_task(&task, shutdown).await {
            Outcome::Result(result) => result,
            Outcome::HandBack(transcript_id) => {
                tracing::info!(clip = %task.clip.key, transcript = ?transcript_id, "stopping: the clip goes back to the queue with its transcript");
                let next = ClipTask {
                    transcript_id: transcript_id.or(task.transcript_id.clone()),
                    ..task.clone()
                };
                let headers = task_headers(&next, None);
                return publish(broker, CLIPS, &encode(&next)?, &next, headers).await;
            }
            Outcome::Transient(kind, error, transcript_id) => match retry_queue(task.attempt) {
                Some(queue) => {
                    tracing::warn!(clip = %task.clip.key, attempt = task.attempt, kind, %error, "transient failure: trying again later");
                    let next = ClipTask {
                        attempt: task.attempt + 1,
                        transcript_id,
                        ..task.clone()
                    };
                    let headers = task_headers(&next, Some(kind));
                    return publish(broker, &queue, &encode(&next)?, &next, headers).await;
                }
                None => {
                    tracing::error!(clip = %task.clip.key, attempt = task.attempt, kind, %error, "giving up on the clip");
                    self.abandon(transcript_id.as_deref()).await;
                    let error = format!("gave up after {} tries: {error}", task.attempt);
                    dead_letter(broker, delivery, CLIPS, "retries_exhausted", &error).await?;
                    Box::new(ClipResult::failed(&task, &model, kind, error))
                }
            },
        };
        result.log(self.quiet);
        record(&result, started.elapsed());
        let headers = result_headers(&result);
        publish(broker, RESULTS, &encode(&*result)?, &task, headers).await?;
        if let (true, Some(transcript)) = (self.delete_transcripts, &result.transcript)
            && let Err(e) = self.transcriber.delete(&transcript.id).await
        {
            tracing::warn!(transcript = %transcript.id, error = %e, "could not delete the transcript from AssemblyAI");
        }
        Ok(())
    }

    /// Whether the task needs no work: its job already stored a completed result for the clip
    /// (a redelivery after a lost ack, a worker killed after publishing), or the job was handed
    /// over to a later run that publishes the clip itself. It is then acked as it is, without
    /// downloading, processing or paying AssemblyAI. When the store cannot say, the clip is done again;
    /// the reducer's upsert keeps that harmless.
    async fn needs_no_work(&self, task: &ClipTask) -> bool {
        let Some(store) = &self.sink else {
            return false;
        };
        match store.settled_task(&task.job_id, &task.clip.key).await {
            Ok(Some(why)) => {
                tracing::info!(clip = %task.clip.key, job = %task.job_id, "{why}: acked without doing it");
                metrics().duplicates_skipped.inc();
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "could not ask the store whether the clip is done");
                false
            }
        }
    }

    /// The location's profiles (from memory, the store, or enrolled now); a fresh enrollment
    /// with issues (left-out samples, look-alike employees) is told to the alerter, once.
    pub async fn enroll(&self, job_id: &str, location: &str) -> Result<Enrolled, ProfileError> {
        let enrolled = self
            .profiles
            .get(&self.processor.batcher, location, false)
            .await?;
        let calibration = &enrolled.profiles.calibration;
        if enrolled.origin == Origin::Enrolled && calibration.has_issues() {
            let alert = enrollment_alert(job_id, location, calibration);
            self.alerter.send(&alert).await;
        }
        Ok(enrolled)
    }

    /// A transcript left behind by a clip given up on: deleted when AAI_DELETE_TRANSCRIPTS asks.
    async fn abandon(&self, transcript_id: Option<&str>) {
        if let (true, Some(id)) = (self.delete_transcripts, transcript_id)
            && let Err(e) = self.transcriber.delete(id).await
        {
            tracing::warn!(transcript = %id, error = %e, "could not delete the abandoned transcript from AssemblyAI");
        }
    }
}

/// The clip's outcome, time and scores in the metrics.
fn record(result: &ClipResult, took: Duration) {
    let m = metrics();
    m.clips.with_label_values(&[result.status.as_str()]).inc();
    m.clip_seconds.observe(took.as_secs_f64());
    for score in result.speakers.iter().filter_map(|s| s.score) {
        m.match_scores.observe(f64::from(score));
    }
}

/// Publishes what became of `task` (its retry, or its result) under the task's ids.
async fn publish(
    broker: &dyn Transport,
    queue: &str,
    body: &[u8],
    task: &ClipTask,
    headers: Headers,
) -> Result<(), BrokerError> {
    let envelope = task_envelope(task, headers);
    broker
        .publish(Outgoing::to_queue(queue, body, envelope))
        .await
}
