//! Audio in: any supported container and codec becomes 16 kHz mono `f32`.
//!
//! Decoding streams packet by packet through the downmix and the resampler, so a long clip never
//! holds more than its output samples in memory.

mod decode;
mod level;
mod resample;

pub use decode::{AudioError, AudioErrorKind, SUPPORTED_EXTENSIONS, decode_file};
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
        let rate = f64::from(self.sample_rate);
        let len = self.samples.len();
        let start = ((start_s.max(0.0) * rate).round() as usize).min(len);
        let end = ((end_s.max(0.0) * rate).round() as usize).clamp(start, len);
        &self.samples[start..end]
    }
}
