use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorRef};

use super::{InputLayout, Manifest, Padding, RuntimeError};
use crate::audio::normalize_volume;
use crate::features::{MelFrontend, MelScratch, normalize_mean, normalize_per_feature};
use crate::model::Normalize;

/// Without padding, an input needs at least this many frames (0.2 s at a 10 ms hop): shorter
/// audio carries no voice worth a vote, and statistics pooling needs more than one frame.
const MIN_UNPADDED_FRAMES: usize = 20;

/// An L2-normalised speaker embedding.
pub type Embedding = Vec<f32>;

/// The audio of one speaker (all its turns in a clip) or one enrollment sample: one embedding.
#[derive(Debug, Clone, Default)]
pub struct EmbedRequest<'a> {
    pub segments: Vec<&'a [f32]>,
}

#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Partials per ONNX run; larger batches amortise the per-run cost. On a GPU it is chosen
    /// from the device's free memory instead.
    pub max_batch: usize,
    /// Where to run the model; CUDA falls back to the CPU, with a warning, when it cannot be had.
    pub device: Device,
    /// Let ONNX Runtime's idle threads spin for work. Right for one model; with two sessions
    /// taking turns, the idle one's spinning takes the cores the other needs.
    pub spinning: bool,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

/// The batch for a GPU with `free_bytes` free: a quarter of it (the rest for ONNX Runtime's
/// arena, cuDNN's workspace and other processes), at `partial_bytes` per partial, rounded down
/// to a power of two between 64 and 4096.
pub fn gpu_batch(free_bytes: u64, partial_bytes: u64) -> usize {
    let fits = (free_bytes / 4) / partial_bytes.max(1);
    let fits = usize::try_from(fits).unwrap_or(usize::MAX).clamp(64, 4096);
    1 << fits.ilog2()
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch: 64,
            device: Device::Cpu,
            spinning: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Manifest(#[from] super::ManifestError),
    #[error("model file {} not found (the manifest names it); run `make setup` or fix VOICE_MODEL", path.display())]
    MissingFile { path: PathBuf },
    #[error("cannot load model {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("model {model} does not match its manifest: {reason}")]
    Mismatch { model: String, reason: String },
    #[error("running model {model}: {reason}")]
    Run { model: String, reason: String },
}

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

/// Registers the CUDA execution provider; `false` (and the builder as it was) when this
/// runtime library has none (the CPU wheel) or it cannot start (no device, no CUDA or cuDNN).
fn cuda(builder: SessionBuilder) -> (bool, SessionBuilder) {
    use ort::ep::{CUDA, ExecutionProvider};
    if !CUDA::is_available().unwrap_or(false) {
        tracing::warn!(
            "VOICE_DEVICE asks for CUDA, but this ONNX Runtime library has no CUDA execution \
             provider (install the onnxruntime-gpu wheel): the model runs on the CPU"
        );
        return (false, builder);
    }
    let provider = CUDA::default().with_device_id(0).build().error_on_failure();
    match builder.with_execution_providers([provider]) {
        Ok(builder) => (true, builder),
        Err(e) => {
            tracing::warn!(error = %e, "the CUDA execution provider did not start: the model runs on the CPU");
            (false, e.recover())
        }
    }
}

/// The speaker-embedding model on ONNX Runtime.
pub struct SpeakerEncoder {
    featurizer: Arc<Featurizer>,
    session: Session,
    options: EncoderOptions,
}

impl SpeakerEncoder {
    pub fn load(
        manifest: &Manifest,
        env: &Environment,
        options: EncoderOptions,
    ) -> Result<Self, ModelError> {
        let path = manifest.onnx_path();
        if !path.is_file() {
            return Err(ModelError::MissingFile { path });
        }
        let load = |reason: String| ModelError::Load {
            path: path.clone(),
            reason,
        };
        let mut builder = Session::builder(env)
            .map_err(|e| load(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(options.threads.max(1))
            .map_err(|e| load(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| load(e.to_string()))?;
        if !options.spinning {
            builder = builder
                .with_intra_op_spinning(false)
                .map_err(|e| load(e.to_string()))?;
        }
        if manifest.chunking.padding == Padding::None {
            // Every input has its own length: memory patterns, planned for repeated shapes,
            // only add to the peak (measured: 327 MB against 279 MB on the dev clips).
            builder = builder
                .with_memory_pattern(false)
                .map_err(|e| load(e.to_string()))?;
        }
        let mut options = options;
        if options.device == Device::Cuda {
            let (on_gpu, with_cuda) = cuda(builder);
            builder = with_cuda;
            if on_gpu {
                if let Some(gpu) = crate::ops::system::gpu() {
                    let partial = manifest.chunking.partial_frames * manifest.frontend.n_mels;
                    // Inputs in f32, and room for the activations of every layer.
                    options.max_batch = gpu_batch(gpu.free_bytes, partial as u64 * 4 * 32);
                    tracing::info!(gpu = %gpu.name, free_mib = gpu.free_bytes >> 20, batch = options.max_batch, "speaker model on CUDA");
                }
            } else {
                options.device = Device::Cpu;
            }
        }
        let session = builder
            .commit_from_file(&path)
            .map_err(|e| load(e.to_string()))?;
        let encoder = Self {
            featurizer: Arc::new(Featurizer::new(manifest)),
            session,
            options,
        };
        encoder.check_signature()?;
        Ok(encoder)
    }

    fn check_signature(&self) -> Result<(), ModelError> {
        let m = self.manifest();
        let mismatch = |reason: String| ModelError::Mismatch {
            model: m.id.clone(),
            reason,
        };
        let inputs: Vec<&str> = self.session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = self.session.outputs().iter().map(|o| o.name()).collect();
        let mut wanted = vec![m.input.features.as_str()];
        wanted.extend(m.input.lengths.as_deref());
        if let Some(name) = wanted.iter().find(|n| !inputs.contains(n)) {
            return Err(mismatch(format!(
                "no input `{name}` (the model has {inputs:?})"
            )));
        }
        if !outputs.contains(&m.input.output.as_str()) {
            return Err(mismatch(format!(
                "no output `{}` (the model has {outputs:?})",
                m.input.output
            )));
        }
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        self.featurizer.manifest()
    }

    /// The front-end, shareable with threads that prepare batches while the model runs.
    pub fn featurizer(&self) -> &Arc<Featurizer> {
        &self.featurizer
    }

    pub fn options(&self) -> EncoderOptions {
        self.options
    }

    /// One embedding per request, `None` for a request without audio. Partials of all requests
    /// share full batches.
    pub fn embed(
        &mut self,
        requests: &[EmbedRequest<'_>],
    ) -> Result<Vec<Option<Embedding>>, ModelError> {
        let dim = self.manifest().embedding_size;
        let mut sums = vec![vec![0.0f64; dim]; requests.len()];
        let mut counts = vec![0usize; requests.len()];
        let featurizer = Arc::clone(&self.featurizer);
        let mut scratch = featurizer.scratch();
        let mut batch = Partials::default();
        for (owner, request) in requests.iter().enumerate() {
            featurizer.push_request(&request.segments, owner, &mut scratch, &mut batch);
            if batch.len() >= self.options.max_batch {
                self.run_into(&batch, &mut sums, &mut counts)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.run_into(&batch, &mut sums, &mut counts)?;
        }
        Ok(sums
            .into_iter()
            .zip(counts)
            .map(|(sum, n)| (n > 0).then(|| l2_normalize_f64(&sum)))
            .collect())
    }

    fn run_into(
        &mut self,
        batch: &Partials,
        sums: &mut [Vec<f64>],
        counts: &mut [usize],
    ) -> Result<(), ModelError> {
        let out = self.run(batch)?;
        let dim = self.manifest().embedding_size;
        for (row, &owner) in out.chunks_exact(dim).zip(&batch.owner) {
            sums[owner]
                .iter_mut()
                .zip(row)
                .for_each(|(s, &v)| *s += f64::from(v));
            counts[owner] += 1;
        }
        Ok(())
    }

    /// Runs the model on a batch of partials; returns `len × embedding_size` values.
    ///
    /// Unpadded partials run in one batch per length, each cut to its valid frames.
    pub fn run(&mut self, batch: &Partials) -> Result<Vec<f32>, ModelError> {
        let m = self.featurizer.manifest();
        if m.chunking.padding == Padding::Zeros || batch.is_empty() {
            return self.run_frames(batch, m.chunking.partial_frames);
        }
        let (slot_frames, n_mels, dim) = (
            m.chunking.partial_frames,
            m.frontend.n_mels,
            m.embedding_size,
        );
        let layout = m.input.layout;
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| batch.valid_frames[i]);
        let mut out = vec![0.0f32; batch.len() * dim];
        let mut group = Partials::default();
        for same in order.chunk_by(|&a, &b| batch.valid_frames[a] == batch.valid_frames[b]) {
            let frames = batch.valid_frames[same[0]];
            group.clear();
            for &i in same {
                let slot =
                    &batch.features[i * slot_frames * n_mels..(i + 1) * slot_frames * n_mels];
                match layout {
                    InputLayout::FramesMels => {
                        group.features.extend_from_slice(&slot[..frames * n_mels]);
                    }
                    InputLayout::MelsFrames => {
                        for row in slot.chunks_exact(slot_frames) {
                            group.features.extend_from_slice(&row[..frames]);
                        }
                    }
                }
                group.valid_frames.push(frames);
                group.owner.push(i);
            }
            let rows = self.run_frames(&group, frames)?;
            for (row, &i) in rows.chunks_exact(dim).zip(&group.owner) {
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    /// Runs the model on `batch`, whose partials are all `frames` long.
    fn run_frames(&mut self, batch: &Partials, frames: usize) -> Result<Vec<f32>, ModelError> {
        let m = self.featurizer.manifest();
        let run_err = |reason: String| ModelError::Run {
            model: m.id.clone(),
            reason,
        };
        let mels = m.frontend.n_mels;
        let shape = match m.input.layout {
            InputLayout::FramesMels => [batch.len(), frames, mels],
            InputLayout::MelsFrames => [batch.len(), mels, frames],
        };
        let features = TensorRef::from_array_view((shape, batch.features.as_slice()))
            .map_err(|e| run_err(e.to_string()))?;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            vec![(m.input.features.as_str().into(), features.into())];
        if let Some(name) = &m.input.lengths {
            let lengths: Vec<i64> = batch.valid_frames.iter().map(|&v| v as i64).collect();
            let lengths =
                Tensor::from_array(([batch.len()], lengths)).map_err(|e| run_err(e.to_string()))?;
            inputs.push((name.as_str().into(), lengths.into()));
        }
        let output_name = m.input.output.clone();
        let dim = m.embedding_size;
        let model = m.id.clone();
        let outputs = self.session.run(inputs).map_err(|e| ModelError::Run {
            model: model.clone(),
            reason: e.to_string(),
        })?;
        let (out_shape, values) = outputs[output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Run {
                model: model.clone(),
                reason: e.to_string(),
            })?;
        if values.len() != batch.len() * dim {
            return Err(ModelError::Mismatch {
                model,
                reason: format!(
                    "output shape {out_shape:?}, expected [{}, {dim}]",
                    batch.len()
                ),
            });
        }
        Ok(values.to_vec())
    }
}

/// Scales to unit length; the zero vector stays zero.
pub fn l2_normalize_f64(v: &[f64]) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        vec![0.0; v.len()]
    } else {
        v.iter().map(|x| (x / norm) as f32).collect()
    }
}

#[cfg(test)]
mod gpu_tests {
    use super::*;

    #[test]
    fn gpu_batches_follow_free_memory() {
        let partial = 160 * 40 * 4 * 32;
        assert_eq!(
            gpu_batch(140 << 30, partial),
            4096,
            "an H200 takes the largest"
        );
        assert_eq!(gpu_batch(6 << 30, partial), 1024);
        assert_eq!(gpu_batch(100 << 20, partial), 64, "never under 64");
    }
}
