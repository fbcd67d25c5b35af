#!/usr/bin/env python3
"""What a location's samples say about its decisions: the trials a decision rule is calibrated on,
and the clips' speakers it is judged on, embedded once per labelled set (pipeline_reference.py).

`embed` writes one .npz per set: every sample whole and cut into pieces of the lengths turns have
(their speech joined, as CAM++ joins a speaker's turn cores; names, full, speech_s, pieces,
piece_len, piece_sample), and every clip speaker under the labelled turns and under the local
diarizer's (labelled_* and own_*: clip, employee, condition, label, identity it overlaps most,
speech_s, emb), with the clips' labels. Candidate decision rules are then swept over these arrays
in numpy, calibrated from the samples alone, without running the model again (docs/accuracy.md
lists what was swept).

Usage: decision_probe.py embed --data DIR --out X.npz
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUTS_S = (1.0, 2.0, 4.0)


def embed_set(data: Path, out: Path):
    sys.argv = [sys.argv[0], "--clips", str(data / "clips"), "--enroll", str(data / "enroll")]
    import numpy as np
    import csv
    import pipeline_reference as P

    P.setup()
    rate = P.RATE
    names, sample_of, pieces, piece_len, piece_sample, full = [], [], [], [], [], []
    employees = sorted(p for p in (data / "enroll").iterdir() if p.is_dir())
    for who in employees:
        for f in sorted(who.iterdir()):
            if f.suffix.lower() not in P.AUDIO:
                continue
            x = P.decode(f)
            regions = P.speech_regions(x)
            speech = np.concatenate([x[s:e] for s, e in regions]) if regions else x[:0]
            if len(speech) < rate * P.MIN_SAMPLE_SPEECH_S:
                continue
            e, _ = P.embed([x])
            if e is None:
                continue
            k = len(full)
            full.append(e)
            names.append(who.name)
            sample_of.append(len(speech) / rate)
            for cut in CUTS_S:
                n = int(cut * rate)
                for at in range(0, len(speech) - n + 1, n):
                    pe, _ = P.embed([speech[at : at + n]])
                    if pe is not None:
                        pieces.append(pe)
                        piece_len.append(cut)
                        piece_sample.append(k)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    spk = {m: [] for m in ("labelled", "own")}
    for row in rows:
        x = P.decode(data / "clips" / f"{row['clip']}.wav")
        ref = P.reference_turns(row)
        for mode in spk:
            turns = ref if mode == "labelled" else P.diarize(x)[0]
            trim = 0.0 if mode == "labelled" else P.EDGE_TRIM_S
            groups = {}
            for t0, t1, who in (t for t in turns if t[1] - t[0] >= P.MIN_UTTERANCE_S):
                tr = min(trim, max((t1 - t0 - P.CORE_MIN_S) / 2, 0.0))
                g = groups.setdefault(who, [0.0, [], []])
                g[0] += t1 - t0
                g[1].append((t0 + tr, t1 - tr))
                g[2].append((t0, t1))
            for label, (speech_s, spans, whole) in groups.items():
                e, _ = P.embed([x[P.span(a, len(x)) : max(P.span(a, len(x)), P.span(b, len(x)))] for a, b in spans])
                if e is None:
                    continue
                overlap = {}
                for a, b in whole:
                    for r0, r1, who in ref:
                        overlap[who] = overlap.get(who, 0.0) + max(0.0, min(b, r1) - max(a, r0))
                identity = max(overlap, key=overlap.get) if overlap and max(overlap.values()) > 0 else ""
                spk[mode].append((row["clip"], row["employee"], row["condition"], label, identity, speech_s, e))
    arrays = {
        "names": np.array(names), "full": np.array(full), "speech_s": np.array(sample_of),
        "pieces": np.array(pieces), "piece_len": np.array(piece_len), "piece_sample": np.array(piece_sample),
        "clips": np.array([r["clip"] for r in rows]), "expected": np.array([r["employee"] for r in rows]),
        "condition": np.array([r["condition"] for r in rows]),
    }
    for mode, items in spk.items():
        for i, key in enumerate(("clip", "employee", "condition", "label", "identity", "speech_s")):
            arrays[f"{mode}_{key}"] = np.array([it[i] for it in items])
        arrays[f"{mode}_emb"] = np.array([it[6] for it in items])
    np.savez(out, **arrays)
    print(f"{data}: {len(full)} samples, {len(pieces)} pieces, "
          f"{len(spk['labelled'])} + {len(spk['own'])} speakers -> {out}", file=sys.stderr)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    embed_set(a.data, a.out)
