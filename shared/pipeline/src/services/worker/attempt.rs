//! One try at a clip task: fetch, decode, the turns and the location's profiles together, then
//! identify; and what became of it ([`Outcome`]), for the service to hand on.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::WorkerService;
use crate::clip::Decoded;
use crate::services::Shutdown;
use crate::services::profiles::ProfileError;
use crate::transcript::{SpeakerTurns, TranscribeError};
use crate::{ClipResult, ClipTask, Timings};

/// What became of one clip task.
pub(super) enum Outcome {
    Result(Box<ClipResult>),
    /// Worth another try later: the stable kind, the message, and the AssemblyAI transcript
    /// still being made, if any (the next try waits for it instead of uploading again).
    Transient(&'static str, String, Option<String>),
    /// The worker is stopping while AssemblyAI still works on the clip: the task goes back to
    /// the work queue as it is, with the transcript id if one was asked for.
    HandBack(Option<String>),
}

/// The kind of the [`TranscribeError`] a wait on AssemblyAI ends with when the worker stops.
pub(super) const HANDED_BACK: &str = "handed_back";

impl WorkerService {
    pub(super) async fn run_task(&self, task: &ClipTask, shutdown: &Shutdown) -> Outcome {
        let model = self.processor.batcher.manifest().id.clone();
        let failed = |kind: &str, e: String| {
            Outcome::Result(Box::new(ClipResult::failed(task, &model, kind, e)))
        };
        // By the listed size: a clip over the limit is never even downloaded.
        if let Some(too_large) = self.processor.too_large(task.clip.size) {
            return failed("too_large", too_large);
        }
        let clip = match self.source.fetch_clip(&task.location_id, &task.clip).await {
            Ok(clip) => clip,
            Err(e) if e.is_transient() => return Outcome::Transient(e.kind(), e.to_string(), None),
            Err(e) => return failed(e.kind(), e.to_string()),
        };
        // Decoded first: a clip that is not audio is never uploaded to a service.
        let t = Instant::now();
        let processor = Arc::clone(&self.processor);
        let path = clip.path().to_path_buf();
        let audio = match tokio::task::spawn_blocking(move || processor.decode(&path)).await {
            Ok(Ok(audio)) => audio,
            Ok(Err(e)) => return failed(&e.kind, e.message),
            Err(e) => return failed("internal", format!("decoding stopped: {e}")),
        };
        let decode_ms = ms(t);
        // Both wait (the turns; the first clip of a location on its enrollment): together.
        let transcribe = async {
            let t = Instant::now();
            self.turns(task, clip.path(), &audio, shutdown)
                .await
                .map(|heard| (heard, ms(t)))
        };
        let profiles = self.enroll(&task.job_id, &task.location_id);
        let (profiles, transcript) = tokio::join!(profiles, transcribe);
        // The clip's file (a downloaded copy is removed with it) is no longer needed.
        drop(clip);
        if let Err(e) = &transcript
            && e.kind == HANDED_BACK
        {
            return Outcome::HandBack(e.transcript_id.clone());
        }
        // A transcript made (or being made) while the profiles failed is waited for next time.
        let pending = match &transcript {
            Ok((heard, _)) => heard.transcript.as_ref().map(|t| t.id.clone()),
            Err(e) => e.transcript_id.clone(),
        };
        let profiles = match profiles {
            Ok(enrolled) => enrolled.profiles,
            Err(ProfileError::Source(e)) if e.is_transient() => {
                return Outcome::Transient(e.kind(), e.to_string(), pending);
            }
            Err(e) if e.is_transient() => {
                return Outcome::Transient("profiles", e.to_string(), pending);
            }
            Err(e) => return failed("no_profiles", e.to_string()),
        };
        let (heard, turns_ms) = match transcript {
            Ok(transcript) => transcript,
            Err(e) if e.is_transient() => {
                return Outcome::Transient(e.kind, e.message, e.transcript_id);
            }
            Err(e) => return failed(e.kind, e.message),
        };
        let timings = Timings {
            decode: decode_ms,
            diarize: turns_ms,
            identify: 0,
            total: decode_ms + turns_ms,
        };
        let processor = Arc::clone(&self.processor);
        let edge_trim_s = self.transcriber.edge_trim_s();
        let owned = task.clone();
        let work =
            move || processor.identify(&owned, &audio, heard, edge_trim_s, &profiles, timings);
        match tokio::task::spawn_blocking(work).await {
            // The model failing (ONNX Runtime, the batcher) says nothing about the clip: worth
            // another try, on this worker or another, rather than a `failed` row.
            Ok(result) if result.error_kind.as_deref() == Some("model") => Outcome::Transient(
                "model",
                result
                    .error
                    .unwrap_or_else(|| "the speaker model failed".into()),
                pending.or_else(|| task.transcript_id.clone()),
            ),
            Ok(result) => Outcome::Result(Box::new(result)),
            Err(e) => failed("internal", format!("clip processing stopped: {e}")),
        }
    }

    /// The clip's speaker turns: resumed from the transcript an earlier try asked for, else
    /// asked for now. A stopping worker hands a clip back rather than ask a remote service for
    /// it, or wait for one.
    async fn turns(
        &self,
        task: &ClipTask,
        path: &Path,
        audio: &Decoded,
        shutdown: &Shutdown,
    ) -> Result<SpeakerTurns, TranscribeError> {
        let transcriber = &self.transcriber;
        if let Some(id) = &task.transcript_id {
            match until_stopping(id, transcriber.resume(id), shutdown).await {
                // Gone, or refused: make a fresh one rather than fail the clip.
                Err(e) if !e.is_transient() && e.kind != "transcript_error" => {
                    tracing::warn!(transcript = %id, error = %e, "the earlier transcript cannot be resumed; transcribing again");
                }
                resumed => return resumed,
            }
        }
        if transcriber.is_remote() && shutdown.is_set() {
            // Nothing is paid for yet: the next worker does it all.
            return Err(handed_back(None));
        }
        let submitted = transcriber.submit(path, audio).await?;
        match submitted.id.clone() {
            Some(id) => until_stopping(&id, transcriber.wait_for(submitted), shutdown).await,
            None => transcriber.wait_for(submitted).await,
        }
    }
}

/// `wait` for transcript `id`, unless the worker is asked to stop first: the transcript is then
/// handed back rather than waited for, however long AssemblyAI still takes.
async fn until_stopping(
    id: &str,
    wait: impl Future<Output = Result<SpeakerTurns, TranscribeError>>,
    shutdown: &Shutdown,
) -> Result<SpeakerTurns, TranscribeError> {
    tokio::select! {
        biased;
        transcript = wait => transcript,
        () = shutdown.wait() => Err(handed_back(Some(id.to_string()))),
    }
}

fn handed_back(transcript_id: Option<String>) -> TranscribeError {
    let mut e = TranscribeError::transient(HANDED_BACK, "the worker is stopping".into());
    e.transcript_id = transcript_id;
    e
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}
