use super::*;

pub(crate) fn ge2e_frontend() -> Frontend {
    Frontend {
        style: FrontendStyle::Mel,
        volume_norm_dbfs: Some(-30.0),
        preemphasis: 0.0,
        n_fft: 400,
        win_length: 400,
        hop_length: 160,
        window: WindowKind::HannPeriodic,
        center: true,
        n_mels: 40,
        f_min: 0.0,
        f_max: 8000.0,
        mel_norm: MelNorm::Slaney,
        magnitude_power: 2.0,
        log: LogKind::None,
        log_guard: 0.0,
        normalize: Normalize::None,
    }
}

#[test]
fn slaney_scale_round_trips_and_is_linear_below_1khz() {
    for hz in [0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0] {
        assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
    }
    assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
    assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
}

#[test]
fn frame_count_matches_centred_stft() {
    let fe = MelFrontend::new(&ge2e_frontend(), 16000);
    assert_eq!(fe.n_frames(16000), 101);
    assert_eq!(fe.n_frames(159), 1);
    let mut out = Vec::new();
    fe.compute(&[], 16000, &mut fe.scratch(), &mut out);
    assert_eq!(out.len(), 101 * 40);
}

#[test]
fn a_tone_lands_in_the_band_around_its_frequency() {
    let fe = MelFrontend::new(&ge2e_frontend(), 16000);
    let tone: Vec<f32> = (0..16000)
        .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
        .collect();
    let mut out = Vec::new();
    fe.compute(&tone, tone.len(), &mut fe.scratch(), &mut out);
    let frame = &out[50 * 40..51 * 40];
    let peak = frame
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap();
    let centre_hz = |i: usize| {
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
        mel_to_hz(lo + (hi - lo) * (i + 1) as f64 / 41.0)
    };
    assert!(
        (centre_hz(peak) - 1000.0).abs() < 150.0,
        "peak band {peak} at {} Hz",
        centre_hz(peak)
    );
}

#[test]
fn per_feature_normalisation_gives_zero_mean_unit_deviation() {
    let mut f: Vec<f32> = (0..30).map(|i| (i * i) as f32).collect(); // 10 frames x 3 mels
    normalize_per_feature(&mut f, 3, 10);
    for m in 0..3 {
        let col: Vec<f64> = f.iter().skip(m).step_by(3).map(|&v| f64::from(v)).collect();
        let mean = col.iter().sum::<f64>() / 10.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0;
        assert!(
            mean.abs() < 1e-5 && (var.sqrt() - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
    }
}
