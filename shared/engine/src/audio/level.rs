/// Full scale of 16-bit audio: levels are measured the way the reference recipe measures them.
const INT16_MAX: f64 = 32767.0;

/// Raises the level of `samples` to `target_dbfs` (RMS); audio that is already louder is left alone.
///
/// Silence stays silence. Returns the gain applied.
pub fn normalize_volume(samples: &mut [f32], target_dbfs: f64) -> f32 {
    if samples.is_empty() {
        return 1.0;
    }
    let mean_square = samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64;
    let rms = (mean_square * INT16_MAX * INT16_MAX).sqrt();
    if rms == 0.0 {
        return 1.0;
    }
    let change_db = target_dbfs - 20.0 * (rms / INT16_MAX).log10();
    if change_db < 0.0 {
        return 1.0;
    }
    let gain = 10f64.powf(change_db / 20.0) as f32;
    samples.iter_mut().for_each(|s| *s *= gain);
    gain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbfs(samples: &[f32]) -> f64 {
        let ms = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
        20.0 * (ms.sqrt()).log10()
    }

    #[test]
    fn quiet_audio_is_raised_to_the_target() {
        let mut s: Vec<f32> = (0..1600).map(|i| 0.001 * (i as f32 * 0.1).sin()).collect();
        normalize_volume(&mut s, -30.0);
        assert!((dbfs(&s) - -30.0).abs() < 0.01, "{}", dbfs(&s));
    }

    #[test]
    fn loud_audio_and_silence_are_left_alone() {
        let mut loud: Vec<f32> = (0..1600).map(|i| 0.5 * (i as f32 * 0.1).sin()).collect();
        let before = loud.clone();
        assert_eq!(normalize_volume(&mut loud, -30.0), 1.0);
        assert_eq!(loud, before);
        let mut silence = vec![0.0f32; 100];
        assert_eq!(normalize_volume(&mut silence, -30.0), 1.0);
        assert!(silence.iter().all(|&s| s == 0.0));
    }
}
