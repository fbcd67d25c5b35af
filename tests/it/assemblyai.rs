//! The AssemblyAI adapter against a local server that answers as the v2 API does: upload,
//! transcript request, polling, errors, rate limits, deletion. Every request is checked.

use std::time::{Duration, Instant};

use adapters::assemblyai::{AssemblyAi, AssemblyAiConfig};
use engine::turns::Turn;
use ops::Secret;
use pipeline::transcript::{TranscribeError, Transcript};
use serde_json::{Value, json};
use wiremock::matchers::{body_bytes, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use it::demo_location;

const KEY: &str = "aai-planted-secret-4f9c";

fn config(server: &MockServer) -> AssemblyAiConfig {
    let mut config = AssemblyAiConfig::new(&server.uri(), Secret::new(KEY));
    config.retry_delays = [10, 20, 30].map(Duration::from_millis).to_vec();
    config.poll_interval = Duration::from_millis(10);
    config.timeout = Duration::from_secs(5);
    config
}

fn clip() -> std::path::PathBuf {
    demo_location().join("clips/2025-10-06/till1_47019585-bbbe-4230-b72c-a16f4c0e42f8.wav")
}

/// The clip's transcript and its speaker turns.
async fn transcribe_with(
    config: AssemblyAiConfig,
) -> Result<(Transcript, Vec<Turn>), TranscribeError> {
    let heard = AssemblyAi::new(config).unwrap().transcribe(&clip()).await?;
    Ok((
        heard.transcript.expect("a service keeps its transcript"),
        heard.turns,
    ))
}

async fn transcribe(server: &MockServer) -> Result<(Transcript, Vec<Turn>), TranscribeError> {
    transcribe_with(config(server)).await
}

/// Answers `m` requests to `p` with `answer`: every one, or the first `times`.
async fn mount(
    server: &MockServer,
    m: &str,
    p: &str,
    answer: ResponseTemplate,
    times: Option<u64>,
) {
    let mock = Mock::given(method(m)).and(path(p)).respond_with(answer);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

fn json_answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn completed(id: &str) -> Value {
    json!({
        "id": id,
        "status": "completed",
        "text": "Good morning. Morning, two coffees please.",
        "utterances": [
            {"speaker": "A", "start": 356, "end": 4176, "text": "Good morning.", "confidence": 0.93,
             "words": [{"text": "Good", "start": 356, "end": 600, "confidence": 0.9, "speaker": "A"}]},
            {"speaker": "B", "start": 4329, "end": 6354, "text": "Morning, two coffees please.", "confidence": 0.88,
             "words": []}
        ]
    })
}

/// Upload and transcript request succeed; the transcript's polls answer with `poll`.
async fn mount_happy_start(server: &MockServer, id: &str) {
    let upload = json!({"upload_url": "https://cdn.assemblyai.com/upload/abc"});
    mount(server, "POST", "/v2/upload", json_answer(200, upload), None).await;
    let created = json!({"id": id, "status": "queued"});
    mount(
        server,
        "POST",
        "/v2/transcript",
        json_answer(200, created),
        None,
    )
    .await;
}

fn requests_to<'a>(requests: &'a [Request], m: &str, p: &str) -> Vec<&'a Request> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(KEY), "the API key leaked: {text}");
}

#[tokio::test]
async fn a_clip_becomes_speaker_turns_with_its_text() {
    let server = MockServer::start().await;
    let bytes = std::fs::read(clip()).unwrap();
    // Only the right upload is answered: key, content type and the clip's own bytes.
    Mock::given(method("POST"))
        .and(path("/v2/upload"))
        .and(header("authorization", KEY))
        .and(header("content-type", "application/octet-stream"))
        .and(body_bytes(bytes))
        .respond_with(json_answer(
            200,
            json!({"upload_url": "https://cdn.assemblyai.com/upload/abc"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let created = json!({"id": "tr-1", "status": "queued"});
    mount(
        &server,
        "POST",
        "/v2/transcript",
        json_answer(200, created),
        None,
    )
    .await;
    // Processing twice, then done.
    let processing = json!({"id": "tr-1", "status": "processing"});
    let poll = "/v2/transcript/tr-1";
    mount(&server, "GET", poll, json_answer(200, processing), Some(2)).await;
    mount(
        &server,
        "GET",
        poll,
        json_answer(200, completed("tr-1")),
        None,
    )
    .await;

    let (transcript, turns) = transcribe(&server).await.unwrap();
    assert_eq!(transcript.id, "tr-1");
    assert_eq!(
        transcript.text,
        "Good morning. Morning, two coffees please."
    );
    assert_eq!(transcript.utterances.len(), 2);
    assert_eq!(transcript.utterances[1].speaker, "B");
    assert_eq!(
        transcript.utterances[1].text,
        "Morning, two coffees please."
    );
    let turns: Vec<(f64, f64, &str)> = turns
        .iter()
        .map(|t| (t.start_s, t.end_s, t.speaker.as_str()))
        .collect();
    assert_eq!(turns, [(0.356, 4.176, "A"), (4.329, 6.354, "B")]);

    let requests = server.received_requests().await.unwrap();
    let create = requests_to(&requests, "POST", "/v2/transcript");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].headers.get("authorization").unwrap(), KEY);
    let body: Value = create[0].body_json().unwrap();
    assert_eq!(body["audio_url"], "https://cdn.assemblyai.com/upload/abc");
    assert_eq!(body["speaker_labels"], true);
    assert_eq!(
        body["speech_models"],
        json!(["universal-3-pro", "universal-2"])
    );
    assert_eq!(body["speaker_options"]["min_speakers_expected"], 1);
    assert_eq!(body["speaker_options"]["max_speakers_expected"], 4);
    assert_eq!(requests_to(&requests, "GET", poll).len(), 3);
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_asked() {
    let server = MockServer::start().await;
    let limited =
        json_answer(429, json!({"error": "Too many requests"})).insert_header("retry-after", "1");
    mount(&server, "POST", "/v2/upload", limited, Some(1)).await;
    mount_happy_start(&server, "tr-2").await;
    mount(
        &server,
        "GET",
        "/v2/transcript/tr-2",
        json_answer(200, completed("tr-2")),
        None,
    )
    .await;
    let started = Instant::now();
    let (transcript, _) = transcribe(&server).await.unwrap();
    assert_eq!(transcript.id, "tr-2");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests_to(&requests, "POST", "/v2/upload").len(), 2);
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    mount_happy_start(&server, "tr-3").await;
    let poll = "/v2/transcript/tr-3";
    let broken = ResponseTemplate::new(500).set_body_string("upstream broke");
    mount(&server, "GET", poll, broken, Some(1)).await;
    mount(
        &server,
        "GET",
        poll,
        json_answer(200, completed("tr-3")),
        None,
    )
    .await;
    let (_, turns) = transcribe(&server).await.unwrap();
    assert_eq!(turns.len(), 2);
}

#[tokio::test]
async fn server_errors_that_persist_are_transient_after_the_retries() {
    let server = MockServer::start().await;
    let down = json_answer(503, json!({"error": "Service unavailable"}));
    mount(&server, "POST", "/v2/upload", down, None).await;
    let e = transcribe(&server).await.unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.kind, "server_error");
    assert!(e.message.contains("HTTP 503: Service unavailable"), "{e}");
    // The first try and one per configured delay.
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    assert_no_secret(&e.to_string());
}

#[tokio::test]
async fn a_bad_key_fails_at_once_with_the_apis_message_and_never_the_key() {
    let server = MockServer::start().await;
    let denied = json_answer(
        401,
        json!({"error": "Authentication error, API token missing/invalid"}),
    );
    mount(&server, "POST", "/v2/upload", denied, None).await;
    let e = transcribe(&server).await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.kind, "unauthorized");
    assert!(e.message.contains("API token missing/invalid"), "{e}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "no retry");
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn a_transcript_in_error_is_a_permanent_failure() {
    let server = MockServer::start().await;
    mount_happy_start(&server, "tr-4").await;
    let failed = json!({
        "id": "tr-4", "status": "error",
        "error": "File does not appear to contain audio. File type is text/html (HTML document, ASCII text)."
    });
    mount(
        &server,
        "GET",
        "/v2/transcript/tr-4",
        json_answer(200, failed),
        None,
    )
    .await;
    let e = transcribe(&server).await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.kind, "transcript_error");
    assert!(
        e.message.contains("does not appear to contain audio"),
        "{e}"
    );
}

#[tokio::test]
async fn slow_answers_and_endless_processing_time_out_as_transient() {
    // A request that hangs past the request timeout.
    let server = MockServer::start().await;
    let slow = json_answer(200, json!({"upload_url": "u"})).set_delay(Duration::from_secs(3));
    mount(&server, "POST", "/v2/upload", slow, None).await;
    let mut c = config(&server);
    c.request_timeout = Duration::from_millis(200);
    c.retry_delays.clear();
    let e = transcribe_with(c).await.unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.kind, "timeout");
    assert_no_secret(&e.to_string());

    // A transcript that never finishes.
    let server = MockServer::start().await;
    mount_happy_start(&server, "tr-5").await;
    let processing = json!({"id": "tr-5", "status": "processing"});
    mount(
        &server,
        "GET",
        "/v2/transcript/tr-5",
        json_answer(200, processing),
        None,
    )
    .await;
    let mut c = config(&server);
    c.timeout = Duration::from_millis(300);
    let e = transcribe_with(c).await.unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.kind, "timeout");
    assert!(e.message.contains("tr-5"), "{e}");
}

#[tokio::test]
async fn a_bad_request_is_permanent_and_deletion_is_sent() {
    let server = MockServer::start().await;
    let upload = json!({"upload_url": "https://cdn.assemblyai.com/upload/abc"});
    mount(
        &server,
        "POST",
        "/v2/upload",
        json_answer(200, upload),
        None,
    )
    .await;
    let rejected = json_answer(
        400,
        json!({"error": "speech_models: invalid model \"nano\""}),
    );
    mount(&server, "POST", "/v2/transcript", rejected, None).await;
    let e = transcribe(&server).await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.kind, "rejected");
    assert!(e.message.contains("invalid model"), "{e}");

    Mock::given(method("DELETE"))
        .and(path("/v2/transcript/tr-9"))
        .and(header("authorization", KEY))
        .respond_with(json_answer(
            200,
            json!({"id": "tr-9", "status": "completed"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    AssemblyAi::new(config(&server))
        .unwrap()
        .delete("tr-9")
        .await
        .unwrap();
}

/// A transcription that outlasts the wait hands back its transcript id, and the retry resumes
/// polling it: the clip is uploaded and paid for once. Before, every retry uploaded the clip
/// and asked for a new transcript.
#[tokio::test]
async fn a_retry_resumes_the_transcript_instead_of_uploading_again() {
    let server = MockServer::start().await;
    mount_happy_start(&server, "tr-7").await;
    let processing = json!({"id": "tr-7", "status": "processing"});
    mount(
        &server,
        "GET",
        "/v2/transcript/tr-7",
        json_answer(200, processing),
        None,
    )
    .await;
    let mut c = config(&server);
    c.timeout = Duration::from_millis(300);
    let client = AssemblyAi::new(c).unwrap();
    let e = client.transcribe(&clip()).await.unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.transcript_id.as_deref(), Some("tr-7"));

    // Done by the time the retry comes.
    Mock::given(method("GET"))
        .and(path("/v2/transcript/tr-7"))
        .respond_with(json_answer(200, completed("tr-7")))
        .with_priority(1)
        .mount(&server)
        .await;
    let transcript = client.resume("tr-7").await.unwrap().transcript.unwrap();
    assert_eq!(transcript.id, "tr-7");
    assert_eq!(transcript.utterances.len(), 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests_to(&requests, "POST", "/v2/upload").len(), 1);
    assert_eq!(requests_to(&requests, "POST", "/v2/transcript").len(), 1);
}
