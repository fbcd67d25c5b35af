//! AssemblyAI's pre-recorded API (v2) as a source of speaker turns: upload the clip (streamed
//! from its file), request a transcript with speaker labels, poll until it is done, map its
//! utterances to turns.
//!
//! Network errors, 429 (honouring `Retry-After`) and 5xx are retried here, with the configured
//! delays; whatever is still failing after that is a transient [`TranscribeError`] (the worker
//! retries the clip later through its delay queue). 400/401/403/404 and a transcript with
//! `status: error` are permanent, carrying the API's own message. The API key travels in one
//! header and is never part of an error or a log line.

use std::path::Path;
use std::time::{Duration, Instant};

mod wire;

use reqwest::{Client, RequestBuilder};
use serde::de::DeserializeOwned;

use ops::Secret;
use ops::metrics;
use pipeline::Decoded;
use pipeline::transcript::{SpeakerTurns, Submitted, TranscribeError, Transcriber};
use wire::{
    SpeakerOptions, TranscriptRequest, TranscriptResponse, UploadResponse, classify, into_turns,
};

#[derive(Clone)]
pub struct AssemblyAiConfig {
    /// `https://api.assemblyai.com`, the EU endpoint, or a local server in tests.
    pub base_url: String,
    pub api_key: Secret,
    /// `speech_models`, in order of preference (the API requires it).
    pub speech_models: Vec<String>,
    pub min_speakers: u32,
    pub max_speakers: u32,
    /// Waits before the 2nd, 3rd, … try of a request that failed transiently.
    pub retry_delays: Vec<Duration>,
    /// First wait between polls; it grows by half each poll, to at most 5 s.
    pub poll_interval: Duration,
    /// A transcript not done by then is a transient `timeout`.
    pub timeout: Duration,
    /// One HTTP request (the upload included) taking longer is a transient `timeout`.
    pub request_timeout: Duration,
}

impl AssemblyAiConfig {
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            speech_models: vec!["universal-3-pro".into(), "universal-2".into()],
            min_speakers: 1,
            max_speakers: 4,
            retry_delays: [5, 10, 15].map(Duration::from_secs).to_vec(),
            poll_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(120),
        }
    }
}

pub struct AssemblyAi {
    config: AssemblyAiConfig,
    client: Client,
    /// The last [`AssemblyAi::check`] and when it was made.
    checked: tokio::sync::Mutex<Option<(Instant, Result<(), TranscribeError>)>>,
}

impl AssemblyAi {
    pub fn new(config: AssemblyAiConfig) -> Result<Self, TranscribeError> {
        let client = crate::http::client(config.request_timeout)
            .map_err(|e| TranscribeError::permanent("config", e))?;
        Ok(Self {
            config,
            client,
            checked: tokio::sync::Mutex::default(),
        })
    }

    /// The speaker turns of the audio file at `path`, with its transcript.
    pub async fn transcribe(&self, path: &Path) -> Result<SpeakerTurns, TranscribeError> {
        let submitted = self.submit(path).await?;
        self.wait_for(submitted).await
    }

    /// Uploads the clip and asks for its transcript: from here on AssemblyAI bills it, and
    /// its id is what a later try resumes instead of uploading again.
    pub async fn submit(&self, path: &Path) -> Result<Submitted, TranscribeError> {
        let unreadable = |e: std::io::Error| {
            TranscribeError::permanent("unreadable", format!("{}: {e}", path.display()))
        };
        let size = tokio::fs::metadata(path).await.map_err(unreadable)?.len();
        // Time for the bytes themselves at a slow 1 MB/s, on top of the request's own timeout.
        let upload_timeout = self.config.request_timeout + Duration::from_secs(size / 1_000_000);
        let upload: UploadResponse = self
            .try_call("upload", || {
                // Streamed from the file, opened afresh by each try: the clip is never held in
                // memory whole.
                let file = std::fs::File::open(path).map_err(unreadable)?;
                Ok(self
                    .request(reqwest::Method::POST, "/v2/upload")
                    .header("content-type", "application/octet-stream")
                    .header("content-length", size)
                    .timeout(upload_timeout)
                    .body(tokio::fs::File::from_std(file)))
            })
            .await?;
        let request = TranscriptRequest {
            audio_url: &upload.upload_url,
            speech_models: &self.config.speech_models,
            speaker_labels: true,
            speaker_options: SpeakerOptions {
                min_speakers_expected: self.config.min_speakers,
                max_speakers_expected: self.config.max_speakers,
            },
        };
        let created: TranscriptResponse = self
            .call("transcript", || {
                self.request(reqwest::Method::POST, "/v2/transcript")
                    .json(&request)
            })
            .await?;
        let id = Some(created.id.clone());
        let done = match created.status.as_str() {
            "queued" | "processing" => None,
            // Finished (or failed) at once: what waiting would have found.
            _ => Some(self.wait(created).await?),
        };
        Ok(Submitted { id, done })
    }

    /// Waits for a transcript [`AssemblyAi::submit`] asked for.
    pub async fn wait_for(&self, submitted: Submitted) -> Result<SpeakerTurns, TranscribeError> {
        if let Some(done) = submitted.done {
            return Ok(done);
        }
        let Some(id) = submitted.id else {
            return Err(TranscribeError::permanent(
                "internal",
                "no transcript was asked for".into(),
            ));
        };
        let queued = TranscriptResponse {
            id,
            status: "queued".into(),
            error: None,
            text: None,
            utterances: None,
        };
        self.wait(queued).await
    }

    /// Waits again for a transcript an earlier try submitted (its error's `transcript_id`),
    /// without uploading the clip again.
    pub async fn resume(&self, transcript_id: &str) -> Result<SpeakerTurns, TranscribeError> {
        let path = format!("/v2/transcript/{transcript_id}");
        let transcript: TranscriptResponse = self
            .call("poll", || self.request(reqwest::Method::GET, &path))
            .await
            .map_err(|mut e| {
                if e.is_transient() {
                    e.transcript_id = Some(transcript_id.to_string());
                }
                e
            })?;
        self.wait(transcript).await
    }

    /// One cheap authenticated call (the latest transcript's id): whether the key works and
    /// the service answers. Remembered for a minute, so probes do not hammer the API.
    pub async fn check(&self) -> Result<(), TranscribeError> {
        let mut last = self.checked.lock().await;
        if let Some((at, ok)) = last.as_ref()
            && at.elapsed() < Duration::from_secs(60)
        {
            return ok.clone();
        }
        let outcome: Result<serde_json::Value, _> = self
            .call("check", || {
                self.request(reqwest::Method::GET, "/v2/transcript")
                    .query(&[("limit", "1")])
            })
            .await;
        let outcome = outcome.map(drop);
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    /// Deletes a transcript from AssemblyAI (privacy), once its result is safely stored.
    pub async fn delete(&self, transcript_id: &str) -> Result<(), TranscribeError> {
        let path = format!("/v2/transcript/{transcript_id}");
        let _: serde_json::Value = self
            .call("delete", || self.request(reqwest::Method::DELETE, &path))
            .await?;
        Ok(())
    }

    async fn wait(
        &self,
        mut transcript: TranscriptResponse,
    ) -> Result<SpeakerTurns, TranscribeError> {
        let started = Instant::now();
        let mut interval = self.config.poll_interval;
        let path = format!("/v2/transcript/{}", transcript.id);
        loop {
            match transcript.status.as_str() {
                "completed" => return Ok(into_turns(transcript)),
                "error" => {
                    return Err(TranscribeError::permanent(
                        "transcript_error",
                        format!(
                            "AssemblyAI could not transcribe the clip: {}",
                            transcript.error.as_deref().unwrap_or("no reason given")
                        ),
                    ));
                }
                _ => {}
            }
            if started.elapsed() + interval > self.config.timeout {
                let mut e = TranscribeError::transient(
                    "timeout",
                    format!(
                        "transcript {} still {} after {:?}",
                        transcript.id, transcript.status, self.config.timeout
                    ),
                );
                e.transcript_id = Some(transcript.id.clone());
                return Err(e);
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(5));
            let id = transcript.id.clone();
            transcript = self
                .call("poll", || self.request(reqwest::Method::GET, &path))
                .await
                .map_err(|mut e| {
                    if e.is_transient() {
                        e.transcript_id = Some(id);
                    }
                    e
                })?;
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.config.base_url))
            .header("authorization", self.config.api_key.expose())
    }

    /// Sends the request `build` makes, retrying transient failures; parses a 2xx body.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, TranscribeError> {
        self.try_call(what, || Ok(build())).await
    }

    /// [`AssemblyAi::call`] for a request whose making can fail (a file to open).
    async fn try_call<T: DeserializeOwned>(
        &self,
        what: &str,
        build: impl Fn() -> Result<RequestBuilder, TranscribeError>,
    ) -> Result<T, TranscribeError> {
        let mut delays = self.config.retry_delays.iter();
        let started = Instant::now();
        let record = |outcome: &str| {
            metrics().api_call("assemblyai", outcome, started.elapsed().as_secs_f64());
        };
        loop {
            let error = match build()?.send().await {
                Ok(response) if response.status().is_success() => {
                    record("ok");
                    return response.json::<T>().await.map_err(|e| {
                        TranscribeError::transient(
                            "bad_response",
                            format!("AssemblyAI {what}: {e}"),
                        )
                    });
                }
                Ok(response) => classify(what, response).await,
                Err(e) => TranscribeError::transient(
                    if e.is_timeout() { "timeout" } else { "network" },
                    format!("AssemblyAI {what}: {}", crate::http::without_url(&e)),
                ),
            };
            let Some(delay) = delays.next().filter(|_| error.is_transient()) else {
                record("failed");
                return Err(error);
            };
            metrics()
                .api_calls
                .with_label_values(&["assemblyai", "retried"])
                .inc();
            let wait = error.retry_after.unwrap_or_default().max(*delay);
            tracing::warn!(what, error = %error, retry_in = ?wait, "AssemblyAI call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

#[async_trait::async_trait]
impl Transcriber for AssemblyAi {
    fn name(&self) -> &'static str {
        "assemblyai"
    }

    fn edge_trim_s(&self) -> f64 {
        pipeline::transcript::EDGE_TRIM_S
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn submit(&self, path: &Path, _audio: &Decoded) -> Result<Submitted, TranscribeError> {
        AssemblyAi::submit(self, path).await
    }

    async fn wait_for(&self, submitted: Submitted) -> Result<SpeakerTurns, TranscribeError> {
        AssemblyAi::wait_for(self, submitted).await
    }

    async fn resume(&self, transcript_id: &str) -> Result<SpeakerTurns, TranscribeError> {
        AssemblyAi::resume(self, transcript_id).await
    }

    async fn delete(&self, transcript_id: &str) -> Result<(), TranscribeError> {
        AssemblyAi::delete(self, transcript_id).await
    }

    async fn check(&self) -> Result<(), TranscribeError> {
        AssemblyAi::check(self).await
    }
}
