use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A model: an ONNX file plus this description of how to feed it and how to decide with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier; stored with every profile so profiles of another model are never mixed in.
    pub id: String,
    /// The ONNX file, relative to the manifest.
    pub onnx: PathBuf,
    pub sample_rate: u32,
    pub embedding_size: usize,
    pub input: ModelInput,
    pub frontend: Frontend,
    pub chunking: Chunking,
    pub decision: Decision,
    /// The folder the manifest was read from.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInput {
    /// Name of the features input.
    pub features: String,
    pub layout: InputLayout,
    /// Name of an optional int64 input holding each row's valid frame count.
    #[serde(default)]
    pub lengths: Option<String>,
    /// Name of the embedding output.
    pub output: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputLayout {
    /// `[batch, frames, mels]`
    FramesMels,
    /// `[batch, mels, frames]`
    MelsFrames,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Raise quieter audio to this RMS level before anything else (never lowered).
    #[serde(default)]
    pub volume_norm_dbfs: Option<f64>,
    /// `x[n] - k x[n-1]`; 0 disables it.
    #[serde(default)]
    pub preemphasis: f32,
    pub n_fft: usize,
    pub win_length: usize,
    pub hop_length: usize,
    pub window: WindowKind,
    /// Pad `n_fft / 2` zeros on each side so frame `t` is centred on sample `t × hop`.
    pub center: bool,
    pub n_mels: usize,
    pub f_min: f64,
    pub f_max: f64,
    pub mel_norm: MelNorm,
    /// 1 for magnitude, 2 for power.
    pub magnitude_power: f32,
    pub log: LogKind,
    /// Added before the logarithm.
    #[serde(default)]
    pub log_guard: f32,
    pub normalize: Normalize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// librosa's default (`fftbins=True`).
    HannPeriodic,
    /// `torch.hann_window(periodic=False)`, as NeMo uses.
    HannSymmetric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelNorm {
    /// Slaney mel scale with area normalisation (librosa `norm="slaney"`).
    Slaney,
    /// Slaney mel scale, unnormalised triangles.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    None,
    /// Natural logarithm of `x + log_guard`.
    Ln,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    None,
    /// Each mel band to zero mean, unit (unbiased) deviation over the valid frames, as NeMo does.
    PerFeature,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    /// Frames in one partial utterance.
    pub partial_frames: usize,
    /// Frames between the starts of two partials.
    pub step_frames: usize,
    /// Keep the last partial when at least this share of it is audio.
    pub min_coverage: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Cosine score the best profile must reach.
    pub threshold: f32,
    /// How far the best profile must beat the second best.
    pub margin: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {} is not valid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.into(),
            source,
        })?;
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.into(),
            reason,
        };
        let mut manifest: Manifest =
            toml::from_str(&text).map_err(|e| invalid(e.message().to_string()))?;
        manifest.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        manifest.validate().map_err(invalid)?;
        Ok(manifest)
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.dir.join(&self.onnx)
    }

    fn validate(&self) -> Result<(), String> {
        let f = &self.frontend;
        let c = &self.chunking;
        let checks = [
            (
                self.sample_rate >= 8000,
                "sample_rate must be at least 8000",
            ),
            (self.embedding_size > 0, "embedding_size must be positive"),
            (
                f.n_fft >= 2 && f.win_length >= 2 && f.win_length <= f.n_fft,
                "need 2 <= win_length <= n_fft",
            ),
            (f.hop_length > 0, "hop_length must be positive"),
            (f.n_mels > 0, "n_mels must be positive"),
            (
                f.f_min >= 0.0 && f.f_max > f.f_min && f.f_max <= f64::from(self.sample_rate) / 2.0,
                "need 0 <= f_min < f_max <= sample_rate / 2",
            ),
            (f.magnitude_power > 0.0, "magnitude_power must be positive"),
            (
                c.partial_frames > 0 && c.step_frames > 0,
                "partial_frames and step_frames must be positive",
            ),
            (
                c.min_coverage > 0.0 && c.min_coverage <= 1.0,
                "min_coverage must be in (0, 1]",
            ),
            (
                (-1.0..=1.0).contains(&self.decision.threshold),
                "decision.threshold must be a cosine in [-1, 1]",
            ),
            (
                (0.0..=2.0).contains(&self.decision.margin),
                "decision.margin must be in [0, 2]",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, reason)) => Err((*reason).to_string()),
            None => Ok(()),
        }
    }
}
