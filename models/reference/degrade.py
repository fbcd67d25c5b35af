#!/usr/bin/env python3
"""Make a degraded copy of a labelled set, to check decisions hold beyond clean studio audio.

The enrollment samples are copied unchanged (employees enroll once, in good conditions); every clip
is degraded:

    telephone    300-3400 Hz band, 8 kHz, mu-law companding, back to 16 kHz
    noise        additive brown noise at --snr dB (default 15)
    tel_noise    telephone, then noise at --snr dB (default 10)

Usage: degrade.py --data DIR --out DIR --kind telephone|noise|tel_noise [--snr DB] [--seed N]
Then: dispatcher eval --data OUT --oracle-turns
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import scipy.signal as sg
import soundfile as sf


def telephone(w: np.ndarray) -> np.ndarray:
    b, a = sg.butter(4, [300 / 8000, 3400 / 8000], "band")
    w8 = sg.resample_poly(sg.lfilter(b, a, w), 1, 2)
    mu = 255.0
    y = np.sign(w8) * np.log1p(mu * np.abs(np.clip(w8, -1, 1))) / np.log1p(mu)
    y = np.round(y * 127) / 127
    w8 = np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
    return sg.resample_poly(w8, 2, 1)


def noise(w: np.ndarray, snr_db: float, rng) -> np.ndarray:
    n = sg.lfilter([1.0], [1.0, -0.95], rng.standard_normal(len(w)))
    n *= np.sqrt(np.mean(w**2) / 10 ** (snr_db / 10) / np.mean(n**2))
    return w + n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kind", choices=["telephone", "noise", "tel_noise"], required=True)
    p.add_argument("--snr", type=float)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    snr = a.snr if a.snr is not None else (15.0 if a.kind == "noise" else 10.0)
    if a.out.exists():
        shutil.rmtree(a.out)
    shutil.copytree(a.data / "enroll", a.out / "enroll")
    for f in ("labels.csv", "ATTRIBUTION.md"):
        if (a.data / f).exists():
            shutil.copy(a.data / f, a.out / f)
    (a.out / "clips").mkdir()
    for clip in sorted((a.data / "clips").glob("*.wav")):
        w, sr = sf.read(clip, dtype="float64")
        if a.kind in ("telephone", "tel_noise"):
            w = telephone(w)
        if a.kind in ("noise", "tel_noise"):
            w = noise(w, snr, rng)
        sf.write(a.out / "clips" / clip.name, np.clip(w, -1, 1), sr, subtype="PCM_16")
    print(f"wrote {a.out} ({a.kind}, snr {snr if a.kind != 'telephone' else '-'} dB)")


if __name__ == "__main__":
    main()
