use super::*;
use crate::matching::Piece;

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
        SampleEmbedding {
            source: name.into(),
            speech_s: 4.0,
            embedding: self.recording(p, 0.45),
            pieces: Vec::new(),
        }
    }

    /// An embedding of person `p` with `noise` of everything else (more for less speech).
    fn recording(&mut self, p: usize, noise: f32) -> Vec<f32> {
        let other = self.gauss.vector(DIM);
        let voice = self.voices[p].clone();
        let c = self.channel;
        mix(&[(1.0, &voice), (c * 1.3, &self.channel_dir), (noise, &other)])
    }

    /// Each sample's pieces: `n` of `speech_s` seconds, with `noise`.
    fn add_pieces(&mut self, workers: &mut [EmployeeSamples], n: usize, speech_s: f64, noise: f32) {
        for (p, w) in workers.iter_mut().enumerate() {
            for s in &mut w.samples {
                for _ in 0..n {
                    let embedding = self.recording(p, noise);
                    s.pieces.push(Piece {
                        speech_s,
                        embedding,
                    });
                }
            }
        }
    }

    fn workers(&mut self, people: usize, samples: usize) -> Vec<EmployeeSamples> {
        (0..people)
            .map(|p| EmployeeSamples {
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
    let twin = EmployeeSamples {
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

#[test]
fn a_narrow_band_location_names_a_clear_lead_under_its_threshold() {
    let narrow = calibrate(&mut Location::new(6, 0.8, 8).workers(8, 4), PRIOR);
    let lead = narrow
        .lead
        .expect("8 employees give enough stranger trials");
    assert_eq!(lead.trials, 32);
    assert!(
        lead.score >= PRIOR.rules.threshold && lead.score < narrow.rules.threshold,
        "the floor sits between the prior and the threshold: {lead:?}, {}",
        narrow.rules.threshold
    );
    assert!(narrow.rules.margin >= PRIOR.rules.margin);
    assert!(
        lead.margin > narrow.rules.margin,
        "{lead:?} {:?}",
        narrow.rules
    );
    assert!(narrow.explain().contains("leads the next employee by"));
}

#[test]
fn without_enough_strangers_the_threshold_decides_alone() {
    let mut location = Location::new(7, 0.8, 8);
    // Two employees: as a stranger, each has one other profile and no second best.
    let two = calibrate(&mut location.workers(2, 4), PRIOR);
    assert_eq!((two.lead, two.rules.margin), (None, PRIOR.rules.margin));
    // Three employees with two samples: 6 stranger trials, too few; the samples' pieces
    // (here: noisier recordings of the same people) make enough.
    let mut workers = location.workers(3, 2);
    assert_eq!(calibrate(&mut workers.clone(), PRIOR).lead, None);
    location.add_pieces(&mut workers, 4, 2.0, 0.45);
    let c = calibrate(&mut workers, PRIOR);
    assert_eq!(c.lead.map(|l| l.trials), Some(30));
}

#[test]
fn little_speech_lowers_the_bars_by_what_it_costs_a_stranger() {
    let mut location = Location::new(8, 0.8, 8);
    let mut workers = location.workers(8, 4);
    // A second of speech is a noisier embedding, less like anybody; two seconds less so.
    location.add_pieces(&mut workers, 2, 1.0, 0.9);
    location.add_pieces(&mut workers, 2, 2.0, 0.65);
    location.add_pieces(&mut workers, 1, 4.0, 0.45);
    let c = calibrate(&mut workers, PRIOR);
    let at = |s: f64| c.bars_for(s);
    assert_eq!(c.speech.len(), 3, "{:?}", c.speech);
    assert!(c.speech[0].shift < c.speech[1].shift && c.speech[1].shift < 0.0);
    assert_eq!(c.speech[2].shift, 0.0, "the longest piece is the reference");
    assert_eq!(
        at(4.0).0,
        c.rules.threshold,
        "4 s of speech or more: the threshold"
    );
    assert_eq!(at(30.0).0, c.rules.threshold);
    assert!(at(1.0).0 < at(1.5).0 && at(1.5).0 < at(2.0).0 && at(2.0).0 < at(4.0).0);
    assert_eq!(at(0.5), at(1.0), "under the shortest piece: its bars");
    let (low, lead) = at(1.0);
    assert!(low >= PRIOR.rules.threshold && lead.unwrap().score >= PRIOR.rules.threshold);
    assert!(
        lead.unwrap().score < c.lead.unwrap().score,
        "the lead's floor moves too"
    );
}
