//! Distributed mode against the real RabbitMQ and Postgres: the dispatcher, worker and reducer
//! binaries, a job through them, and the faults they must survive (DESIGN §8, §9).

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use adapters::broker::Broker;

use it::{Child, DEMO_LOCATION, Services, TempDir, demo_copies};

const DATE: &str = "2025-10-06";

/// One deployment: the services of a test, a data root and a folder for the logs.
struct Deployment {
    services: Services,
    data: TempDir,
    expected: BTreeMap<String, String>,
    spawned: usize,
}

impl Deployment {
    fn new(tag: &str, clips: usize) -> Self {
        let services = Services::new(tag);
        let data = TempDir::new(tag);
        let expected = demo_copies(data.path(), clips, DATE);
        Self {
            services,
            data,
            expected,
            spawned: 0,
        }
    }

    fn command(&self, bin: &str) -> Command {
        self.services.command(bin, self.data.path())
    }

    fn spawn(&mut self, bin: &str) -> Child {
        self.spawned += 1;
        let log = self.data.path().join(format!("{bin}-{}.log", self.spawned));
        Child::spawn(self.command(bin), log)
    }

    fn dispatch(&self, extra: &[&str]) -> Output {
        self.command("dispatcher")
            .args(["run", DEMO_LOCATION, DATE])
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("dispatcher: {e}"))
    }

    fn rows(&self) -> usize {
        self.services
            .try_psql("SELECT count(*) FROM voice_clip_results")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Records a job of `total` clips as the dispatcher would; returns the data root's clips.
    fn job_of_clips(&self, job: &str, total: usize) -> Vec<pipeline::source::ClipRef> {
        self.services.psql(&format!(
            "INSERT INTO voice_jobs (job_id, location_id, date_from, date_to, total, skipped)
             VALUES ('{job}', '{DEMO_LOCATION}', '{DATE}', '{DATE}', {total}, 0)"
        ));
        let source = adapters::local::LocalSource::new(self.data.path());
        let date = pipeline::source::CivilDate::parse(DATE).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(pipeline::source::ClipSource::list_clips(
                &source,
                DEMO_LOCATION,
                date,
            ))
            .unwrap()
    }

    /// Waits for `rows` result rows (or more).
    fn wait_for_rows(&self, rows: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.rows() < rows {
            assert!(
                Instant::now() < deadline,
                "fewer than {rows} results after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the job to close; its `status|total|done|matched|no_match|failed`.
    fn wait_for_job(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let job = self
                .services
                .try_psql("SELECT status, total, done, matched, no_match, failed FROM voice_jobs")
                .unwrap_or_default();
            if !job.is_empty() && !job.starts_with("running") {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "the job did not close within {limit:?}: {job} ({} results)",
                self.rows()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The job's counters as they must be for the demo copies, all clips done.
    fn expected_job(&self) -> String {
        let count = |f: &dyn Fn(&str) -> bool| self.expected.values().filter(|v| f(v)).count();
        let failed = count(&|v| v == "failed");
        let no_match = count(&|v| v == "none");
        let matched = self.expected.len() - failed - no_match;
        let n = self.expected.len();
        format!("completed|{n}|{n}|{matched}|{no_match}|{failed}")
    }

    /// Exactly one row per clip, each with the right decision.
    fn check_results(&self) {
        let rows = self.services.psql(
            "SELECT clip_name, status, coalesce(worker_name, ''), attempts FROM voice_clip_results ORDER BY 1",
        );
        let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
        assert_eq!(rows.len(), self.expected.len(), "one row per clip");
        for (row, (name, expected)) in rows.iter().zip(&self.expected) {
            assert_eq!(row[0], name);
            let ok = match expected.as_str() {
                "failed" => row[1] == "failed",
                "none" => (row[1] == "no_match" || row[1] == "no_speech") && row[2].is_empty(),
                employee => row[1] == "matched" && row[2] == employee,
            };
            assert!(ok, "{name}: expected {expected}, stored {row:?}");
        }
        // Every decided clip records the threshold and margin its location's calibration gave.
        assert_eq!(
            self.services.psql(
                "SELECT count(*) FROM voice_clip_results
                 WHERE status <> 'failed' AND (threshold IS NULL OR threshold < 0.5
                                               OR required_margin IS NULL)"
            ),
            "0"
        );
    }
}

fn stderr(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn two_hundred_clips_through_two_workers_and_the_reducer() {
    let mut d = Deployment::new("job200", 200);
    let _reducer = d.spawn("reducer");
    let _w1 = d.spawn("worker");
    let _w2 = d.spawn("worker");

    let out = d.dispatch(&["--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("200 clip(s) published"), "{text}");
    assert!(text.contains("/200 done"), "the progress bar: {text}");
    assert_eq!(d.wait_for_job(Duration::from_secs(5)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();

    // Both workers took part. Another run would redo only the failed clips (the unreadable
    // ones), or all with --force.
    for log in [&_w1, &_w2] {
        assert!(log.log_text().contains("clip done"), "{}", log.log_text());
    }
    let failed = d.expected.values().filter(|v| *v == "failed").count();
    let dry = d.dispatch(&["--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let expected = format!(
        "{failed} clip(s) would be processed, {} already done",
        200 - failed
    );
    assert!(stderr(&dry).contains(&expected), "{}", stderr(&dry));
    let dry = d.dispatch(&["--dry-run", "--force"]);
    assert!(
        stderr(&dry).contains("200 clip(s) would be processed"),
        "{}",
        stderr(&dry)
    );
    assert_eq!(d.services.psql("SELECT count(*) FROM voice_jobs"), "1");
}

#[test]
fn killing_workers_mid_job_loses_and_duplicates_nothing() {
    let mut d = Deployment::new("sigkill", 60);
    let _reducer = d.spawn("reducer");
    let mut steady = d.spawn("worker");
    let mut victim = d.spawn("worker");
    let out = d.dispatch(&[]);
    assert!(out.status.success(), "{}", stderr(&out));

    for round in 1..=3 {
        d.wait_for_rows(round * 8, Duration::from_secs(120));
        victim.signal("KILL");
        assert_eq!(
            victim.wait_for_exit(Duration::from_secs(5)),
            None,
            "SIGKILL has no exit code"
        );
        victim = d.spawn("worker");
    }
    // SIGTERM: the worker stops taking clips, finishes those it holds and exits 0.
    d.wait_for_rows(40, Duration::from_secs(120));
    steady.signal("TERM");
    assert_eq!(
        steady.wait_for_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        steady.log_text()
    );
    assert!(steady.log_text().contains("draining the clips in flight"));

    assert_eq!(d.wait_for_job(Duration::from_secs(180)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();
    assert!(victim.is_running());
}

#[test]
fn a_broker_restart_mid_job_loses_and_duplicates_nothing() {
    let mut d = Deployment::new("mqrestart", 60);
    let _reducer = d.spawn("reducer");
    let _w1 = d.spawn("worker");
    let _w2 = d.spawn("worker");
    let out = d.dispatch(&[]);
    assert!(out.status.success(), "{}", stderr(&out));

    d.wait_for_rows(10, Duration::from_secs(120));
    d.services.restart_broker(Duration::from_secs(3));

    assert_eq!(d.wait_for_job(Duration::from_secs(240)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();
    for service in [&_reducer, &_w1, &_w2] {
        assert!(
            service.log_text().contains("lost the broker; reconnecting"),
            "{}",
            service.log_text()
        );
    }
}

#[test]
fn the_reducer_rides_out_thirty_seconds_without_postgres() {
    let mut d = Deployment::new("pgstop", 60);
    let mut reducer = d.spawn("reducer");
    let _w1 = d.spawn("worker");
    let _w2 = d.spawn("worker");
    let out = d.dispatch(&[]);
    assert!(out.status.success(), "{}", stderr(&out));

    d.wait_for_rows(10, Duration::from_secs(120));
    d.services.stop_database();
    std::thread::sleep(Duration::from_secs(30));
    d.services.start_database();

    assert_eq!(d.wait_for_job(Duration::from_secs(240)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();
    assert!(reducer.is_running());
    assert!(
        reducer.log_text().contains("storing results failed"),
        "{}",
        reducer.log_text()
    );
}

#[test]
fn distributed_mode_needs_a_database_and_workers_to_match() {
    let d = Deployment::new("misuse", 2);
    let out = d
        .command("dispatcher")
        .env_remove("DATABASE_URL")
        .args(["run", DEMO_LOCATION, DATE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("DATABASE_URL"), "{}", stderr(&out));

    // A location without voice samples: nothing is published.
    std::fs::remove_file(d.data.path().join(DEMO_LOCATION).join("voice_samples")).unwrap();
    let out = d.dispatch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was published"),
        "{}",
        stderr(&out)
    );
    assert!(d.services.queues().values().all(|(r, u)| r + u == 0));

    for bin in ["worker", "reducer"] {
        let out = d.command(bin).env_remove("AMQP_URL").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin}: {}", stderr(&out));
        assert!(stderr(&out).contains("AMQP_URL"), "{bin}: {}", stderr(&out));
    }
}

/// A job none of whose tasks reached the broker is `failed` with the broker's error, not
/// `completed` with 0 of 0 (as it was: the total was cut to 0 first, which closed the job).
#[test]
fn a_job_with_nothing_published_is_failed() {
    let d = Deployment::new("unpublished", 2);
    let out = d
        .command("dispatcher")
        .env(
            "AMQP_URL",
            format!(
                "amqp://guest:guest@127.0.0.1:{}/{}",
                it::free_port(),
                d.services.vhost
            ),
        )
        .args(["run", DEMO_LOCATION, DATE, "--skip-validation"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let job = d
        .services
        .psql("SELECT status, total, done, error <> '' FROM voice_jobs");
    assert_eq!(job, "failed|0|0|t", "{}", stderr(&out));
}

/// A dispatcher killed mid-publish leaves its job open with the total the broker confirmed, not
/// the total it planned (before: the planned total, which no result could ever reach); once its
/// sign of life is stale, the reducer declares publishing over with what was confirmed, says
/// so in the job's error, and the job closes on the results of what was published.
#[test]
fn a_dispatcher_killed_mid_publish_leaves_the_total_it_published() {
    let d = Deployment::new("killed_publish", 6000);
    let mut dispatcher = Child::spawn(
        {
            let mut c = d.command("dispatcher");
            c.args(["run", DEMO_LOCATION, DATE, "--skip-validation"]);
            c
        },
        d.data.path().join("dispatcher.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let total = d
            .services
            .try_psql("SELECT total FROM voice_jobs")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        if total > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", dispatcher.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    dispatcher.signal("KILL");
    dispatcher.wait_for_exit(Duration::from_secs(10));
    let job = d
        .services
        .psql("SELECT total, planned, published_at IS NULL FROM voice_jobs");
    let fields: Vec<&str> = job.split('|').collect();
    let (total, planned): (u64, u64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
    assert_eq!(planned, 6000);
    assert_eq!(fields[2], "t", "killed after it had finished: {job}");
    // Every task counted is in the queue; at most one chunk more went out uncounted. (Asked of
    // the queue itself: the management counts trail by seconds.)
    let queued = u64::from(with_broker(&d.services, async |b| {
        b.queue_depth("voice.clips").await.unwrap()
    }));
    assert!(
        queued >= total && queued <= total + 500,
        "{queued} queued, total {total}"
    );
    assert!(total < planned, "{job}");

    // The dispatcher's last sign of life long gone: the reducer settles the job.
    d.services
        .psql("UPDATE voice_jobs SET publishing_at = now() - interval '1 hour'");
    let mut d = d;
    let _reducer = d.spawn("reducer");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let settled = d
            .services
            .psql("SELECT published_at IS NOT NULL, coalesce(error, '') FROM voice_jobs");
        if settled.starts_with('t') {
            assert!(
                settled.contains(&format!("stopped after publishing {total} of 6000")),
                "{settled}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {settled}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A second run for the same location and day while the first is still running (a CronJob
/// retry) takes its clips over explicitly: the first job ends `superseded`, naming the second;
/// the workers skip its queued tasks, and every clip is processed once, under the second job.
/// Before, both jobs' tasks were processed (twice the work and the AssemblyAI bill) and the
/// first job, its results replaced by the second's, never closed.
#[test]
fn an_overlapping_run_takes_the_clips_over() {
    let mut d = Deployment::new("handover", 11);
    let first = d.dispatch(&["--skip-validation"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = d.dispatch(&["--skip-validation"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("hands its clips over"),
        "{}",
        stderr(&second)
    );
    let jobs = d.services.psql(
        "SELECT string_agg(status || ':' || total || ':' || coalesce(error, ''), ',' ORDER BY started_at) FROM voice_jobs",
    );
    let second_id = d
        .services
        .psql("SELECT job_id FROM voice_jobs ORDER BY started_at DESC LIMIT 1");
    assert_eq!(
        jobs,
        format!("superseded:11:handed over to job {second_id},running:11:")
    );
    let _reducer = d.spawn("reducer");
    let worker = d.spawn("worker");
    let deadline = Instant::now() + Duration::from_secs(120);
    while d
        .services
        .psql("SELECT status FROM voice_jobs WHERE job_id <> '' ORDER BY started_at DESC LIMIT 1")
        == "running"
    {
        assert!(Instant::now() < deadline, "{}", worker.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }
    d.services.assert_queues_drain();
    assert_eq!(
        d.services.psql(&format!(
            "SELECT count(*) FROM voice_clip_results WHERE job_id = '{second_id}'"
        )),
        "11"
    );
    let log = worker.log_text();
    assert_eq!(
        log.matches("its job was handed over to a later run")
            .count(),
        11,
        "{log}"
    );
    let processed = log.matches("\"clip done\"").count() + log.matches("\"clip failed\"").count();
    assert_eq!(processed, 11, "each clip once: {log}");
}

/// Reads the messages of `queue` (removing them) with their headers.
fn drain_queue(services: &Services, queue: &str) -> Vec<(BTreeMap<String, String>, Vec<u8>)> {
    use lapin::options::BasicGetOptions;
    with_broker(services, async |broker| {
        let channel = broker.channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let props = &m.delivery.properties;
            let headers = props
                .headers()
                .as_ref()
                .map(|h| {
                    h.inner()
                        .iter()
                        .map(|(k, v)| (k.to_string(), header_value(v)))
                        .collect()
                })
                .unwrap_or_default();
            out.push((headers, m.delivery.data.clone()));
        }
        out
    })
}

/// A header as an operator reads it: text, or a number as text.
fn header_value(value: &lapin::types::AMQPValue) -> String {
    use lapin::types::AMQPValue;
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Runs `f` with a connection to the test's vhost (which declares the topology).
fn with_broker<T>(services: &Services, f: impl AsyncFnOnce(&Broker) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = adapters::broker::BrokerConfig::new(ops::Secret::new(services.amqp_url()));
        let broker = Broker::connect(&url, "it").await.unwrap();
        let out = f(&broker).await;
        broker.close().await;
        out
    })
}

/// Publishes raw bodies to `queue` as a producer of this system would, headers and all.
fn publish_raw(services: &Services, queue: &str, bodies: &[(Vec<u8>, u32)]) {
    with_broker(services, async |broker| {
        for (body, attempt) in bodies {
            let mut headers = pipeline::queue::Headers::default();
            headers.set_text("clip", "poison-test");
            headers.set_number("attempt", i64::from(*attempt));
            broker
                .publish(pipeline::queue::Outgoing::to_queue(
                    queue,
                    body,
                    pipeline::queue::Envelope::new("poison", "job-poison", headers),
                ))
                .await
                .unwrap();
        }
    });
}

fn wait_for_queue(services: &Services, queue: &str, messages: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let queues = services.queues();
        if queues
            .get(queue)
            .is_some_and(|(ready, _)| *ready >= messages)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} never held {messages}: {queues:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A task that reaches the dead-letter queue becomes a `failed` result with its reason, and its
/// job closes at once: one the workers kept handing back (the broker's delivery limit), one
/// nobody can decode (dead-lettered by a worker, attributed by its readable headers). Before,
/// neither left a row, and the job waited for the 6 h sweep to end `timed_out`.
#[test]
fn dead_lettered_tasks_become_failed_results_and_their_job_closes() {
    use lapin::options::{BasicGetOptions, BasicNackOptions};
    let mut d = Deployment::new("dead", 1);
    let _reducer = d.spawn("reducer");
    wait_for_queue(&d.services, "voice.clips.dead", 0, Duration::from_secs(30));
    let clips = d.job_of_clips("job-dead", 2);
    let task = pipeline::ClipTask {
        job_id: "job-dead".into(),
        location_id: DEMO_LOCATION.into(),
        clip: clips[0].clone(),
        attempt: 1,
        transcript_id: None,
    };

    // Handed back again and again (as by workers that die holding it), until the broker gives up.
    with_broker(&d.services, async |broker| {
        it::publish_task(broker, &task).await;
        let channel = broker.channel().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut handed_back = 0;
        while Instant::now() < deadline {
            let got = channel
                .basic_get("voice.clips".into(), BasicGetOptions::default())
                .await
                .unwrap();
            match got {
                Some(message) => {
                    message
                        .delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                        .unwrap();
                    handed_back += 1;
                }
                None if handed_back > pipeline::queue::topology::DELIVERY_LIMIT => break,
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert!(
            handed_back > pipeline::queue::topology::DELIVERY_LIMIT,
            "{handed_back}"
        );
    });

    // Undecodable, with the readable headers every task carries: a worker dead-letters it.
    let _worker = d.spawn("worker");
    let name = "till1_00000000-0000-4000-8000-00000000dead.wav";
    with_broker(&d.services, async |broker| {
        let mut headers = pipeline::queue::Headers::default();
        for (key, value) in [
            ("job", "job-dead"),
            ("location", DEMO_LOCATION),
            ("date", DATE),
            ("clip", name),
        ] {
            headers.set_text(key, value);
        }
        let attempt = i64::from(pipeline::queue::topology::POISON_ATTEMPTS);
        headers.set_number("attempt", attempt);
        broker
            .publish(pipeline::queue::Outgoing::to_queue(
                "voice.clips",
                b"\x00 not a task",
                pipeline::queue::Envelope::new("poison-dead", "job-dead", headers),
            ))
            .await
            .unwrap();
    });

    assert_eq!(
        d.wait_for_job(Duration::from_secs(60)),
        "completed|2|2|0|0|2"
    );
    let rows = d.services.psql(
        "SELECT string_agg(clip_name || ':' || error_kind, ',' ORDER BY error_kind)
         FROM voice_clip_results WHERE status = 'failed'",
    );
    assert_eq!(
        rows,
        format!("{}:delivery_limit,{name}:poison", clips[0].name)
    );
    // The operator's copies stay in the dead-letter queue.
    wait_for_queue(&d.services, "voice.clips.dlq", 2, Duration::from_secs(10));
}

/// A batch the database refuses for good (one result's transaction id is no UUID: SQLSTATE
/// 22P02) is split until that result is alone: the others are stored, it goes to the
/// dead-letter queue with the database's reason and is stored bare as `failed`, and the job
/// closes. Before, the reducer retried the whole batch for ever and stored nothing more.
#[test]
fn a_result_the_database_refuses_is_dead_lettered_and_the_rest_stored() {
    use pipeline::ClipResult;
    let mut d = Deployment::new("refused", 4);
    let _reducer = d.spawn("reducer");
    wait_for_queue(&d.services, "voice.results", 0, Duration::from_secs(30));
    let clips = d.job_of_clips("job-refused", 4);
    let bodies: Vec<(Vec<u8>, u32)> = clips
        .iter()
        .enumerate()
        .map(|(i, clip)| {
            let task = pipeline::ClipTask {
                job_id: "job-refused".into(),
                location_id: DEMO_LOCATION.into(),
                clip: clip.clone(),
                attempt: 1,
                transcript_id: None,
            };
            let mut result = ClipResult::failed(&task, "m", "x", String::new());
            result.status = engine::matching::ClipStatus::NoMatch;
            (result.error, result.error_kind) = (None, None);
            if i == 2 {
                result.transaction_id = Some("not-a-uuid".into());
            }
            (pipeline::queue::encode(&result).unwrap(), 1)
        })
        .collect();
    publish_raw(&d.services, "voice.results", &bodies);
    assert_eq!(
        d.wait_for_job(Duration::from_secs(60)),
        "completed|4|4|0|3|1"
    );
    let refused = d.services.psql(
        "SELECT clip_name || ':' || error_kind FROM voice_clip_results WHERE status = 'failed'",
    );
    assert_eq!(refused, format!("{}:refused_by_database", clips[2].name));
    wait_for_queue(&d.services, "voice.results.dlq", 1, Duration::from_secs(10));
    let dead = drain_queue(&d.services, "voice.results.dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].0.get("dead_reason").map(String::as_str),
        Some("refused_by_database")
    );
    assert!(
        dead[0]
            .0
            .get("dead_error")
            .is_some_and(|e| e.contains("uuid")),
        "{:?}",
        dead[0].0
    );
}

#[test]
fn poison_messages_land_in_the_dead_letter_queues_with_their_reason() {
    #[derive(serde::Serialize)]
    struct Envelope<T> {
        v: u32,
        body: T,
    }
    #[derive(serde::Serialize)]
    struct Partial {
        job_id: &'static str,
    }
    let mut d = Deployment::new("poison", 11);
    let mut reducer = d.spawn("reducer");
    let mut worker = d.spawn("worker");
    // Topology first: the consumers declare it.
    wait_for_queue(&d.services, "voice.clips.dlq", 0, Duration::from_secs(30));

    let poison = vec![
        (b"\x00\x01 not msgpack at all".to_vec(), 1),
        (
            rmp_serde::to_vec_named(&Envelope {
                v: 99,
                body: Partial { job_id: "x" },
            })
            .unwrap(),
            1,
        ),
        (
            rmp_serde::to_vec_named(&Envelope {
                v: 1,
                body: Partial { job_id: "x" },
            })
            .unwrap(),
            1,
        ),
    ];
    publish_raw(&d.services, "voice.clips", &poison);
    publish_raw(&d.services, "voice.results", &poison);
    for queue in ["voice.clips.dlq", "voice.results.dlq"] {
        wait_for_queue(&d.services, queue, 3, Duration::from_secs(60));
        let dead = drain_queue(&d.services, queue);
        let mut reasons: Vec<&str> = dead
            .iter()
            .map(|(h, _)| h.get("dead_reason").map_or("", String::as_str))
            .collect();
        reasons.sort_unstable();
        assert_eq!(
            reasons,
            ["bad_fields", "undecodable", "unknown_schema_version"],
            "{queue}: {dead:?}"
        );
        for (headers, body) in &dead {
            // After the limit, with the original body and the readable headers kept.
            assert_eq!(headers["attempt"], "3", "{headers:?}");
            assert_eq!(headers["clip"], "poison-test");
            assert!(!headers["dead_error"].is_empty());
            assert!(poison.iter().any(|(b, _)| b == body));
        }
    }
    assert!(worker.is_running() && reducer.is_running());

    // The consumers carry on with real work.
    let out = d.dispatch(&["--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.wait_for_job(Duration::from_secs(5)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();
}

#[test]
fn transient_failures_wait_in_a_delay_queue_then_give_up_into_the_dlq() {
    let d = Deployment::new("retry", 1);
    // This worker's root lacks the location (a volume not mounted): a transient failure.
    let elsewhere = TempDir::new("retry-empty-root");
    let mut cmd = d.command("worker");
    cmd.env("VOICE_LOCAL_ROOT", elsewhere.path());
    let _worker = Child::spawn(cmd, d.data.path().join("worker.log"));
    wait_for_queue(&d.services, "voice.clips.dlq", 0, Duration::from_secs(30));

    let task = |attempt: u32| {
        let source = adapters::local::LocalSource::new(d.data.path());
        let date = pipeline::source::CivilDate::parse(DATE).unwrap();
        let clip = source.list_clips(DEMO_LOCATION, date).unwrap().remove(0);
        let task = pipeline::ClipTask {
            job_id: "job-retry".into(),
            location_id: DEMO_LOCATION.into(),
            clip,
            attempt,
            transcript_id: None,
        };
        (pipeline::queue::encode(&task).unwrap(), attempt)
    };
    publish_raw(&d.services, "voice.clips", &[task(1)]);
    wait_for_queue(
        &d.services,
        "voice.clips.retry.10s",
        1,
        Duration::from_secs(30),
    );
    let delayed = drain_queue(&d.services, "voice.clips.retry.10s");
    assert_eq!(delayed.len(), 1);
    assert_eq!(delayed[0].0["attempt"], "2");
    assert_eq!(delayed[0].0["last_error_kind"], "source_unavailable");
    let next: pipeline::ClipTask = pipeline::queue::decode(&delayed[0].1).unwrap();
    assert_eq!(next.attempt, 2);

    // The last try: the task goes to the DLQ and a `failed` result closes the clip.
    publish_raw(&d.services, "voice.clips", &[task(4)]);
    wait_for_queue(&d.services, "voice.clips.dlq", 1, Duration::from_secs(30));
    wait_for_queue(&d.services, "voice.results", 1, Duration::from_secs(30));
    let dead = drain_queue(&d.services, "voice.clips.dlq");
    assert_eq!(dead[0].0["dead_reason"], "retries_exhausted");
    let results = drain_queue(&d.services, "voice.results");
    let result: pipeline::ClipResult = pipeline::queue::decode(&results[0].1).unwrap();
    assert_eq!(result.status, engine::matching::ClipStatus::Failed);
    assert_eq!(result.error_kind.as_deref(), Some("source_unavailable"));
    assert_eq!(result.attempts, 4);
    assert_eq!(results[0].0["status"], "failed");
}

/// The delay queue really hands a task back to the work queue after its TTL.
#[test]
fn a_delayed_task_comes_back_to_the_work_queue() {
    let d = Deployment::new("delay", 1);
    // Declares the topology; nobody consumes voice.clips here.
    with_broker(&d.services, async |_| ());
    publish_raw(
        &d.services,
        "voice.clips.retry.10s",
        &[(b"later".to_vec(), 2)],
    );
    let started = Instant::now();
    wait_for_queue(&d.services, "voice.clips", 1, Duration::from_secs(30));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8),
        "came back after {waited:?}"
    );
    let back = drain_queue(&d.services, "voice.clips");
    assert_eq!(back[0].1, b"later");
    assert_eq!(back[0].0["attempt"], "2");
}

#[test]
fn assemblyai_turns_through_the_distributed_pipeline() {
    const KEY: &str = "aai-planted-secret-77e1";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(it::fake_assemblyai(Duration::from_millis(50), false));
    let mut d = Deployment::new("aai", 22);
    let _reducer = d.spawn("reducer");
    let mut cmd = d.command("worker");
    cmd.env("VOICE_DIARIZER", "assemblyai")
        .env("AAI_API_KEY", KEY)
        .env("AAI_BASE_URL", server.uri());
    let worker = Child::spawn(cmd, d.data.path().join("worker-aai.log"));

    let out = d.dispatch(&["--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.wait_for_job(Duration::from_secs(5)), d.expected_job());
    d.check_results();
    d.services.assert_queues_drain();
    // The transcript is kept with each result; the files that are not audio failed on decoding,
    // as with the local diarizer, and were never uploaded (an upload and a request per clip).
    let kept = d.services.psql(
        "SELECT count(*) FROM voice_clip_results WHERE transcript_id IS NOT NULL AND jsonb_array_length(utterances) > 0",
    );
    assert_eq!(kept, "20");
    let failed = d
        .services
        .psql("SELECT DISTINCT error_kind FROM voice_clip_results WHERE status = 'failed'");
    assert_eq!(failed, "unknown_format");

    // Every task again, as a redelivery after lost acks would bring them: each clip is already
    // completed in its job, so it is acked without a download, an upload or a new transcript.
    let calls = |server: &wiremock::MockServer| {
        runtime
            .block_on(server.received_requests())
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method == wiremock::http::Method::POST)
            .count()
    };
    let before = calls(&server);
    assert_eq!(
        before,
        2 * 20,
        "only the clips that are audio were uploaded"
    );
    let stamps =
        "SELECT string_agg(updated_at::text, ',' ORDER BY clip_key) FROM voice_clip_results
                  WHERE status <> 'failed'";
    let stored_at = d.services.psql(stamps);
    let job = d.services.psql("SELECT job_id FROM voice_jobs");
    let source = adapters::local::LocalSource::new(d.data.path());
    let date = pipeline::source::CivilDate::parse(DATE).unwrap();
    let clips = runtime
        .block_on(pipeline::source::ClipSource::list_clips(
            &source,
            DEMO_LOCATION,
            date,
        ))
        .unwrap();
    let again: Vec<(Vec<u8>, u32)> = clips
        .into_iter()
        .map(|clip| {
            let task = pipeline::ClipTask {
                job_id: job.clone(),
                location_id: DEMO_LOCATION.into(),
                clip,
                attempt: 1,
                transcript_id: None,
            };
            (pipeline::queue::encode(&task).unwrap(), 1)
        })
        .collect();
    assert_eq!(again.len(), 22);
    publish_raw(&d.services, "voice.clips", &again);
    let deadline = Instant::now() + Duration::from_secs(60);
    while worker
        .log_text()
        .matches("already completed in this job")
        .count()
        < 20
    {
        assert!(Instant::now() < deadline, "{}", worker.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    d.services.assert_queues_drain();
    // The two failed clips are tried again, and fail on decoding again: no new calls.
    assert_eq!(calls(&server) - before, 0, "new AssemblyAI calls");
    assert_eq!(
        d.services.psql(stamps),
        stored_at,
        "a completed result was written again"
    );
    assert_eq!(d.wait_for_job(Duration::from_secs(5)), d.expected_job());

    let logs = worker.log_text() + &stderr(&out);
    assert!(!logs.contains(KEY), "the API key leaked into the logs");
    let stored = d
        .services
        .psql("SELECT string_agg(coalesce(error, ''), ' ') FROM voice_clip_results");
    assert!(!stored.contains(KEY));
}

/// A worker stopped while AssemblyAI is still making its transcripts does not wait them out (nor
/// leave them to a redelivery that uploads and pays again): it hands each task back with its
/// transcript id and leaves at once, and the next worker only waits for those transcripts.
#[test]
fn a_stopping_worker_hands_its_pending_transcripts_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    struct Submit(AtomicUsize);
    impl wiremock::Respond for Submit {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": format!("tr-{n}"), "status": "queued"}))
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/upload"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"upload_url": "https://cdn.invalid/clip"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/transcript"))
            .respond_with(Submit(AtomicUsize::new(0)))
            .mount(&server)
            .await;
        // Still processing, for as long as anyone asks.
        Mock::given(method("GET"))
            .and(path_regex("^/v2/transcript/tr-[0-9]+$"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"id": "tr-0", "status": "processing"})),
            )
            .mount(&server)
            .await;
        server
    });
    let requests = |what: wiremock::http::Method, prefix: &str| {
        runtime
            .block_on(server.received_requests())
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method == what && r.url.path().starts_with(prefix))
            .count()
    };
    let mut d = Deployment::new("handback", 2);
    let _reducer = d.spawn("reducer");
    let aai = |d: &Deployment, name: &str| {
        let mut cmd = d.command("worker");
        cmd.env("VOICE_DIARIZER", "assemblyai")
            .env("AAI_API_KEY", "aai-key")
            .env("AAI_BASE_URL", server.uri());
        Child::spawn(cmd, d.data.path().join(name))
    };
    let mut first = aai(&d, "worker-first.log");
    let out = d.dispatch(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    while requests(wiremock::http::Method::GET, "/v2/transcript/tr-") < 2 {
        assert!(Instant::now() < deadline, "{}", first.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let uploads = requests(wiremock::http::Method::POST, "/v2/upload");
    assert_eq!(uploads, 2);

    first.signal("TERM");
    let stopping = Instant::now();
    assert_eq!(first.wait_for_exit(Duration::from_secs(30)), Some(0));
    let took = stopping.elapsed();
    let log = first.log_text();
    assert_eq!(
        log.matches("goes back to the queue with its transcript")
            .count(),
        2,
        "{log}"
    );
    assert!(took < Duration::from_secs(20), "the drain took {took:?}");

    // The transcripts are done now; the next worker only asks for them.
    struct Done;
    impl wiremock::Respond for Done {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let id = request.url.path().rsplit('/').next().unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "id": id, "status": "completed", "text": "", "utterances": []
            }))
        }
    }
    runtime.block_on(async {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path_regex("^/v2/transcript/tr-[0-9]+$"))
            .respond_with(Done)
            .mount(&server)
            .await;
    });
    let second = aai(&d, "worker-second.log");
    let job = d.wait_for_job(Duration::from_secs(60));
    assert!(job.starts_with("completed|2|2|"), "{job}");
    assert_eq!(
        requests(wiremock::http::Method::POST, "/"),
        0,
        "the clips were uploaded or submitted again: {}",
        second.log_text()
    );
    assert_eq!(
        requests(wiremock::http::Method::GET, "/v2/transcript/tr-"),
        2
    );
    let kept = d.services.psql(
        "SELECT string_agg(transcript_id, ',' ORDER BY transcript_id) FROM voice_clip_results",
    );
    assert_eq!(kept, "tr-0,tr-1");
    d.services.assert_queues_drain();
}
