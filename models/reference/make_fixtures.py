#!/usr/bin/env python3
"""Write the parity fixture: embeddings of project WAVs by the Python reference pipeline.

The Rust test `tests/it/parity.rs` embeds the same files and requires cosine >= 0.9999 with these.
Usage: make_fixtures.py [--out tests/fixtures/parity/ge2e_reference.json]
"""

import argparse
import json
from pathlib import Path

import librosa
import numpy as np
import onnxruntime

from reference_pipeline import embed, load_manifest, preprocess, session

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e"
FILES = [
    DEMO / "voice_samples" / "Allison" / "01.wav",
    DEMO / "voice_samples" / "Carlo" / "02.wav",
    DEMO / "voice_samples" / "June" / "03.wav",
    DEMO / "clips" / "2025-10-06" / "till1_47019585-bbbe-4230-b72c-a16f4c0e42f8.wav",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=ROOT / "models" / "ge2e" / "ge2e.toml")
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "parity" / "ge2e_reference.json")
    a = p.parse_args()
    manifest = load_manifest(a.manifest)
    sess = session(manifest, threads=1)
    entries = []
    for f in FILES:
        wav = preprocess(str(f), manifest)
        e = embed(wav, manifest, sess)
        entries.append({"file": str(f.relative_to(ROOT)), "samples": len(wav), "embedding": [float(x) for x in e]})
    doc = {
        "model": manifest["id"],
        "reference": f"librosa {librosa.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}",
        "script": "models/reference/make_fixtures.py",
        "entries": entries,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out} ({len(entries)} embeddings)")


if __name__ == "__main__":
    main()
