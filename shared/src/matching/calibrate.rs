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
    /// The threshold and margin this location decides with.
    pub rules: DecisionRules,
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
    /// Rules taken as they are, with nothing learned from samples (unit tests, tools).
    pub fn fixed(rules: DecisionRules) -> Self {
        Self {
            rules,
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

    /// Why the threshold is what it is, in one line.
    pub fn explain(&self) -> String {
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
pub struct WorkerSamples {
    pub worker_id: String,
    pub name: String,
    pub samples: Vec<SampleEmbedding>,
}

/// Calibrates a location from its workers' samples and leaves out the samples that fail the
/// enrollment checks (they are removed from `workers` and listed in the result).
pub fn calibrate(workers: &mut [WorkerSamples], prior: Prior) -> Calibration {
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
    Calibration {
        rules: DecisionRules {
            threshold: estimate.threshold,
            margin: prior.rules.margin,
        },
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

/// The cross scores of two workers.
struct Pair {
    a: usize,
    b: usize,
    scores: Vec<f32>,
    median: f32,
}

/// Every trial a location's samples give.
struct Trials {
    /// Per worker, each sample against the profile of the worker's other samples.
    leave_one_out: Vec<Vec<f32>>,
    pairs: Vec<Pair>,
    /// Mean samples per worker.
    samples_per_worker: f32,
}

impl Trials {
    fn measure(workers: &[WorkerSamples]) -> Self {
        let live: Vec<&WorkerSamples> = workers.iter().collect();
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
    fn same_voice(&self, pair: &Pair) -> bool {
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

    fn target_mean(&self, prior: Prior) -> f32 {
        let all: Vec<f32> = self.leave_one_out.iter().flatten().copied().collect();
        if all.is_empty() {
            prior.target_mean
        } else {
            mean(&all)
        }
    }
}

/// The location's impostor statistics and the threshold they give.
struct Estimate {
    impostor_mean: f32,
    impostor_sd: f32,
    trials: usize,
    threshold: f32,
    basis: Basis,
}

impl Estimate {
    fn of(trials: &Trials, prior: Prior) -> Self {
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

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

fn median_sorted(v: &[f32]) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    const PRIOR: Prior = Prior {
        rules: DecisionRules {
            threshold: 0.5,
            margin: 0.05,
        },
        impostor_mean: 0.12,
        impostor_sd: 0.11,
        target_mean: 0.82,
    };

    /// A seeded source of standard normal numbers (xorshift + Box-Muller): no dependency.
    struct Gauss(u64);

    impl Gauss {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn next(&mut self) -> f32 {
            let (u, v) = (self.uniform().max(1e-12), self.uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        }

        fn vector(&mut self, dim: usize) -> Vec<f32> {
            unit((0..dim).map(|_| self.next()).collect())
        }
    }

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn mix(parts: &[(f32, &[f32])]) -> Vec<f32> {
        let dim = parts[0].1.len();
        unit(
            (0..dim)
                .map(|i| parts.iter().map(|(w, v)| w * v[i]).sum())
                .collect(),
        )
    }

    /// Voices on a channel that adds `channel` of one shared direction to every recording, so
    /// two different people score about `channel²` alike.
    struct Location {
        gauss: Gauss,
        channel_dir: Vec<f32>,
        channel: f32,
        voices: Vec<Vec<f32>>,
    }

    const DIM: usize = 128;

    impl Location {
        fn new(seed: u64, channel: f32, people: usize) -> Self {
            let mut gauss = Gauss(seed);
            let channel_dir = gauss.vector(DIM);
            let voices = (0..people).map(|_| gauss.vector(DIM)).collect();
            Self {
                gauss,
                channel_dir,
                channel,
                voices,
            }
        }

        /// One recording of person `p`: voice, channel, and a little of everything else.
        fn sample(&mut self, p: usize, name: &str) -> SampleEmbedding {
            let noise = self.gauss.vector(DIM);
            let voice = self.voices[p].clone();
            let c = self.channel;
            SampleEmbedding {
                source: name.into(),
                speech_s: 4.0,
                embedding: mix(&[(1.0, &voice), (c * 1.3, &self.channel_dir), (0.45, &noise)]),
            }
        }

        fn workers(&mut self, people: usize, samples: usize) -> Vec<WorkerSamples> {
            (0..people)
                .map(|p| WorkerSamples {
                    worker_id: format!("w{p}"),
                    name: format!("Worker {p}"),
                    samples: (0..samples)
                        .map(|s| self.sample(p, &format!("{s:02}.wav")))
                        .collect(),
                })
                .collect()
        }
    }

    #[test]
    fn a_channel_that_lifts_impostors_raises_the_threshold() {
        let full_band = calibrate(&mut Location::new(1, 0.0, 8).workers(8, 4), PRIOR);
        let narrow = calibrate(&mut Location::new(1, 0.8, 8).workers(8, 4), PRIOR);
        let lifted = narrow.impostor_mean.unwrap() - full_band.impostor_mean.unwrap();
        assert!(lifted > 0.2, "the channel lifts impostors: {lifted}");
        assert!(full_band.rules.threshold >= PRIOR.rules.threshold);
        assert!(
            full_band.rules.threshold < PRIOR.rules.threshold + 0.05,
            "{full_band:?}"
        );
        assert!(
            narrow.rules.threshold > full_band.rules.threshold + 0.15,
            "{} vs {}",
            narrow.rules.threshold,
            full_band.rules.threshold
        );
        assert_ne!(narrow.basis, Basis::Prior);
        assert!(narrow.flagged.is_empty() && narrow.look_alike.is_empty());
        assert!(
            narrow.explain().contains("raised from 0.500"),
            "{}",
            narrow.explain()
        );
    }

    #[test]
    fn a_small_location_is_never_looser_than_the_prior_or_a_full_one() {
        for channel in [0.0, 0.8] {
            let full = calibrate(&mut Location::new(2, channel, 8).workers(8, 4), PRIOR);
            for (people, samples) in [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2)] {
                for seed in 0..5 {
                    let mut workers = Location::new(10 + seed, channel, 8).workers(people, samples);
                    let small = calibrate(&mut workers, PRIOR);
                    assert!(small.rules.threshold >= PRIOR.rules.threshold);
                    // One employee cannot show the channel: the threshold allows for any.
                    let bar = if people == 1 {
                        PRIOR.impostor_mean + 5.0 * PRIOR.impostor_sd
                    } else {
                        full.rules.threshold - 0.05
                    };
                    assert!(
                        small.rules.threshold >= bar - 1e-4,
                        "{people} × {samples} on channel {channel}: {} against {}",
                        small.rules.threshold,
                        full.rules.threshold
                    );
                    assert_eq!(small.rules.margin, PRIOR.rules.margin);
                }
            }
        }
    }

    #[test]
    fn a_sample_of_somebody_else_is_left_out_of_the_profile() {
        let mut location = Location::new(3, 0.3, 8);
        let mut workers = location.workers(8, 4);
        let stranger = location.sample(5, "from-w5.wav");
        workers[2].samples.push(stranger);
        let c = calibrate(&mut workers, PRIOR);
        assert_eq!(c.flagged.len(), 1, "{:?}", c.flagged);
        let f = &c.flagged[0];
        assert_eq!(
            (f.worker_id.as_str(), f.sample.as_str(), f.issue),
            ("w2", "from-w5.wav", SampleIssue::UnlikeOtherSamples)
        );
        assert!(
            f.fix().contains("record a new sample of Worker 2"),
            "{}",
            f.fix()
        );
        assert_eq!(workers[2].samples.len(), 4);
        assert!(workers[2].samples.iter().all(|s| s.source != "from-w5.wav"));
    }

    #[test]
    fn a_sample_without_speech_is_left_out() {
        let mut workers = Location::new(4, 0.0, 3).workers(3, 3);
        workers[1].samples[0].speech_s = 0.4;
        let c = calibrate(&mut workers, PRIOR);
        assert_eq!(c.flagged.len(), 1);
        assert_eq!(c.flagged[0].issue, SampleIssue::LittleSpeech);
        assert_eq!(workers[1].samples.len(), 2);
    }

    #[test]
    fn one_person_enrolled_twice_is_a_look_alike_pair_that_raises_nobody_s_threshold() {
        let mut location = Location::new(5, 0.0, 8);
        let honest = calibrate(&mut location.workers(8, 4), PRIOR);
        let mut workers = location.workers(8, 4);
        // Worker 0's samples under a second name.
        let twin = WorkerSamples {
            worker_id: "w0-again".into(),
            name: "Worker Zero".into(),
            samples: (0..4)
                .map(|s| location.sample(0, &format!("{s}.wav")))
                .collect(),
        };
        workers.push(twin);
        let c = calibrate(&mut workers, PRIOR);
        assert_eq!(c.look_alike.len(), 1, "{:?}", c.look_alike);
        assert!(c.look_alike("w0", "w0-again") && c.look_alike("w0-again", "w0"));
        assert!(c.look_alike[0].fix().contains("Worker 0 and Worker Zero"));
        assert!(c.flagged.is_empty());
        assert!(
            (c.rules.threshold - honest.rules.threshold).abs() < 0.03,
            "{} against {}",
            c.rules.threshold,
            honest.rules.threshold
        );
    }
}
