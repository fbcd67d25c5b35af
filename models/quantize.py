#!/usr/bin/env python3
"""Dynamically quantised (int8 weights) variants of the bundled models, and what they cost.

    make model-int8        # writes models/<name>/<name>.int8.onnx and prints the table

ONNX Runtime's `quantize_dynamic` stores the weights of MatMul, Gemm, Conv and LSTM as int8 and
quantises activations on the fly; nothing is calibrated. For every model the script reports the
speed of the float and int8 graphs on the dev clips' speech (ONNX Runtime alone, 2 threads) and
how far the int8 embeddings move (cosine to the float ones: worst, 1st percentile, median).
A variant would become the CPU's default only if it were faster and the channel tables
(`make eval-channels`) held; neither is faster with its embeddings intact, so none is committed
or used.

Measured (2-core EPYC VM): GE2E's LSTMs run about 2.3x faster in int8 but the embeddings move
(median cosine 0.45; with the first LSTM left in float they hold at 0.99 and gain nothing).
CAM++'s convolutions become ConvInteger, which ONNX Runtime runs 3-4x slower than its float
convolutions (median cosine 0.96, worst 0.47).
"""

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

HERE = Path(__file__).resolve().parent
MODELS = {"ge2e": HERE / "ge2e/ge2e.toml", "campplus": HERE / "campplus/campplus.toml"}


def session(path: Path, threads: int) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def batches(manifest: dict, clips: Path, limit: int) -> list:
    """Feature batches of real speech in the model's input shape (64 partials of its length)."""
    sys.path.insert(0, str(HERE / "campplus"))
    sys.path.insert(0, str(HERE / "reference"))
    import fbank
    import reference_pipeline as ref

    frames = min(manifest["chunking"]["partial_frames"], 300)
    rows = []
    for wav in sorted(clips.glob("*.wav"))[:limit]:
        x = fbank.read_wav(wav)
        if manifest["frontend"].get("style") == "kaldi":
            f = fbank.features(x)
        else:
            f = ref.mel(ref.normalize_volume(x, manifest["frontend"]["volume_norm_dbfs"]), manifest)
        rows += [f[i : i + frames] for i in range(0, len(f) - frames, frames)]
    rows = np.stack(rows).astype(np.float32)
    return [rows[i : i + 64] for i in range(0, len(rows), 64)]


def timed(sess: ort.InferenceSession, name: str, data: list) -> tuple:
    sess.run(None, {name: data[0]})
    started = time.perf_counter()
    out = np.concatenate([sess.run(None, {name: b})[0] for b in data])
    return time.perf_counter() - started, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared/data/speakerid-dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=20, help="clips whose audio is timed")
    args = parser.parse_args()
    print(f"{'model':<10} {'float MB':>9} {'int8 MB':>8} {'float x':>8} {'int8 x':>8}  cosine min / p1 / median")
    for name, toml in MODELS.items():
        with open(toml, "rb") as f:
            manifest = tomllib.load(f)
        src = toml.parent / manifest["onnx"]
        dst = toml.parent / f"{src.stem}.int8.onnx"
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        data = batches(manifest, args.data / "clips", args.clips)
        audio_s = sum(b.shape[0] * b.shape[1] for b in data) * manifest["frontend"]["hop_length"]
        audio_s /= manifest["sample_rate"]
        feature = manifest["input"]["features"]
        t_float, e_float = timed(session(src, args.threads), feature, data)
        t_int8, e_int8 = timed(session(dst, args.threads), feature, data)
        cos = np.sum(e_float * e_int8, axis=1) / (
            np.linalg.norm(e_float, axis=1) * np.linalg.norm(e_int8, axis=1)
        )
        print(
            f"{name:<10} {src.stat().st_size / 1e6:>9.1f} {dst.stat().st_size / 1e6:>8.1f} "
            f"{audio_s / t_float:>7.0f}x {audio_s / t_int8:>7.0f}x {cos.min():>8.4f} {np.percentile(cos,1):.4f} {np.median(cos):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
