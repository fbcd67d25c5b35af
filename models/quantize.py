#!/usr/bin/env python3
"""int8 variants of the bundled models, and what they cost.

    make model-int8        # writes models/<name>/<name>.int8*.onnx and prints the table

Written beside each float model (git-ignored):
- dynamic (`<name>.int8.onnx`, both models): ONNX Runtime's `quantize_dynamic` stores the weights
  of MatMul, Gemm, Conv and LSTM as int8 and quantises activations on the fly; nothing is calibrated.
- GE2E dynamic with its first LSTM float (`ge2e.int8-lstm23.onnx` and its manifest): the first
  LSTM reads linear mel power, whose range one uint8 scale cannot hold.
- CAM++ static (`campplus.int8-static.onnx` and its manifest): `quantize_static` in QDQ form,
  convolutions only, int8 weights per output channel, uint8 activations whose ranges come from
  the dev set's enrollment samples (99.999th percentile), never from its clips; the first
  convolution and the CAM gates stay float. Quantising every op type instead leaves the
  embeddings unusable (median cosine to the float ones about 0.1).
- `campplus.int8-both.toml`: the static CAM++ with GE2E's LSTM 2-3 variant for the default's
  1.0 s windows (`ge2e-windows.int8-lstm23.toml`), to run the pipeline on both:
  `VOICE_MODEL=models/campplus/campplus.int8-both.toml make eval-channels`.

For every variant the script reports the speed of the float and int8 graphs on the dev clips'
speech (ONNX Runtime alone, 2 threads, batches of 64 inputs of one partial, 3 s at most), how
far the int8 embeddings move (cosine to the float ones: worst, 1st percentile, median) and the
batch drift: how far an embedding moves between its batch and a run of its own (dynamic
quantisation scales over the whole batch, so a clip's windows would depend on its neighbours).
A variant would become the CPU's default only if it were faster and the channel tables held
unchanged; none does (README "Speed").

Measured on a 2-core AMD EPYC with AVX-512 VNNI, 2 threads: GE2E dynamic 2.4x faster but median
cosine 0.45; GE2E LSTM 2-3 1.8-1.9x, median cosine 0.9945, batch drift 1.1e-2; CAM++ dynamic
3x slower (ConvInteger); CAM++ static 2.0x, median cosine 0.995, no batch drift. Both int8
variants in the pipeline: 1.43x `dispatcher run`, five channel-table cells down by one clip and
three up, 0 wrong names (with 1.6 s windows and the plain cut). Their uint8 x int8 dot products can
saturate on x86 CPUs without VNNI: int8_cpu_check.py measures how far that moves the embeddings.
"""

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnx
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
    """The calibrated QDQ variant, and a manifest that names it.

    Two kinds of convolution stay float: the first (on the fbank itself, where int8 moves the
    embeddings most) and the CAM gates' 1x1 convolutions, which run once per 100-frame segment,
    so their quantise and dequantise steps cost more than they save. Activation ranges are the
    99.999th percentile of the calibration inputs, not their extremes."""
    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    try:
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        keep_float = convs[:1] + [n for n in convs if ".cam.linear" in n]
        quantize_static(str(pre), str(dst), EnrollmentReader(enroll), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=keep_float, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile)
    finally:
        pre.unlink(missing_ok=True)
    write_manifest(toml, dst, "int8-static")


def quantize_ge2e_dynamic(src: Path, dst: Path, toml: Path) -> None:
    """GE2E's second and third LSTMs (and the Gemm) dynamic int8; the first LSTM stays float.

    Its input is linear mel power, whose range one uint8 scale per tensor cannot hold (all three
    LSTMs in int8 move the embeddings to a median cosine of about 0.45)."""
    model = onnx.load(str(src))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    first_lstm = next(n.name for n in model.graph.node if n.op_type == "LSTM")
    named = dst.with_suffix(".named.onnx")
    onnx.save(model, str(named))
    try:
        quantize_dynamic(str(named), str(dst), weight_type=QuantType.QInt8, nodes_to_exclude=[first_lstm])
    finally:
        named.unlink(missing_ok=True)
    write_manifest(toml, dst, "int8-lstm23")
    write_manifest(toml.with_name("ge2e-windows.toml"), dst, "int8-lstm23")  # the default's windows


def write_manifest(toml: Path, onnx_file: Path, suffix: str, diarizer: Path | None = None) -> Path:
    """A manifest for a variant: `toml` with its own id and ONNX file (and windows model)."""
    text = toml.read_text()
    manifest = tomllib.loads(text)
    text = text.replace(f'id = "{manifest["id"]}"', f'id = "{manifest["id"]}-{suffix}"', 1)
    text = text.replace(f'onnx = "{manifest["onnx"]}"', f'onnx = "{onnx_file.name}"', 1)
    if diarizer is not None:
        old = manifest["diarizer"]["model"]
        text = text.replace(f'model = "{old}"', f'model = "{Path(old).parent / diarizer.name}"', 1)
    out = toml.parent / f"{toml.stem}.{suffix}.toml"
    out.write_text(f"# Written by models/quantize.py from {toml.name}.\n" + text)
    return out


def batch_drift(sess: ort.InferenceSession, name: str, data: list) -> float:
    """Largest change of an embedding between its batch and a run of its own: 0 for a graph
    whose rows do not depend on each other; dynamic quantisation scales over the whole batch."""
    rows = data[0][:16]
    together = sess.run(None, {name: rows})[0]
    alone = np.concatenate([sess.run(None, {name: rows[i : i + 1]})[0] for i in range(len(rows))])
    return float(np.abs(together - alone).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared/data/speakerid-dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=20, help="clips whose audio is timed")
    args = parser.parse_args()
    print(f"{'variant':<30} {'float MB':>9} {'int8 MB':>8} {'float x':>8} {'int8 x':>8}  cosine min / p1 / median"
          "  batch drift")
    for name, toml in MODELS.items():
        with open(toml, "rb") as f:
            manifest = tomllib.load(f)
        src = toml.parent / manifest["onnx"]
        variants = [("dynamic", toml.parent / f"{src.stem}.int8.onnx")]
        quantize_dynamic(str(src), str(variants[0][1]), weight_type=QuantType.QInt8)
        if name == "ge2e":
            variants.append(("dynamic, LSTM 2-3", toml.parent / f"{src.stem}.int8-lstm23.onnx"))
            quantize_ge2e_dynamic(src, variants[1][1], toml)
        if name == "campplus":
            variants.append(("static, convolutions", toml.parent / f"{src.stem}.int8-static.onnx"))
            quantize_campplus_static(src, variants[1][1], toml, args.data / "enroll")
            # Both models in int8: the static CAM++ with the windows of GE2E's LSTM 2-3 variant.
            write_manifest(toml, variants[1][1], "int8-both", HERE / "ge2e/ge2e-windows.int8-lstm23.toml")
        data = batches(manifest, args.data / "clips", args.clips)
        audio_s = sum(b.shape[0] * b.shape[1] for b in data) * manifest["frontend"]["hop_length"]
        audio_s /= manifest["sample_rate"]
        feature = manifest["input"]["features"]
        t_float, e_float = timed(session(src, args.threads), feature, data)
        for kind, dst in variants:
            int8 = session(dst, args.threads)
            t_int8, e_int8 = timed(int8, feature, data)
            cos = np.sum(e_float * e_int8, axis=1) / (
                np.linalg.norm(e_float, axis=1) * np.linalg.norm(e_int8, axis=1)
            )
            print(
                f"{name + ' ' + kind:<30} {src.stat().st_size / 1e6:>9.1f} {dst.stat().st_size / 1e6:>8.1f} "
                f"{audio_s / t_float:>7.0f}x {audio_s / t_int8:>7.0f}x {cos.min():>8.4f} "
                f"{np.percentile(cos, 1):.4f} {np.median(cos):.4f}  {batch_drift(int8, feature, data):.1e}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
