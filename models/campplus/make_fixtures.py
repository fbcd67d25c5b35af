#!/usr/bin/env python3
"""Write the CAM++ fixtures the Rust side is parity-tested against.

1. tests/fixtures/frontend/kaldi_fbank.json: the raw log-mel Kaldi fbank (kaldi-native-fbank, the
   options in fbank.py; BEFORE the per-bin mean subtraction) of the first 2.0 s of
   tests/fixtures/audio/voice.wav and of a 1000-sample synthetic signal (given in full) that covers
   the edge handling (4 whole frames, 120 samples left over). Values to 7 significant digits.
2. tests/fixtures/parity/campplus_reference.json (the format of ge2e_reference.json): the four demo
   files, each embedded as one whole utterance: fbank of the whole file -> minus each bin's mean
   over all its frames -> campplus.onnx, batch 1 -> embedding.

Before writing, kaldi-native-fbank is cross-checked against fbank.log_mel_numpy (Kaldi's
definition in float64 numpy); the script fails if they disagree by more than 1e-3.

Usage: make_fixtures.py [--model campplus.onnx] [--fbank-out ...] [--parity-out ...]
"""

import argparse
import json
import tomllib
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnxruntime

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fbank import OPTIONS, SAMPLE_RATE, features, log_mel, log_mel_numpy, read_wav  # noqa: E402

ROOT = HERE.parent.parent
VOICE = ROOT / "tests" / "fixtures" / "audio" / "voice.wav"
DEMO = ROOT / "demo" / "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e"
FILES = [
    DEMO / "voice_samples" / "Allison" / "01.wav",
    DEMO / "voice_samples" / "Carlo" / "02.wav",
    DEMO / "voice_samples" / "June" / "03.wav",
    DEMO / "clips" / "2025-10-06" / "till1_47019585-bbbe-4230-b72c-a16f4c0e42f8.wav",
]
CROSS_CHECK_TOLERANCE = 1e-3


def sig7(v) -> float:
    return float(f"{float(v):.7g}")


def synthetic_signal() -> np.ndarray:
    """1000 samples of a 440 Hz sine plus seeded noise, on the int16 grid (exact in JSON and f32)."""
    rng = np.random.default_rng(2024)
    t = np.arange(1000) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    return (np.round(np.clip(x, -1, 1) * 32767) / 32768).astype(np.float32)


def load_16k_mono(path: Path):
    """Samples as float32 in [-1, 1] and how they were decoded."""
    import soundfile as sf

    info = sf.info(str(path))
    if info.samplerate == SAMPLE_RATE and info.channels == 1:
        return read_wav(path), "soundfile (16 kHz mono as stored)"
    import librosa

    x, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True)
    return x.astype(np.float32), f"librosa.load(sr=16000, mono=True) from {info.samplerate} Hz x {info.channels}"


def fbank_case(name: str, x: np.ndarray, **extra) -> dict:
    mel = log_mel(x)
    diff = float(np.max(np.abs(mel - log_mel_numpy(x))))
    print(f"{name}: {len(x)} samples -> {mel.shape[0]} frames; max |kaldi-native-fbank - numpy| = {diff:.1e}")
    if diff > CROSS_CHECK_TOLERANCE:
        sys.exit(f"{name}: kaldi-native-fbank and the numpy re-derivation disagree by {diff}")
    return {
        "name": name,
        **extra,
        "num_samples": len(x),
        "frames": mel.shape[0],
        "n_mels": mel.shape[1],
        "fbank_frames_mels": [[sig7(v) for v in row] for row in mel],
    }


def write_fbank_fixture(out: Path):
    x, decoder = load_16k_mono(VOICE)
    if not decoder.startswith("soundfile"):
        print(f"note: {VOICE.name} is not 16 kHz mono; resampled with {decoder}")
    voice = x[: 2 * SAMPLE_RATE]
    short = synthetic_signal()
    doc = {
        "script": "models/campplus/make_fixtures.py",
        "reference": (
            f"kaldi-native-fbank {version('kaldi-native-fbank')}, numpy {np.__version__}, "
            f"soundfile {version('soundfile')}"
        ),
        "kaldi_native_fbank_version": version("kaldi-native-fbank"),
        "what": "raw log-mel Kaldi fbank, rows = frames, BEFORE the per-bin mean subtraction CAM++ applies",
        "options": OPTIONS,
        "cases": [
            fbank_case(
                "voice_first_2s",
                voice,
                file=str(VOICE.relative_to(ROOT)),
                decoded=f"{decoder}, float = int16 / 32768",
                first_sample=0,
            ),
            fbank_case(
                "synthetic_1000",
                short,
                signal="0.3 sin(2 pi 440 t) + 0.05 N(0,1) (numpy default_rng(2024)), rounded to int16 / 32768",
                samples=[float(v) for v in short],
            ),
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def write_parity_fixture(model: Path, out: Path):
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = onnxruntime.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    entries = []
    for f in FILES:
        x, decoder = load_16k_mono(f)
        feats = features(x)
        e = sess.run(["embedding"], {"feats": feats[None]})[0][0]
        entries.append({
            "file": str(f.relative_to(ROOT)),
            "samples": len(x),
            "decoded": decoder,
            "frames": feats.shape[0],
            "embedding": [float(v) for v in e],
        })
    doc = {
        "model": tomllib.loads((HERE / "campplus.toml").read_text())["id"],
        "reference": (
            f"kaldi-native-fbank {version('kaldi-native-fbank')}, soundfile {version('soundfile')}, "
            f"onnxruntime {onnxruntime.__version__}, numpy {np.__version__}"
        ),
        "script": "models/campplus/make_fixtures.py",
        "pipeline": "whole file -> Kaldi fbank (models/campplus/fbank.py) -> minus each bin's mean over all "
        "frames -> campplus.onnx (batch 1) -> L2-normalised embedding",
        "entries": entries,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} ({len(entries)} embeddings)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=HERE / "campplus.onnx")
    p.add_argument("--fbank-out", type=Path, default=ROOT / "tests" / "fixtures" / "frontend" / "kaldi_fbank.json")
    p.add_argument(
        "--parity-out", type=Path, default=ROOT / "tests" / "fixtures" / "parity" / "campplus_reference.json"
    )
    a = p.parse_args()
    write_fbank_fixture(a.fbank_out)
    write_parity_fixture(a.model, a.parity_out)


if __name__ == "__main__":
    main()
