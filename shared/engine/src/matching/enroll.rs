use std::path::{Path, PathBuf};

use super::{
    Calibration, EmployeeSamples, Prior, Profile, ProfileSet, SampleEmbedding, build_profile,
    calibrate,
};
use crate::audio::{Audio, AudioError, decode_file};
use crate::diarize::{VadConfig, speech_regions};
use crate::model::{EmbedRequest, Embedding, ModelError, SpeakerEncoder};

/// A worker to enroll, with the paths of its voice samples.
#[derive(Debug, Clone)]
pub struct Enrollee {
    pub worker_id: String,
    pub name: String,
    pub samples: Vec<PathBuf>,
}

/// Profiles of the workers that have at least one usable sample, the location's calibration
/// (with the samples its checks left out), and the samples that were not readable (reported,
/// never fatal: one bad upload must not block a location).
pub struct Enrollment {
    pub profiles: Vec<Profile>,
    pub calibration: Calibration,
    pub unreadable: Vec<AudioError>,
    /// Workers left without any usable sample.
    pub without_samples: Vec<String>,
}

pub fn enroll(
    encoder: &mut SpeakerEncoder,
    enrollees: &[Enrollee],
    prior: Prior,
) -> Result<Enrollment, ModelError> {
    let rate = encoder.manifest().sample_rate;
    enroll_with(rate, enrollees, prior, |requests| encoder.embed(requests))
}

/// [`enroll`] with any way to embed whole samples (the worker's shared batcher).
pub fn enroll_with<E>(
    rate: u32,
    enrollees: &[Enrollee],
    prior: Prior,
    embed: impl FnOnce(&[EmbedRequest<'_>]) -> Result<Vec<Option<Embedding>>, E>,
) -> Result<Enrollment, E> {
    let mut decoded = Vec::new();
    let mut unreadable = Vec::new();
    for (who, enrollee) in enrollees.iter().enumerate() {
        for path in &enrollee.samples {
            match decode_file(path, rate) {
                Ok(audio) => decoded.push((who, path.as_path(), audio)),
                Err(e) => unreadable.push(e),
            }
        }
    }
    let requests: Vec<EmbedRequest<'_>> = decoded
        .iter()
        .map(|(_, _, audio)| EmbedRequest {
            segments: vec![&audio.samples],
        })
        .collect();
    let embeddings = embed(&requests)?;
    let mut per_worker: Vec<Vec<SampleEmbedding>> = vec![Vec::new(); enrollees.len()];
    for ((who, path, audio), embedding) in decoded.iter().zip(embeddings) {
        if let Some(embedding) = embedding {
            per_worker[*who].push(SampleEmbedding {
                source: source_name(path),
                speech_s: speech_seconds(audio),
                embedding,
            });
        }
    }
    let mut workers: Vec<EmployeeSamples> = enrollees
        .iter()
        .zip(per_worker)
        .map(|(e, samples)| EmployeeSamples {
            worker_id: e.worker_id.clone(),
            name: e.name.clone(),
            samples,
        })
        .collect();
    let calibration = calibrate(&mut workers, prior);
    let mut profiles = Vec::new();
    let mut without_samples = Vec::new();
    for w in workers {
        match build_profile(&w.worker_id, &w.name, w.samples) {
            Some(p) => profiles.push(p),
            None => without_samples.push(w.worker_id),
        }
    }
    Ok(Enrollment {
        profiles,
        calibration,
        unreadable,
        without_samples,
    })
}

impl Enrollment {
    /// The profiles with their calibration, for deciding clips.
    pub fn into_set(self) -> ProfileSet {
        ProfileSet {
            profiles: self.profiles,
            calibration: self.calibration,
        }
    }
}

/// Seconds of speech in a sample (silence and noise between words do not count towards a
/// profile's strength).
fn speech_seconds(audio: &Audio) -> f64 {
    let regions = speech_regions(&audio.samples, audio.sample_rate, &VadConfig::default());
    regions.iter().map(|(s, e)| (e - s) as f64).sum::<f64>() / f64::from(audio.sample_rate)
}

fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
