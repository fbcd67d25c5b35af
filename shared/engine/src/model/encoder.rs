use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorRef};

use super::{Featurizer, InputLayout, Manifest, Padding, Partials, RuntimeError};

/// Without padding, an input needs at least this many frames (0.2 s at a 10 ms hop): shorter
/// audio carries no voice worth a vote, and statistics pooling needs more than one frame.
pub(super) const MIN_UNPADDED_FRAMES: usize = 20;

/// An L2-normalised speaker embedding.
pub type Embedding = Vec<f32>;

/// The audio of one speaker (all its turns in a clip) or one enrollment sample: one embedding.
#[derive(Debug, Clone, Default)]
pub struct EmbedRequest<'a> {
    pub segments: Vec<&'a [f32]>,
}

#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    /// ONNX Runtime intra-op threads: the size of the pool every session of the process shares,
    /// set by the first model loaded (see [`super::environment`]).
    pub threads: usize,
    /// Partials per ONNX run; larger batches amortise the per-run cost. On a GPU it is chosen
    /// from the device's free memory instead.
    pub max_batch: usize,
    /// Where to run the model; CUDA falls back to the CPU, with a warning, when it cannot be had.
    pub device: Device,
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
            // Threads come from the environment's pool, shared by every session.
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| load(e.to_string()))?
            // So does the CPU arena (see [`super::runtime::environment`]).
            .with_env_allocators()
            .map_err(|e| load(e.to_string()))?;
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
                if let Some(gpu) = crate::system::gpu() {
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
