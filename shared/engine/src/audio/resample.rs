use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Input frames per resampler call: large enough for FFT efficiency, small enough to stream.
const CHUNK: usize = 1024;

/// Mono sample-rate conversion fed in pieces of any size.
///
/// Output is appended to a caller-owned buffer, with the resampler's start-up delay removed, so
/// the concatenated output lines up with the input in time.
pub struct StreamingResampler {
    inner: Option<FftState>,
    ratio: f64,
    consumed: usize,
    produced: usize,
}

struct FftState {
    fft: Fft<f32>,
    pending: Vec<f32>,
    out: Vec<f32>,
    delay_left: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("resampling from {from} Hz to {to} Hz: {reason}")]
pub struct ResampleError {
    from: u32,
    to: u32,
    reason: String,
}

impl StreamingResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let err = |reason: String| ResampleError { from, to, reason };
        let inner = if from == to {
            None
        } else {
            let fft = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
                .map_err(|e| err(e.to_string()))?;
            let delay_left = fft.output_delay();
            let out = vec![0.0; fft.output_frames_max()];
            Some(FftState {
                fft,
                pending: Vec::with_capacity(2 * CHUNK),
                out,
                delay_left,
            })
        };
        Ok(Self {
            inner,
            ratio: f64::from(to) / f64::from(from),
            consumed: 0,
            produced: 0,
        })
    }

    /// Resamples `input`, appending what is ready to `output`.
    pub fn push(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<(), String> {
        self.consumed += input.len();
        let Some(state) = self.inner.as_mut() else {
            output.extend_from_slice(input);
            self.produced += input.len();
            return Ok(());
        };
        let mut pending = std::mem::take(&mut state.pending);
        pending.extend_from_slice(input);
        let mut offset = 0;
        while pending.len() - offset >= CHUNK {
            self.produced += state.run(&pending[offset..offset + CHUNK], CHUNK, output)?;
            offset += CHUNK;
        }
        pending.drain(..offset);
        state.pending = pending;
        Ok(())
    }

    /// Flushes the tail: the output then holds `round(input × ratio)` samples in all.
    pub fn finish(mut self, output: &mut Vec<f32>) -> Result<(), String> {
        let expected = (self.consumed as f64 * self.ratio).round() as usize;
        let Some(state) = self.inner.as_mut() else {
            return Ok(());
        };
        let mut tail = std::mem::take(&mut state.pending);
        // Feed the remainder, then silence, until the delayed output has caught up with the input.
        // The flush goes through its own buffer so the caller's, sized for the clip, never grows
        // for samples past the end of the input.
        let mut flushed = Vec::new();
        while self.produced < expected {
            let real = tail.len().min(CHUNK);
            tail.resize(CHUNK, 0.0);
            self.produced += state.run(&tail, real, &mut flushed)?;
            tail.clear();
        }
        let over = self.produced.saturating_sub(expected);
        output.extend_from_slice(&flushed[..flushed.len().saturating_sub(over)]);
        // Past the end already before the flush (rounding): trim the caller's output instead.
        let still_over = over.saturating_sub(flushed.len());
        output.truncate(output.len().saturating_sub(still_over));
        Ok(())
    }
}

impl FftState {
    /// One resampler call on exactly `CHUNK` frames of which `real` are input; returns frames kept.
    fn run(&mut self, chunk: &[f32], real: usize, output: &mut Vec<f32>) -> Result<usize, String> {
        let input = InterleavedSlice::new(chunk, 1, CHUNK).map_err(|e| e.to_string())?;
        let frames = self.out.len();
        let mut out =
            InterleavedSlice::new_mut(&mut self.out[..], 1, frames).map_err(|e| e.to_string())?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: Some(real),
            active_channels_mask: None,
        };
        let (_, written) = self
            .fft
            .process_into_buffer(&input, &mut out, Some(&indexing))
            .map_err(|e| e.to_string())?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        output.extend_from_slice(&self.out[skip..written]);
        Ok(written - skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn same_rate_passes_through() {
        let mut r = StreamingResampler::new(16000, 16000).unwrap();
        let mut out = Vec::new();
        r.push(&[0.1, 0.2], &mut out).unwrap();
        r.finish(&mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
    }

    #[test]
    fn a_tone_keeps_its_length_pitch_and_timing_in_odd_pieces() {
        let input = tone(44100, 440.0, 1.3);
        let mut r = StreamingResampler::new(44100, 16000).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(777) {
            r.push(piece, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        let expected = tone(16000, 440.0, 1.3);
        assert_eq!(
            out.len(),
            (input.len() as f64 * 16000.0 / 44100.0).round() as usize
        );
        // Away from the edges the output is the same tone, in phase: the delay was removed (a
        // one-sample shift alone would be an error of 0.17 at 440 Hz).
        let err = out[800..out.len() - 800]
            .iter()
            .zip(&expected[800..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.05, "max error {err}");
    }
}
