#!/usr/bin/env python3
"""The Python reference pipeline: librosa front-end + onnxruntime on the same ONNX file and manifest.

This is what a Python service would run (Resemblyzer's recipe without its VAD trimming): it is the
yardstick for the Rust pipeline's parity (make_fixtures.py) and speed (bench_reference.py).

    wav (16 kHz mono float32) -> volume normalisation (increase only) -> partial slices -> zero pad
    -> librosa mel -> one onnxruntime batch per utterance -> mean of partial embeddings -> L2 normalise
"""

import math
import tomllib
from pathlib import Path

import librosa
import numpy as np

INT16_MAX = 2**15 - 1


def load_manifest(path: Path) -> dict:
    with open(path, "rb") as f:
        manifest = tomllib.load(f)
    manifest["_dir"] = Path(path).resolve().parent
    return manifest


def normalize_volume(wav: np.ndarray, target_dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    if rms == 0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    return wav if change < 0 else wav * (10 ** (change / 20))


def preprocess(path: str, manifest: dict) -> np.ndarray:
    wav, _ = librosa.load(path, sr=manifest["sample_rate"], mono=True)
    target = manifest["frontend"].get("volume_norm_dbfs")
    return normalize_volume(wav, target) if target is not None else wav


def partial_slices(n_samples: int, manifest: dict) -> list:
    fe, ch = manifest["frontend"], manifest["chunking"]
    hop, frames, step = fe["hop_length"], ch["partial_frames"], ch["step_frames"]
    n_frames = int(math.ceil((n_samples + 1) / hop))
    steps = max(1, n_frames - frames + step + 1)
    starts = list(range(0, steps, step))
    last = starts[-1] * hop
    coverage = (n_samples - last) / (frames * hop)
    if coverage < ch["min_coverage"] and len(starts) > 1:
        starts = starts[:-1]
    return starts


def mel(wav: np.ndarray, manifest: dict) -> np.ndarray:
    fe = manifest["frontend"]
    spec = librosa.feature.melspectrogram(
        y=wav,
        sr=manifest["sample_rate"],
        n_fft=fe["n_fft"],
        hop_length=fe["hop_length"],
        win_length=fe["win_length"],
        window="hann",
        center=fe["center"],
        pad_mode="constant",
        power=fe["magnitude_power"],
        n_mels=fe["n_mels"],
        fmin=fe["f_min"],
        fmax=fe["f_max"],
        htk=False,
        norm="slaney",
    )
    return spec.astype(np.float32).T  # [frames, mels]


def partial_mels(wav: np.ndarray, manifest: dict) -> np.ndarray:
    """[n_partials, partial_frames, n_mels] for one utterance."""
    hop, frames = manifest["frontend"]["hop_length"], manifest["chunking"]["partial_frames"]
    starts = partial_slices(len(wav), manifest)
    needed = (starts[-1] + frames) * hop
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    spec = mel(wav, manifest)
    return np.stack([spec[s : s + frames] for s in starts])


def session(manifest: dict, threads: int = 2):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(manifest["_dir"] / manifest["onnx"]), opts, providers=["CPUExecutionProvider"]
    )


def embed(wav: np.ndarray, manifest: dict, sess) -> np.ndarray:
    mels = partial_mels(wav, manifest)
    inp = manifest["input"]
    partials = sess.run([inp["output"]], {inp["features"]: mels})[0]
    pooled = partials.mean(axis=0)
    return pooled / np.linalg.norm(pooled)
