//! Where a clip's speaker turns come from, behind [`Transcriber`]: the local diarizer
//! ([`LocalTurns`], no network), a transcription service (AssemblyAI, in `adapters`), or, for
//! `dispatcher eval --oracle-turns`, the labelled turns themselves ([`LabelledTurns`]). The
//! worker and the evaluation ask all three the same way.

mod labelled;
mod local;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use serde::{Deserialize, Serialize};

use crate::clip::Decoded;
use engine::turns::Turn;

pub use labelled::LabelledTurns;
pub use local::LocalTurns;

/// How far a service transcript's turn edges are trusted less: its boundaries come from word
/// timings, tighter than the local diarizer's windows.
pub const EDGE_TRIM_S: f64 = 0.1;

/// What a transcriber gives a clip: the speaker turns identification uses and, from a
/// service, the transcript kept with the result.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerTurns {
    pub turns: Vec<Turn>,
    pub transcript: Option<Transcript>,
}

/// A service's transcript of a clip: its id (for resuming and deleting), text and utterances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transcript {
    pub id: String,
    pub text: String,
    pub utterances: Vec<Utterance>,
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

/// Turns asked for: from a service, billed from here on, with the id a later try resumes
/// instead of uploading again; from the local diarizer, done at once.
pub struct Submitted {
    /// The service's transcript id; `None` for turns made here.
    pub id: Option<String>,
    /// The turns, when they were there at once.
    pub done: Option<SpeakerTurns>,
}

impl Submitted {
    /// Turns made at once, with nothing to wait for or resume.
    pub fn done(turns: Vec<Turn>) -> Self {
        Self {
            id: None,
            done: Some(SpeakerTurns {
                turns,
                transcript: None,
            }),
        }
    }
}

/// Gives a clip's speaker turns. Asking and waiting are apart, so that a worker that stops
/// while a service still works hands the clip back with the transcript's id.
#[async_trait]
pub trait Transcriber: Send + Sync {
    /// Short name for logs and reports: `local`, `assemblyai`, `oracle`.
    fn name(&self) -> &'static str;

    /// Seconds left out at each end of its turns when identifying speakers (see `Turn::core`).
    fn edge_trim_s(&self) -> f64;

    /// Whether asking is a call to a service that bills it and may take minutes: a stopping
    /// worker hands such a clip back rather than ask.
    fn is_remote(&self) -> bool {
        false
    }

    /// Asks for the turns of the clip at `path`, decoded as `audio`: a service gets the file,
    /// the local diarizer the samples.
    async fn submit(&self, path: &Path, audio: &Decoded) -> Result<Submitted, TranscribeError>;

    /// Waits for turns [`Transcriber::submit`] asked for.
    async fn wait_for(&self, submitted: Submitted) -> Result<SpeakerTurns, TranscribeError> {
        submitted.done.ok_or_else(|| {
            TranscribeError::permanent("internal", "submitted turns were not made".into())
        })
    }

    /// Waits again for a transcript an earlier try submitted, without uploading again.
    async fn resume(&self, transcript_id: &str) -> Result<SpeakerTurns, TranscribeError> {
        Err(TranscribeError::permanent(
            "not_resumable",
            format!(
                "{} keeps no transcript {transcript_id} to resume",
                self.name()
            ),
        ))
    }

    /// Deletes a transcript from the service (privacy), once its result is safely stored.
    async fn delete(&self, _transcript_id: &str) -> Result<(), TranscribeError> {
        Ok(())
    }

    /// Whether the service answers and takes the key (readiness, `validate`).
    async fn check(&self) -> Result<(), TranscribeError> {
        Ok(())
    }
}
