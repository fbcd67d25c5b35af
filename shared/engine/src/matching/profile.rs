use serde::{Deserialize, Serialize};

use crate::model::Embedding;

/// Below this much sample speech a profile is flagged weak: its decisions deserve less trust.
pub const WEAK_PROFILE_SECONDS: f64 = 3.0;

/// One enrollment sample's embedding, kept so a profile can be audited and rebuilt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleEmbedding {
    pub source: String,
    pub speech_s: f64,
    pub embedding: Embedding,
    /// The sample's speech cut into pieces of the lengths turns have (`enroll::PIECE_S`),
    /// embedded for the location's calibration only: how its channel scores short turns.
    #[serde(skip)]
    pub pieces: Vec<Piece>,
}

/// A piece of a sample's speech and its embedding.
#[derive(Debug, Clone)]
pub struct Piece {
    pub speech_s: f64,
    pub embedding: Embedding,
}

/// An enrolled worker's voice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub worker_id: String,
    pub name: String,
    /// L2-normalised mean of the sample embeddings.
    pub embedding: Embedding,
    pub samples: Vec<SampleEmbedding>,
    pub speech_s: f64,
    pub weak_profile: bool,
}

/// A location's voices: its workers' profiles and the calibration they are decided by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileSet {
    pub profiles: Vec<Profile>,
    pub calibration: super::Calibration,
}

/// The profile of a worker from its sample embeddings; `None` without any sample.
pub fn build_profile(
    worker_id: &str,
    name: &str,
    samples: Vec<SampleEmbedding>,
) -> Option<Profile> {
    let first = samples.first()?;
    let mut sum = vec![0.0f64; first.embedding.len()];
    for s in &samples {
        sum.iter_mut()
            .zip(&s.embedding)
            .for_each(|(acc, &v)| *acc += f64::from(v));
    }
    let speech_s = samples.iter().map(|s| s.speech_s).sum();
    Some(Profile {
        worker_id: worker_id.to_string(),
        name: name.to_string(),
        embedding: crate::model::l2_normalize_f64(&sum),
        samples,
        speech_s,
        weak_profile: speech_s < WEAK_PROFILE_SECONDS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_the_normalised_mean_and_short_samples_are_weak() {
        let s = |e: Vec<f32>, secs| SampleEmbedding {
            source: "x".into(),
            speech_s: secs,
            embedding: e,
            pieces: Vec::new(),
        };
        let p = build_profile(
            "w1",
            "Ann",
            vec![s(vec![1.0, 0.0], 1.0), s(vec![0.0, 1.0], 1.5)],
        )
        .unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((p.embedding[0] - h).abs() < 1e-6 && (p.embedding[1] - h).abs() < 1e-6);
        assert!(p.weak_profile, "2.5 s of samples is weak");
        let strong = build_profile("w1", "Ann", vec![s(vec![1.0, 0.0], 3.5)]).unwrap();
        assert!(!strong.weak_profile);
        assert!(build_profile("w1", "Ann", vec![]).is_none());
    }
}
