//! What a location's employees, heard as strangers, say about its decisions: how far a
//! stranger's best profile leads the second (the margin and the clear-lead path), and how much
//! lower a stranger's best score sits when there is little speech (the bars for short turns).
//!
//! On a narrow-band till the channel lifts every score, so the threshold that keeps customers
//! out sits right under the employees' own scores, and the right employee of a short or noisy
//! turn scores under it. What still tells them apart is the lead: a customer scores alike
//! against several employees, the right employee far above the rest. And every score falls with
//! the speech behind it: a short turn's embedding is noisier, so it is less like anybody, the
//! right employee and the strangers alike. Both are measured on the location's own samples,
//! without labels: each employee, heard as a stranger, is scored against the other employees'
//! profiles, from each whole sample and from pieces cut to the lengths turns have
//! (`SampleEmbedding::pieces`).

use serde::{Deserialize, Serialize};

use super::trials::{Trials, mean};
use super::{EmployeeSamples, Prior, cosine};
use crate::matching::enroll::PIECE_S;
use crate::model::Embedding;

// The three settings below were chosen on the tuning group of the channel tables (speakerid-dev2
// and its copies: 16 employees with look-alike customers), each from a grid, for the fewest
// wrong names first and the most right ones second; docs/accuracy.md has the grids and the
// figures on the held-out group.

/// Standard deviations over the strangers' mean lead that a speaker's lead must clear on the
/// clear-lead path (grid 3.0, 3.5, 4.0).
const LEAD_SDS: f32 = 3.5;
/// Standard deviations over the strangers' mean lead that any named speaker's lead must clear:
/// a customer who scores over the threshold mostly does so against one employee and a close
/// second (grid 0 to 2; 0 kept the prior's 0.05, which named 9 look-alike customers).
const MARGIN_SDS: f32 = 0.35;
/// Share of the location's impostor-mean shift that lifts the lead path's floor above the prior:
/// a clear lead names nobody whose score is where different people's scores sit on this channel
/// (grid 0, 0.5, 0.8, 1.0).
const FLOOR_SHIFT: f32 = 0.5;
/// Stranger trials needed before they are trusted (fewer: the prior's margin, the threshold
/// alone, no shift for short speech).
const MIN_TRIALS: usize = 20;

/// A speaker whose best profile scores at least `score` and leads the second best by at least
/// `margin` is that employee, whatever the location's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeadRule {
    pub score: f32,
    pub margin: f32,
    /// Stranger trials the margin was measured on.
    pub trials: usize,
}

impl LeadRule {
    pub fn admits(&self, score: f32, margin: f32) -> bool {
        score >= self.score && margin >= self.margin
    }
}

/// A length of speech and how far the location's bars move for it (never up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeechShift {
    pub speech_s: f32,
    pub shift: f32,
}

/// Trials of a length the shift needs before it is trusted.
const MIN_LENGTH_TRIALS: usize = 8;

/// One employee's sample or piece heard as a stranger's: its best score among the other
/// employees' profiles, how far that leads the second, and the piece's length (`None`: a whole
/// sample).
struct Stranger {
    best: f32,
    lead: f32,
    piece_s: Option<f64>,
}

/// Each employee's samples and pieces as a stranger's, at this location.
pub(super) struct Strangers {
    heard: Vec<Stranger>,
    /// The leads' mean and standard deviation.
    mean: f32,
    sd: f32,
}

impl Strangers {
    /// `None` where they cannot be measured: under three employees, or too few trials.
    pub(super) fn measure(workers: &[EmployeeSamples], trials: &Trials) -> Option<Self> {
        let heard = strangers(workers, trials);
        if heard.len() < MIN_TRIALS {
            return None;
        }
        let leads: Vec<f32> = heard.iter().map(|s| s.lead).collect();
        let mean = mean(&leads);
        let var = leads.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / leads.len() as f32;
        Some(Self {
            heard,
            mean,
            sd: var.sqrt(),
        })
    }

    /// The margin every named speaker needs, never under the prior's.
    pub(super) fn margin(&self, prior: Prior) -> f32 {
        (self.mean + MARGIN_SDS * self.sd).max(prior.rules.margin)
    }

    /// The clear-lead path, where its floor is under the threshold.
    pub(super) fn lead_rule(
        &self,
        impostor_mean: f32,
        threshold: f32,
        prior: Prior,
    ) -> Option<LeadRule> {
        let floor =
            prior.rules.threshold + FLOOR_SHIFT * (impostor_mean - prior.impostor_mean).max(0.0);
        (floor < threshold).then(|| LeadRule {
            score: floor,
            margin: (self.mean + LEAD_SDS * self.sd).max(self.margin(prior)),
            trials: self.heard.len(),
        })
    }

    /// How far strangers' best scores fall at each piece length below the longest piece's: a
    /// speaker with that much speech is held to bars lowered as much, so that a stranger is as
    /// unlikely to clear them as with more speech. Pieces, not whole samples, are the reference:
    /// a whole sample holds its silences, a turn's core and a piece hardly any. Empty without
    /// enough pieces of at least two lengths.
    pub(super) fn speech_shifts(&self) -> Vec<SpeechShift> {
        let means: Vec<(f64, f32)> = PIECE_S
            .iter()
            .filter_map(|&length| {
                let best: Vec<f32> = self
                    .heard
                    .iter()
                    .filter(|s| s.piece_s == Some(length))
                    .map(|s| s.best)
                    .collect();
                (best.len() >= MIN_LENGTH_TRIALS).then(|| (length, mean(&best)))
            })
            .collect();
        let Some(&(_, reference)) = means.last() else {
            return Vec::new();
        };
        if means.len() < 2 {
            return Vec::new();
        }
        means
            .into_iter()
            .map(|(length, best)| SpeechShift {
                speech_s: length as f32,
                shift: (best - reference).min(0.0),
            })
            .collect()
    }
}

/// How far the bars move for `speech_s` seconds of speech: the shifts interpolated on the
/// logarithm of the length, the shortest's below it and none above the longest.
pub fn shift_for(shifts: &[SpeechShift], speech_s: f64) -> f32 {
    let (Some(first), Some(last)) = (shifts.first(), shifts.last()) else {
        return 0.0;
    };
    if speech_s <= f64::from(first.speech_s) {
        return first.shift;
    }
    if speech_s >= f64::from(last.speech_s) {
        return last.shift;
    }
    let x = speech_s.ln() as f32;
    shifts
        .windows(2)
        .find(|w| speech_s <= f64::from(w[1].speech_s))
        .map_or(0.0, |w| {
            let (x0, x1) = (w[0].speech_s.ln(), w[1].speech_s.ln());
            let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 1.0 };
            w[0].shift + t * (w[1].shift - w[0].shift)
        })
}

/// Each employee's samples and pieces as a stranger's (one person enrolled twice is not a
/// stranger to their twin: the twin's profile is left out).
fn strangers(workers: &[EmployeeSamples], trials: &Trials) -> Vec<Stranger> {
    let mut out = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let others: Vec<&Embedding> = trials
            .profiles
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i && !trials.twins(i, j))
            .filter_map(|(_, p)| p.as_ref())
            .collect();
        if others.len() < 2 {
            continue;
        }
        let heard = w.samples.iter().flat_map(|s| {
            std::iter::once((&s.embedding, None))
                .chain(s.pieces.iter().map(|p| (&p.embedding, Some(p.speech_s))))
        });
        for (e, piece_s) in heard {
            let (mut best, mut second) = (f32::MIN, f32::MIN);
            for p in &others {
                let s = cosine(e, p);
                if s > best {
                    second = best;
                    best = s;
                } else if s > second {
                    second = s;
                }
            }
            out.push(Stranger {
                best,
                lead: best - second.max(0.0),
                piece_s,
            });
        }
    }
    out
}
