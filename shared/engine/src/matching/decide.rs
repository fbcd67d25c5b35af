use serde::{Deserialize, Serialize};

use super::{Calibration, Profile};

/// Threshold and margin; the defaults come from the model manifest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecisionRules {
    pub threshold: f32,
    pub margin: f32,
}

/// One speaker of a clip, ready to be matched.
#[derive(Debug, Clone)]
pub struct SpeakerInput {
    pub label: String,
    pub embedding: Vec<f32>,
    pub speech_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    NoProfiles,
    /// Under the location's bar for this much speech.
    BelowThreshold,
    /// Under the bar, with under [`SHORT_SPEECH_S`] of speech: too little to tell.
    TooLittleSpeech,
    /// Over the bar, but too close to a second employee.
    WithinMargin,
    /// The worker went to another speaker of the same clip with a higher score.
    TakenByOtherSpeaker,
    /// The best two profiles are a look-alike pair: choosing between them is a coin toss.
    LookAlike,
}

/// Under this much speech, a speaker under the bar is `too_little_speech`.
pub const SHORT_SPEECH_S: f64 = 2.0;

impl UnknownReason {
    /// What it means, in plain words (docs/accuracy.md lists them all).
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoProfiles => "no employee of this location has a voice profile",
            Self::BelowThreshold => "sounds too little like any employee",
            Self::TooLittleSpeech => "too little speech to tell who it is",
            Self::WithinMargin => "too close between two employees",
            Self::TakenByOtherSpeaker => {
                "the employee went to another speaker who sounds more like them"
            }
            Self::LookAlike => "between two employees who sound alike at this location",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakerDecision {
    pub label: String,
    pub speech_s: f64,
    /// The decided worker; `None` is `unknown`.
    pub worker_id: Option<String>,
    pub best_worker_id: Option<String>,
    pub score: Option<f32>,
    /// Best score minus second best (the best alone when only one profile exists).
    pub margin: Option<f32>,
    pub unknown_reason: Option<UnknownReason>,
    /// The bar and the lead the speaker was held to: the location's for this much speech, or,
    /// named by a clear lead, the lead's floor and margin.
    pub threshold: Option<f32>,
    pub required_margin: Option<f32>,
    /// Why, in plain words.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipStatus {
    Matched,
    NoMatch,
    NoSpeech,
    Failed,
}

impl ClipStatus {
    /// The name stored and shown (the same as the serialised one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::NoMatch => "no_match",
            Self::NoSpeech => "no_speech",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipDecision {
    pub status: ClipStatus,
    /// The matched worker with the most speech.
    pub worker_id: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    /// The bar and lead that speaker was held to (see [`SpeakerDecision`]).
    pub threshold: Option<f32>,
    pub required_margin: Option<f32>,
    pub speakers: Vec<SpeakerDecision>,
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Decides every speaker of one clip, by the location's calibration.
///
/// A speaker is a worker when that worker's profile scores at least the threshold (or, under it,
/// at least the lead rule's floor with the lead rule's clear margin) and beats every other
/// profile by the margin, and the runner-up is not its look-alike; each worker goes to at
/// most one speaker (the higher score wins and the other speaker becomes `unknown`, never a
/// second-choice name).
pub fn decide(
    speakers: &[SpeakerInput],
    profiles: &[Profile],
    calibration: &Calibration,
) -> ClipDecision {
    let mut decisions: Vec<SpeakerDecision> = speakers
        .iter()
        .map(|s| score_speaker(s, profiles, calibration))
        .collect();

    // One speaker per worker: visit accepted speakers best score first.
    let mut order: Vec<usize> = (0..decisions.len())
        .filter(|&i| decisions[i].worker_id.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        decisions[b]
            .score
            .unwrap_or(f32::MIN)
            .total_cmp(&decisions[a].score.unwrap_or(f32::MIN))
    });
    let mut taken: Vec<String> = Vec::new();
    for i in order {
        let Some(worker) = decisions[i].worker_id.clone() else {
            continue;
        };
        if taken.contains(&worker) {
            decisions[i].worker_id = None;
            decisions[i].unknown_reason = Some(UnknownReason::TakenByOtherSpeaker);
            decisions[i].why =
                format!("unknown, {}", UnknownReason::TakenByOtherSpeaker.describe());
        } else {
            taken.push(worker);
        }
    }

    let lead = decisions
        .iter()
        .filter(|d| d.worker_id.is_some())
        .max_by(|a, b| {
            a.speech_s
                .total_cmp(&b.speech_s)
                .then(a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)))
        });
    let status = match (speakers.is_empty(), lead) {
        (true, _) => ClipStatus::NoSpeech,
        (false, Some(_)) => ClipStatus::Matched,
        (false, None) => ClipStatus::NoMatch,
    };
    ClipDecision {
        status,
        worker_id: lead.and_then(|d| d.worker_id.clone()),
        score: lead.and_then(|d| d.score),
        margin: lead.and_then(|d| d.margin),
        threshold: lead.and_then(|d| d.threshold),
        required_margin: lead.and_then(|d| d.required_margin),
        speakers: decisions,
    }
}

fn score_speaker(
    speaker: &SpeakerInput,
    profiles: &[Profile],
    calibration: &Calibration,
) -> SpeakerDecision {
    let mut scored: Vec<(f32, &Profile)> = profiles
        .iter()
        .map(|p| (cosine(&speaker.embedding, &p.embedding), p))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut decision = SpeakerDecision {
        label: speaker.label.clone(),
        speech_s: speaker.speech_s,
        worker_id: None,
        best_worker_id: None,
        score: None,
        margin: None,
        unknown_reason: Some(UnknownReason::NoProfiles),
        threshold: None,
        required_margin: None,
        why: UnknownReason::NoProfiles.describe().to_string(),
    };
    let Some(&(best, profile)) = scored.first() else {
        return decision;
    };
    let runner_up = scored.get(1).map(|&(s, p)| (s.max(0.0), p));
    let margin = best - runner_up.map_or(0.0, |r| r.0);
    decision.best_worker_id = Some(profile.worker_id.clone());
    decision.score = Some(best);
    decision.margin = Some(margin);
    // Less speech lowers every score: the bars are the location's for this much speech. Under
    // the threshold, a clear lead over every other profile still names the speaker.
    let (threshold, lead) = calibration.bars_for(speaker.speech_s);
    let clear_lead = lead.filter(|l| best < threshold && l.admits(best, margin));
    let (bar, need) = clear_lead.map_or((threshold, calibration.rules.margin), |l| {
        (l.score, l.margin)
    });
    decision.threshold = Some(bar);
    decision.required_margin = Some(need);
    let runner_up_looks_alike =
        runner_up.is_some_and(|(_, p)| calibration.look_alike(&profile.worker_id, &p.worker_id));
    let reason = if best < bar {
        Some(if speaker.speech_s < SHORT_SPEECH_S {
            UnknownReason::TooLittleSpeech
        } else {
            UnknownReason::BelowThreshold
        })
    } else if runner_up_looks_alike {
        Some(UnknownReason::LookAlike)
    } else if margin < need {
        Some(UnknownReason::WithinMargin)
    } else {
        None
    };
    let second = runner_up.map_or("no other employee", |(_, p)| p.name.as_str());
    decision.why = match reason {
        None if clear_lead.is_some() => format!(
            "{}: scored {best:.2}, under this location's bar of {threshold:.2} for {:.1} s of \
             speech, but {margin:.2} ahead of {second} (a clear lead here is {need:.2})",
            profile.name, speaker.speech_s
        ),
        None => format!(
            "{}: scored {best:.2}, over this location's bar of {bar:.2} for {:.1} s of speech, \
             {margin:.2} ahead of {second}",
            profile.name, speaker.speech_s
        ),
        Some(r @ (UnknownReason::BelowThreshold | UnknownReason::TooLittleSpeech)) => format!(
            "unknown, {}: best {} at {best:.2}, under this location's bar of {bar:.2} for {:.1} s \
             of speech",
            r.describe(),
            profile.name,
            speaker.speech_s
        ),
        Some(UnknownReason::LookAlike) => format!(
            "unknown, {}: {} ({best:.2}) and {second}",
            UnknownReason::LookAlike.describe(),
            profile.name
        ),
        Some(r) => format!(
            "unknown, {}: {} at {best:.2}, only {margin:.2} ahead of {second} ({need:.2} needed)",
            r.describe(),
            profile.name
        ),
    };
    decision.unknown_reason = reason;
    if reason.is_none() {
        decision.worker_id = Some(profile.worker_id.clone());
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::SampleEmbedding;
    use crate::matching::build_profile;

    fn profile(id: &str, e: Vec<f32>) -> Profile {
        build_profile(
            id,
            id,
            vec![SampleEmbedding {
                source: "s".into(),
                speech_s: 5.0,
                embedding: e,
                pieces: Vec::new(),
            }],
        )
        .unwrap()
    }

    fn speaker(label: &str, e: Vec<f32>, speech_s: f64) -> SpeakerInput {
        SpeakerInput {
            label: label.into(),
            embedding: e,
            speech_s,
        }
    }

    /// A unit vector at `cos` from the x axis, in the x-y plane (or x-z with `z`).
    fn at(cos: f32, z: bool) -> Vec<f32> {
        let sin = (1.0 - cos * cos).sqrt();
        if z {
            vec![cos, 0.0, sin]
        } else {
            vec![cos, sin, 0.0]
        }
    }

    const RULES: DecisionRules = DecisionRules {
        threshold: 0.7,
        margin: 0.1,
    };

    fn rules() -> Calibration {
        Calibration::fixed(RULES)
    }

    #[test]
    fn best_profile_over_threshold_and_margin_is_matched() {
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", vec![0.0, 1.0, 0.0]),
        ];
        let d = decide(&[speaker("A", at(0.9, true), 4.0)], &profiles, &rules());
        assert_eq!(d.status, ClipStatus::Matched);
        assert_eq!(d.worker_id.as_deref(), Some("ann"));
        assert!((d.score.unwrap() - 0.9).abs() < 1e-5);
    }

    #[test]
    fn below_threshold_is_unknown() {
        let profiles = [profile("ann", vec![1.0, 0.0, 0.0])];
        let d = decide(&[speaker("A", at(0.69, true), 4.0)], &profiles, &rules());
        assert_eq!(d.status, ClipStatus::NoMatch);
        assert_eq!(
            d.speakers[0].unknown_reason,
            Some(UnknownReason::BelowThreshold)
        );
        assert_eq!(d.speakers[0].best_worker_id.as_deref(), Some("ann"));
    }

    #[test]
    fn close_second_best_is_unknown() {
        // Two profiles both near the speaker: 0.85 and 0.80 is within the 0.1 margin.
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", at(0.98, false)),
        ];
        let e = {
            // Between both profiles, slightly closer to ann.
            let v = [0.95f32, 0.12, 0.28];
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect::<Vec<_>>()
        };
        let d = decide(&[speaker("A", e, 4.0)], &profiles, &rules());
        let s = &d.speakers[0];
        assert!(s.score.unwrap() >= 0.7 && s.margin.unwrap() < 0.1, "{s:?}");
        assert_eq!(d.status, ClipStatus::NoMatch);
        assert_eq!(s.unknown_reason, Some(UnknownReason::WithinMargin));
    }

    #[test]
    fn one_worker_per_speaker_the_higher_score_wins() {
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", vec![0.0, 1.0, 0.0]),
        ];
        let d = decide(
            &[
                speaker("A", at(0.8, true), 9.0),
                speaker("B", at(0.95, true), 2.0),
            ],
            &profiles,
            &rules(),
        );
        assert_eq!(d.speakers[0].worker_id, None);
        assert_eq!(
            d.speakers[0].unknown_reason,
            Some(UnknownReason::TakenByOtherSpeaker)
        );
        assert_eq!(d.speakers[1].worker_id.as_deref(), Some("ann"));
        assert_eq!(d.worker_id.as_deref(), Some("ann"));
    }

    #[test]
    fn clip_worker_is_the_matched_speaker_with_most_speech() {
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", vec![0.0, 1.0, 0.0]),
        ];
        let d = decide(
            &[
                speaker("A", vec![0.0, 1.0, 0.0], 6.0),
                speaker("B", vec![1.0, 0.0, 0.0], 3.0),
                speaker("C", vec![0.0, 0.0, 1.0], 20.0),
            ],
            &profiles,
            &rules(),
        );
        assert_eq!(d.worker_id.as_deref(), Some("bob"));
        assert_eq!(d.speakers[2].worker_id, None, "the customer is unknown");
    }

    #[test]
    fn a_speaker_between_look_alike_profiles_is_unknown() {
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", at(0.5, false)),
        ];
        let speaker = [speaker("A", at(0.95, true), 4.0)];
        let named = decide(&speaker, &profiles, &rules());
        assert_eq!(named.worker_id.as_deref(), Some("ann"));
        let mut alike = rules();
        alike.look_alike.push(crate::matching::LookAlike {
            a: "bob".into(),
            b: "ann".into(),
            a_name: "Bob".into(),
            b_name: "Ann".into(),
            score: 0.8,
        });
        let d = decide(&speaker, &profiles, &alike);
        assert_eq!(d.status, ClipStatus::NoMatch);
        assert_eq!(d.speakers[0].unknown_reason, Some(UnknownReason::LookAlike));
    }

    #[test]
    fn a_clear_lead_under_the_threshold_is_named_and_a_close_one_is_not() {
        let profiles = [
            profile("ann", vec![1.0, 0.0, 0.0]),
            profile("bob", vec![0.0, 1.0, 0.0]),
        ];
        let mut calibration = rules();
        calibration.prior.threshold = 0.5;
        calibration.lead = Some(crate::matching::LeadRule {
            score: 0.6,
            margin: 0.3,
            trials: 40,
        });
        // 0.65 against ann, 0 against bob: under the threshold, a lead of 0.65.
        let clear = decide(
            &[speaker("A", at(0.65, true), 3.0)],
            &profiles,
            &calibration,
        );
        assert_eq!(clear.worker_id.as_deref(), Some("ann"));
        // 0.65 against ann and 0.45 against bob: the lead of 0.2 is not clear.
        let v = [0.65f32, 0.45, (1.0f32 - 0.65 * 0.65 - 0.45 * 0.45).sqrt()];
        let close = decide(&[speaker("A", v.to_vec(), 3.0)], &profiles, &calibration);
        assert_eq!(close.status, ClipStatus::NoMatch);
        assert_eq!(
            close.speakers[0].unknown_reason,
            Some(UnknownReason::BelowThreshold)
        );
        // Under the floor, no lead is enough.
        let low = decide(
            &[speaker("A", at(0.55, true), 3.0)],
            &profiles,
            &calibration,
        );
        assert_eq!(low.status, ClipStatus::NoMatch);
    }

    #[test]
    fn no_speakers_is_no_speech_and_no_profiles_is_no_match() {
        assert_eq!(
            decide(&[], &[profile("ann", vec![1.0])], &rules()).status,
            ClipStatus::NoSpeech
        );
        let d = decide(&[speaker("A", vec![1.0], 3.0)], &[], &rules());
        assert_eq!(d.status, ClipStatus::NoMatch);
        assert_eq!(
            d.speakers[0].unknown_reason,
            Some(UnknownReason::NoProfiles)
        );
    }
}
