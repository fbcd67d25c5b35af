#!/usr/bin/env python3
"""Write the NeMo front-end fixture: TitaNet's features computed independently with numpy.

Follows NeMo's FilterbankFeatures at inference (dither 0): pre-emphasis 0.97; STFT with n_fft 512,
a 400-sample symmetric Hann window centred in the frame, hop 160, centre padding with zeros;
power spectrum; 80 Slaney mel bands (librosa.filters.mel, norm="slaney"); ln(x + 2^-24);
per-feature normalisation (mean, unbiased deviation + 1e-5) over the utterance.
The Rust test tests/it/frontend.rs must reproduce these values.
"""

import json
from pathlib import Path

import librosa
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SR, N_FFT, WIN, HOP, N_MELS = 16000, 512, 400, 160, 80


def nemo_features(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    n = np.arange(WIN)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (WIN - 1))  # torch.hann_window(periodic=False)
    window = np.pad(window, ((N_FFT - WIN) // 2, N_FFT - WIN - (N_FFT - WIN) // 2))
    padded = np.pad(x, N_FFT // 2)
    n_frames = 1 + len(x) // HOP
    frames = np.stack([padded[t * HOP : t * HOP + N_FFT] * window for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [T, 257]
    fb = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=SR / 2, htk=False, norm="slaney", dtype=np.float64)
    mel = np.log(power @ fb.T + 2.0**-24)  # [T, 80]
    mean = mel.mean(axis=0)
    std = mel.std(axis=0, ddof=1) + 1e-5
    return (mel - mean) / std


def main():
    rng = np.random.default_rng(11)
    t = np.arange(int(0.5 * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1870 * t * (1 + t)) + 0.05 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    feats = nemo_features(x)
    out = ROOT / "tests" / "fixtures" / "frontend" / "nemo_titanet.json"
    out.write_text(json.dumps({
        "script": "models/titanet/make_frontend_fixture.py",
        "reference": f"numpy {np.__version__}, librosa {librosa.__version__} (mel filters)",
        "samples": [float(v) for v in x],
        "frames": feats.shape[0],
        "n_mels": feats.shape[1],
        "features_frames_mels": [round(float(v), 6) for v in feats.reshape(-1)],
    }) + "\n")
    print(f"wrote {out}: {feats.shape}")


if __name__ == "__main__":
    main()
