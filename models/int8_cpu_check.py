#!/usr/bin/env python3
"""Do the int8 variants give the same embeddings on an x86 CPU without VNNI? Embed here, embed there, compare.

Without VNNI (AVX-512 VNNI or AVX-VNNI), ONNX Runtime's uint8 x int8 products go through
VPMADDUBSW, whose 16-bit pair sums can saturate, so an int8 model's embeddings may depend on the
CPU. QEMU's user mode can pose as a CPU without it on this machine (`apt-get download
qemu-user-static` and `dpkg -x` it anywhere: no root needed):

    make model-int8
    .cache/venv/bin/python models/int8_cpu_check.py embed /tmp/here.npz
    qemu-x86_64-static -cpu Haswell-noTSX .cache/venv/bin/python models/int8_cpu_check.py embed /tmp/avx2.npz
    .cache/venv/bin/python models/int8_cpu_check.py compare /tmp/here.npz /tmp/avx2.npz

`embed` runs the float and int8 graphs of both bundled models on real speech from the dev clips
(57 GE2E partials, 10 CAM++ inputs of 3 s; one input per run, as the pipeline's speakers are);
under QEMU it takes about 7 minutes. `compare` prints, per graph, how far the two machines'
embeddings are apart, and each int8 graph's cosine to its float graph on either machine.

Measured (a 2-core AMD EPYC with AVX-512 VNNI against QEMU's Haswell, AVX2 without VNNI):
float graphs 1.000000 alike (4.5e-7 and 1.0e-6 apart); GE2E LSTM 2-3 int8 worst 0.99989 (4.6e-3
apart); CAM++ static int8 worst 0.9988, median 0.99936 (1.1e-2 apart); to float, the same on
both (CAM++ median 0.9958 and 0.9957). Saturation does not wreck the int8 models, but their
embeddings move with the CPU by about a seventh of what int8 itself moves them.
"""

import sys
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GRAPHS = {"ge2e": ["ge2e.onnx", "ge2e.int8-lstm23.onnx"], "campplus": ["campplus.onnx", "campplus.int8-static.onnx"]}


def embed(out: Path, data: Path) -> None:
    import quantize  # models/quantize.py: the feature batches and sessions

    found = {}
    for name, files in GRAPHS.items():
        toml = quantize.MODELS[name]
        with open(toml, "rb") as f:
            manifest = tomllib.load(f)
        rows = np.concatenate(quantize.batches(manifest, data / "clips", 6))
        rows = rows[:: max(1, len(rows) // (32 if name == "ge2e" else 8))]
        feature = manifest["input"]["features"]
        for file in files:
            sess = quantize.session(toml.parent / file, 2)
            found[file] = np.concatenate([sess.run(None, {feature: rows[i : i + 1]})[0] for i in range(len(rows))])
    np.savez(out, **found)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def compare(here: Path, there: Path) -> None:
    a, b = np.load(here), np.load(there)
    for file in a.files:
        c = cosines(a[file], b[file])
        print(f"{file:<28} between machines: cosine worst {c.min():.6f} median {np.median(c):.6f}, "
              f"largest difference {np.abs(a[file] - b[file]).max():.1e}")
    for float_file, int8_file in GRAPHS.values():
        for label, d in (("here", a), ("there", b)):
            c = cosines(d[float_file], d[int8_file])
            print(f"{int8_file:<28} to float, {label:<5}: worst {c.min():.4f} median {np.median(c):.4f}")


def main() -> int:
    sys.path[:0] = [str(HERE), str(HERE / "campplus"), str(HERE / "reference")]
    if len(sys.argv) == 3 and sys.argv[1] == "embed":
        embed(Path(sys.argv[2]), HERE.parent.parent / "shared/data/speakerid-dev")
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        print(__doc__.splitlines()[0] + "\nusage: int8_cpu_check.py embed OUT.npz | compare HERE.npz THERE.npz",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
