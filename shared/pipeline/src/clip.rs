//! The worker's clip work around the turns: decode the clip, then embed each speaker's turns and
//! decide who they are. Never fails as a whole: a bad clip is a `failed` result carrying its
//! error kind. Where the turns come from is the [`crate::transcript::Transcriber`]'s business.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{BatcherHandle, ClipResult, ClipTask, SpeakerResult, Timings};
use crate::transcript::SpeakerTurns;
use engine::audio::{decode_file, span_range};
use engine::matching::{ClipStatus, ProfileSet, SpeakerInput, decide};
use engine::model::Embedding;
use engine::turns::{SpeakerSpeech, speakers_with_speech};

pub struct ClipProcessor {
    pub batcher: BatcherHandle,
    pub min_utterance_ms: u64,
    /// Larger clip files are `too_large` (VOICE_MAX_CLIP_MB).
    pub max_clip_bytes: u64,
}

/// A decoded clip at the model's rate. The samples are shared, not copied: the diarizer, the
/// batcher and identification read the one copy.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub samples: Arc<Vec<f32>>,
    pub sample_rate: u32,
}

impl Decoded {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Why a clip could not be decoded: a stable kind and its message.
#[derive(Debug, Clone)]
pub struct Undecodable {
    pub kind: String,
    pub message: String,
}

/// One speaker of a clip with speech enough to identify, and its embedding.
pub struct Speaker {
    pub speech: SpeakerSpeech,
    pub embedding: Embedding,
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

    /// The clip at `path` as the model hears it, unless it is over the size limit (by its
    /// size on disk) or not audio we can read.
    pub fn decode(&self, path: &Path) -> Result<Decoded, Undecodable> {
        if let Some(too_large) = self.too_large(std::fs::metadata(path).map_or(0, |m| m.len())) {
            return Err(Undecodable {
                kind: "too_large".into(),
                message: too_large,
            });
        }
        let audio =
            decode_file(path, self.batcher.manifest().sample_rate).map_err(|e| Undecodable {
                kind: e.kind.code().to_string(),
                message: e.kind.to_string(),
            })?;
        Ok(Decoded {
            sample_rate: audio.sample_rate,
            samples: Arc::new(audio.samples),
        })
    }

    /// The speakers of `turns` with enough speech, each embedded over the cores of its turns
    /// (`edge_trim_s` left out at each end); a speaker the model gives no embedding is left out.
    pub fn speakers(
        &self,
        audio: &Decoded,
        turns: &[engine::turns::Turn],
        edge_trim_s: f64,
    ) -> Result<Vec<Speaker>, String> {
        let speakers = speakers_with_speech(turns, self.min_utterance_ms, edge_trim_s);
        let len = audio.samples.len();
        let requests = speakers
            .iter()
            .map(|speaker| {
                speaker
                    .spans
                    .iter()
                    .map(|&(start, end)| span_range(len, audio.sample_rate, start, end))
                    .collect()
            })
            .collect();
        let embeddings = self.batcher.embed(&audio.samples, requests)?;
        Ok(speakers
            .into_iter()
            .zip(embeddings)
            .filter_map(|(speech, embedding)| {
                Some(Speaker {
                    speech,
                    embedding: embedding?,
                })
            })
            .collect())
    }

    /// Decides who speaks in `audio` (the task's clip) among `voices` (its location's), from
    /// `heard` (the turns, with edges trimmed by `edge_trim_s`). `timings` holds the stages
    /// before; the transcript, if any, is kept with the result.
    pub fn identify(
        &self,
        task: &ClipTask,
        audio: &Decoded,
        heard: SpeakerTurns,
        edge_trim_s: f64,
        voices: &ProfileSet,
        timings: Timings,
    ) -> ClipResult {
        let profiles = &voices.profiles;
        let started = Instant::now();
        let mut result = ClipResult::pending(task, &self.batcher.manifest().id);
        result.timings_ms = timings;
        result.audio_s = audio.duration_s();
        result.transcript = heard.transcript;
        let speakers = match self.speakers(audio, &heard.turns, edge_trim_s) {
            Ok(speakers) => speakers,
            Err(e) => {
                result.error_kind = Some("model".into());
                result.error = Some(e);
                return result;
            }
        };
        let inputs: Vec<SpeakerInput> = speakers
            .into_iter()
            .map(|s| SpeakerInput {
                label: s.speech.label,
                embedding: s.embedding,
                speech_s: s.speech.speech_s,
            })
            .collect();
        let rules = voices.calibration.rules;
        let decision = decide(&inputs, profiles, &voices.calibration);
        // A named clip records what its speaker was held to (for its speech, or its clear
        // lead); an unnamed one the location's rules.
        result.threshold = Some(decision.threshold.unwrap_or(rules.threshold));
        result.required_margin = Some(decision.required_margin.unwrap_or(rules.margin));
        result.timings_ms.identify = started.elapsed().as_millis() as u64;
        result.timings_ms.total += result.timings_ms.identify;

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
                threshold: d.threshold,
                required_margin: d.required_margin,
                why: Some(d.why),
            })
            .collect();
        result.turns = heard.turns;
        result
    }
}
