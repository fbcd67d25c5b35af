//! Operating the services: `/metrics`, `/health` and `/ready` on the real binaries against the
//! real broker and database; alerts in Slack's, Discord's and a generic webhook's format;
//! `dispatcher validate` failing (exit 3) on each check in turn; timed-out jobs (exit 124);
//! and no secret in any of it.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use it::{
    Child, DEMO_LOCATION, Services, TempDir, binary, demo_copies, free_port, http_get as get,
    ort_library, root,
};
use ops::Secret;
use ops::{Alert, Level, metrics};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DATE: &str = "2025-10-06";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The value of a sample line `name{labels} value` in Prometheus text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn metrics_health_and_ready_after_a_distributed_run_with_no_secret_in_them() {
    const DB_PASSWORD: &str = "planted-ops-db-password-4c2d";
    const SLACK_TOKEN: &str = "planted-slack-token-XYZ123";
    let services = Services::new("ops");
    let data = TempDir::new("ops");
    let expected = demo_copies(data.path(), 11, DATE);
    let database_url = format!(
        "postgres://postgres:{DB_PASSWORD}@127.0.0.1:5432/{}",
        services.database
    );
    let hooks = tokio::runtime::Runtime::new().unwrap();
    let hook = hooks.block_on(MockServer::start());
    hooks.block_on(
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&hook),
    );
    let slack = format!("{}/services/T000/B000/{SLACK_TOKEN}", hook.uri());
    let command = |bin: &str, port: Option<u16>| {
        let mut c = services.command(bin, data.path());
        c.env("DATABASE_URL", &database_url)
            .env("SLACK_WEBHOOK_URL", &slack)
            .env("RUST_LOG", "debug");
        if let Some(port) = port {
            c.args(["--health-check-port", &port.to_string()]);
        }
        c
    };
    let (worker_port, reducer_port) = (free_port(), free_port());
    let mut reducer = Child::spawn(
        command("reducer", Some(reducer_port)),
        data.path().join("reducer.log"),
    );
    let mut worker = Child::spawn(
        command("worker", Some(worker_port)),
        data.path().join("worker.log"),
    );
    let out = command("dispatcher", None)
        .args(["run", DEMO_LOCATION, DATE, "--wait"])
        .output()
        .unwrap();
    let dispatcher_log = output_text(&out);
    assert!(out.status.success(), "{dispatcher_log}");

    let count = |v: &str| expected.values().filter(|e| *e == v).count() as f64;
    let (failed, none) = (count("failed"), count("none"));
    let matched = expected.len() as f64 - failed - none;
    let (code, worker_metrics) = get(worker_port, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        sample(
            &worker_metrics,
            "voice_diarization_clips_total{outcome=\"matched\"}"
        ),
        matched
    );
    assert_eq!(
        sample(
            &worker_metrics,
            "voice_diarization_clips_total{outcome=\"failed\"}"
        ),
        failed
    );
    let no_match = sample(
        &worker_metrics,
        "voice_diarization_clips_total{outcome=\"no_match\"}",
    ) + sample(
        &worker_metrics,
        "voice_diarization_clips_total{outcome=\"no_speech\"}",
    );
    assert_eq!(no_match, none);
    assert_eq!(
        sample(
            &worker_metrics,
            "voice_diarization_clip_processing_seconds_count"
        ),
        expected.len() as f64
    );
    assert!(sample(&worker_metrics, "voice_diarization_match_score_count") >= matched);
    assert!(sample(&worker_metrics, "voice_diarization_memory_rss_bytes") > 1e7);
    let (_, reducer_metrics) = get(reducer_port, "/metrics");
    assert_eq!(
        sample(&reducer_metrics, "voice_diarization_results_stored_total"),
        expected.len() as f64
    );
    assert_eq!(
        sample(&reducer_metrics, "voice_diarization_jobs_completed_total"),
        1.0
    );

    let (code, health) = get(worker_port, "/health");
    assert_eq!(code, 200, "{health}");
    let health = json(&health);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["issues"], serde_json::json!([]));
    assert_eq!(health["metrics"]["clips"]["matched"], matched as u64);
    assert!(
        health["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let (code, ready) = get(worker_port, "/ready");
    assert_eq!(code, 200, "{ready}");
    let ready = json(&ready);
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["checks"]["broker"], true);
    assert_eq!(ready["checks"]["database"], true);
    assert_eq!(ready["checks"]["gpu"], false, "no GPU on this machine");
    assert_eq!(get(worker_port, "/nothing").0, 404);

    // `dispatcher health --once` against the reducer, and against nothing.
    let probe = |url: &str| {
        Command::new(binary("dispatcher"))
            .args(["health", "--once", "--url", url])
            .output()
            .unwrap()
    };
    let ok = probe(&format!("http://127.0.0.1:{reducer_port}/health"));
    assert_eq!(ok.status.code(), Some(0), "{}", output_text(&ok));
    let down = probe(&format!("http://127.0.0.1:{}/health", free_port()));
    assert_eq!(down.status.code(), Some(1));

    // Secrets: nowhere in the endpoints' answers or the logs.
    let endpoints: String = [worker_port, reducer_port]
        .iter()
        .flat_map(|p| ["/health", "/ready", "/metrics"].map(|w| get(*p, w).1))
        .collect();
    worker.signal("TERM");
    reducer.signal("TERM");
    assert_eq!(worker.wait_for_exit(Duration::from_secs(30)), Some(0));
    assert_eq!(reducer.wait_for_exit(Duration::from_secs(30)), Some(0));
    let everything = [
        endpoints,
        worker.log_text(),
        reducer.log_text(),
        dispatcher_log,
    ]
    .concat();
    for secret in [DB_PASSWORD, SLACK_TOKEN] {
        assert!(!everything.contains(secret), "`{secret}` leaked");
    }
}

#[test]
fn ready_turns_false_while_postgres_is_down_and_back_after() {
    let services = Services::new("ready");
    let data = TempDir::new("ready");
    let port = free_port();
    let mut cmd = services.command("reducer", data.path());
    cmd.args(["--health-check-port", &port.to_string()]);
    let _reducer = Child::spawn(cmd, data.path().join("reducer.log"));
    let wait_for = |want: bool| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let (code, body) = get(port, "/ready");
            let body = json(&body);
            if body["ready"] == want {
                assert_eq!(code, if want { 200 } else { 503 });
                assert_eq!(body["checks"]["database"], want);
                return;
            }
            assert!(Instant::now() < deadline, "/ready stayed {body}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_for(true);
    services.stop_database();
    wait_for(false);
    // Liveness is not readiness: /health still answers.
    assert_eq!(get(port, "/health").0, 200);
    services.start_database();
    wait_for(true);
}

#[tokio::test]
async fn alerts_reach_slack_discord_and_a_webhook_in_their_formats() {
    let server = MockServer::start().await;
    for p in ["/slack", "/discord", "/hook"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    let url = |p: &str| Secret::new(format!("{}{p}", server.uri()));
    let alerter = adapters::webhooks::alerter(
        "test",
        Some(&url("/slack")),
        Some(&url("/discord")),
        Some(&url("/hook")),
    )
    .unwrap();
    alerter
        .send(&Alert {
            event: "job_failed",
            level: Level::Critical,
            title: "job j-1 failed".into(),
            text: "3 of 10 clips failed".into(),
            fields: vec![("job".into(), "j-1".into())],
        })
        .await;
    let requests = server.received_requests().await.unwrap();
    let body = |p: &str| -> Value {
        let r = requests
            .iter()
            .find(|r| r.url.path() == p)
            .unwrap_or_else(|| panic!("no {p}"));
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        serde_json::from_slice(&r.body).unwrap()
    };
    let slack = body("/slack");
    assert_eq!(slack["text"], "[critical] job j-1 failed");
    assert_eq!(slack["attachments"][0]["text"], "3 of 10 clips failed");
    assert_eq!(slack["attachments"][0]["fields"][0]["title"], "job");
    let discord = body("/discord");
    assert_eq!(discord["embeds"][0]["title"], "job j-1 failed");
    assert_eq!(discord["embeds"][0]["color"], 0xe0_1e_5a);
    assert_eq!(discord["embeds"][0]["fields"][0]["name"], "job");
    let generic = body("/hook");
    assert_eq!(generic["event"], "job_failed");
    assert_eq!(generic["level"], "critical");
    assert_eq!(generic["fields"]["job"], "j-1");

    // A webhook that keeps failing: retried, counted, logged; the caller goes on.
    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&failing)
        .await;
    let before = metrics()
        .alerts
        .with_label_values(&["webhook", "failed"])
        .get();
    let alerter =
        adapters::webhooks::alerter("test", None, None, Some(&Secret::new(failing.uri()))).unwrap();
    alerter
        .send(&Alert {
            event: "memory",
            level: Level::Warning,
            title: "t".into(),
            text: "x".into(),
            fields: Vec::new(),
        })
        .await;
    assert_eq!(failing.received_requests().await.unwrap().len(), 3);
    assert_eq!(
        metrics()
            .alerts
            .with_label_values(&["webhook", "failed"])
            .get(),
        before + 1
    );
}

#[test]
fn plain_http_webhooks_are_refused_at_start() {
    for bin in ["worker", "reducer"] {
        let out = Command::new(binary(bin))
            .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1/postgres")
            .env(
                "DISCORD_WEBHOOK_URL",
                "http://discord.com/api/webhooks/1/planted-token",
            )
            .output()
            .unwrap();
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{bin}: {text}");
        assert!(
            text.contains("DISCORD_WEBHOOK_URL must be an https:// URL"),
            "{text}"
        );
        assert!(!text.contains("planted-token"), "{text}");
    }
}

/// `dispatcher validate` with `envs`: (exit code, the JSON report).
fn validate(envs: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(binary("dispatcher"))
        .args(["validate", "--json"])
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", root().join("demo"))
        .env("ORT_DYLIB_PATH", ort_library())
        .env("VOICE_ONNX_THREADS", "1")
        .env_remove("AMQP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("VOICE_MODEL")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", output_text(&out)));
    (out.status.code().unwrap_or(-1), report)
}

fn failing_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            assert!(c["fix"].is_string(), "every ✘ names its fix: {c}");
            c["name"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn validate_exits_3_naming_each_failing_check() {
    let services = Services::new("validate");
    let (code, report) = validate(&[
        ("AMQP_URL", &services.amqp_url()),
        ("DATABASE_URL", &services.database_url()),
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    assert!(failing_checks(&report).is_empty());

    let aai = tokio::runtime::Runtime::new().unwrap();
    let refusing = aai.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/transcript"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"error": "Invalid API key"})),
            )
            .mount(&server)
            .await;
        server
    });
    let refusing_uri = refusing.uri();
    let database_url = services.database_url();
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "model",
            vec![("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        ),
        ("source", vec![("VOICE_LOCAL_ROOT", "/nonexistent")]),
        (
            "database",
            vec![(
                "DATABASE_URL",
                "postgres://postgres:planted-pw@127.0.0.1:1/x",
            )],
        ),
        (
            "assemblyai",
            vec![
                ("VOICE_DIARIZER", "assemblyai"),
                ("AAI_API_KEY", "planted-aai-key"),
                ("AAI_BASE_URL", &refusing_uri),
            ],
        ),
        (
            "broker",
            vec![
                ("AMQP_URL", "amqp://guest:planted-pw@127.0.0.1:1/%2f"),
                ("DATABASE_URL", &database_url),
            ],
        ),
    ];
    for (check, envs) in cases {
        let (code, report) = validate(&envs);
        assert_eq!(code, 3, "{check}: {report}");
        assert_eq!(failing_checks(&report), [check], "{report}");
        let text = report.to_string();
        assert!(!text.contains("planted"), "a secret in the report: {text}");
    }
    // Drive: a service-account key the token endpoint refuses.
    let drive = aai.block_on(async {
        let drive = it::drive_fake::FakeDrive::start(Vec::new(), 10).await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            ))
            .with_priority(1)
            .mount(&drive.server)
            .await;
        drive
    });
    let drive_uri = drive.server.uri();
    let (code, report) = validate(&[
        ("AMQP_URL", &services.amqp_url()),
        ("DATABASE_URL", &database_url),
        ("VOICE_SOURCE", "gdrive"),
        ("GOOGLE_DRIVE_CREDENTIALS", &drive.key_json),
        ("GOOGLE_DRIVE_BASE_URL", &drive_uri),
        ("VOICE_SAMPLES_FOLDER", "Cary Voice Samples"),
    ]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(failing_checks(&report), ["source"], "{report}");
    assert!(report.to_string().contains("invalid_grant"), "{report}");
    assert!(!report.to_string().contains("PRIVATE KEY"));

    // The table, for people.
    let out = Command::new(binary("dispatcher"))
        .arg("validate")
        .env("VOICE_LOCAL_ROOT", "/nonexistent")
        .env("ORT_DYLIB_PATH", ort_library())
        .current_dir(root())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text.contains("✘ source") && text.contains("fix: set VOICE_LOCAL_ROOT"),
        "{text}"
    );
    assert!(text.contains("✔ model"), "{text}");
}

fn many_clips(tag: &str, n: usize) -> TempDir {
    let data = TempDir::new(tag);
    demo_copies(data.path(), n, DATE);
    data
}

#[test]
fn a_standalone_run_past_its_timeout_exits_124_keeping_what_it_stored() {
    let data = many_clips("timeout", 80);
    let out_dir = data.path().join("out");
    let (hook, server) = it::webhook();
    let out = Command::new(binary("dispatcher"))
        .args(["run", DEMO_LOCATION, DATE, "--timeout", "2s", "--out"])
        .arg(&out_dir)
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", data.path())
        .env("ORT_DYLIB_PATH", ort_library())
        .env("VOICE_ONNX_THREADS", "1")
        .env("MONITORING_WEBHOOK_URL", server.uri())
        .env("NOTIFY_JOB_START", "true")
        .env_remove("AMQP_URL")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(124), "{text}");
    assert!(text.contains("timed out"), "{text}");
    let lines = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap_or_default();
    let stored = lines.lines().count();
    assert!(stored < 80, "{stored} results: the run did not stop");
    let events: Vec<String> = it::alert_bodies(&hook, &server)
        .iter()
        .map(|b| b["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events, ["job_started", "job_timed_out"]);
}

#[test]
fn a_distributed_job_past_its_timeout_is_marked_timed_out_and_exits_124() {
    let services = Services::new("timeout_d");
    let data = many_clips("timeout-d", 5);
    // No worker runs: the job cannot finish. The waiting dispatcher serves its own endpoints.
    let port = free_port();
    let mut cmd = services.command("dispatcher", data.path());
    cmd.args(["run", DEMO_LOCATION, DATE, "--wait", "--timeout", "4"])
        .args([
            "--enable-health-check",
            "--health-check-port",
            &port.to_string(),
        ]);
    let mut dispatcher = Child::spawn(cmd, data.path().join("dispatcher.log"));
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let (_, metrics) = get(port, "/metrics");
        // No worker: all 5 tasks wait in the queue the dispatcher just published to.
        if metrics.contains("voice_diarization_jobs_total 1")
            && metrics.contains("voice_diarization_queue_depth{queue=\"voice.clips\"} 5")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dispatcher's /metrics: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = json(&get(port, "/ready").1);
    assert_eq!(ready["checks"]["database"], true, "{ready}");
    assert_eq!(
        dispatcher.wait_for_exit(Duration::from_secs(20)),
        Some(124),
        "{}",
        dispatcher.log_text()
    );
    assert_eq!(services.psql("SELECT status FROM voice_jobs"), "timed_out");
    // The reducer times out jobs nobody waits for (MAX_JOB_DURATION).
    services
        .psql("UPDATE voice_jobs SET status = 'running', started_at = now() - interval '1 hour'");
    let mut cmd = services.command("reducer", data.path());
    cmd.env("MAX_JOB_DURATION", "60")
        .args(["--health-check-port", "0"]);
    let _reducer = Child::spawn(cmd, data.path().join("reducer.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while services.psql("SELECT status FROM voice_jobs") != "timed_out" {
        assert!(
            Instant::now() < deadline,
            "the reducer did not time the job out"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
