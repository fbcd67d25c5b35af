#!/usr/bin/env python3
"""Export NVIDIA TitaNet-L (NeMo) to ONNX for the worker, and check it against its manifest.

Run where NeMo is installed and the model can be fetched or is on disk (not in this project's CI):

    pip install "nemo_toolkit[asr]"
    python models/titanet/export_titanet.py                       # from NGC: titanet_large
    python models/titanet/export_titanet.py --nemo titanet-l.nemo # from a local checkpoint

It writes models/titanet/titanet-l.onnx, then refuses to finish if the model's preprocessor differs
from what titanet-l.toml tells the Rust front-end, or if the graph's input/output names differ: a
silent front-end mismatch would cost accuracy without any error.
"""

import argparse
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def check_preprocessor(cfg, manifest):
    fe = manifest["frontend"]
    sr = manifest["sample_rate"]
    expected = {
        "sample_rate": sr,
        "n_fft": fe["n_fft"],
        "features": fe["n_mels"],
        "window": "hann",
        "normalize": fe["normalize"],
    }
    problems = [f"{k}: model {cfg.get(k)!r}, manifest {v!r}" for k, v in expected.items() if cfg.get(k) != v]
    if round(cfg.get("window_size", 0) * sr) != fe["win_length"]:
        problems.append(f"window_size {cfg.get('window_size')} s != win_length {fe['win_length']}")
    if round(cfg.get("window_stride", 0) * sr) != fe["hop_length"]:
        problems.append(f"window_stride {cfg.get('window_stride')} s != hop_length {fe['hop_length']}")
    if cfg.get("frame_splicing", 1) != 1:
        problems.append("frame_splicing must be 1")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nemo", type=Path, help="a local .nemo checkpoint (default: titanet_large from NGC)")
    ap.add_argument("--out", type=Path, default=HERE / "titanet-l.onnx")
    ap.add_argument("--manifest", type=Path, default=HERE / "titanet-l.toml")
    a = ap.parse_args()

    import nemo.collections.asr as nemo_asr
    import onnx

    with open(a.manifest, "rb") as f:
        manifest = tomllib.load(f)
    cls = nemo_asr.models.EncDecSpeakerLabelModel
    model = cls.restore_from(str(a.nemo)) if a.nemo else cls.from_pretrained("titanet_large")
    model.eval()
    problems = check_preprocessor(dict(model.cfg.preprocessor), manifest)
    model.export(str(a.out))

    graph = onnx.load(str(a.out)).graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    inp = manifest["input"]
    for name in (inp["features"], inp["lengths"]):
        if name not in inputs:
            problems.append(f"the graph has no input {name!r} (it has {inputs})")
    if inp["output"] not in outputs:
        problems.append(f"the graph has no output {inp['output']!r} (it has {outputs})")
    if problems:
        print("export finished, but the manifest does not describe this model:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {a.out}; inputs {inputs}, outputs {outputs}; manifest {a.manifest.name} matches")


if __name__ == "__main__":
    main()
