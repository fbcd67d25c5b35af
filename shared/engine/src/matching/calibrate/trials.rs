//! The trials a location's samples give, and the impostor statistics estimated from them.

use super::*;

/// The cross scores of two workers.
pub(super) struct Pair {
    pub(super) a: usize,
    pub(super) b: usize,
    pub(super) scores: Vec<f32>,
    pub(super) median: f32,
}

/// Every trial a location's samples give.
pub(super) struct Trials {
    /// Per worker, the profile of all its samples (`None` without any).
    pub(super) profiles: Vec<Option<Embedding>>,
    /// Per worker, each sample against the profile of the worker's other samples.
    pub(super) leave_one_out: Vec<Vec<f32>>,
    pub(super) pairs: Vec<Pair>,
    /// Mean samples per worker.
    pub(super) samples_per_worker: f32,
}

impl Trials {
    pub(super) fn measure(workers: &[EmployeeSamples]) -> Self {
        let live: Vec<&EmployeeSamples> = workers.iter().collect();
        let profiles: Vec<Option<Embedding>> = live
            .iter()
            .map(|w| mean_embedding(w.samples.iter().map(|s| &s.embedding)))
            .collect();
        let leave_one_out = live
            .iter()
            .map(|w| {
                if w.samples.len() < 2 {
                    return Vec::new();
                }
                (0..w.samples.len())
                    .map(|i| {
                        let others = w
                            .samples
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, s)| &s.embedding);
                        mean_embedding(others).map_or(0.0, |p| cosine(&w.samples[i].embedding, &p))
                    })
                    .collect()
            })
            .collect();
        let mut pairs = Vec::new();
        for a in 0..live.len() {
            for b in a + 1..live.len() {
                let (Some(pa), Some(pb)) = (&profiles[a], &profiles[b]) else {
                    continue;
                };
                let mut scores: Vec<f32> = live[a]
                    .samples
                    .iter()
                    .map(|s| cosine(&s.embedding, pb))
                    .chain(live[b].samples.iter().map(|s| cosine(&s.embedding, pa)))
                    .collect();
                scores.sort_by(f32::total_cmp);
                let median = median_sorted(&scores);
                pairs.push(Pair {
                    a,
                    b,
                    scores,
                    median,
                });
            }
        }
        let with_samples = live.iter().filter(|w| !w.samples.is_empty()).count();
        Self {
            profiles,
            leave_one_out,
            pairs,
            samples_per_worker: if with_samples == 0 {
                0.0
            } else {
                live.iter().map(|w| w.samples.len()).sum::<usize>() as f32 / with_samples as f32
            },
        }
    }

    /// Pairs that are one voice: one's samples score against the other as high as against
    /// their own. They are reported as look-alikes; as impostor trials they would only
    /// raise everyone's threshold.
    pub(super) fn same_voice(&self, pair: &Pair) -> bool {
        let own = |w: usize| {
            let mut s = self.leave_one_out[w].clone();
            s.sort_by(f32::total_cmp);
            (!s.is_empty()).then(|| median_sorted(&s))
        };
        match (own(pair.a), own(pair.b)) {
            (Some(a), Some(b)) => pair.median >= a.min(b),
            _ => false,
        }
    }

    /// Whether workers `a` and `b` are one voice (see [`Self::same_voice`]).
    pub(super) fn twins(&self, a: usize, b: usize) -> bool {
        let (a, b) = (a.min(b), a.max(b));
        self.pairs
            .iter()
            .any(|p| p.a == a && p.b == b && self.same_voice(p))
    }

    pub(super) fn target_mean(&self, prior: Prior) -> f32 {
        let all: Vec<f32> = self.leave_one_out.iter().flatten().copied().collect();
        if all.is_empty() {
            prior.target_mean
        } else {
            mean(&all)
        }
    }
}

/// The location's impostor statistics and the threshold they give.
pub(super) struct Estimate {
    pub(super) impostor_mean: f32,
    pub(super) impostor_sd: f32,
    pub(super) trials: usize,
    pub(super) threshold: f32,
    pub(super) basis: Basis,
}

impl Estimate {
    pub(super) fn of(trials: &Trials, prior: Prior) -> Self {
        let scores: Vec<f32> = trials
            .pairs
            .iter()
            .filter(|p| !trials.same_voice(p))
            .flat_map(|p| p.scores.iter().copied())
            .collect();
        let n = scores.len() as f32;
        let (mean_score, variance) = if scores.is_empty() {
            // Nothing to measure the channel by: assume the model's own, as uncertain as one pair.
            (prior.impostor_mean, 0.0)
        } else {
            let m = mean(&scores);
            (m, scores.iter().map(|s| (s - m).powi(2)).sum::<f32>() / n)
        };
        let sd =
            ((variance * n + prior.impostor_sd.powi(2) * PRIOR_TRIALS) / (n + PRIOR_TRIALS)).sqrt();
        let distinct_pairs = trials
            .pairs
            .iter()
            .filter(|p| !trials.same_voice(p))
            .count();
        let effective = distinct_pairs as f32 * trials.samples_per_worker.min(2.0);
        // The mean's standard error, no larger than the channels' own spread.
        let channels = CHANNEL_SDS * prior.impostor_sd;
        let error = (1.0 / (1.0 / channels.powi(2) + effective / sd.powi(2))).sqrt();
        let uncertainty = UNCERTAINTY_SES * error;
        let channel = prior.rules.threshold + CHANNEL_SHIFT * (mean_score - prior.impostor_mean);
        let spread = mean_score + SPREAD_SDS * sd + uncertainty;
        let (threshold, basis) = [
            (prior.rules.threshold, Basis::Prior),
            (channel, Basis::Channel),
            (spread, Basis::Spread),
        ]
        .into_iter()
        .fold((f32::MIN, Basis::Prior), |best, b| {
            if b.0 > best.0 { b } else { best }
        });
        Self {
            impostor_mean: mean_score,
            impostor_sd: sd,
            trials: scores.len(),
            threshold: threshold.min(1.0),
            basis,
        }
    }
}

pub(super) fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

pub(super) fn median_sorted(v: &[f32]) -> f32 {
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The normalised mean of `embeddings`; `None` without any.
pub fn mean_embedding<'a>(embeddings: impl Iterator<Item = &'a Embedding>) -> Option<Embedding> {
    let mut sum: Option<Vec<f64>> = None;
    for e in embeddings {
        let acc = sum.get_or_insert_with(|| vec![0.0; e.len()]);
        acc.iter_mut().zip(e).for_each(|(a, &v)| *a += f64::from(v));
    }
    sum.map(|s| l2_normalize_f64(&s))
}
