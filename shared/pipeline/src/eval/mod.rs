//! `dispatcher eval`: a labelled set through the worker's own stages (decode, turns from a
//! [`Transcriber`], embed, decide) over the shared batcher; enroll its speakers, decide every
//! clip and score the decisions against the labels.

mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::ClipProcessor;
use crate::clip::Speaker;
use crate::transcript::Transcriber;
use engine::eval::{Dataset, DerParts, Eer, LabelledClip, der, equal_error_rate};
use engine::matching::{ClipStatus, SpeakerInput, cosine, decide, enroll_with};
use engine::turns::Turn;

pub use report::{ClipOutcome, ConditionStats, EvalOptions, Report, SpeakerOutcome};

/// Collar around reference boundaries not scored by the DER (the usual 0.25 s).
const DER_COLLAR_S: f64 = 0.25;

/// A clip's turns and its speakers with their embeddings, or why it has none.
type Heard = Result<(Vec<Turn>, Vec<Speaker>), String>;

/// Enrolls `dataset.enrollees`, decides every clip and scores the decisions against the labels.
/// Fails only when the speaker model does; a clip that cannot be read or heard is a `failed`
/// outcome.
pub async fn evaluate(
    dataset: &Dataset,
    processor: Arc<ClipProcessor>,
    transcriber: Arc<dyn Transcriber>,
    options: EvalOptions,
) -> Result<Report, String> {
    let batcher = processor.batcher.clone();
    let manifest = batcher.manifest().clone();
    let enrollees = dataset.enrollees.clone();
    let enrollment = tokio::task::spawn_blocking(move || {
        enroll_with(
            manifest.sample_rate,
            &enrollees,
            options.prior,
            |requests| batcher.embed_requests(requests),
        )
    })
    .await
    .map_err(|e| format!("enrollment stopped: {e}"))??;
    let profiles = &enrollment.profiles;
    let calibration = &enrollment.calibration;

    let heard = hear_all(&dataset.clips, &processor, &transcriber, options.in_flight).await?;
    let mut outcomes = Vec::new();
    let (mut targets, mut nontargets) = (Vec::new(), Vec::new());
    let mut closed_correct = 0usize;
    let mut der_parts = DerParts::default();
    for (clip, heard) in dataset.clips.iter().zip(heard) {
        let (turns, speakers) = match heard {
            Ok(heard) => heard,
            Err(e) => {
                outcomes.push(failed(clip, e));
                continue;
            }
        };
        der_parts.add(der(&clip.turns, &turns, DER_COLLAR_S));
        let mut inputs = Vec::new();
        let mut identities = Vec::new();
        let mut best_profile: Option<(f32, &str)> = None;
        for speaker in speakers {
            let identity = identity_of(&speaker.speech.turns, &clip.turns);
            for profile in profiles {
                let score = cosine(&speaker.embedding, &profile.embedding);
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
                label: speaker.speech.label,
                embedding: speaker.embedding,
                speech_s: speaker.speech.speech_s,
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
                unknown_reason: d.unknown_reason,
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
        model: processor.batcher.manifest().id.clone(),
        turns: transcriber.name().to_string(),
        threshold: options.prior.rules.threshold,
        margin: options.prior.rules.margin,
        threshold_used: calibration.rules.threshold,
        margin_used: calibration.rules.margin,
        calibration: calibration.clone(),
        min_utterance_ms: processor.min_utterance_ms,
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
        der: (transcriber.name() != "oracle").then(|| der_parts.der()),
        der_parts: (transcriber.name() != "oracle").then_some(der_parts),
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

/// Every clip's turns and speakers, in the set's order, `in_flight` clips at a time.
async fn hear_all(
    clips: &[LabelledClip],
    processor: &Arc<ClipProcessor>,
    transcriber: &Arc<dyn Transcriber>,
    in_flight: usize,
) -> Result<Vec<Heard>, String> {
    let mut heard: Vec<Option<Heard>> = (0..clips.len()).map(|_| None).collect();
    let mut running = JoinSet::new();
    let mut next = clips.iter().enumerate();
    loop {
        while running.len() < in_flight.max(1)
            && let Some((i, clip)) = next.next()
        {
            let (processor, transcriber) = (Arc::clone(processor), Arc::clone(transcriber));
            let clip = clip.clone();
            running.spawn(async move { (i, hear(&clip, processor, transcriber).await) });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (i, outcome) = done.map_err(|e| format!("evaluating a clip stopped: {e}"))?;
        heard[i] = Some(outcome?);
    }
    Ok(heard.into_iter().flatten().collect())
}

/// One clip's turns and speakers (`Ok(Err)`: the clip could not be read or heard; `Err`: the
/// speaker model failed, which ends the evaluation).
async fn hear(
    clip: &LabelledClip,
    processor: Arc<ClipProcessor>,
    transcriber: Arc<dyn Transcriber>,
) -> Result<Heard, String> {
    let (p, path) = (Arc::clone(&processor), clip.path.clone());
    let audio = match tokio::task::spawn_blocking(move || p.decode(&path)).await {
        Ok(Ok(audio)) => audio,
        Ok(Err(e)) => return Ok(Err(format!("{}: {}", clip.path.display(), e.message))),
        Err(e) => return Err(format!("decoding stopped: {e}")),
    };
    let heard = match transcriber.submit(&clip.path, &audio).await {
        Ok(submitted) => transcriber.wait_for(submitted).await,
        Err(e) => Err(e),
    };
    let heard = match heard {
        Ok(heard) => heard,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let trim = transcriber.edge_trim_s();
    let speakers = tokio::task::spawn_blocking(move || {
        processor
            .speakers(&audio, &heard.turns, trim)
            .map(|speakers| (heard.turns, speakers))
    })
    .await
    .map_err(|e| format!("embedding stopped: {e}"))??;
    Ok(Ok(speakers))
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
