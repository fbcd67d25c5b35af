use std::path::{Path, PathBuf};

use super::{
    Calibration, EmployeeSamples, Piece, Prior, Profile, ProfileSet, SampleEmbedding,
    build_profile, calibrate,
};
use crate::audio::{AudioError, decode_file};
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
                Ok(audio) => {
                    let regions = speech_regions(&audio.samples, rate, &VadConfig::default());
                    decoded.push((who, path.as_path(), audio, regions));
                }
                Err(e) => unreadable.push(e),
            }
        }
    }
    // Each sample whole, then its pieces: one batch of requests for all of them.
    let mut requests: Vec<EmbedRequest<'_>> = decoded
        .iter()
        .map(|(_, _, audio, _)| EmbedRequest {
            segments: vec![&audio.samples],
        })
        .collect();
    let mut piece_of = Vec::new();
    for (i, (_, _, audio, regions)) in decoded.iter().enumerate() {
        for (speech_s, piece) in pieces(&audio.samples, regions, rate) {
            piece_of.push((i, speech_s));
            requests.push(EmbedRequest { segments: piece });
        }
    }
    let mut embeddings = embed(&requests)?;
    let piece_embeddings = embeddings.split_off(decoded.len());
    let mut sample_pieces: Vec<Vec<Piece>> = vec![Vec::new(); decoded.len()];
    for ((i, speech_s), e) in piece_of.into_iter().zip(piece_embeddings) {
        sample_pieces[i].extend(e.map(|embedding| Piece {
            speech_s,
            embedding,
        }));
    }
    let mut per_worker: Vec<Vec<SampleEmbedding>> = vec![Vec::new(); enrollees.len()];
    for (((who, path, audio, regions), embedding), pieces) in
        decoded.iter().zip(embeddings).zip(sample_pieces)
    {
        if let Some(embedding) = embedding {
            per_worker[*who].push(SampleEmbedding {
                source: source_name(path),
                speech_s: speech_seconds(regions, audio.sample_rate),
                embedding,
                pieces,
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

/// Seconds of speech in a sample's regions (silence and noise between words do not count
/// towards a profile's strength).
fn speech_seconds(regions: &[(usize, usize)], rate: u32) -> f64 {
    regions.iter().map(|(s, e)| (e - s) as f64).sum::<f64>() / f64::from(rate)
}

/// Lengths of speech (seconds) a sample is cut into for the calibration: the speech a clip's
/// speaker has, from a short turn's core to a few turns joined.
pub const PIECE_S: [f64; 3] = [1.0, 2.0, 4.0];
/// Pieces of one length taken from one sample at most: a long sample adds no new channel.
const MAX_PIECES: usize = 6;

/// A sample's speech (its regions joined, as a speaker's turn cores are) cut into consecutive
/// pieces of each of [`PIECE_S`]; each piece is its length and the slices of the regions it
/// spans.
fn pieces<'a>(
    samples: &'a [f32],
    regions: &[(usize, usize)],
    rate: u32,
) -> Vec<(f64, Vec<&'a [f32]>)> {
    let mut out = Vec::new();
    for length_s in PIECE_S {
        let length = (length_s * f64::from(rate)) as usize;
        let (mut piece, mut have, mut taken) = (Vec::new(), 0usize, 0usize);
        'regions: for &(start, end) in regions {
            let mut at = start;
            while at < end {
                let take = (length - have).min(end - at);
                piece.push(&samples[at..at + take]);
                (at, have) = (at + take, have + take);
                if have == length {
                    out.push((length_s, std::mem::take(&mut piece)));
                    (have, taken) = (0, taken + 1);
                    if taken == MAX_PIECES {
                        break 'regions;
                    }
                }
            }
        }
    }
    out
}

fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_regions_and_stop_at_the_speech() {
        let rate = 100;
        let samples: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        // 2.5 s of speech in two regions: 1.5 s, then 1.0 s.
        let regions = [(100, 250), (500, 600)];
        let cut = pieces(&samples, &regions, rate);
        let lengths: Vec<usize> = cut
            .iter()
            .map(|(_, p)| p.iter().map(|s| s.len()).sum())
            .collect();
        assert_eq!(
            lengths,
            vec![100, 100, 200],
            "two of 1 s, one of 2 s, none of 4 s"
        );
        assert_eq!(cut[2].0, 2.0);
        assert_eq!(cut[1].1.len(), 2, "the second 1 s piece spans both regions");
        assert_eq!((cut[1].1[0][0], cut[1].1[1][0]), (200.0, 500.0));
    }
}
