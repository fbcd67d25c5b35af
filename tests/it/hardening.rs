//! The production-hardening review's findings, each reproduced against the real RabbitMQ and
//! Postgres: TLS to the broker and the database, URLs with any password, job counts under two
//! reducers.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use adapters::broker::{Broker, BrokerConfig};
use it::{Child, Services, TempDir, binary, free_port, ort_library, root};
use ops::Secret;

fn rabbitmqctl_eval(expression: &str) -> String {
    let out = Command::new("rabbitmqctl")
        .args(["eval", expression])
        .output()
        .unwrap_or_else(|e| panic!("rabbitmqctl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "{expression}: {text}");
    text
}

/// A TLS listener added to the running broker for one test, removed when dropped.
struct TlsListener(u16);

impl TlsListener {
    fn start(cert: &Path, key: &Path) -> Self {
        let port = free_port();
        let started = rabbitmqctl_eval(&format!(
            "rabbit_networking:start_ssl_listener({port}, [{{certfile,\"{}\"}}, {{keyfile,\"{}\"}}, \
             {{versions,['tlsv1.2','tlsv1.3']}}], 1).",
            cert.display(),
            key.display()
        ));
        assert_eq!(started, "ok", "the broker's TLS listener did not start");
        Self(port)
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args([
                "eval",
                &format!("rabbit_networking:stop_tcp_listener({}).", self.0),
            ])
            .output();
    }
}

/// `(vhost, ssl)` of every client connection the broker holds now.
fn connections() -> Vec<(String, String)> {
    let out = Command::new("rabbitmqctl")
        .args([
            "-q",
            "list_connections",
            "--no-table-headers",
            "vhost",
            "ssl",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// `amqps://` is TLS, verified against the system's roots and AMQP_CA_CERT, or no connection at
/// all: before, lapin was built without TLS and `amqps://` to the plaintext port connected.
#[tokio::test]
async fn amqps_is_verified_tls_or_no_connection() {
    let services = Services::new("amqps");
    let dir = TempDir::new("amqps");
    let (ca, cert, key) = it::certificates(dir.path());
    let listener = TlsListener::start(&cert, &key);
    let url = format!(
        "amqps://guest:guest@localhost:{}/{}",
        listener.0, services.vhost
    );

    let trusted = BrokerConfig::new(Secret::new(&url))
        .with_ca_cert(&ca)
        .unwrap();
    let broker = Broker::connect(&trusted, "it-tls").await.unwrap();
    let held = connections();
    assert!(
        held.contains(&(services.vhost.clone(), "true".into())),
        "no TLS connection on the test's vhost: {held:?}"
    );
    assert!(
        !held.contains(&(services.vhost.clone(), "false".into())),
        "{held:?}"
    );
    broker.close().await;

    // Not signed by a CA it trusts: refused.
    let e = Broker::connect(&BrokerConfig::new(Secret::new(&url)), "it-tls")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("issuer"),
        "{e}"
    );
    assert!(!e.contains("guest:guest"), "{e}");

    // `amqps://` at the plaintext port: an error, never a plaintext connection.
    let plain = format!("amqps://guest:guest@localhost:5672/{}", services.vhost);
    let config = BrokerConfig::new(Secret::new(&plain))
        .with_ca_cert(&ca)
        .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(20), Broker::connect(&config, "it-tls"))
        .await
        .map_or(true, |r| r.is_err());
    assert!(refused, "amqps:// reached the plaintext listener");
    assert!(
        connections()
            .iter()
            .all(|(vhost, _)| vhost != &services.vhost),
        "{:?}",
        connections()
    );

    // The services take AMQP_CA_CERT: `dispatcher validate` passes the broker check over TLS.
    let out = Command::new(binary("dispatcher"))
        .args(["validate", "--json"])
        .current_dir(root())
        .env("AMQP_URL", &url)
        .env("AMQP_CA_CERT", &ca)
        .env("DATABASE_URL", services.database_url())
        .env("ORT_DYLIB_PATH", ort_library())
        .env_remove("VOICE_MODEL")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let broker_check = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "broker")
        .cloned()
        .unwrap_or_default();
    assert_eq!(broker_check["ok"], true, "{report}");
    assert!(
        broker_check["detail"]
            .to_string()
            .contains("amqps://guest:***@"),
        "{broker_check}"
    );
}

/// Passwords with `#`, `/`, `?` or `%` (not percent-encoded) make a malformed URL: every service
/// exits 2 at once, naming the variable and not the password. Before, a raw `#` showed the
/// password in every "broker not reachable" line of a process that retried forever.
#[test]
fn a_malformed_broker_or_database_url_exits_2_without_the_password() {
    for (variable, url, password) in [
        ("AMQP_URL", "amqp://guest:k9w#cd@127.0.0.1:5673/", "k9w"),
        ("AMQP_URL", "amqp://guest:v8x/y9@127.0.0.1:5673/", "v8x"),
        ("AMQP_URL", "amqp://guest:j3q?r7@127.0.0.1:5673/", "j3q"),
        ("AMQP_URL", "amqp://guest:m5m%zz@127.0.0.1:5673/", "m5m"),
        ("DATABASE_URL", "postgres://app:m5m%zz@127.0.0.1/db", "m5m"),
        ("DATABASE_URL", "postgres://app:k9w#cd@127.0.0.1/db", "k9w"),
    ] {
        for bin in ["worker", "reducer", "dispatcher"] {
            let mut command = Command::new(binary(bin));
            command
                .current_dir(root())
                .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
                .env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
                .env(variable, url)
                .env("ORT_DYLIB_PATH", ort_library());
            if bin == "dispatcher" {
                command.args(["run", it::DEMO_LOCATION, "2025-10-06"]);
            }
            let out = command.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(2), "{bin} {variable}: {text}");
            assert!(text.contains(variable), "{bin}: {text}");
            assert!(!text.contains(password), "{bin} shows `{password}`: {text}");
        }
    }
}

/// A well-formed password holding `@`, `/`, `#` and `%` (percent-encoded) never reaches a log
/// line of a service retrying an unreachable broker, in either spelling.
#[test]
fn an_unreachable_broker_is_logged_without_the_password() {
    let services = Services::new("amqp_password");
    let dir = TempDir::new("amqp-password");
    let port = free_port();
    let url = format!("amqp://guest:p%40ss%2Fw%23rd%2542@127.0.0.1:{port}/");
    let mut command = Command::new(binary("reducer"));
    command
        .current_dir(root())
        .env("AMQP_URL", &url)
        .env("DATABASE_URL", services.database_url())
        .env("RUST_LOG", "debug");
    let mut reducer = Child::spawn(command, dir.path().join("reducer.log"));
    std::thread::sleep(Duration::from_secs(3));
    reducer.signal("TERM");
    reducer.wait_for_exit(Duration::from_secs(20));
    let log = reducer.log_text();
    assert!(log.contains("broker not reachable"), "{log}");
    for form in ["p%40ss%2Fw%23rd%2542", "p@ss/w#rd%42", "p@ss", "rd%2542"] {
        assert!(!log.contains(form), "`{form}` in the log: {log}");
    }
}

/// This machine's first address off the loopback interface: a database there is "across the
/// network" as far as the store can tell.
fn outside_address() -> std::net::IpAddr {
    let out = Command::new("hostname").arg("-I").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .unwrap_or_else(|| panic!("this test needs an address off the loopback interface"))
}

/// A server that answers Postgres's TLS request with "no" (`N`), as a plaintext-only server or
/// a downgrading middlebox does, and records every byte the client sends after that.
fn refusing_tls_server(ip: std::net::IpAddr) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut request = [0u8; 8];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        // SSLRequest: length 8, code 80877103.
        let asked_tls = request[4..] == 80_877_103u32.to_be_bytes();
        let _ = stream.write_all(if asked_tls { b"N" } else { b"" });
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut after = Vec::new();
        let _ = stream.read_to_end(&mut after);
        let mut seen = if asked_tls {
            Vec::new()
        } else {
            request.to_vec()
        };
        seen.extend(after);
        let _ = tx.send(seen);
    });
    (port, rx)
}

/// A database across the network with no `sslmode` in its URL must speak TLS, and a given CA
/// means TLS is required: neither falls back to sending the login in plaintext. Before, the
/// default `prefer` carried on in plaintext when the server (or a middlebox) said no.
#[tokio::test]
async fn the_store_never_falls_back_to_plaintext_across_the_network_or_with_a_ca() {
    use adapters::store::Store;
    const PASSWORD: &str = "pg-planted-9f3e";
    let ip = outside_address();
    let dir = TempDir::new("pg-tls");
    let (ca, _, _) = it::certificates(dir.path());
    for (host, ca) in [
        (ip, None),
        (std::net::IpAddr::from([127, 0, 0, 1]), Some(ca.as_path())),
    ] {
        let (port, sent) = refusing_tls_server(host);
        let url = Secret::new(format!("postgres://app:{PASSWORD}@{host}:{port}/voice"));
        let store = Store::connect(&url, ca).unwrap();
        let e = store.ping().await.unwrap_err().to_string();
        assert!(!e.contains(PASSWORD), "{e}");
        let after = sent
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&after).contains("app"),
            "{host} with CA {ca:?}: the login went out in plaintext after the server refused TLS ({e})"
        );
    }
    // Asked for in so many words, plaintext stays possible (a private network, a sidecar).
    let (port, sent) = refusing_tls_server(ip);
    let url = Secret::new(format!(
        "postgres://app:{PASSWORD}@{ip}:{port}/voice?sslmode=disable"
    ));
    let _ = Store::connect(&url, None).unwrap().ping().await;
    let first = sent
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("app"), "{first:?}");
}

fn clip_task(job: &str, i: usize) -> pipeline::ClipTask {
    let name = format!("till1_{i:08x}-0000-4000-8000-000000000000.wav");
    pipeline::ClipTask {
        job_id: job.into(),
        location_id: it::DEMO_LOCATION.into(),
        clip: pipeline::source::ClipRef {
            key: format!("{}/2025-10-06/{name}", it::DEMO_LOCATION),
            address: format!("/data/{name}"),
            name,
            date: "2025-10-06".into(),
            transaction_id: None,
            size: 1000,
            version: format!("1000-{i}"),
        },
        attempt: 1,
        transcript_id: None,
    }
}

/// A job of `planned` clips, as the dispatcher records it before publishing.
async fn planned_job(store: &adapters::store::Store, job: &str, planned: i32) {
    store
        .create_job(&pipeline::NewJob {
            job_id: job,
            location_id: it::DEMO_LOCATION,
            date_from: "2025-10-06",
            date_to: "2025-10-06",
            planned,
            skipped: 0,
        })
        .await
        .unwrap();
}

async fn new_job(store: &adapters::store::Store, job: &str, total: i32) {
    planned_job(store, job, total).await;
    // Published in full, as the dispatcher records it.
    store.add_published(job, total).await.unwrap();
    store.finish_publishing(job).await.unwrap();
}

/// Two reducers storing the last two results of one job at the same moment: each recount must
/// see the other's row, so the job ends `completed` with both. The job's row is held by a third
/// session until both writes are waiting on it, which forces the interleaving every time.
/// Before, each recount counted from a snapshot without the other's uncommitted row, and the
/// job stuck at `running` with one result short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reducers_closing_one_job_at_once_count_both_results() {
    use adapters::store::Store;
    use pipeline::ClipResult;
    let services = Services::new("recount");
    let url = Secret::new(services.database_url());
    let (a, b) = (
        Store::connect(&url, None).unwrap(),
        Store::connect(&url, None).unwrap(),
    );
    a.migrate().await.unwrap();
    for round in 0..3 {
        let job = format!("job-recount-{round}");
        new_job(&a, &job, 2).await;
        let holder = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &services.database, "-c"])
            .arg(format!(
                "BEGIN; SELECT 1 FROM voice_jobs WHERE job_id = '{job}' FOR UPDATE; SELECT pg_sleep(60); COMMIT;"
            ))
            .env("PGAPPNAME", "it-holder")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut holder = scopeguard(holder);
        wait_for(
            &services,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'it-holder' AND query LIKE '%pg_sleep%'",
            "1",
        );
        let results: Vec<ClipResult> = (0..2)
            .map(|i| ClipResult::failed(&clip_task(&job, i), "m", "internal", "x".into()))
            .collect();
        let (ra, rb) = (results[..1].to_vec(), results[1..].to_vec());
        let (sa, sb) = (a.clone(), b.clone());
        let wa = tokio::spawn(async move { sa.write_results(&ra).await });
        let wb = tokio::spawn(async move { sb.write_results(&rb).await });
        wait_for(
            &services,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'voice-diarization' AND wait_event_type = 'Lock'",
            "2",
        );
        services.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'it-holder'");
        let _ = holder.0.wait();
        wa.await.unwrap().unwrap();
        wb.await.unwrap().unwrap();
        assert_eq!(
            services.psql(&format!(
                "SELECT status, done FROM voice_jobs WHERE job_id = '{job}'"
            )),
            "completed|2",
            "round {round}"
        );
    }
}

/// Polls `sql` (a count) until it answers `want`, for up to 20 s.
fn wait_for(services: &Services, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = services.psql(sql);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {got}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when the test ends, however it ends.
struct Guarded(std::process::Child);

fn scopeguard(child: std::process::Child) -> Guarded {
    Guarded(child)
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A late `failed` copy of a clip's result (a retry that lost a race with the try that
/// succeeded, a redelivery after a crash) never replaces the completed result of the same job,
/// in a later batch or in the same one. A later job's result still replaces an earlier job's.
#[tokio::test]
async fn a_late_failed_duplicate_never_replaces_a_completed_result() {
    use adapters::store::Store;
    use engine::matching::ClipStatus;
    use pipeline::ClipResult;
    let services = Services::new("late_failed");
    let store = Store::connect(&Secret::new(services.database_url()), None).unwrap();
    store.migrate().await.unwrap();
    new_job(&store, "job-late", 2).await;
    let completed = |i| {
        let mut r = ClipResult::failed(&clip_task("job-late", i), "m", "x", String::new());
        (r.status, r.error, r.error_kind) = (ClipStatus::NoMatch, None, None);
        r
    };
    let late = |i| ClipResult::failed(&clip_task("job-late", i), "m", "download", "late".into());

    store.write_results(&[completed(0)]).await.unwrap();
    store.write_results(&[late(0)]).await.unwrap();
    store.write_results(&[completed(1), late(1)]).await.unwrap();
    assert_eq!(
        services.psql("SELECT string_agg(status, ',' ORDER BY clip_key) FROM voice_clip_results"),
        "no_match,no_match"
    );
    assert_eq!(
        services.psql("SELECT status, done, failed FROM voice_jobs WHERE job_id = 'job-late'"),
        "completed|2|0"
    );

    // A job started later (a --force re-run) replaces the result, whatever its status.
    new_job(&store, "job-later", 1).await;
    let rerun = ClipResult::failed(&clip_task("job-later", 0), "m", "download", "gone".into());
    store.write_results(&[rerun]).await.unwrap();
    assert_eq!(
        services.psql("SELECT job_id, status FROM voice_clip_results ORDER BY clip_key LIMIT 1"),
        "job-later|failed"
    );
}

/// The local source, with the first voice sample of one location taking `delay` to arrive: a
/// Drive folder on a slow link.
struct SlowSamples {
    inner: adapters::local::LocalSource,
    slow_location: String,
    delay: Duration,
    delayed: std::sync::atomic::AtomicBool,
}

impl pipeline::source::ClipSource for SlowSamples {
    fn list_clips<'a>(
        &'a self,
        location: &'a str,
        date: pipeline::source::CivilDate,
    ) -> pipeline::source::BoxFuture<
        'a,
        Result<Vec<pipeline::source::ClipRef>, pipeline::source::SourceError>,
    > {
        pipeline::source::ClipSource::list_clips(&self.inner, location, date)
    }
    fn list_samples<'a>(
        &'a self,
        location: &'a str,
    ) -> pipeline::source::BoxFuture<
        'a,
        Result<Vec<pipeline::source::SampleFile>, pipeline::source::SourceError>,
    > {
        pipeline::source::ClipSource::list_samples(&self.inner, location)
    }
    fn roster<'a>(
        &'a self,
        location: &'a str,
    ) -> pipeline::source::BoxFuture<
        'a,
        Result<Option<Vec<pipeline::source::RosterEntry>>, pipeline::source::SourceError>,
    > {
        pipeline::source::ClipSource::roster(&self.inner, location)
    }
    fn fetch_clip<'a>(
        &'a self,
        location: &'a str,
        clip: &'a pipeline::source::ClipRef,
    ) -> pipeline::source::BoxFuture<
        'a,
        Result<pipeline::source::Fetched, pipeline::source::SourceError>,
    > {
        pipeline::source::ClipSource::fetch_clip(&self.inner, location, clip)
    }
    fn fetch_sample<'a>(
        &'a self,
        sample: &'a pipeline::source::SampleFile,
    ) -> pipeline::source::BoxFuture<
        'a,
        Result<pipeline::source::Fetched, pipeline::source::SourceError>,
    > {
        Box::pin(async move {
            if sample.address.contains(&self.slow_location)
                && !self
                    .delayed
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tokio::time::sleep(self.delay).await;
            }
            pipeline::source::ClipSource::fetch_sample(&self.inner, sample).await
        })
    }
    fn samples_place(&self, location: &str) -> String {
        pipeline::source::ClipSource::samples_place(&self.inner, location)
    }
    fn check(&self) -> pipeline::source::BoxFuture<'_, Result<(), pipeline::source::SourceError>> {
        pipeline::source::ClipSource::check(&self.inner)
    }
}

/// One location's slow enrollment holds up that location's clips only: another location's
/// profiles come while it is still going. Before, one lock over every location's profiles was
/// held across any enrollment, and every clip of every location waited for the slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_enrollment_does_not_stall_other_locations() {
    use pipeline::services::profiles::Profiles;
    const OTHER: &str = "0c9d2b1e-7a44-4f0a-9b5e-3d2a1c0e9f77";
    let data = TempDir::new("slow-enroll");
    for location in [it::DEMO_LOCATION, OTHER] {
        let to = data.path().join(location);
        std::fs::create_dir_all(&to).unwrap();
        std::os::unix::fs::symlink(
            it::demo_location().join("voice_samples"),
            to.join("voice_samples"),
        )
        .unwrap();
    }
    let source = Arc::new(SlowSamples {
        inner: adapters::local::LocalSource::new(data.path()),
        slow_location: it::DEMO_LOCATION.into(),
        delay: Duration::from_secs(15),
        delayed: std::sync::atomic::AtomicBool::new(false),
    });
    let (batcher, _thread) = pipeline::spawn_batcher(it::default_encoders()).unwrap();
    let profiles = Arc::new(Profiles::new(
        source,
        Arc::new(pipeline::profile_store::MemoryProfileStore::default()),
        it::default_prior(),
    ));
    let (slow, slow_batcher) = (Arc::clone(&profiles), batcher.clone());
    let slow = tokio::spawn(async move { slow.get(&slow_batcher, it::DEMO_LOCATION, false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = profiles.get(&batcher, OTHER, false).await.unwrap();
    assert_eq!(other.profiles.profiles.len(), 3);
    assert!(
        !slow.is_finished(),
        "the other location's profiles came only after the slow enrollment"
    );
    assert_eq!(slow.await.unwrap().unwrap().profiles.profiles.len(), 3);
}

/// A dispatcher killed after the broker confirmed a chunk but before it counted it: the reducer
/// settles the job with what it knows, and the results of the uncounted chunk, before the
/// settling or after it, raise the total with them: the job never reads more done than
/// published. Before, such a job closed saying `done` 4 of `total` 2.
#[tokio::test]
async fn results_of_a_chunk_the_killed_dispatcher_never_counted_are_counted() {
    use adapters::store::Store;
    use pipeline::ClipResult;
    let services = Services::new("uncounted");
    let store = Store::connect(&Secret::new(services.database_url()), None).unwrap();
    store.migrate().await.unwrap();
    let job = "job-uncounted";
    planned_job(&store, job, 6).await;
    // Two counted; the next two confirmed by the broker, then the dispatcher died.
    store.add_published(job, 2).await.unwrap();
    let result = |i| ClipResult::failed(&clip_task(job, i), "m", "internal", "x".into());
    store
        .write_results(&[result(0), result(1), result(2)])
        .await
        .unwrap();
    let settled = store
        .settle_abandoned_publishing(Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(settled.len(), 1);
    let job_row = || {
        services.psql(&format!(
            "SELECT status, total, done FROM voice_jobs WHERE job_id = '{job}'"
        ))
    };
    assert_eq!(job_row(), "completed|3|3");
    // The last one of the uncounted chunk, after the job closed.
    store.write_results(&[result(3)]).await.unwrap();
    assert_eq!(job_row(), "completed|4|4");
}
