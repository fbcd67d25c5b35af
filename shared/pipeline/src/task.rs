//! What travels through the pipeline: a clip task (dispatcher → worker) and its result
//! (worker → reducer → sink).

use serde::{Deserialize, Serialize};

use crate::source::ClipRef;
use engine::matching::{ClipStatus, UnknownReason};
use engine::turns::Turn;

/// One clip to process: what the dispatcher publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipTask {
    pub job_id: String,
    pub location_id: String,
    pub clip: ClipRef,
    /// 1 for the first try; a retry after a transient failure carries the next number.
    pub attempt: u32,
    /// A retry after AssemblyAI timed out carries the transcript it was waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_id: Option<String>,
}

impl ClipTask {
    /// A task known only by its identity (a dead letter's headers, a refused result): enough
    /// to store a `failed` result for the clip, not to fetch it.
    pub fn identity(
        job_id: String,
        location_id: String,
        key: String,
        name: String,
        date: String,
        attempt: u32,
    ) -> Self {
        Self {
            clip: ClipRef {
                key,
                transaction_id: crate::source::first_uuid(&name),
                name,
                date,
                size: 0,
                version: String::new(),
                address: String::new(),
            },
            job_id,
            location_id,
            attempt,
            transcript_id: None,
        }
    }
}

/// What the worker produces for one clip, and the reducer stores (a line of results.jsonl, a row
/// of voice_clip_results).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipResult {
    pub clip_key: String,
    pub job_id: String,
    pub location_id: String,
    pub date: String,
    pub clip: String,
    pub transaction_id: Option<String>,
    pub status: ClipStatus,
    pub worker_id: Option<String>,
    pub worker_name: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    /// The threshold and margin the clip was decided by: what its named speaker was held to (the
    /// location's bar for that much speech, or its clear lead), else the location's rules.
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub required_margin: Option<f32>,
    pub speakers: Vec<SpeakerResult>,
    pub turns: Vec<Turn>,
    pub audio_s: f64,
    pub model: String,
    pub timings_ms: Timings,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// Which try of the task produced this result.
    pub attempts: u32,
    /// The transcription service's text and utterances, when it found the turns.
    #[serde(default)]
    pub transcript: Option<crate::transcript::Transcript>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakerResult {
    pub label: String,
    pub speech_s: f64,
    pub worker_id: Option<String>,
    pub worker_name: Option<String>,
    pub best_worker_id: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    pub unknown_reason: Option<UnknownReason>,
    /// The bar and lead the speaker was held to (for its speech, or its clear lead).
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub required_margin: Option<f32>,
    /// Why it was decided, in plain words.
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Timings {
    pub decode: u64,
    pub diarize: u64,
    pub identify: u64,
    pub total: u64,
}
