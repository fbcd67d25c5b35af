//! Audio in: any supported container and codec becomes 16 kHz mono `f32`.
//!
//! Decoding streams packet by packet through the downmix and the resampler, so a long clip never
//! holds more than its output samples in memory.

mod decode;
mod level;
mod resample;

pub use decode::{AudioError, AudioErrorKind, SUPPORTED_EXTENSIONS, decode_bytes, decode_file};
pub use level::normalize_volume;
pub use resample::StreamingResampler;

/// Decoded mono audio at `sample_rate`.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// The rate and channel count of the file before conversion.
    pub source_rate: u32,
    pub source_channels: usize,
}

impl Audio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }

    /// The samples between two times in seconds, clamped to the audio.
    pub fn span(&self, start_s: f64, end_s: f64) -> &[f32] {
        let (start, end) = self.span_range(start_s, end_s);
        &self.samples[start..end]
    }

    /// The sample range between two times in seconds, clamped to the audio.
    pub fn span_range(&self, start_s: f64, end_s: f64) -> (usize, usize) {
        span_range(self.samples.len(), self.sample_rate, start_s, end_s)
    }
}

/// The range of samples between two times in seconds, for `len` samples at `rate`, clamped.
pub fn span_range(len: usize, rate: u32, start_s: f64, end_s: f64) -> (usize, usize) {
    let rate = f64::from(rate);
    let start = ((start_s.max(0.0) * rate).round() as usize).min(len);
    let end = ((end_s.max(0.0) * rate).round() as usize).clamp(start, len);
    (start, end)
}
