//! From audio to the model's input: partial windows of a segment, levelled and turned into
//! the front-end's features, batched as [`Partials`].

use super::encoder::MIN_UNPADDED_FRAMES;
use super::{InputLayout, Manifest, Padding};
use crate::audio::normalize_volume;
use crate::features::{MelFrontend, MelScratch, normalize_mean, normalize_per_feature};
use crate::model::Normalize;

/// Waveform → model inputs. Holds no mutable state, so one instance serves every thread.
pub struct Featurizer {
    manifest: Manifest,
    frontend: MelFrontend,
}

/// The partial utterances of many requests, laid out as one model input.
#[derive(Default)]
pub struct Partials {
    /// `len() × partial_frames × n_mels` values in the model's layout.
    pub features: Vec<f32>,
    /// Valid (unpadded) frames of each partial.
    pub valid_frames: Vec<usize>,
    /// Index of the request each partial belongs to.
    pub owner: Vec<usize>,
}

impl Partials {
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    pub fn clear(&mut self) {
        self.features.clear();
        self.valid_frames.clear();
        self.owner.clear();
    }
}

impl Featurizer {
    pub fn new(manifest: &Manifest) -> Self {
        Self {
            frontend: MelFrontend::new(&manifest.frontend, manifest.sample_rate),
            manifest: manifest.clone(),
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn scratch(&self) -> MelScratch {
        self.frontend.scratch()
    }

    fn partial_len(&self) -> usize {
        self.manifest.chunking.partial_frames * self.frontend.n_mels()
    }

    /// Start frames of the partials of `n_samples` (Resemblyzer's `compute_partial_slices`): at
    /// least one, and the last only if it is mostly audio.
    pub fn partial_starts(&self, n_samples: usize) -> Vec<usize> {
        let c = &self.manifest.chunking;
        let hop = self.frontend.hop();
        let n_frames = (n_samples + 1).div_ceil(hop);
        let steps = (n_frames + c.step_frames + 1)
            .saturating_sub(c.partial_frames)
            .max(1);
        let mut starts: Vec<usize> = (0..steps).step_by(c.step_frames).collect();
        if let Some(&last) = starts.last() {
            let coverage =
                (n_samples as f64 - (last * hop) as f64) / (c.partial_frames * hop) as f64;
            if coverage < c.min_coverage && starts.len() > 1 {
                starts.pop();
            }
        }
        starts
    }

    /// Appends the partials of one request (its segments, each alone or joined as the manifest
    /// says), owned by request `owner`, to `out`.
    pub fn push_request(
        &self,
        segments: &[&[f32]],
        owner: usize,
        scratch: &mut MelScratch,
        out: &mut Partials,
    ) {
        if !self.manifest.chunking.join_segments {
            for segment in segments {
                self.push_segment(segment, owner, scratch, out);
            }
            return;
        }
        let mut mel = Vec::new();
        for segment in segments.iter().filter(|s| !s.is_empty()) {
            let wav = self.levelled(segment);
            self.frontend.compute(&wav, wav.len(), scratch, &mut mel);
        }
        self.push_unpadded(&mel, owner, out);
    }

    /// The segment, raised to the manifest's level when it asks for one.
    fn levelled(&self, segment: &[f32]) -> Vec<f32> {
        let mut wav = Vec::with_capacity(segment.len());
        wav.extend_from_slice(segment);
        if let Some(target) = self.manifest.frontend.volume_norm_dbfs {
            normalize_volume(&mut wav, target);
        }
        wav
    }

    /// Appends the partials of one segment, owned by request `owner`, to `out`.
    pub fn push_segment(
        &self,
        segment: &[f32],
        owner: usize,
        scratch: &mut MelScratch,
        out: &mut Partials,
    ) {
        if segment.is_empty() {
            return;
        }
        if self.manifest.chunking.padding == Padding::None {
            let wav = self.levelled(segment);
            let mut mel = Vec::new();
            self.frontend.compute(&wav, wav.len(), scratch, &mut mel);
            self.push_unpadded(&mel, owner, out);
            return;
        }
        let c = &self.manifest.chunking;
        let hop = self.frontend.hop();
        let n_mels = self.frontend.n_mels();
        let starts = self.partial_starts(segment.len());
        let last = starts.last().copied().unwrap_or(0);
        // Zero-pad so the last partial is whole, as the reference recipe does.
        let needed = ((last + c.partial_frames) * hop).max(segment.len());
        let wav = self.levelled(segment);
        let mut mel = Vec::new();
        self.frontend.compute(&wav, needed, scratch, &mut mel);
        let real_frames = self.frontend.n_frames(segment.len());
        let frame_count = mel.len() / n_mels;
        let direct = self.manifest.input.layout == InputLayout::FramesMels
            && self.frontend.normalize() == Normalize::None;
        let mut partial = Vec::new();
        for start in starts {
            let valid = real_frames.saturating_sub(start).clamp(1, c.partial_frames);
            let available = frame_count.saturating_sub(start).min(c.partial_frames);
            let frames = &mel[start * n_mels..(start + available) * n_mels];
            if direct {
                // The common case (GE2E): frames go straight into the batch.
                out.features.extend_from_slice(frames);
                let padded = out.features.len() + (c.partial_frames - available) * n_mels;
                out.features.resize(padded, 0.0);
            } else {
                self.push_partial(frames, valid, &mut partial, out);
            }
            out.valid_frames.push(valid);
            out.owner.push(owner);
        }
    }

    /// Start frames of unpadded partials over `n_frames`: every `step_frames`, the last one
    /// ending with the audio; one shorter partial when the audio is shorter than a partial.
    pub fn unpadded_starts(&self, n_frames: usize) -> Vec<usize> {
        let c = &self.manifest.chunking;
        if n_frames < MIN_UNPADDED_FRAMES {
            return Vec::new();
        }
        if n_frames <= c.partial_frames {
            return vec![0];
        }
        let mut starts: Vec<usize> = (0..n_frames - c.partial_frames)
            .step_by(c.step_frames)
            .collect();
        starts.push(n_frames - c.partial_frames);
        starts
    }

    /// Appends the unpadded partials of `mel` (`[frames, n_mels]`).
    fn push_unpadded(&self, mel: &[f32], owner: usize, out: &mut Partials) {
        let n_mels = self.frontend.n_mels();
        let n_frames = mel.len() / n_mels;
        let frames = n_frames.min(self.manifest.chunking.partial_frames);
        let mut partial = Vec::new();
        for start in self.unpadded_starts(n_frames) {
            let rows = &mel[start * n_mels..(start + frames) * n_mels];
            self.push_partial(rows, frames, &mut partial, out);
            out.valid_frames.push(frames);
            out.owner.push(owner);
        }
    }

    /// Normalises one partial's `valid` frames as the manifest says and appends it, in the
    /// model's layout, zero-padded to `partial_frames` (a padding unpadded runs leave out).
    fn push_partial(
        &self,
        frames: &[f32],
        valid: usize,
        partial: &mut Vec<f32>,
        out: &mut Partials,
    ) {
        let n_mels = self.frontend.n_mels();
        partial.clear();
        partial.extend_from_slice(frames);
        partial.resize(self.partial_len(), 0.0);
        match self.frontend.normalize() {
            Normalize::None => {}
            Normalize::PerFeature => normalize_per_feature(partial, n_mels, valid),
            Normalize::Mean => normalize_mean(partial, n_mels, valid),
        }
        // NeMo pads after normalising, with zeros the model masks by length.
        partial[valid * n_mels..].fill(0.0);
        match self.manifest.input.layout {
            InputLayout::FramesMels => out.features.extend_from_slice(partial),
            InputLayout::MelsFrames => {
                for m in 0..n_mels {
                    out.features.extend(partial.iter().skip(m).step_by(n_mels));
                }
            }
        }
    }
}
