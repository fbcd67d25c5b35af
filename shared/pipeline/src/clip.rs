//! The worker stage: one clip task in, one result out. Never fails as a whole: a bad clip is a
//! `failed` result carrying its error kind.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{BatcherHandle, ClipResult, ClipTask, SpeakerResult, Timings};
use crate::transcript::Transcript;
use engine::audio::{decode_file, span_range};
use engine::diarize::{EDGE_TRIM_S, LocalDiarizer};
use engine::matching::{ClipStatus, ProfileSet, SpeakerInput, decide};
use engine::turns::speakers_with_speech;

pub struct ClipProcessor {
    pub batcher: BatcherHandle,
    pub diarizer: LocalDiarizer,
    pub min_utterance_ms: u64,
    /// Larger clip files are `too_large` (VOICE_MAX_CLIP_MB).
    pub max_clip_bytes: u64,
}

impl ClipResult {
    /// The result of `task` before anything is known: `failed` until a stage says otherwise.
    fn pending(task: &ClipTask, model: &str) -> Self {
        Self {
            clip_key: task.clip.key.clone(),
            job_id: task.job_id.clone(),
            location_id: task.location_id.clone(),
            date: task.clip.date.clone(),
            clip: task.clip.name.clone(),
            transaction_id: task.clip.transaction_id.clone(),
            status: ClipStatus::Failed,
            worker_id: None,
            worker_name: None,
            score: None,
            margin: None,
            threshold: None,
            required_margin: None,
            speakers: Vec::new(),
            turns: Vec::new(),
            audio_s: 0.0,
            model: model.to_string(),
            timings_ms: Timings::default(),
            error_kind: None,
            error: None,
            attempts: task.attempt.max(1),
            transcript: None,
        }
    }

    /// A `failed` result for `task`, carrying a stable error kind and its message.
    pub fn failed(task: &ClipTask, model: &str, kind: &str, error: String) -> Self {
        let mut result = Self::pending(task, model);
        result.error_kind = Some(kind.to_string());
        result.error = Some(error);
        result
    }

    /// One log line for the result: at info for a worker's log; with `quiet`, at debug (a
    /// standalone run's progress bar tells the same).
    pub fn log(&self, quiet: bool) {
        if quiet {
            tracing::debug!(
                clip = %self.clip_key,
                status = self.status.as_str(),
                kind = self.error_kind.as_deref().unwrap_or("-"),
                worker = self.worker_name.as_deref().unwrap_or("-"),
                "clip done"
            );
            return;
        }
        match &self.error {
            Some(error) => {
                let kind = self.error_kind.as_deref().unwrap_or("-");
                tracing::warn!(clip = %self.clip_key, kind, %error, "clip failed");
            }
            None => tracing::info!(
                clip = %self.clip_key,
                status = self.status.as_str(),
                worker = self.worker_name.as_deref().unwrap_or("-"),
                score = self.score.map_or_else(|| "-".to_string(), |s| format!("{s:.3}")),
                ms = self.timings_ms.total,
                "clip done"
            ),
        }
    }
}

impl ClipProcessor {
    /// Why a file of `bytes` is not taken, if it is over the limit.
    pub fn too_large(&self, bytes: u64) -> Option<String> {
        (bytes > self.max_clip_bytes).then(|| {
            format!(
                "the file is {:.1} MB, over VOICE_MAX_CLIP_MB ({} MB)",
                bytes as f64 / 1e6,
                self.max_clip_bytes / 1_000_000
            )
        })
    }

    /// Decides who speaks in the clip at `path` among `voices` (the task's location's), with
    /// the local diarizer's turns.
    pub fn process(&self, task: &ClipTask, path: &Path, voices: &ProfileSet) -> ClipResult {
        self.run(task, path, voices, None)
    }

    /// [`Self::process`] with the turns of a transcription service instead of the local
    /// diarizer's; the transcript's text and utterances are kept with the result.
    pub fn process_transcribed(
        &self,
        task: &ClipTask,
        path: &Path,
        voices: &ProfileSet,
        transcript: Transcript,
    ) -> ClipResult {
        self.run(task, path, voices, Some(transcript))
    }

    fn run(
        &self,
        task: &ClipTask,
        path: &Path,
        voices: &ProfileSet,
        transcript: Option<Transcript>,
    ) -> ClipResult {
        let profiles = &voices.profiles;
        let started = Instant::now();
        let manifest = self.batcher.manifest();
        let mut result = ClipResult::pending(task, &manifest.id);
        let ms = |t: Instant| t.elapsed().as_millis() as u64;

        let t = Instant::now();
        if let Some(too_large) = self.too_large(std::fs::metadata(path).map_or(0, |m| m.len())) {
            result.error_kind = Some("too_large".into());
            result.error = Some(too_large);
            result.timings_ms.total = ms(started);
            return result;
        }
        let mut audio = match decode_file(path, manifest.sample_rate) {
            Ok(audio) => audio,
            Err(e) => {
                result.error_kind = Some(e.kind.code().to_string());
                result.error = Some(e.kind.to_string());
                result.timings_ms.total = ms(started);
                return result;
            }
        };
        result.timings_ms.decode = ms(t);
        result.audio_s = audio.duration_s();

        let t = Instant::now();
        // From here the batcher reads the samples in place: the clip is held once.
        let (turns, edge_trim_s, samples) = match transcript {
            Some(mut transcript) => {
                let turns = std::mem::take(&mut transcript.turns);
                result.transcript = Some(transcript);
                let samples = Arc::new(std::mem::take(&mut audio.samples));
                (turns, crate::transcript::EDGE_TRIM_S, samples)
            }
            None => {
                let plan = self.diarizer.plan(&audio);
                let samples = Arc::new(std::mem::take(&mut audio.samples));
                let windows = plan.windows.iter().map(|&w| vec![w]).collect();
                let embeddings = match self.batcher.embed_windows(&samples, windows) {
                    Ok(embeddings) => embeddings,
                    Err(e) => return self.fail(result, "model", e, started),
                };
                let embeddings: Vec<Vec<f32>> = embeddings
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect();
                (
                    self.diarizer.finish(&plan, &embeddings),
                    EDGE_TRIM_S,
                    samples,
                )
            }
        };
        let rate = audio.sample_rate;
        result.timings_ms.diarize = ms(t);

        let t = Instant::now();
        let speakers = speakers_with_speech(&turns, self.min_utterance_ms, edge_trim_s);
        let requests = speakers
            .iter()
            .map(|speaker| {
                speaker
                    .spans
                    .iter()
                    .map(|&(start, end)| span_range(samples.len(), rate, start, end))
                    .collect()
            })
            .collect();
        let embeddings = match self.batcher.embed(&samples, requests) {
            Ok(e) => e,
            Err(e) => return self.fail(result, "model", e, started),
        };
        let inputs: Vec<SpeakerInput> = speakers
            .iter()
            .zip(embeddings)
            .filter_map(|(speaker, embedding)| {
                Some(SpeakerInput {
                    label: speaker.label.clone(),
                    embedding: embedding?,
                    speech_s: speaker.speech_s,
                })
            })
            .collect();
        let rules = voices.calibration.rules;
        result.threshold = Some(rules.threshold);
        result.required_margin = Some(rules.margin);
        let decision = decide(&inputs, profiles, &voices.calibration);
        result.timings_ms.identify = ms(t);

        let name_of = |id: &Option<String>| {
            id.as_ref()
                .and_then(|id| profiles.iter().find(|p| &p.worker_id == id))
                .map(|p| p.name.clone())
        };
        result.status = decision.status;
        result.worker_name = name_of(&decision.worker_id);
        result.worker_id = decision.worker_id;
        result.score = decision.score;
        result.margin = decision.margin;
        result.speakers = decision
            .speakers
            .into_iter()
            .map(|d| SpeakerResult {
                worker_name: name_of(&d.worker_id),
                label: d.label,
                speech_s: d.speech_s,
                worker_id: d.worker_id,
                best_worker_id: d.best_worker_id,
                score: d.score,
                margin: d.margin,
                unknown_reason: d.unknown_reason,
            })
            .collect();
        result.turns = turns;
        result.timings_ms.total = ms(started);
        result
    }

    fn fail(
        &self,
        mut result: ClipResult,
        kind: &str,
        error: String,
        started: Instant,
    ) -> ClipResult {
        result.status = ClipStatus::Failed;
        result.error_kind = Some(kind.to_string());
        result.error = Some(error);
        result.timings_ms.total = started.elapsed().as_millis() as u64;
        result
    }
}
