#!/usr/bin/env python3
"""Check that ge2e.onnx computes what the Resemblyzer checkpoint computes.

The reference is a float64 numpy re-implementation of the torch module (LSTM in torch's gate order
i, f, g, o, read straight from the checkpoint), so a gate-order or transpose mistake in the converter
cannot hide on both sides. Inputs: random mel batches of several lengths and the mels of real dev
clips. Exits non-zero when any embedding differs by more than 1e-5.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "reference"))
from convert_resemblyzer import checkpoint_from_wheel, fetch_wheel, model_state  # noqa: E402

TOLERANCE = 1e-5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(state: dict, mels: np.ndarray) -> np.ndarray:
    """mels [B, T, n_mels] -> embeddings [B, E], all in float64."""
    x = mels.astype(np.float64)
    batch = x.shape[0]
    n_layers = sum(1 for k in state if k.startswith("lstm.weight_ih_l"))
    for layer in range(n_layers):
        w_ih = state[f"lstm.weight_ih_l{layer}"].astype(np.float64)
        w_hh = state[f"lstm.weight_hh_l{layer}"].astype(np.float64)
        b = (state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"].astype(np.float64)).astype(np.float64)
        hidden = w_hh.shape[1]
        h = np.zeros((batch, hidden))
        c = np.zeros((batch, hidden))
        outputs = []
        for t in range(x.shape[1]):
            gates = x[:, t] @ w_ih.T + h @ w_hh.T + b
            i, f, g, o = np.split(gates, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            outputs.append(h)
        x = np.stack(outputs, axis=1)
    raw = np.maximum(h @ state["linear.weight"].astype(np.float64).T + state["linear.bias"], 0.0)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def real_mels(data_dir: Path, n: int) -> list:
    from reference_pipeline import load_manifest, partial_mels, preprocess

    manifest = load_manifest(HERE / "ge2e.toml")
    out = []
    for wav in sorted((data_dir / "clips").glob("*.wav"))[:n]:
        out.append(partial_mels(preprocess(str(wav), manifest), manifest))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "ge2e.onnx")
    parser.add_argument("--data", type=Path, help="a speakerid-dev style folder for real mels")
    args = parser.parse_args()

    state = model_state(checkpoint_from_wheel(fetch_wheel()))
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    batches = [rng.gamma(0.5, 2.0, size=(b, t, 40)).astype(np.float32) for b, t in [(1, 160), (4, 160), (3, 37)]]
    if args.data:
        batches += real_mels(args.data, 3)

    worst = 0.0
    for mels in batches:
        got = session.run(["embedding"], {"mels": mels})[0]
        want = reference_forward(state, mels)
        diff = float(np.max(np.abs(got - want)))
        worst = max(worst, diff)
        print(f"batch {mels.shape}: max |onnx - float64 reference| = {diff:.2e}")
    print(f"worst difference {worst:.2e} (tolerance {TOLERANCE:.0e})")
    if worst > TOLERANCE:
        sys.exit(1)


if __name__ == "__main__":
    main()
