//! AssemblyAI's v2 API on the wire: the requests and answers we use, its errors classified as
//! transient or permanent, and a finished transcript as speaker turns.

use reqwest::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use engine::turns::Turn;
use pipeline::transcript::{SpeakerTurns, TranscribeError, Transcript, Utterance};

#[derive(Serialize)]
pub(super) struct TranscriptRequest<'a> {
    pub(super) audio_url: &'a str,
    pub(super) speech_models: &'a [String],
    pub(super) speaker_labels: bool,
    pub(super) speaker_options: SpeakerOptions,
}

#[derive(Serialize)]
pub(super) struct SpeakerOptions {
    pub(super) min_speakers_expected: u32,
    pub(super) max_speakers_expected: u32,
}

#[derive(Deserialize)]
pub(super) struct UploadResponse {
    pub(super) upload_url: String,
}

#[derive(Deserialize)]
pub(super) struct TranscriptResponse {
    pub(super) id: String,
    pub(super) status: String,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) utterances: Option<Vec<ApiUtterance>>,
}

#[derive(Deserialize)]
pub(super) struct ApiUtterance {
    pub(super) speaker: String,
    pub(super) start: u64,
    pub(super) end: u64,
    #[serde(default)]
    pub(super) text: String,
    #[serde(default)]
    pub(super) confidence: f32,
}

#[derive(Deserialize)]
pub(super) struct ApiError {
    pub(super) error: String,
}

/// A non-2xx answer: 429 and 5xx are transient, other 4xx permanent; the API's message kept.
pub(super) async fn classify(what: &str, response: Response) -> TranscribeError {
    let status = response.status();
    let retry_after = crate::http::retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ApiError>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| body.chars().take(200).collect());
    let text = format!("AssemblyAI {what}: HTTP {}: {message}", status.as_u16());
    let mut error = if status == StatusCode::TOO_MANY_REQUESTS {
        TranscribeError::transient("rate_limited", text)
    } else if status.is_server_error() {
        TranscribeError::transient("server_error", text)
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        TranscribeError::permanent("unauthorized", text)
    } else {
        TranscribeError::permanent("rejected", text)
    };
    error.retry_after = retry_after;
    error
}

pub(super) fn into_turns(t: TranscriptResponse) -> SpeakerTurns {
    let utterances: Vec<Utterance> = t
        .utterances
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.end > u.start)
        .map(|u| Utterance {
            speaker: u.speaker,
            start_ms: u.start,
            end_ms: u.end,
            text: u.text,
            confidence: u.confidence,
        })
        .collect();
    let turns = utterances
        .iter()
        .map(|u| Turn {
            start_s: u.start_ms as f64 / 1000.0,
            end_s: u.end_ms as f64 / 1000.0,
            speaker: u.speaker.clone(),
        })
        .collect();
    SpeakerTurns {
        turns,
        transcript: Some(Transcript {
            id: t.id,
            text: t.text.unwrap_or_default(),
            utterances,
        }),
    }
}
