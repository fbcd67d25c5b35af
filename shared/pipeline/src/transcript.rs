//! Speaker turns from a transcription service (`VOICE_DIARIZER=assemblyai`), behind
//! [`Transcriber`]. The built-in alternative is [`engine::diarize::LocalDiarizer`], which
//! needs no network and runs inside the clip work ([`crate::ClipProcessor`]).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use serde::{Deserialize, Serialize};

use engine::turns::Turn;

/// How far a transcript's turn edges are trusted less: its boundaries come from word timings,
/// tighter than the local diarizer's windows.
pub const EDGE_TRIM_S: f64 = 0.1;

/// What a transcription gives a clip: its text and utterances (kept with the result) and the
/// speaker turns identification uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transcript {
    pub id: String,
    pub text: String,
    pub utterances: Vec<Utterance>,
    #[serde(skip)]
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Utterance {
    pub speaker: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub confidence: f32,
}

/// A failed transcription: `kind` is the stable name stored with a failed result.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TranscribeError {
    pub kind: &'static str,
    pub message: String,
    transient: bool,
    /// What the service asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The transcript AssemblyAI is still working on when waiting for it failed: a retry
    /// polls it again instead of uploading (and paying) again.
    pub transcript_id: Option<String>,
}

impl TranscribeError {
    pub fn transient(kind: &'static str, message: String) -> Self {
        Self {
            kind,
            message,
            transient: true,
            retry_after: None,
            transcript_id: None,
        }
    }

    pub fn permanent(kind: &'static str, message: String) -> Self {
        Self {
            kind,
            message,
            transient: false,
            retry_after: None,
            transcript_id: None,
        }
    }

    /// Whether trying again later may succeed (network, 429, 5xx, timeouts).
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A transcript a service has been asked for: from here on it is billed, and its id is what a
/// later try resumes instead of uploading again.
pub struct Submitted {
    pub id: String,
    /// The transcript, when the service answered with it at once.
    pub done: Option<Transcript>,
}

/// A transcription service that gives a clip's speaker turns (AssemblyAI). Asking and waiting
/// are apart, so that a worker that stops mid-wait hands the clip back with the id.
#[async_trait]
pub trait Transcriber: Send + Sync {
    /// Uploads the clip at `path` and asks for its transcript.
    async fn submit(&self, path: &Path) -> Result<Submitted, TranscribeError>;

    /// Waits for a transcript [`Transcriber::submit`] asked for.
    async fn wait_for(&self, submitted: Submitted) -> Result<Transcript, TranscribeError>;

    /// Waits again for a transcript an earlier try submitted, without uploading again.
    async fn resume(&self, transcript_id: &str) -> Result<Transcript, TranscribeError>;

    /// Deletes a transcript from the service (privacy), once its result is safely stored.
    async fn delete(&self, transcript_id: &str) -> Result<(), TranscribeError>;

    /// Whether the service answers and takes the key (readiness, `validate`).
    async fn check(&self) -> Result<(), TranscribeError>;
}
