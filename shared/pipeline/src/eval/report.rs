//! What an evaluation reports: the set's figures, and each clip's decision beside its label.

use std::collections::BTreeMap;

use serde::Serialize;

use engine::eval::DerParts;
use engine::matching::{Calibration, ClipStatus, Prior, UnknownReason};

#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// What the set's calibration starts from (the model's prior or the settings').
    pub prior: Prior,
    /// Clips in flight at once: their embeddings share the batcher's batches.
    pub in_flight: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub turns: String,
    /// The prior threshold and margin (the model's, or the settings').
    pub threshold: f32,
    pub margin: f32,
    /// What the set's location (its enrollment samples) was decided by.
    pub threshold_used: f32,
    pub margin_used: f32,
    pub calibration: Calibration,
    pub min_utterance_ms: u64,
    pub clips: usize,
    /// Open-set: the decided worker (or `unknown`) equals the label, over every clip.
    pub accuracy: f64,
    /// Over clips with an employee: the best-scoring profile of any speaker is that employee,
    /// ignoring threshold and margin.
    pub closed_set_accuracy: f64,
    pub none_clips: usize,
    pub false_accepts: usize,
    pub false_accept_rate: f64,
    /// Clips where a worker was named but the wrong one (the worst outcome).
    pub wrong_names: usize,
    pub eer: Option<f64>,
    pub eer_threshold: Option<f32>,
    /// Diarization error rate of the turns used (collar 0.25 s, overlap scored); absent for
    /// oracle turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub der: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub der_parts: Option<DerParts>,
    pub target_trials: usize,
    pub nontarget_trials: usize,
    pub per_condition: BTreeMap<String, ConditionStats>,
    pub weak_profiles: Vec<String>,
    pub results: Vec<ClipOutcome>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConditionStats {
    pub clips: usize,
    pub correct: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClipOutcome {
    pub clip: String,
    pub condition: String,
    pub expected: Option<String>,
    pub decided: Option<String>,
    pub status: ClipStatus,
    pub correct: bool,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    /// Best score among the speakers' best profiles, whether or not it was accepted.
    pub best_score: Option<f32>,
    pub error: Option<String>,
    /// Every speaker's decision, with the labelled identity it overlaps most.
    pub speakers: Vec<SpeakerOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpeakerOutcome {
    pub label: String,
    pub identity: Option<String>,
    pub speech_s: f64,
    pub best_worker: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    pub decided: Option<String>,
    /// Why the speaker was left `unknown`, when it was.
    pub unknown_reason: Option<UnknownReason>,
}
