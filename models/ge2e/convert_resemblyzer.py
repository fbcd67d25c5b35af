#!/usr/bin/env python3
"""Convert the GE2E voice encoder shipped in Resemblyzer 0.1.4 to ONNX, without torch.

The checkpoint (`resemblyzer/pretrained.pt`, Apache-2.0) is a legacy (pre-zip) torch pickle. A custom
unpickler reads it into numpy; the graph is written with the `onnx` package:

    mels [B, T, 40] -> 3 x LSTM(256) -> last hidden state of the top layer -> Linear 256->256 -> ReLU
                    -> L2 normalise -> embedding [B, 256]

Usage: convert_resemblyzer.py [--wheel Resemblyzer-0.1.4-py3-none-any.whl] [--out ge2e.onnx]
Without --wheel the wheel is fetched with `pip download` into .cache/.
"""

import argparse
import io
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WHEEL_NAME = "Resemblyzer==0.1.4"

# Legacy torch serialisation: magic number, protocol version, system info, the pickled object (whose
# tensors are persistent ids naming storages), the list of storage keys, then each storage's bytes.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
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


class _StorageType:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


class _TensorRef:
    """What `torch._utils._rebuild_tensor_v2` would build: a view on a storage, resolved later."""

    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, storage_offset, size, stride)


class _LegacyUnpickler(pickle.Unpickler):
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
        # ('storage', storage_type, key, location, numel[, view_metadata])
        typename, storage_type, key, _location, _numel = pid[:5]
        if typename != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {typename}")
        self.storage_types[key] = storage_type
        return key


def load_legacy_checkpoint(data: bytes) -> dict:
    f = io.BytesIO(data)
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise ValueError("not a legacy torch checkpoint")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info
    unpickler = _LegacyUnpickler(f)
    unpickler.storage_types = {}
    obj = unpickler.load()
    keys = pickle.load(f)
    storages = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        dtype = np.dtype(unpickler.storage_types[key].dtype)
        storages[key] = np.frombuffer(f.read(numel * dtype.itemsize), dtype=dtype)

    def resolve(value):
        if isinstance(value, _TensorRef):
            storage = storages[value.storage_key]
            itemsize = storage.dtype.itemsize
            return np.lib.stride_tricks.as_strided(
                storage[value.offset :],
                shape=value.size,
                strides=tuple(s * itemsize for s in value.stride),
            ).copy()
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    return resolve(obj)


def checkpoint_from_wheel(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        return load_legacy_checkpoint(z.read("resemblyzer/pretrained.pt"))


def fetch_wheel() -> Path:
    dest = ROOT / ".cache" / "wheels"
    found = sorted(dest.glob("Resemblyzer-0.1.4-*.whl"))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), WHEEL_NAME],
            check=True,
        )
        found = sorted(dest.glob("Resemblyzer-0.1.4-*.whl"))
    return found[0]


def model_state(checkpoint: dict) -> dict:
    state = checkpoint["model_state"]
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


def torch_to_onnx_gates(w: np.ndarray, hidden: int) -> np.ndarray:
    """torch stacks the gates i, f, g, o; ONNX expects i, o, f, c (c = torch's g)."""
    i, f, g, o = (w[k * hidden : (k + 1) * hidden] for k in range(4))
    return np.concatenate([i, o, f, g], axis=0)


def build_model(state: dict):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = state["lstm.weight_hh_l0"].shape[1]
    n_layers = sum(1 for k in state if k.startswith("lstm.weight_ih_l"))
    n_mels = state["lstm.weight_ih_l0"].shape[1]
    emb = state["linear.weight"].shape[0]

    inits, nodes = [], []
    nodes.append(helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2]))  # [T, B, n_mels]
    x = "x0"
    for layer in range(n_layers):
        w = torch_to_onnx_gates(state[f"lstm.weight_ih_l{layer}"], hidden)[None]
        r = torch_to_onnx_gates(state[f"lstm.weight_hh_l{layer}"], hidden)[None]
        b = np.concatenate(
            [
                torch_to_onnx_gates(state[f"lstm.bias_ih_l{layer}"], hidden),
                torch_to_onnx_gates(state[f"lstm.bias_hh_l{layer}"], hidden),
            ]
        )[None]
        inits += [
            numpy_helper.from_array(w, f"W{layer}"),
            numpy_helper.from_array(r, f"R{layer}"),
            numpy_helper.from_array(b, f"B{layer}"),
        ]
        nodes.append(
            helper.make_node(
                "LSTM",
                [x, f"W{layer}", f"R{layer}", f"B{layer}"],
                [f"y{layer}", f"h{layer}"],
                hidden_size=hidden,
            )
        )
        if layer + 1 < n_layers:
            nodes.append(helper.make_node("Squeeze", [f"y{layer}", "axis1"], [f"x{layer + 1}"]))
            x = f"x{layer + 1}"
    last = n_layers - 1
    inits += [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(state["linear.weight"], "linear_w"),
        numpy_helper.from_array(state["linear.bias"], "linear_b"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "eps"),
    ]
    nodes += [
        helper.make_node("Squeeze", [f"h{last}", "axis0"], ["hidden"]),  # [B, H]
        helper.make_node("Gemm", ["hidden", "linear_w", "linear_b"], ["lin"], transB=1),
        helper.make_node("Relu", ["lin"], ["raw"]),
        helper.make_node("ReduceL2", ["raw"], ["norm"], axes=[1], keepdims=1),
        # An all-zero ReLU output would divide by zero; the guard never binds on real speech.
        helper.make_node("Max", ["norm", "eps"], ["norm_safe"]),
        helper.make_node("Div", ["raw", "norm_safe"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ge2e_voice_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["batch", "frames", n_mels])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", emb])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="voice-diarization models/ge2e/convert_resemblyzer.py",
        doc_string="GE2E speaker encoder from Resemblyzer 0.1.4 (Apache-2.0), converted without torch.",
    )
    model.ir_version = 8  # readable by every ONNX Runtime release since 1.10
    onnx.checker.check_model(model)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="Resemblyzer-0.1.4 wheel (default: pip download)")
    parser.add_argument("--out", type=Path, default=HERE / "ge2e.onnx")
    args = parser.parse_args()

    import onnx

    wheel = args.wheel or fetch_wheel()
    state = model_state(checkpoint_from_wheel(wheel))
    model = build_model(state)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {wheel.name}")


if __name__ == "__main__":
    main()
