#!/usr/bin/env python3
"""int8 variants of the bundled models, and what they cost.

    make model-int8        # writes models/<name>/<name>.int8*.onnx and prints the table

Two kinds, written beside each float model (git-ignored):
- dynamic (`<name>.int8.onnx`, both models): ONNX Runtime's `quantize_dynamic` stores the weights
  of MatMul, Gemm, Conv and LSTM as int8 and quantises activations on the fly; nothing is calibrated.
- static (`campplus.int8-static.onnx`, CAM++ only): `quantize_static` in QDQ form, convolutions
  only, int8 weights per output channel, uint8 activations whose ranges come from the dev set's
  enrollment samples (MinMax), never from its clips. Quantising every op type instead leaves the
  embeddings unusable (median cosine to the float ones about 0.1). A manifest for it,
  `campplus.int8-static.toml`, lets the pipeline run it:
  `VOICE_MODEL=models/campplus/campplus.int8-static.toml make eval-channels`.

For every variant the script reports the speed of the float and int8 graphs on the dev clips'
speech (ONNX Runtime alone, 2 threads, batches of 64 inputs of one partial, 3 s at most) and how
far the int8 embeddings move (cosine to the float ones: worst, 1st percentile, median). A variant
would become the CPU's default only if it were faster and the channel tables held unchanged;
none does (README "Speed").

Measured on a 2-core Xeon with AVX-512 VNNI and AMX, 2 threads: GE2E dynamic runs 2.5x faster, but
its embeddings move (median cosine 0.45; with the first LSTM left in float they hold at 0.99 and
gain nothing). CAM++ dynamic turns its convolutions into ConvInteger, 3-4x slower than float
(median cosine 0.96, worst 0.47). CAM++ static runs 1.4-2x faster (it varies from run to run
on that VM), median cosine 0.99, worst 0.94, and the pipeline 1.1x; eight cells of the channel
tables move, three of them down by one clip. Its uint8 x int8 dot products saturate on x86 CPUs
without VNNI, so its accuracy would depend on the machine it runs on.
"""

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent
MODELS = {"ge2e": HERE / "ge2e/ge2e.toml", "campplus": HERE / "campplus/campplus.toml"}
sys.path[:0] = [str(HERE / "campplus"), str(HERE / "reference")]  # fbank, reference_pipeline


def session(path: Path, threads: int) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def batches(manifest: dict, clips: Path, limit: int) -> list:
    """Feature batches of real speech in the model's input shape (64 partials of its length)."""
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


class EnrollmentReader(CalibrationDataReader):
    """CAM++ features of the enrollment samples, 3 s of each (MinMax needs one input shape)."""

    def __init__(self, enroll: Path, frames: int = 300):
        import fbank

        feats = (fbank.features(fbank.read_wav(w)) for w in sorted(enroll.glob("*/*.wav")))
        self.inputs = iter([{"feats": f[None, :frames].astype(np.float32)} for f in feats if len(f) >= frames])

    def get_next(self):
        return next(self.inputs, None)


def quantize_campplus_static(src: Path, dst: Path, toml: Path, enroll: Path) -> None:
    """The calibrated QDQ variant, and a manifest that names it."""
    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    try:
        quantize_static(str(pre), str(dst), EnrollmentReader(enroll), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    finally:
        pre.unlink(missing_ok=True)
    text = toml.read_text()
    manifest = tomllib.loads(text)
    text = text.replace(f'id = "{manifest["id"]}"', f'id = "{manifest["id"]}-int8-static"', 1)
    text = text.replace(f'onnx = "{manifest["onnx"]}"', f'onnx = "{dst.name}"', 1)
    dst.with_suffix(".toml").write_text(f"# Written by models/quantize.py from {toml.name}.\n" + text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared/data/speakerid-dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=20, help="clips whose audio is timed")
    args = parser.parse_args()
    print(f"{'variant':<30} {'float MB':>9} {'int8 MB':>8} {'float x':>8} {'int8 x':>8}  cosine min / p1 / median")
    for name, toml in MODELS.items():
        with open(toml, "rb") as f:
            manifest = tomllib.load(f)
        src = toml.parent / manifest["onnx"]
        variants = [("dynamic", toml.parent / f"{src.stem}.int8.onnx")]
        quantize_dynamic(str(src), str(variants[0][1]), weight_type=QuantType.QInt8)
        if name == "campplus":
            variants.append(("static, convolutions", toml.parent / f"{src.stem}.int8-static.onnx"))
            quantize_campplus_static(src, variants[1][1], toml, args.data / "enroll")
        data = batches(manifest, args.data / "clips", args.clips)
        audio_s = sum(b.shape[0] * b.shape[1] for b in data) * manifest["frontend"]["hop_length"]
        audio_s /= manifest["sample_rate"]
        feature = manifest["input"]["features"]
        t_float, e_float = timed(session(src, args.threads), feature, data)
        for kind, dst in variants:
            t_int8, e_int8 = timed(session(dst, args.threads), feature, data)
            cos = np.sum(e_float * e_int8, axis=1) / (
                np.linalg.norm(e_float, axis=1) * np.linalg.norm(e_int8, axis=1)
            )
            print(
                f"{name + ' ' + kind:<30} {src.stat().st_size / 1e6:>9.1f} {dst.stat().st_size / 1e6:>8.1f} "
                f"{audio_s / t_float:>7.0f}x {audio_s / t_int8:>7.0f}x {cos.min():>8.4f} "
                f"{np.percentile(cos, 1):.4f} {np.median(cos):.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
