//! Helpers shared by the integration tests (`tests/it`).

pub mod drive_fake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use engine::model::{EncoderOptions, SpeakerEncoder, load_encoder};

/// The checkout's root folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub const DEMO_LOCATION: &str = "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e";

pub fn demo_location() -> PathBuf {
    root().join("demo").join(DEMO_LOCATION)
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The default model's manifest (CAM++; GE2E embeds its diarizer's windows).
pub fn default_manifest() -> PathBuf {
    root().join("models/campplus/campplus.toml")
}

/// The default model and its windows model on the setup step's ONNX Runtime.
pub fn default_encoders() -> engine::model::Encoders {
    engine::model::load_encoders(
        &default_manifest(),
        Some(&ort_library()),
        EncoderOptions {
            threads: 2,
            max_batch: 32,
            ..EncoderOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e} (the tests need `make setup`)"))
}

/// The default model's calibration prior, as the settings give it without overrides.
pub fn default_prior() -> engine::matching::Prior {
    let manifest = engine::model::Manifest::load(&default_manifest()).unwrap();
    let d = &manifest.decision;
    engine::matching::Prior {
        rules: engine::matching::DecisionRules {
            threshold: d.threshold,
            margin: d.margin,
        },
        impostor_mean: d.impostor_mean,
        impostor_sd: d.impostor_sd,
        target_mean: d.target_mean,
    }
}

/// The GE2E model on the setup step's ONNX Runtime, loaded once per test process.
pub fn encoder() -> MutexGuard<'static, SpeakerEncoder> {
    static ENCODER: OnceLock<Mutex<SpeakerEncoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let manifest = root().join("models/ge2e/ge2e.toml");
            let library = root().join(".cache/onnxruntime/libonnxruntime.so.1.31.1");
            let encoder = load_encoder(
                &manifest,
                Some(&library),
                EncoderOptions {
                    threads: 2,
                    max_batch: 32,
                    ..EncoderOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e} (the tests need `make setup`)"));
            Mutex::new(encoder)
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A binary of the workspace, built beside this test executable (`make test` builds them first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("voice-it-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("a temporary folder for {tag}: {e}"));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    engine::matching::cosine(a, b)
}

/// The local RabbitMQ and Postgres, with a fresh virtual host and database for one test.
///
/// Tests that use them run one at a time (some stop the broker or the database on purpose),
/// and each sees only its own queues and tables.
pub struct Services {
    pub vhost: String,
    pub database: String,
    _turn: MutexGuard<'static, ()>,
}

fn sh(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn sh_ok(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn psql(database: &str, sql: &str) -> std::process::Output {
    let args = ["-h", "127.0.0.1", "-U", "postgres", "-d", database];
    sh(
        "psql",
        &[&args[..], &["-v", "ON_ERROR_STOP=1", "-Atc", sql]].concat(),
    )
}

fn pg_cluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_else(|| "15".into());
    sh_ok(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", action],
    );
}

impl Services {
    pub fn new(tag: &str) -> Self {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("voice_it_{tag}_{}_{n}", std::process::id());
        sh_ok("rabbitmqctl", &["-q", "add_vhost", &name]);
        sh_ok(
            "rabbitmqctl",
            &[
                "-q",
                "set_permissions",
                "-p",
                &name,
                "guest",
                ".*",
                ".*",
                ".*",
            ],
        );
        let services = Self {
            vhost: name.clone(),
            database: name,
            _turn: turn,
        };
        services.psql_admin(&format!("CREATE DATABASE {}", services.database));
        services
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.vhost)
    }

    pub fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.database)
    }

    fn psql_admin(&self, sql: &str) {
        let out = psql("postgres", sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `sql` in the test's database; `None` while the database cannot answer.
    pub fn try_psql(&self, sql: &str) -> Option<String> {
        let out = psql(&self.database, sql);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|| panic!("psql failed: {sql}"))
    }

    /// One of the workspace's binaries, pointed at these services and the local source under
    /// `data`, with the bundled model, one ONNX thread and four clips in flight.
    pub fn command(&self, bin: &str, data: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(binary(bin));
        c.current_dir(root())
            .env("AMQP_URL", self.amqp_url())
            .env("DATABASE_URL", self.database_url())
            .env("VOICE_LOCAL_ROOT", data)
            .env("ORT_DYLIB_PATH", ort_library())
            .env("VOICE_ONNX_THREADS", "1")
            .env("VOICE_PARALLEL_WORKERS", "4")
            .env("RUST_LOG", "info")
            .env_remove("VOICE_MODEL")
            .env_remove("VOICE_SOURCE");
        c
    }

    /// Every queue of the test's vhost: (ready, unacknowledged).
    pub fn queues(&self) -> std::collections::BTreeMap<String, (u64, u64)> {
        let out = sh_ok(
            "rabbitmqctl",
            &[
                "-q",
                "list_queues",
                "-p",
                &self.vhost,
                "--no-table-headers",
                "name",
                "messages_ready",
                "messages_unacknowledged",
            ],
        );
        out.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((
                    f.next()?.to_string(),
                    (f.next()?.parse().ok()?, f.next()?.parse().ok()?),
                ))
            })
            .collect()
    }

    /// Waits (up to 10 s) until no queue holds a message, delivered or not. Acks travel
    /// asynchronously and the broker's quorum-queue counts trail them by a few seconds under
    /// load, so a count read the moment the services stop can still show settled messages.
    pub fn assert_queues_drain(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let queues = self.queues();
            let busy: Vec<_> = queues.iter().filter(|(_, (r, u))| r + u > 0).collect();
            if busy.is_empty() {
                assert!(queues.contains_key("voice.clips"), "{queues:?}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "messages left: {busy:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// Stops the whole broker application (every connection drops) and starts it again.
    pub fn restart_broker(&self, down_for: std::time::Duration) {
        sh_ok("rabbitmqctl", &["-q", "stop_app"]);
        std::thread::sleep(down_for);
        sh_ok("rabbitmqctl", &["-q", "start_app"]);
        sh_ok("rabbitmqctl", &["-q", "await_startup"]);
    }

    pub fn stop_database(&self) {
        pg_cluster("stop");
    }

    pub fn start_database(&self) {
        pg_cluster("start");
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        // A test that failed with the database stopped must not leave it stopped.
        if sh("pg_isready", &["-h", "127.0.0.1", "-q"]).status.code() == Some(2) {
            pg_cluster("start");
        }
        let _ = sh("rabbitmqctl", &["-q", "delete_vhost", &self.vhost]);
        let _ = psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
        );
    }
}

/// A child process killed when dropped, its stderr kept in a file for the test to read.
pub struct Child {
    pub process: std::process::Child,
    pub log: PathBuf,
}

impl Child {
    pub fn spawn(mut command: std::process::Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let process = command
            .stdout(file.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
        Self { process, log }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    pub fn signal(&self, signal: &str) {
        sh_ok("kill", &[&format!("-{signal}"), &self.pid().to_string()]);
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_for_exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A local webhook that answers every POST with 200, on its own runtime (kept beside it).
pub fn webhook() -> (tokio::runtime::Runtime, wiremock::MockServer) {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        server
    });
    (runtime, server)
}

/// The body of every alert a `webhook` received, in order.
pub fn alert_bodies(
    runtime: &tokio::runtime::Runtime,
    server: &wiremock::MockServer,
) -> Vec<serde_json::Value> {
    runtime
        .block_on(server.received_requests())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

/// The bundled runtime library, as `make setup` leaves it.
pub fn ort_library() -> PathBuf {
    root().join(".cache/onnxruntime/libonnxruntime.so.1.31.1")
}

/// A location of `n` clips under `root`: the demo's voice samples and roster, and the demo's
/// clips again and again under new transaction ids. Returns each clip's expected outcome (an
/// employee's name, `none` or `failed`) by file name.
pub fn demo_copies(
    root: &Path,
    n: usize,
    date: &str,
) -> std::collections::BTreeMap<String, String> {
    let location = root.join(DEMO_LOCATION);
    let clips = location.join("clips").join(date);
    std::fs::create_dir_all(&clips).unwrap_or_else(|e| panic!("{e}"));
    let demo = demo_location();
    let link = |from: &Path, to: &Path| {
        std::os::unix::fs::symlink(from, to)
            .unwrap_or_else(|e| panic!("{} → {}: {e}", to.display(), from.display()))
    };
    link(&demo.join("voice_samples"), &location.join("voice_samples"));
    link(&demo.join("workers.csv"), &location.join("workers.csv"));
    let mut reader = csv::Reader::from_path(root_expected()).unwrap_or_else(|e| panic!("{e}"));
    let sources: Vec<(String, String)> = reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..n {
        let (file, outcome) = &sources[i % sources.len()];
        let ext = Path::new(file)
            .extension()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned());
        let name = format!("till1_{i:08x}-0000-4000-8000-{:012x}.{ext}", i * 7919);
        link(
            &demo.join("clips/2025-10-06").join(file),
            &clips.join(&name),
        );
        expected.insert(name, outcome.clone());
    }
    expected
}

fn root_expected() -> PathBuf {
    root().join("demo/expected.csv")
}

/// A local AssemblyAI that knows the demo clips: an upload is recognised by its bytes, and the
/// transcript request answers, after `latency`, with the clip's labelled segments as utterances
/// (speakers `A`, `B`, … in order of appearance), or with `status: error` for a file that holds
/// no audio, as the real service does. With `silent`, every transcript has no utterances (no
/// model work follows: what is left to time is the waiting and the plumbing).
pub async fn fake_assemblyai(latency: std::time::Duration, silent: bool) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    struct Upload(Vec<(Vec<u8>, String)>);
    impl wiremock::Respond for Upload {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            match self.0.iter().find(|(bytes, _)| *bytes == request.body) {
                Some((_, name)) => ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"upload_url": format!("https://cdn.invalid/{name}")}),
                ),
                None => ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"error": "unknown upload"})),
            }
        }
    }
    struct Transcript(BTreeMap<String, String>, std::time::Duration, bool);
    impl wiremock::Respond for Transcript {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let name = body["audio_url"]
                .as_str()
                .and_then(|u| u.rsplit('/').next())
                .unwrap_or_default();
            let answer = match self.0.get(name).filter(|s| !s.is_empty()) {
                Some(_) if self.2 => serde_json::json!({"id": format!("tr-{name}"),
                    "status": "completed", "text": "", "utterances": []}),
                Some(segments) => {
                    let mut labels: Vec<&str> = Vec::new();
                    let utterances: Vec<serde_json::Value> = segments
                        .split(';')
                        .filter_map(|seg| {
                            let (span, who) = seg.split_once(':')?;
                            let (s, e) = span.split_once('-')?;
                            let s: f64 = s.parse().ok()?;
                            let e: f64 = e.parse().ok()?;
                            if !labels.contains(&who) {
                                labels.push(who);
                            }
                            let i = labels.iter().position(|l| *l == who)?;
                            let speaker = char::from(b'A' + u8::try_from(i).ok()?).to_string();
                            Some(serde_json::json!({
                                "speaker": speaker, "start": (s * 1000.0) as u64,
                                "end": (e * 1000.0) as u64, "text": "…", "confidence": 0.9, "words": []
                            }))
                        })
                        .collect();
                    serde_json::json!({"id": format!("tr-{name}"), "status": "completed",
                                       "text": "…", "utterances": utterances})
                }
                None => serde_json::json!({"id": format!("tr-{name}"), "status": "error",
                    "error": "File does not appear to contain audio."}),
            };
            ResponseTemplate::new(200)
                .set_delay(self.1)
                .set_body_json(answer)
        }
    }

    let clips = demo_location().join("clips/2025-10-06");
    let mut reader = csv::Reader::from_path(root_expected()).unwrap_or_else(|e| panic!("{e}"));
    let mut uploads = Vec::new();
    let mut segments = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("{e}"));
        let name = record[0].to_string();
        let bytes = std::fs::read(clips.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        uploads.push((bytes, name.clone()));
        segments.insert(name, record[4].to_string());
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/upload"))
        .respond_with(Upload(uploads))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/transcript"))
        .respond_with(Transcript(segments, latency, silent))
        .mount(&server)
        .await;
    // The transcript list (`dispatcher validate`'s cheap authenticated call).
    Mock::given(method("GET"))
        .and(path("/v2/transcript"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "page_details": {"limit": 1, "result_count": 0, "current_url": "", "prev_url": null, "next_url": null},
            "transcripts": []
        })))
        .mount(&server)
        .await;
    server
}

/// A port nothing listens on now (for a service's `--health-check-port`).
/// Publishes `task` to `voice.clips` as the dispatcher does: its message id and readable headers.
pub async fn publish_task(broker: &adapters::broker::Broker, task: &pipeline::ClipTask) {
    let body = pipeline::queue::encode(task).unwrap_or_else(|e| panic!("{e}"));
    let headers = pipeline::queue::task_headers(task, None);
    let envelope = pipeline::queue::task_envelope(task, headers);
    broker
        .publish(pipeline::queue::Outgoing::to_queue(
            "voice.clips",
            &body,
            envelope,
        ))
        .await
        .unwrap_or_else(|e| panic!("publishing a task: {e}"));
}

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, made now, readable
/// by the broker's own user: (ca.pem, server.pem, server.key).
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=voice-test-ca",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("ext"),
        "-out",
        &p("server.pem"),
    ]);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["ca.pem", "server.pem", "server.key"] {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Runs `openssl` (certificates made at test time); panics with its message when it fails.
pub fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// GET `http://127.0.0.1:port/what` with curl: (status, body), retried while the server starts.
pub fn http_get(port: u16, what: &str) -> (u16, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:{port}{what}"),
            ])
            .output()
            .unwrap_or_else(|e| panic!("curl: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some((body, code)) = text.rsplit_once('\n')
            && let Ok(code) = code.trim().parse::<u16>()
            && code != 0
        {
            return (code, body.to_string());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing serves {what} on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
