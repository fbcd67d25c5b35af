//! The worker's transient, permanent and poison decisions, driven over the in-process queues
//! (no broker running): what it publishes where, with which attempt, and what it dead-letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adapters::local::LocalSource;
use it::{DEMO_LOCATION, TempDir, demo_copies};
use pipeline::queue::topology::{CLIPS, DEAD_CLIPS, DELIVERY_LIMIT, POISON_ATTEMPTS, RESULTS};
use pipeline::queue::{
    Envelope, Headers, MemoryBroker, Outgoing, Transport, decode, encode, task_envelope,
    task_headers,
};
use pipeline::services::Shutdown;
use pipeline::services::worker::WorkerService;
use pipeline::source::{
    BoxFuture, CivilDate, ClipRef, ClipSource, Fetched, RosterEntry, SampleFile, SourceError,
};
use pipeline::{ClipProcessor, ClipResult, ClipTask, spawn_batcher};

const DATE: &str = "2025-10-06";

/// The demo location, whose clip downloads fail transiently the first `failures` times.
struct Flaky {
    inner: LocalSource,
    failures: AtomicUsize,
}

impl ClipSource for Flaky {
    fn list_clips<'a>(
        &'a self,
        location: &'a str,
        date: CivilDate,
    ) -> BoxFuture<'a, Result<Vec<ClipRef>, SourceError>> {
        ClipSource::list_clips(&self.inner, location, date)
    }

    fn list_samples<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SampleFile>, SourceError>> {
        ClipSource::list_samples(&self.inner, location)
    }

    fn roster<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RosterEntry>>, SourceError>> {
        ClipSource::roster(&self.inner, location)
    }

    fn fetch_clip<'a>(
        &'a self,
        location: &'a str,
        clip: &'a ClipRef,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Box::pin(async {
                Err(SourceError::service(
                    "source_unavailable",
                    true,
                    "the source is away".into(),
                ))
            });
        }
        ClipSource::fetch_clip(&self.inner, location, clip)
    }

    fn fetch_sample<'a>(
        &'a self,
        sample: &'a SampleFile,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        ClipSource::fetch_sample(&self.inner, sample)
    }

    fn samples_place(&self, location: &str) -> String {
        ClipSource::samples_place(&self.inner, location)
    }

    fn check(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        ClipSource::check(&self.inner)
    }
}

/// A worker over in-process queues whose delay queues wait 20 ms, on the demo's clips.
struct Rig {
    queues: MemoryBroker,
    data: TempDir,
    /// Each clip's outcome in the demo: an employee, `none` or `failed`.
    expected: std::collections::BTreeMap<String, String>,
}

impl Rig {
    fn new(tag: &str) -> Self {
        let data = TempDir::new(tag);
        let expected = demo_copies(data.path(), 11, DATE);
        Self {
            queues: MemoryBroker::with_delays(vec![Duration::from_millis(20); 3]),
            data,
            expected,
        }
    }

    fn worker(&self, failures: usize) -> Arc<WorkerService> {
        let source = Arc::new(Flaky {
            inner: LocalSource::new(self.data.path()),
            failures: AtomicUsize::new(failures),
        });
        let encoders = it::default_encoders();
        let (batcher, _thread) = spawn_batcher(encoders).unwrap();
        let processor = ClipProcessor {
            batcher,
            min_utterance_ms: 1000,
            max_clip_bytes: u64::MAX,
        };
        Arc::new(WorkerService::new(
            Arc::new(self.queues.clone()),
            source,
            Arc::new(pipeline::profile_store::MemoryProfileStore::default()),
            None,
            processor,
            it::default_prior(),
            2,
        ))
    }

    /// The demo clip named `name`, as a first try.
    async fn task(&self, name: &str) -> ClipTask {
        let source = LocalSource::new(self.data.path());
        let date = CivilDate::parse(DATE).unwrap();
        let clips = ClipSource::list_clips(&source, DEMO_LOCATION, date)
            .await
            .unwrap();
        let clip = clips
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no clip like {name}"));
        ClipTask {
            job_id: "job-decisions".into(),
            location_id: DEMO_LOCATION.into(),
            clip,
            attempt: 1,
            transcript_id: None,
        }
    }

    async fn publish(&self, task: &ClipTask) {
        let body = encode(task).unwrap();
        let envelope = task_envelope(task, task_headers(task, None));
        self.queues
            .publish(Outgoing::to_queue(CLIPS, &body, envelope))
            .await
            .unwrap();
    }

    /// Runs `worker` until `queue` holds `n` messages (or 60 s pass), then takes them out.
    async fn run_until(
        &self,
        worker: Arc<WorkerService>,
        queue: &str,
        n: usize,
    ) -> Vec<(Envelope, Vec<u8>)> {
        let (stop, shutdown) = Shutdown::manual();
        let running = tokio::spawn(async move { worker.run(shutdown).await });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.queues.depths().get(queue).map_or(0, |d| d.0) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{queue}: {:?}",
                self.queues.depths()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        let _ = running.await;
        self.queues.drain(queue)
    }
}

impl Rig {
    /// A demo clip whose outcome passes `want`.
    fn clip(&self, want: impl Fn(&str) -> bool) -> String {
        self.expected
            .iter()
            .find(|(_, outcome)| want(outcome))
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| panic!("no such clip in the demo"))
    }

    /// A clip of an employee's (it ends `matched`).
    fn good_clip(&self) -> String {
        self.clip(|o| o != "failed" && o != "none")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_tried_again_after_the_delay_then_succeeds() {
    let rig = Rig::new("decide-transient");
    let task = rig.task(&rig.good_clip()).await;
    rig.publish(&task).await;
    let results = rig.run_until(rig.worker(2), RESULTS, 1).await;
    let result: ClipResult = decode(&results[0].1).unwrap();
    assert_eq!(result.status.as_str(), "matched", "{:?}", result.error);
    assert_eq!(result.attempts, 3, "two failed tries before it");
    assert_eq!(results[0].0.headers.number("attempt"), Some(3));
    assert!(rig.queues.drain("voice.clips.dlq").is_empty());
    assert!(rig.queues.drain(DEAD_CLIPS).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_stays_transient_becomes_a_failed_result_and_a_dead_letter() {
    let rig = Rig::new("decide-exhausted");
    let task = rig.task(&rig.good_clip()).await;
    rig.publish(&task).await;
    let results = rig.run_until(rig.worker(usize::MAX), RESULTS, 1).await;
    let result: ClipResult = decode(&results[0].1).unwrap();
    assert_eq!(result.status.as_str(), "failed");
    assert_eq!(result.error_kind.as_deref(), Some("source_unavailable"));
    assert_eq!(result.attempts, 4, "the first try and three retries");
    let dead = rig.queues.drain("voice.clips.dlq");
    assert_eq!(dead.len(), 1);
    let headers = &dead[0].0.headers;
    assert_eq!(
        headers.text("dead_reason").as_deref(),
        Some("retries_exhausted")
    );
    assert_eq!(headers.text("dead_from").as_deref(), Some(CLIPS));
    // The reducer's copy, which it knows needs no second result.
    assert_eq!(rig.queues.drain(DEAD_CLIPS).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_a_failed_result_at_once() {
    let rig = Rig::new("decide-permanent");
    let broken = rig.clip(|o| o == "failed");
    let task = rig.task(&broken).await;
    rig.publish(&task).await;
    let results = rig.run_until(rig.worker(0), RESULTS, 1).await;
    let result: ClipResult = decode(&results[0].1).unwrap();
    assert_eq!(result.status.as_str(), "failed");
    assert_eq!(result.error_kind.as_deref(), Some("unknown_format"));
    assert_eq!(result.attempts, 1, "never tried again");
    assert!(rig.queues.depths().is_empty(), "{:?}", rig.queues.depths());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_tried_by_other_consumers_then_dead_lettered_with_its_reason() {
    let rig = Rig::new("decide-poison");
    let mut headers = Headers::default();
    headers.set_text("job", "job-decisions");
    headers.set_text("location", DEMO_LOCATION);
    headers.set_text("date", DATE);
    headers.set_text("clip", "till1_00000000-0000-4000-8000-00000000dead.wav");
    headers.set_number("attempt", 1);
    rig.queues
        .publish(Outgoing::to_queue(
            CLIPS,
            b"\x00 not a task",
            Envelope::new("poison", "job-decisions", headers),
        ))
        .await
        .unwrap();
    let dead = rig.run_until(rig.worker(0), "voice.clips.dlq", 1).await;
    let headers = &dead[0].0.headers;
    assert_eq!(headers.text("dead_reason").as_deref(), Some("undecodable"));
    assert_eq!(
        headers.number("attempt"),
        Some(i64::from(POISON_ATTEMPTS)),
        "forwarded for another try until the last"
    );
    assert_eq!(rig.queues.drain(DEAD_CLIPS).len(), 1);
    assert!(rig.queues.drain(RESULTS).is_empty(), "no result of its own");
}

/// The in-process queues' own delivery limit, as the broker's quorum queues have it: a task
/// handed back by every consumer that took it is dead-lettered, saying why.
#[tokio::test]
async fn a_task_nobody_settles_is_dead_lettered_at_the_delivery_limit() {
    let queues = MemoryBroker::new();
    queues
        .publish(Outgoing::to_queue(CLIPS, b"task", Envelope::default()))
        .await
        .unwrap();
    let mut handed = 0;
    loop {
        let mut consumer = queues.consume(CLIPS, 1, "t").await.unwrap();
        let next = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await;
        let Ok(Some(Ok(delivery))) = next else { break };
        handed += 1;
        // A consumer that dies holding it: dropped unsettled.
        drop(delivery);
    }
    assert_eq!(handed, DELIVERY_LIMIT);
    let dead = queues.drain("voice.clips.dlq");
    assert_eq!(
        dead[0].0.headers.text("x-first-death-reason").as_deref(),
        Some("delivery_limit")
    );
    assert_eq!(queues.drain(DEAD_CLIPS).len(), 1);
}
