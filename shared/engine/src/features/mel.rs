use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::model::{Frontend, FrontendStyle, LogKind, MelNorm, Normalize, WindowKind};

/// The model's front-end: waveform → `[frames, n_mels]` features, row-major.
///
/// Built once per model; `compute` allocates nothing per frame. Matches librosa's
/// `melspectrogram` (Slaney mel, zero-padded centring), NeMo's `FilterbankFeatures` and Kaldi's
/// fbank as the manifest selects.
pub struct MelFrontend {
    cfg: Frontend,
    /// `n_fft` long: the window, zero-padded to the middle when `win_length < n_fft`.
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    bands: Vec<Band>,
}

/// One triangular mel filter, stored as its non-zero span of FFT bins.
struct Band {
    start: usize,
    weights: Vec<f32>,
}

impl Band {
    /// The band of one weight per FFT bin, from bin 0.
    fn sparse(weights: impl Iterator<Item = f64>) -> Self {
        let weights: Vec<f64> = weights.collect();
        let start = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
        let end = weights
            .iter()
            .rposition(|&w| w > 0.0)
            .map_or(start, |e| e + 1);
        Self {
            start,
            weights: weights[start..end].iter().map(|&w| w as f32).collect(),
        }
    }
}

/// Per-thread buffers, so one `MelFrontend` can be shared by every worker thread.
pub struct MelScratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    power: Vec<f32>,
    signal: Vec<f32>,
}

impl MelFrontend {
    pub fn new(cfg: &Frontend, sample_rate: u32) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        let bands = match cfg.style {
            FrontendStyle::Mel => mel_bands(cfg, sample_rate),
            FrontendStyle::Kaldi => kaldi_bands(cfg, sample_rate),
        };
        Self {
            window: window(cfg),
            fft,
            bands,
            cfg: cfg.clone(),
        }
    }

    pub fn n_mels(&self) -> usize {
        self.cfg.n_mels
    }

    pub fn hop(&self) -> usize {
        self.cfg.hop_length
    }

    pub fn scratch(&self) -> MelScratch {
        MelScratch {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            fft: self.fft.make_scratch_vec(),
            power: vec![0.0; self.cfg.n_fft / 2 + 1],
            signal: Vec::new(),
        }
    }

    /// Samples in one analysis frame before padding to `n_fft`.
    fn frame_len(&self) -> usize {
        match self.cfg.style {
            FrontendStyle::Mel => self.cfg.n_fft,
            FrontendStyle::Kaldi => self.cfg.win_length,
        }
    }

    /// Number of frames `compute` yields for `n_samples`.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        let len = self.frame_len();
        if self.cfg.center {
            1 + n_samples / self.cfg.hop_length
        } else if n_samples >= len {
            1 + (n_samples - len) / self.cfg.hop_length
        } else {
            0
        }
    }

    /// Appends the features of `samples`, followed by zeros up to `padded_len` samples, to `out`,
    /// `n_mels` values per frame.
    ///
    /// The padding stays zero after pre-emphasis (NeMo masks it the same way), so padding a
    /// segment never changes its real frames' neighbours.
    ///
    /// Per-feature normalisation is not applied here: it depends on which frames form one model
    /// input, so [`normalize_per_feature`] runs on each input instead.
    pub fn compute(
        &self,
        samples: &[f32],
        padded_len: usize,
        scratch: &mut MelScratch,
        out: &mut Vec<f32>,
    ) {
        let cfg = &self.cfg;
        let n_fft = cfg.n_fft;
        let pad = if cfg.center { n_fft / 2 } else { 0 };
        let kaldi = cfg.style == FrontendStyle::Kaldi;
        let signal: &[f32] = if cfg.preemphasis != 0.0 && !kaldi {
            scratch.signal.clear();
            scratch.signal.reserve(samples.len());
            scratch.signal.extend(samples.first().copied());
            scratch
                .signal
                .extend(samples.windows(2).map(|w| w[1] - cfg.preemphasis * w[0]));
            &scratch.signal
        } else {
            samples
        };
        let n_frames = self.n_frames(padded_len.max(samples.len()));
        out.reserve(n_frames * cfg.n_mels);
        for t in 0..n_frames {
            // Frame t covers padded[t·hop .. t·hop + n_fft], i.e. signal[t·hop - pad ..].
            let origin = (t * cfg.hop_length) as isize - pad as isize;
            if kaldi {
                self.kaldi_frame(signal, t * cfg.hop_length, &mut scratch.frame);
            } else if origin >= 0 && origin as usize + n_fft <= signal.len() {
                let frame = &signal[origin as usize..origin as usize + n_fft];
                for ((x, s), w) in scratch.frame.iter_mut().zip(frame).zip(&self.window) {
                    *x = s * w;
                }
            } else {
                // The first and last frames reach into the zero padding.
                for (i, (x, w)) in scratch.frame.iter_mut().zip(&self.window).enumerate() {
                    let idx = origin + i as isize;
                    *x = if idx >= 0 && (idx as usize) < signal.len() {
                        signal[idx as usize] * w
                    } else {
                        0.0
                    };
                }
            }
            // Lengths come from the plan itself, so processing cannot fail.
            let _ = self.fft.process_with_scratch(
                &mut scratch.frame,
                &mut scratch.spectrum,
                &mut scratch.fft,
            );
            let half_power = cfg.magnitude_power / 2.0;
            for (p, c) in scratch.power.iter_mut().zip(&scratch.spectrum) {
                let sq = c.re * c.re + c.im * c.im;
                *p = if half_power == 1.0 {
                    sq
                } else {
                    sq.powf(half_power)
                };
            }
            for band in &self.bands {
                let bins = &scratch.power[band.start..band.start + band.weights.len()];
                let v: f32 = bins.iter().zip(&band.weights).map(|(p, w)| p * w).sum();
                out.push(match cfg.log {
                    LogKind::None => v,
                    LogKind::Ln => (v + cfg.log_guard).ln(),
                    LogKind::LnFloor => v.max(cfg.log_guard).ln(),
                });
            }
        }
    }

    pub fn normalize(&self) -> Normalize {
        self.cfg.normalize
    }

    /// Kaldi's frame at `start`: `win_length` samples (zeros past the end), less their mean,
    /// pre-emphasised within the frame, windowed, zero-padded to `n_fft`.
    fn kaldi_frame(&self, signal: &[f32], start: usize, frame: &mut [f32]) {
        let len = self.cfg.win_length;
        let available = signal.len().saturating_sub(start).min(len);
        frame[..available].copy_from_slice(&signal[start..start + available]);
        frame[available..].fill(0.0);
        let mean = frame[..len].iter().map(|&v| f64::from(v)).sum::<f64>() / len as f64;
        frame[..len].iter_mut().for_each(|v| *v -= mean as f32);
        let k = self.cfg.preemphasis;
        if k != 0.0 {
            for i in (1..len).rev() {
                frame[i] -= k * frame[i - 1];
            }
            frame[0] -= k * frame[0];
        }
        frame[..len]
            .iter_mut()
            .zip(&self.window)
            .for_each(|(v, w)| *v *= w);
    }
}

/// Each mel band of `[frames, n_mels]` features less its mean over the first `valid` frames.
pub fn normalize_mean(features: &mut [f32], n_mels: usize, valid: usize) {
    let valid = valid.min(features.len() / n_mels);
    if valid == 0 {
        return;
    }
    let mut means = vec![0.0f64; n_mels];
    for frame in features.chunks_exact(n_mels).take(valid) {
        means
            .iter_mut()
            .zip(frame)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    means.iter_mut().for_each(|m| *m /= valid as f64);
    for frame in features.chunks_exact_mut(n_mels) {
        frame
            .iter_mut()
            .zip(&means)
            .for_each(|(v, &m)| *v = (f64::from(*v) - m) as f32);
    }
}

/// NeMo's `normalize_batch(..., "per_feature")` on `[frames, n_mels]` row-major features, over the
/// first `valid` frames: mean 0 and unbiased deviation (plus 1e-5) 1 per band.
pub fn normalize_per_feature(features: &mut [f32], n_mels: usize, valid: usize) {
    const GUARD: f64 = 1e-5;
    let valid = valid.min(features.len() / n_mels);
    if valid == 0 {
        return;
    }
    for m in 0..n_mels {
        let column = || {
            features
                .iter()
                .skip(m)
                .step_by(n_mels)
                .take(valid)
                .map(|&v| f64::from(v))
        };
        let mean = column().sum::<f64>() / valid as f64;
        let var = if valid > 1 {
            column().map(|v| (v - mean).powi(2)).sum::<f64>() / (valid - 1) as f64
        } else {
            0.0
        };
        let std = var.sqrt() + GUARD;
        for v in features.iter_mut().skip(m).step_by(n_mels) {
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
    }
}

/// The window, `n_fft` long: centred in the mel style, at the start of the frame (where the
/// samples are) in the Kaldi style.
fn window(cfg: &Frontend) -> Vec<f32> {
    let n = cfg.win_length;
    let (denom, power) = match cfg.window {
        WindowKind::HannPeriodic => (n as f64, 1.0),
        WindowKind::HannSymmetric => ((n - 1) as f64, 1.0),
        WindowKind::Povey => ((n - 1) as f64, 0.85),
    };
    let mut w = vec![0.0f32; cfg.n_fft];
    let offset = match cfg.style {
        FrontendStyle::Mel => (cfg.n_fft - n) / 2,
        FrontendStyle::Kaldi => 0,
    };
    for i in 0..n {
        let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / denom).cos();
        w[offset + i] = hann.powf(power) as f32;
    }
    w
}

/// The Slaney mel scale: linear below 1 kHz, logarithmic above (librosa `htk=False`).
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    let min_log_mel = 1000.0 / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= 1000.0 {
        min_log_mel + (hz / 1000.0).ln() / logstep
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    let min_log_mel = 1000.0 / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        1000.0 * ((mel - min_log_mel) * logstep).exp()
    } else {
        mel * F_SP
    }
}

/// librosa.filters.mel, computed in f64 and stored sparse.
fn mel_bands(cfg: &Frontend, sample_rate: u32) -> Vec<Band> {
    let n_bins = cfg.n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| k as f64 * f64::from(sample_rate) / cfg.n_fft as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
    let points: Vec<f64> = (0..cfg.n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (cfg.n_mels + 1) as f64))
        .collect();
    (0..cfg.n_mels)
        .map(|i| {
            let (left, centre, right) = (points[i], points[i + 1], points[i + 2]);
            let norm = match cfg.mel_norm {
                MelNorm::Slaney => 2.0 / (right - left),
                MelNorm::None => 1.0,
            };
            Band::sparse(fft_freqs.iter().map(|&f| {
                let rising = (f - left) / (centre - left);
                let falling = (right - f) / (right - centre);
                rising.min(falling).max(0.0) * norm
            }))
        })
        .collect()
}

/// Kaldi's mel banks: triangles on `1127 ln(1 + f / 700)` between `f_min` and `f_max`, over the
/// FFT bins below Nyquist, unnormalised.
fn kaldi_bands(cfg: &Frontend, sample_rate: u32) -> Vec<Band> {
    let mel = |hz: f64| 1127.0 * (1.0 + hz / 700.0).ln();
    let bin_hz = f64::from(sample_rate) / cfg.n_fft as f64;
    let (lo, hi) = (mel(cfg.f_min), mel(cfg.f_max));
    let delta = (hi - lo) / (cfg.n_mels + 1) as f64;
    (0..cfg.n_mels)
        .map(|b| {
            let left = lo + b as f64 * delta;
            let (centre, right) = (left + delta, left + 2.0 * delta);
            Band::sparse((0..cfg.n_fft / 2).map(|k| {
                let m = mel(k as f64 * bin_hz);
                if m <= left || m >= right {
                    0.0
                } else if m <= centre {
                    (m - left) / (centre - left)
                } else {
                    (right - m) / (right - centre)
                }
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests;
