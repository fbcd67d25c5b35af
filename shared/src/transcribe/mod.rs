//! Speaker turns from a transcription service (`VOICE_DIARIZER=assemblyai`). The built-in
//! alternative is [`crate::diarize::LocalDiarizer`], which needs no network.

mod assemblyai;

pub use assemblyai::{AssemblyAi, AssemblyAiConfig};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::turns::Turn;

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
