#!/usr/bin/env python3
"""Make a degraded copy of a labelled set: one recording channel, applied as a store would record.

A store records its employees' voice samples on the same till device as its clips, so by default the
channel degrades the enrollment samples AND the clips alike (`--enroll same`). Degrading the clips
alone (`--enroll clean`) lowers every score against clean profiles: customers then look less like
employees and false accepts hide, which is why both kinds of set are in the channel tables.

Channels:

    telephone    300-3400 Hz band, 8 kHz, mu-law companding, back to 16 kHz
    band         300-3400 Hz brick wall (every FFT bin outside it zeroed): a cheap till's codec with
                 nothing of the speech outside the telephone band, at 16 kHz
    noise        additive white (broadband) noise at --snr dB
    brown        additive brown noise at --snr dB
    mic          a cheap electret microphone: 150 Hz high-pass, +6 dB presence peak at 3 kHz,
                 resonant 5 kHz low-pass (Q 2), soft clipping
    tel_noise    telephone, then brown noise at --snr dB
    wordgaps     the clips' speech spoken word by word: a pause of 60-250 ms (the clip's own noise
                 floor) at the quietest point of every 0.3-0.6 s of labelled speech, the labels moved
                 to match; enrollment samples are left as they are (recorded as people read)

The SNR is taken against each file's own mean power. Noise is seeded (--seed), so a set is the same
every time it is made.

Usage: degrade.py --data DIR --out DIR --channel CHANNEL [--snr DB] [--enroll same|clean] [--seed N]
Then: dispatcher eval --data OUT [--oracle-turns]
"""

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import scipy.signal as sg
import soundfile as sf

RATE = 16000
CHANNELS = ("telephone", "band", "noise", "brown", "mic", "tel_noise", "wordgaps")
HOP = RATE // 100  # 10 ms
GAP_S = (0.06, 0.25)
WORD_S = (0.3, 0.6)
DEFAULT_SNR = {"noise": 14.0, "brown": 15.0, "tel_noise": 10.0}


def telephone(w: np.ndarray) -> np.ndarray:
    b, a = sg.butter(4, [300 / 8000, 3400 / 8000], "band")
    w8 = sg.resample_poly(sg.lfilter(b, a, w), 1, 2)
    mu = 255.0
    y = np.sign(w8) * np.log1p(mu * np.abs(np.clip(w8, -1, 1))) / np.log1p(mu)
    y = np.round(y * 127) / 127
    w8 = np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
    return sg.resample_poly(w8, 2, 1)


def brick_wall(w: np.ndarray, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(len(w), 1 / RATE)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(w))


def frame_db(w: np.ndarray) -> np.ndarray:
    n = len(w) // HOP
    return 10 * np.log10(np.mean(w[: n * HOP].reshape(n, HOP) ** 2, axis=1) + 1e-12)


def word_cuts(w: np.ndarray, segments, rng) -> list:
    """Sample offsets to pause at: the quietest 10 ms frame of every 0.3-0.6 s of labelled speech,
    never in the first or last 0.15 s of a segment."""
    db = frame_db(w)
    cuts = []
    for s, e in sorted((s, e) for s, e, _ in segments):
        t = s + rng.uniform(*WORD_S)
        while t < e - 0.15:
            lo, hi = int(max(t - 0.1, s + 0.15) * 100), int(min(t + 0.1, e - 0.15) * 100)
            if hi > lo and hi <= len(db):
                f = lo + int(np.argmin(db[lo:hi]))
                cuts.append(f * HOP)
                t = f / 100 + rng.uniform(*WORD_S)
            else:
                break
    return sorted(set(c for c in cuts if 0 < c < len(w)))


def word_by_word(w: np.ndarray, segments, rng):
    """The clip with a pause at every cut, and the segments moved to match."""
    cuts = word_cuts(w, segments, rng)
    floor = np.percentile(frame_db(w), 10) if len(w) >= HOP else -120.0
    level = 10 ** (floor / 20)
    pieces, shifts, at = [], [], 0
    for c in cuts:
        gap = int(rng.uniform(*GAP_S) * RATE)
        pieces += [w[at:c], rng.standard_normal(gap) * level]
        shifts.append((c / RATE, gap / RATE))
        at = c
    pieces.append(w[at:])

    def moved(t):
        return t + sum(d for c, d in shifts if c < t)

    return np.concatenate(pieces), [(moved(s), moved(e), who) for s, e, who in segments]


def parse_segments(text: str):
    out = []
    for part in filter(None, text.split(";")):
        times, who = part.split(":")
        a, b = times.split("-")
        out.append((float(a), float(b), who))
    return out


def format_segments(segments) -> str:
    return ";".join(f"{s:.3f}-{e:.3f}:{who}" for s, e, who in segments)


def peaking(f0: float, gain_db: float, q: float):
    """RBJ cookbook peaking equaliser."""
    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / RATE
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp]
    a = [1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp]
    return np.array(b) / a[0], np.array(a) / a[0]


def lowpass(f0: float, q: float):
    """RBJ cookbook resonant low-pass."""
    w0 = 2 * np.pi * f0 / RATE
    alpha = np.sin(w0) / (2 * q)
    c = np.cos(w0)
    b = [(1 - c) / 2, 1 - c, (1 - c) / 2]
    a = [1 + alpha, -2 * c, 1 - alpha]
    return np.array(b) / a[0], np.array(a) / a[0]


def mic(w: np.ndarray) -> np.ndarray:
    b, a = sg.butter(2, 150 / (RATE / 2), "high")
    w = sg.lfilter(b, a, w)
    w = sg.lfilter(*peaking(3000, 6.0, 1.2), w)
    w = sg.lfilter(*lowpass(5000, 2.0), w)
    # A small capsule and preamp saturate gently on loud syllables.
    peak = np.max(np.abs(w)) or 1.0
    drive = 2.0
    return np.tanh(drive * w / peak) / np.tanh(drive) * peak


def add_noise(w: np.ndarray, snr_db: float, rng, brown: bool) -> np.ndarray:
    n = rng.standard_normal(len(w))
    if brown:
        n = sg.lfilter([1.0], [1.0, -0.95], n)
    power = np.mean(w**2)
    if power == 0:
        return w
    n *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(n**2))
    return w + n


def degrade(w: np.ndarray, channel: str, snr: float, rng) -> np.ndarray:
    if channel in ("telephone", "tel_noise"):
        w = telephone(w)
    if channel == "band":
        w = brick_wall(w)
    if channel == "mic":
        w = mic(w)
    if channel in ("noise", "brown", "tel_noise"):
        w = add_noise(w, snr, rng, brown=channel != "noise")
    return np.clip(w, -1, 1)


def copy_degraded(src: Path, dst: Path, channel: str, snr: float, rng):
    dst.parent.mkdir(parents=True, exist_ok=True)
    w, sr = sf.read(src, dtype="float64", always_2d=True)
    w = w.mean(axis=1)
    if sr != RATE:
        raise SystemExit(f"{src}: {sr} Hz; the labelled sets are {RATE} Hz mono")
    sf.write(dst.with_suffix(".wav"), degrade(w, channel, snr, rng), RATE, subtype="PCM_16")


def spoken_word_by_word(data: Path, out: Path, rng):
    """Every clip with pauses between its words, and labels.csv with the moved segments."""
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for row in rows:
        w, sr = sf.read(data / "clips" / f"{row['clip']}.wav", dtype="float64", always_2d=True)
        if sr != RATE:
            raise SystemExit(f"{row['clip']}: {sr} Hz; the labelled sets are {RATE} Hz mono")
        w, segments = word_by_word(w.mean(axis=1), parse_segments(row["segments"]), rng)
        sf.write(out / "clips" / f"{row['clip']}.wav", np.clip(w, -1, 1), RATE, subtype="PCM_16")
        row["segments"] = format_segments(segments)
        row["duration_s"] = f"{len(w) / RATE:.3f}"
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--channel", choices=CHANNELS, required=True)
    p.add_argument("--snr", type=float)
    p.add_argument("--enroll", choices=["same", "clean"], default="same",
                   help="same: the samples share the clips' channel (one device records both); "
                        "clean: only the clips are degraded")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    snr = a.snr if a.snr is not None else DEFAULT_SNR.get(a.channel, 0.0)
    tmp = a.out.with_name(a.out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in ("labels.csv", "ATTRIBUTION.md", "speakers.csv"):
        if (a.data / f).exists():
            shutil.copy(a.data / f, tmp / f)
    samples = sorted(p for p in (a.data / "enroll").rglob("*") if p.is_file())
    for sample in samples:
        dst = tmp / sample.relative_to(a.data)
        if a.enroll == "same" and a.channel != "wordgaps":
            copy_degraded(sample, dst, a.channel, snr, rng)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample, dst)
    if a.channel == "wordgaps":
        spoken_word_by_word(a.data, tmp, rng)
    else:
        for clip in sorted((a.data / "clips").glob("*.wav")):
            copy_degraded(clip, tmp / "clips" / clip.name, a.channel, snr, rng)
    if a.out.exists():
        shutil.rmtree(a.out)
    tmp.rename(a.out)
    uses_snr = a.channel in ("noise", "brown", "tel_noise")
    print(f"wrote {a.out} ({a.channel}{f' {snr:g} dB' if uses_snr else ''}, enrollment {a.enroll})")


if __name__ == "__main__":
    main()
