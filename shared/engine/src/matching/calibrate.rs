//! Location calibration and enrollment checks, from a location's own voice samples, no labels.
//!
//! The recording channel moves a model's whole score scale: on a narrow-band till the cosine of
//! two different people rises (CAM++: 0.12 on full-band audio, 0.36 band-limited), so one global
//! threshold names wrong employees there. A location's samples show its channel: every sample
//! scored against the other employees' profiles is an impostor trial on that channel, and every
//! sample against its own employee's other samples (leave one out) a target trial.
//!
//! The threshold is the highest of three bounds (ARCHITECTURE.md says why, with the figures):
//! - the model's prior (manifest, or `VOICE_DIARIZATION_THRESHOLD`): never looser than it;
//! - the prior moved by the location's impostor mean against the model's reference channel
//!   (`CHANNEL_SHIFT` of the shift), since the channel lifts every impostor alike;
//! - the location's impostor tail, `SPREAD_SDS` deviations over the impostor mean.
//!
//! The tail carries an allowance for how uncertain the location's impostor mean is: its standard
//! error, which with no trials at all (one employee) is how far channels are known to move it.
//! The deviation is shrunk towards the model's own. So 2 employees with 1 sample each get a
//! stricter threshold than a full location, never a looser one.

use serde::{Deserialize, Serialize};

use super::{DecisionRules, SampleEmbedding, cosine};
use crate::model::{Embedding, l2_normalize_f64};

/// How much of the location's impostor-mean shift moves the threshold. Targets move less with
/// the channel than impostors do, so the whole shift would cost right names for nothing.
const CHANNEL_SHIFT: f32 = 0.8;
/// Standard deviations of the location's impostor scores the threshold keeps above their mean:
/// a customer is scored against every profile, so the threshold must clear the top of the tail.
const SPREAD_SDS: f32 = 3.0;
/// Standard errors of the impostor mean added to the tail for uncertainty (few employees, few
/// samples).
const UNCERTAINTY_SES: f32 = 1.0;
/// How far, in the model's impostor deviations, channels are known to move the impostor mean:
/// what a location without trials (one employee) must allow for, and what a few trials narrow.
const CHANNEL_SDS: f32 = 2.0;
/// Weight of the model's own impostor deviation, in trials, when the location's is estimated.
const PRIOR_TRIALS: f32 = 20.0;
/// Rounds of leaving out samples and estimating again.
const ROUNDS: usize = 3;
/// A sample with less speech than this is too short to speak for anyone.
pub const MIN_SAMPLE_SPEECH_S: f64 = 1.0;

/// What the model says about its scores on its reference channel (the manifest's `[decision]`,
/// with the threshold and margin the settings may override).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub rules: DecisionRules,
    /// Mean cosine of one person's sample against another person's profile.
    pub impostor_mean: f32,
    pub impostor_sd: f32,
    /// Mean cosine of a sample against the profile of its speaker's other samples.
    pub target_mean: f32,
}

/// Which bound set a location's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The model's prior (or the configured threshold).
    Prior,
    /// The prior moved by how far the location's channel lifts impostor scores.
    Channel,
    /// The top of the location's own impostor scores.
    Spread,
}

/// Why a voice sample was left out of its employee's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleIssue {
    /// It sounds more like somebody else than like the employee's other samples (another
    /// person, two people, music).
    UnlikeOtherSamples,
    /// Mostly silence: too little speech to speak for anyone.
    LittleSpeech,
}

impl SampleIssue {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnlikeOtherSamples => "does not sound like the employee's other samples",
            Self::LittleSpeech => "holds almost no speech",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlaggedSample {
    pub worker_id: String,
    pub name: String,
    pub sample: String,
    pub issue: SampleIssue,
    /// Its score against the employee's other samples, when there were any.
    pub score: Option<f32>,
}

impl FlaggedSample {
    /// What to tell the person who looks after the samples.
    pub fn fix(&self) -> String {
        format!(
            "record a new sample of {} to replace {} (it {}; it is left out of the profile)",
            self.name,
            self.sample,
            self.issue.describe()
        )
    }
}

/// Two employees whose profiles this location cannot tell apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookAlike {
    pub a: String,
    pub b: String,
    pub a_name: String,
    pub b_name: String,
    /// Median score of one's samples against the other's profile.
    pub score: f32,
}

impl LookAlike {
    pub fn pairs(&self, x: &str, y: &str) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }

    pub fn fix(&self) -> String {
        format!(
            "{} and {} sound alike to the model (score {:.2}): a speaker between them stays \
             unknown; if they are one person, keep one of them, otherwise record longer, \
             clearer samples of both",
            self.a_name, self.b_name, self.score
        )
    }
}

/// A location's decision rules with what they were derived from: stored with its profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// How it was calibrated (`Calibration::METHOD` when current): a stored calibration of an
    /// older method is calibrated again from the samples.
    #[serde(default)]
    pub method: u32,
    /// The threshold and margin this location decides with.
    pub rules: DecisionRules,
    /// The clear-lead path under the threshold (`calibrate/strangers.rs`), where it was measured.
    #[serde(default)]
    pub lead: Option<LeadRule>,
    /// How far the threshold and the lead's floor move for a speaker with little speech, by
    /// length (shortest first; empty: they do not move).
    #[serde(default)]
    pub speech: Vec<SpeechShift>,
    /// The model's prior (or the settings'), which `rules` never fall below.
    pub prior: DecisionRules,
    pub basis: Basis,
    pub impostor_mean: Option<f32>,
    pub impostor_sd: Option<f32>,
    pub impostor_trials: usize,
    pub target_mean: Option<f32>,
    pub target_trials: usize,
    pub look_alike: Vec<LookAlike>,
    pub flagged: Vec<FlaggedSample>,
}

impl Calibration {
    /// The calibration method of this build: 2 added the margin from the strangers' leads, the
    /// clear-lead path and the bars for short speech.
    pub const METHOD: u32 = 2;

    /// Rules taken as they are, with nothing learned from samples (unit tests, tools).
    pub fn fixed(rules: DecisionRules) -> Self {
        Self {
            method: Self::METHOD,
            rules,
            lead: None,
            speech: Vec::new(),
            prior: rules,
            basis: Basis::Prior,
            impostor_mean: None,
            impostor_sd: None,
            impostor_trials: 0,
            target_mean: None,
            target_trials: 0,
            look_alike: Vec::new(),
            flagged: Vec::new(),
        }
    }

    /// The threshold and the lead's floor for a speaker with `speech_s` seconds of speech:
    /// lower for less speech, never under the prior's threshold.
    pub fn bars_for(&self, speech_s: f64) -> (f32, Option<LeadRule>) {
        let shift = shift_for(&self.speech, speech_s);
        let at_least = |v: f32| (v + shift).max(self.prior.threshold);
        let lead = self.lead.map(|l| LeadRule {
            score: at_least(l.score),
            ..l
        });
        (at_least(self.rules.threshold), lead)
    }

    /// Whether `a` and `b` are a look-alike pair.
    pub fn look_alike(&self, a: &str, b: &str) -> bool {
        self.look_alike.iter().any(|p| p.pairs(a, b))
    }

    /// Something the people who look after the samples should act on.
    pub fn has_issues(&self) -> bool {
        !self.flagged.is_empty() || !self.look_alike.is_empty()
    }

    /// One line per issue, each with its fix.
    pub fn issues(&self) -> Vec<String> {
        self.flagged
            .iter()
            .map(FlaggedSample::fix)
            .chain(self.look_alike.iter().map(LookAlike::fix))
            .collect()
    }

    /// Why the threshold is what it is, and the clear-lead path under it, in one line.
    pub fn explain(&self) -> String {
        match self.lead {
            Some(lead) => format!(
                "{}; a speaker who leads the next employee by {:.2} is named from {:.3}",
                self.explain_threshold(),
                lead.margin,
                lead.score
            ),
            None => self.explain_threshold(),
        }
    }

    fn explain_threshold(&self) -> String {
        let t = self.rules.threshold;
        match (self.basis, self.impostor_mean) {
            (Basis::Prior, _) => format!("threshold {t:.3}: the model's prior"),
            (Basis::Channel, Some(mean)) => format!(
                "threshold {t:.3}, raised from {:.3}: this location's recordings lift \
                 different people's scores to {mean:.2} on average",
                self.prior.threshold
            ),
            (Basis::Spread, Some(mean)) => format!(
                "threshold {t:.3}, raised from {:.3}: different people's scores here reach \
                 well above their mean of {mean:.2} (spread {:.2})",
                self.prior.threshold,
                self.impostor_sd.unwrap_or_default()
            ),
            (_, None) => format!(
                "threshold {t:.3}, raised from {:.3}: too few samples to measure this location",
                self.prior.threshold
            ),
        }
    }
}

/// One worker's sample embeddings, as enrolled.
#[derive(Debug, Clone)]
pub struct EmployeeSamples {
    pub worker_id: String,
    pub name: String,
    pub samples: Vec<SampleEmbedding>,
}

/// Calibrates a location from its workers' samples and leaves out the samples that fail the
/// enrollment checks (they are removed from `workers` and listed in the result).
pub fn calibrate(workers: &mut [EmployeeSamples], prior: Prior) -> Calibration {
    let mut flagged = Vec::new();
    for w in workers.iter_mut() {
        let (keep, short): (Vec<_>, Vec<_>) = std::mem::take(&mut w.samples)
            .into_iter()
            .partition(|s| s.speech_s >= MIN_SAMPLE_SPEECH_S);
        w.samples = keep;
        flagged.extend(short.into_iter().map(|s| FlaggedSample {
            worker_id: w.worker_id.clone(),
            name: w.name.clone(),
            sample: s.source,
            issue: SampleIssue::LittleSpeech,
            score: None,
        }));
    }
    let mut state = Trials::measure(workers);
    let mut estimate = Estimate::of(&state, prior);
    for _ in 0..ROUNDS {
        let cut = (estimate.impostor_mean + state.target_mean(prior)) / 2.0;
        let mut changed = false;
        for (w, loo) in workers.iter_mut().zip(&state.leave_one_out) {
            if loo.is_empty() {
                continue;
            }
            let unlike: Vec<bool> = loo.iter().map(|&s| s < cut).collect();
            // When every one of three or more samples disagrees, that is how this person
            // sounds, not a stranger among them.
            if loo.len() > 2 && unlike.iter().all(|&u| u) {
                continue;
            }
            let all = std::mem::take(&mut w.samples);
            for ((sample, unlike), &score) in all.into_iter().zip(unlike).zip(loo) {
                if !unlike {
                    w.samples.push(sample);
                    continue;
                }
                changed = true;
                flagged.push(FlaggedSample {
                    worker_id: w.worker_id.clone(),
                    name: w.name.clone(),
                    sample: sample.source,
                    issue: SampleIssue::UnlikeOtherSamples,
                    score: Some(score),
                });
            }
        }
        if !changed {
            break;
        }
        state = Trials::measure(workers);
        estimate = Estimate::of(&state, prior);
    }
    let look_alike = state
        .pairs
        .iter()
        .filter(|p| p.median >= estimate.threshold)
        .map(|p| LookAlike {
            a: workers[p.a].worker_id.clone(),
            b: workers[p.b].worker_id.clone(),
            a_name: workers[p.a].name.clone(),
            b_name: workers[p.b].name.clone(),
            score: p.median,
        })
        .collect();
    let targets: Vec<f32> = state.leave_one_out.iter().flatten().copied().collect();
    let strangers = Strangers::measure(workers, &state);
    Calibration {
        method: Calibration::METHOD,
        rules: DecisionRules {
            threshold: estimate.threshold,
            margin: strangers
                .as_ref()
                .map_or(prior.rules.margin, |s| s.margin(prior)),
        },
        lead: strangers
            .as_ref()
            .and_then(|s| s.lead_rule(estimate.impostor_mean, estimate.threshold, prior)),
        speech: strangers
            .as_ref()
            .map_or_else(Vec::new, Strangers::speech_shifts),
        prior: prior.rules,
        basis: estimate.basis,
        impostor_mean: (estimate.trials > 0).then_some(estimate.impostor_mean),
        impostor_sd: (estimate.trials > 1).then_some(estimate.impostor_sd),
        impostor_trials: estimate.trials,
        target_mean: (!targets.is_empty()).then(|| mean(&targets)),
        target_trials: targets.len(),
        look_alike,
        flagged,
    }
}

mod strangers;
mod trials;

use strangers::Strangers;
pub use strangers::{LeadRule, SpeechShift, shift_for};

pub use trials::mean_embedding;
use trials::{Estimate, Trials, mean};

#[cfg(test)]
mod tests;
