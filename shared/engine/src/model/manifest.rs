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
    pub diarizer: DiarizerWindows,
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
    /// How frames are cut and filtered: librosa/NeMo-style mel (the default) or Kaldi's fbank.
    #[serde(default)]
    pub style: FrontendStyle,
    /// Raise quieter audio to this RMS level before anything else (never lowered).
    #[serde(default)]
    pub volume_norm_dbfs: Option<f64>,
    /// `x[n] - k x[n-1]`; 0 disables it. Over the whole signal in the mel style, within each
    /// frame (after removing its DC offset) in the Kaldi style.
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
    /// Added before the logarithm (`ln`), or the floor under it (`ln_floor`).
    #[serde(default)]
    pub log_guard: f32,
    pub normalize: Normalize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontendStyle {
    /// Frames of `n_fft` samples (centred when `center`), Slaney mel bands: librosa and NeMo.
    #[default]
    Mel,
    /// Kaldi's `compute-fbank-feats` (and torchaudio's `kaldi.fbank`, kaldi-native-fbank):
    /// frames of `win_length` samples inside the signal only (snip edges), each with its DC
    /// offset removed and pre-emphasised, zero-padded to `n_fft`; bands triangular on the
    /// `1127 ln(1 + f / 700)` mel scale, unnormalised.
    Kaldi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// librosa's default (`fftbins=True`).
    HannPeriodic,
    /// `torch.hann_window(periodic=False)`, as NeMo uses.
    HannSymmetric,
    /// Kaldi's default: a symmetric Hann window raised to the power 0.85.
    Povey,
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
    /// Natural logarithm of `max(x, log_guard)`, as Kaldi floors at the float epsilon.
    LnFloor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    None,
    /// Each mel band to zero mean, unit (unbiased) deviation over the valid frames, as NeMo does.
    PerFeature,
    /// Each mel band less its mean over the valid frames (cepstral mean normalisation).
    Mean,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    /// Frames in one partial utterance.
    pub partial_frames: usize,
    /// Frames between the starts of two partials.
    pub step_frames: usize,
    /// Keep the last partial when at least this share of it is audio (zero padding only).
    pub min_coverage: f64,
    /// What fills a partial that runs past the audio.
    #[serde(default)]
    pub padding: Padding,
    /// Cut partials from a request's segments joined into one stream of frames, rather than
    /// from each segment alone: a speaker's short turns then form whole inputs together.
    #[serde(default)]
    pub join_segments: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// Zeros to a whole partial, as Resemblyzer pads (the model was trained that way).
    #[default]
    Zeros,
    /// Never: audio shorter than a partial is one shorter input, and the last partial of longer
    /// audio ends with the audio. For models whose pooling counts every frame (segment and
    /// statistics pooling): padding would change their embedding. Inputs of different lengths
    /// run in separate batches.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Cosine score the best profile must reach: the prior a location's calibration never
    /// goes below.
    pub threshold: f32,
    /// How far the best profile must beat the second best.
    pub margin: f32,
    /// Mean cosine of one person's voice sample against another person's profile, on the
    /// channel the threshold was chosen for: the reference a location's channel is measured by.
    pub impostor_mean: f32,
    /// Their standard deviation.
    pub impostor_sd: f32,
    /// Mean cosine of a sample against its speaker's other samples (for locations with one
    /// sample per employee, which cannot measure it).
    pub target_mean: f32,
}

/// How the local diarizer uses a model: its windows, and the similarities that mean "the speaker
/// changed" and "one speaker" on this model's score scale. Either another manifest names the
/// model that embeds the windows (a cheaper one, with its own `[diarizer]`), or all four of
/// the window settings are given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiarizerWindows {
    /// A manifest, relative to this one, whose model embeds the diarizer's windows.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Frames in one window (one model input).
    #[serde(default)]
    pub window_frames: Option<usize>,
    /// Seconds between window starts inside a speech region.
    #[serde(default)]
    pub step_s: Option<f64>,
    /// Below this similarity between a window and the next one clear of it, the speaker changes.
    #[serde(default)]
    pub change_similarity: Option<f32>,
    /// When even the best two-speaker split leaves centroids this alike, the clip has one speaker.
    #[serde(default)]
    pub one_speaker_similarity: Option<f32>,
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

    /// The manifest of the model that embeds the diarizer's windows, when it is another one.
    pub fn diarizer_manifest(&self) -> Option<PathBuf> {
        self.diarizer.model.as_ref().map(|m| self.dir.join(m))
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
                f.style == FrontendStyle::Mel || (!f.center && f.window == WindowKind::Povey),
                "the kaldi style needs center = false and window = \"povey\"",
            ),
            (
                f.log != LogKind::LnFloor || f.log_guard > 0.0,
                "log = \"ln_floor\" needs a positive log_guard",
            ),
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
            (
                (-1.0..=1.0).contains(&self.decision.impostor_mean)
                    && (-1.0..=1.0).contains(&self.decision.target_mean)
                    && self.decision.impostor_sd > 0.0,
                "decision.impostor_mean and target_mean must be cosines, impostor_sd positive",
            ),
        ];
        let d = &self.diarizer;
        let own = [
            d.window_frames.is_some(),
            d.step_s.is_some(),
            d.change_similarity.is_some(),
            d.one_speaker_similarity.is_some(),
        ];
        let diarizer_checks = [
            (
                if d.model.is_some() {
                    own.iter().all(|set| !set)
                } else {
                    own.iter().all(|set| *set)
                },
                "[diarizer] needs either `model` alone or all of window_frames, step_s, \
                 change_similarity and one_speaker_similarity",
            ),
            (
                d.window_frames.is_none_or(|w| w > 0) && d.step_s.is_none_or(|s| s > 0.0),
                "[diarizer] window_frames and step_s must be positive",
            ),
        ];
        match checks.iter().chain(&diarizer_checks).find(|(ok, _)| !ok) {
            Some((_, reason)) => Err((*reason).to_string()),
            None => Ok(()),
        }
    }
}
