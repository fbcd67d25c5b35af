#!/usr/bin/env python3
"""Throughput of the Python reference pipeline on a folder of clips; one JSON object on stdout.

Same model, manifest and thread count as the Rust bench (`cargo bench -p shared`), which runs this
script and prints both side by side. Each clip is one utterance: librosa load (decode + resample),
librosa mel, one onnxruntime batch per clip (all its partials), mean + L2.
"""

import argparse
import json
import os
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--clips", type=Path, required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--manifest", type=Path, default=Path(__file__).resolve().parents[1] / "ge2e" / "ge2e.toml")
args = ap.parse_args()
# numpy/BLAS threads too, so both sides use the same cores.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402

from reference_pipeline import load_manifest, normalize_volume, partial_mels, session  # noqa: E402
import librosa  # noqa: E402

manifest = load_manifest(args.manifest)
sess = session(manifest, threads=args.threads)
files = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg", ".m4a"))
inp = manifest["input"]

# Warm up: librosa's first call compiles with numba, onnxruntime allocates its arenas.
w, _ = librosa.load(str(files[0]), sr=16000)
sess.run([inp["output"]], {inp["features"]: partial_mels(w, manifest)})

t0 = time.perf_counter()
wavs = [librosa.load(str(f), sr=manifest["sample_rate"], mono=True)[0] for f in files]
t_decode = time.perf_counter() - t0
audio_s = sum(len(w) for w in wavs) / manifest["sample_rate"]

t0 = time.perf_counter()
mels = [partial_mels(normalize_volume(w, -30.0), manifest) for w in wavs]
t_frontend = time.perf_counter() - t0
partials = sum(len(m) for m in mels)

t0 = time.perf_counter()
for m in mels:
    sess.run([inp["output"]], {inp["features"]: m})
t_onnx = time.perf_counter() - t0

t0 = time.perf_counter()
for f in files:
    w, _ = librosa.load(str(f), sr=manifest["sample_rate"], mono=True)
    e = sess.run([inp["output"]], {inp["features"]: partial_mels(normalize_volume(w, -30.0), manifest)})[0].mean(0)
    e /= np.linalg.norm(e)
t_e2e = time.perf_counter() - t0

print(json.dumps({
    "clips": len(files), "audio_s": audio_s, "partials": partials, "threads": args.threads,
    "decode_s": t_decode, "frontend_s": t_frontend, "onnx_s": t_onnx, "end_to_end_s": t_e2e,
}))
