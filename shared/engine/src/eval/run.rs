use std::collections::BTreeMap;

use serde::Serialize;

use super::{Dataset, Eer, LabelledClip, equal_error_rate};
use super::{DerParts, der};
use crate::audio::{Audio, decode_file};
use crate::diarize::LocalDiarizer;
use crate::matching::{Calibration, ClipStatus, Prior, SpeakerInput, cosine, decide, enroll};
use crate::model::{EmbedRequest, Encoders, ModelError, SpeakerEncoder};
use crate::turns::{Turn, speakers_with_speech};

/// Collar around reference boundaries not scored by the DER (the usual 0.25 s).
const DER_COLLAR_S: f64 = 0.25;

/// Where a clip's speaker turns come from during an evaluation.
pub trait TurnSource {
    /// Short name for the report (`oracle`, `local`, …).
    fn name(&self) -> &'static str;
    fn turns(
        &mut self,
        clip: &LabelledClip,
        audio: &Audio,
        windows: &mut SpeakerEncoder,
    ) -> Result<Vec<Turn>, String>;
    /// Seconds to leave out at each end of its turns when identifying speakers (see `Turn::core`).
    fn edge_trim_s(&self) -> f64;
}

/// The labelled segments themselves: measures identification alone, without diarization errors.
pub struct OracleTurns;

impl TurnSource for OracleTurns {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn turns(
        &mut self,
        clip: &LabelledClip,
        _audio: &Audio,
        _windows: &mut SpeakerEncoder,
    ) -> Result<Vec<Turn>, String> {
        Ok(clip.turns.clone())
    }

    /// Labelled boundaries are exact.
    fn edge_trim_s(&self) -> f64 {
        0.0
    }
}

/// The local diarizer's turns: identification and diarization measured together.
pub struct LocalTurns(pub LocalDiarizer);

impl TurnSource for LocalTurns {
    fn name(&self) -> &'static str {
        "local"
    }

    fn turns(
        &mut self,
        _clip: &LabelledClip,
        audio: &Audio,
        windows: &mut SpeakerEncoder,
    ) -> Result<Vec<Turn>, String> {
        self.0.diarize(audio, windows).map_err(|e| e.to_string())
    }

    fn edge_trim_s(&self) -> f64 {
        crate::diarize::EDGE_TRIM_S
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// What the set's calibration starts from (the model's prior or the settings').
    pub prior: Prior,
    pub min_utterance_ms: u64,
    /// Clips decoded and embedded together (bounds memory, fills batches).
    pub clips_per_round: usize,
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
}

/// Enrolls `dataset.enrollees`, decides every clip and scores the decisions against the labels.
pub fn evaluate(
    dataset: &Dataset,
    encoders: &mut Encoders,
    turn_source: &mut dyn TurnSource,
    options: EvalOptions,
) -> Result<Report, ModelError> {
    let enrollment = enroll(&mut encoders.speakers, &dataset.enrollees, options.prior)?;
    let profiles = &enrollment.profiles;
    let calibration = &enrollment.calibration;
    let rate = encoders.speakers.manifest().sample_rate;
    let mut outcomes = Vec::new();
    let (mut targets, mut nontargets) = (Vec::new(), Vec::new());
    let mut closed_correct = 0usize;
    let mut der_parts = DerParts::default();

    for round in dataset.clips.chunks(options.clips_per_round.max(1)) {
        // Decode and find the speakers of every clip of the round, then embed them in one call.
        let mut prepared = Vec::new();
        for clip in round {
            let audio = match decode_file(&clip.path, rate) {
                Ok(audio) => audio,
                Err(e) => {
                    outcomes.push(failed(clip, e.to_string()));
                    continue;
                }
            };
            match turn_source.turns(clip, &audio, encoders.windows_mut()) {
                Ok(turns) => {
                    der_parts.add(der(&clip.turns, &turns, DER_COLLAR_S));
                    let speakers = speakers_with_speech(
                        &turns,
                        options.min_utterance_ms,
                        turn_source.edge_trim_s(),
                    );
                    prepared.push((clip, audio, speakers));
                }
                Err(e) => outcomes.push(failed(clip, e)),
            }
        }
        let requests: Vec<EmbedRequest<'_>> = prepared
            .iter()
            .flat_map(|(_, audio, speakers)| {
                speakers.iter().map(move |speaker| EmbedRequest {
                    segments: speaker
                        .spans
                        .iter()
                        .map(|&(start, end)| audio.span(start, end))
                        .collect(),
                })
            })
            .collect();
        let mut embeddings = encoders.speakers.embed(&requests)?.into_iter();

        for (clip, _, speakers) in &prepared {
            let mut inputs = Vec::new();
            let mut identities = Vec::new();
            let mut best_profile: Option<(f32, &str)> = None;
            for speaker in speakers {
                let Some(embedding) = embeddings.next().flatten() else {
                    continue;
                };
                let identity = identity_of(&speaker.turns, &clip.turns);
                for profile in profiles {
                    let score = cosine(&embedding, &profile.embedding);
                    if identity.as_deref() == Some(profile.worker_id.as_str()) {
                        targets.push(score);
                    } else {
                        nontargets.push(score);
                    }
                    if best_profile.is_none_or(|(s, _)| score > s) {
                        best_profile = Some((score, &profile.worker_id));
                    }
                }
                identities.push(identity);
                inputs.push(SpeakerInput {
                    label: speaker.label.clone(),
                    embedding,
                    speech_s: speaker.speech_s,
                });
            }
            let decision = decide(&inputs, profiles, calibration);
            if clip.employee.is_some() && best_profile.map(|(_, w)| w) == clip.employee.as_deref() {
                closed_correct += 1;
            }
            let speakers = decision
                .speakers
                .iter()
                .zip(identities)
                .map(|(d, identity)| SpeakerOutcome {
                    label: d.label.clone(),
                    identity,
                    speech_s: d.speech_s,
                    best_worker: d.best_worker_id.clone(),
                    score: d.score,
                    margin: d.margin,
                    decided: d.worker_id.clone(),
                })
                .collect();
            outcomes.push(ClipOutcome {
                clip: clip.name.clone(),
                condition: clip.condition.clone(),
                expected: clip.employee.clone(),
                correct: decision.worker_id == clip.employee,
                speakers,
                decided: decision.worker_id,
                status: decision.status,
                score: decision.score,
                margin: decision.margin,
                best_score: best_profile.map(|(s, _)| s),
                error: None,
            });
        }
    }

    let eer: Option<Eer> = equal_error_rate(&targets, &nontargets);
    let n = outcomes.len();
    let none: Vec<&ClipOutcome> = outcomes.iter().filter(|o| o.expected.is_none()).collect();
    let false_accepts = none.iter().filter(|o| o.decided.is_some()).count();
    let with_employee = outcomes.iter().filter(|o| o.expected.is_some()).count();
    let mut per_condition: BTreeMap<String, ConditionStats> = BTreeMap::new();
    for o in &outcomes {
        let stats = per_condition.entry(o.condition.clone()).or_default();
        stats.clips += 1;
        stats.correct += usize::from(o.correct);
    }
    for stats in per_condition.values_mut() {
        stats.accuracy = ratio(stats.correct, stats.clips);
    }
    Ok(Report {
        model: encoders.speakers.manifest().id.clone(),
        turns: turn_source.name().to_string(),
        threshold: options.prior.rules.threshold,
        margin: options.prior.rules.margin,
        threshold_used: calibration.rules.threshold,
        margin_used: calibration.rules.margin,
        calibration: calibration.clone(),
        min_utterance_ms: options.min_utterance_ms,
        clips: n,
        accuracy: ratio(outcomes.iter().filter(|o| o.correct).count(), n),
        closed_set_accuracy: ratio(closed_correct, with_employee),
        none_clips: none.len(),
        false_accepts,
        false_accept_rate: ratio(false_accepts, none.len()),
        wrong_names: outcomes
            .iter()
            .filter(|o| o.decided.is_some() && o.decided != o.expected)
            .count(),
        eer: eer.map(|e| e.eer),
        eer_threshold: eer.map(|e| e.threshold),
        der: (turn_source.name() != "oracle").then(|| der_parts.der()),
        der_parts: (turn_source.name() != "oracle").then_some(der_parts),
        target_trials: targets.len(),
        nontarget_trials: nontargets.len(),
        per_condition,
        weak_profiles: profiles
            .iter()
            .filter(|p| p.weak_profile)
            .map(|p| p.worker_id.clone())
            .collect(),
        results: outcomes,
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn failed(clip: &LabelledClip, error: String) -> ClipOutcome {
    ClipOutcome {
        clip: clip.name.clone(),
        condition: clip.condition.clone(),
        expected: clip.employee.clone(),
        decided: None,
        status: ClipStatus::Failed,
        correct: false,
        score: None,
        margin: None,
        best_score: None,
        error: Some(error),
        speakers: Vec::new(),
    }
}

/// The labelled speaker who overlaps these turns the most.
pub fn identity_of(turns: &[Turn], truth: &[Turn]) -> Option<String> {
    let mut overlap: BTreeMap<&str, f64> = BTreeMap::new();
    for t in turns {
        for g in truth {
            let o = t.end_s.min(g.end_s) - t.start_s.max(g.start_s);
            if o > 0.0 {
                *overlap.entry(g.speaker.as_str()).or_default() += o;
            }
        }
    }
    overlap
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s.to_string())
}
