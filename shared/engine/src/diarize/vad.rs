//! Speech detection from frame energy, with a threshold adapted to each clip's noise floor.

/// Frames are 10 ms; times below are in frames.
pub const FRAME_MS: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct VadConfig {
    /// Speech must rise this far (dB) above the clip's noise floor at the least…
    pub min_rise_db: f32,
    /// …and at least this share of the distance between the floor and the speech level.
    pub rise_share: f32,
    /// Speech shorter than this is dropped (clicks, bumps).
    pub min_speech_frames: usize,
    /// Pauses shorter than this inside speech are bridged.
    pub bridge_frames: usize,
    /// Speech is widened by this much on each side (soft onsets and tails).
    pub pad_frames: usize,
}

impl Default for VadConfig {
    fn default() -> Self {
        // Chosen on the dev clips clean, with noise and band-limited: a higher bar misses the
        // soft ends of words under noise and fragments turns (DER 21 % instead of 13 % at 15 dB).
        Self {
            min_rise_db: 4.0,
            rise_share: 0.2,
            min_speech_frames: 20,
            bridge_frames: 15,
            pad_frames: 5,
        }
    }
}

/// Speech regions of `samples` as sample ranges `[start, end)`.
pub fn speech_regions(samples: &[f32], rate: u32, cfg: &VadConfig) -> Vec<(usize, usize)> {
    let hop = (rate as usize * FRAME_MS / 1000).max(1);
    let energies: Vec<f32> = samples
        .chunks(hop)
        .map(|f| {
            let ms = f.iter().map(|&s| s * s).sum::<f32>() / f.len() as f32;
            10.0 * (ms + 1e-12).log10()
        })
        .collect();
    if energies.is_empty() {
        return Vec::new();
    }
    let mut sorted = energies.clone();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f32| sorted[((sorted.len() - 1) as f32 * q) as usize];
    let (floor, loud) = (at(0.10), at(0.95));
    let threshold = floor + cfg.min_rise_db.max(cfg.rise_share * (loud - floor));
    if loud - floor < cfg.min_rise_db {
        // Nothing stands out of the floor: silence, or noise without speech.
        return Vec::new();
    }

    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, &e) in energies.iter().enumerate() {
        match (e >= threshold, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, energies.len()));
    }
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in runs {
        match merged.last_mut() {
            Some(last) if s - last.1 <= cfg.bridge_frames => last.1 = e,
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .filter(|(s, e)| e - s >= cfg.min_speech_frames)
        .map(|(s, e)| {
            let s = s.saturating_sub(cfg.pad_frames) * hop;
            let e = ((e + cfg.pad_frames) * hop).min(samples.len());
            (s, e)
        })
        .fold(Vec::new(), |mut acc: Vec<(usize, usize)>, (s, e)| {
            match acc.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => acc.push((s, e)),
            }
            acc
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|i| amp * (i as f32 * 0.05).sin()).collect()
    }

    #[test]
    fn finds_speech_between_silences() {
        let mut s = vec![0.0001f32; 8000];
        s.extend(tone(16000, 0.3));
        s.extend(vec![0.0001f32; 8000]);
        s.extend(tone(8000, 0.2));
        s.extend(vec![0.0001f32; 4000]);
        let r = speech_regions(&s, 16000, &VadConfig::default());
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            (r[0].0 as i64 - 8000).abs() <= 800 && (r[0].1 as i64 - 24000).abs() <= 800,
            "{r:?}"
        );
        assert!(
            (r[1].0 as i64 - 32000).abs() <= 800 && (r[1].1 as i64 - 40000).abs() <= 800,
            "{r:?}"
        );
    }

    #[test]
    fn silence_and_steady_noise_have_no_speech() {
        assert!(speech_regions(&vec![0.0; 16000], 16000, &VadConfig::default()).is_empty());
        let noise: Vec<f32> = (0..16000u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as f32 / 65536.0 - 0.5) * 0.01)
            .collect();
        assert!(speech_regions(&noise, 16000, &VadConfig::default()).is_empty());
        assert!(speech_regions(&[], 16000, &VadConfig::default()).is_empty());
    }
}
