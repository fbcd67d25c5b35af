#!/usr/bin/env python3
"""Would one CAM++ pass serve both the diarizer and identification? DER and accuracy on one set.

The default pipeline embeds the diarizer's windows with GE2E and then every speaker's turn cores
with CAM++. This probe cuts CAM++ at its statistics pooling: the frame-level trunk (features ->
`out_nonlinear`, [1, 512, frames / 2]) runs once over each speech region, in pieces of --chunk-s
seconds (CAM++'s context-aware masking averages over its whole input, so a region's speakers
blur into each other without pieces), and the head (mean and standard deviation over time, then
the `dense` Gemm, then L2) pools those columns, for each diarizer window and for each speaker's
turn cores. Everything else is pipeline_reference.py's: VAD, windows, clustering, turns, decision.

Printed for the set, one line each (DER with a 0.25 s collar; accuracy open-set, over all clips):
  today:      GE2E windows, CAM++ over each speaker's joined turn cores;
  trunk:      trunk windows, speakers pooled from the same trunk columns (one CAM++ pass);
  trunk+cam:  trunk windows, CAM++ over the joined turn cores again (two passes);
and the seconds each model pass took. No calibration: --threshold stands for the one a
location's samples would give (`dispatcher eval` prints it, the channel tables list it).

Usage: trunk_probe.py --clips SET/clips --enroll SET/enroll [--chunk-s 1.6] [--change 0.4]
                      [--one-speaker 0.65] [--threshold 0.5]
"""

import argparse
import csv
import tempfile
import time
from pathlib import Path

import pipeline_reference as pr  # parses --clips, --enroll, --threads, sets the BLAS threads

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx.utils import extract_model

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--chunk-s", type=float, default=1.6, help="trunk piece length; 0: whole regions")
ap.add_argument("--change", type=float, default=0.4, help="change similarity on CAM++'s scale")
ap.add_argument("--one-speaker", type=float, default=0.65, help="one-speaker similarity, CAM++'s scale")
ap.add_argument("--threshold", type=float, default=0.5)
ap.add_argument("--margin", type=float, default=0.05)
opt = ap.parse_known_args()[0]

HOP, WIN = pr.HOP, 400  # CAM++'s fbank: 10 ms hop, 25 ms window, snip edges
CAMPP = pr.ROOT / "models" / "campplus" / "campplus.onnx"


def trunk_session():
    """CAM++ up to `out_nonlinear`, cut from the bundled graph each run (a second)."""
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = pr.args.threads, 1
    o.enable_mem_pattern = False  # inputs vary in length
    with tempfile.TemporaryDirectory() as tmp:
        trunk = Path(tmp) / "campplus-trunk.onnx"
        extract_model(str(CAMPP), str(trunk), ["feats"], ["out_nonlinear"])
        return ort.InferenceSession(str(trunk), o, providers=["CPUExecutionProvider"])


TRUNK = trunk_session()
INIT = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(CAMPP)).graph.initializer}
DENSE_W, DENSE_B = INIT["dense.w"].astype(np.float64), INIT["dense.b"].astype(np.float64)


def head(cols):
    """CAM++ after `out_nonlinear`: mean and unbiased standard deviation over time, Gemm, L2."""
    n, mean = cols.shape[1], cols.mean(1)
    std = np.sqrt(((cols - mean[:, None]) ** 2).sum(1) / max(n - 1, 1))
    return pr.l2(DENSE_W @ np.concatenate([mean, std]) + DENSE_B)


def region_columns(x, rs, re_):
    """Trunk columns of one speech region and the sample each is centred on."""
    size = int(opt.chunk_s * pr.RATE) or (re_ - rs)
    starts = list(range(rs, re_, size))
    if len(starts) > 1 and re_ - starts[-1] < size // 2:  # a short tail joins the piece before it
        starts.pop()
    cols, centres = [], []
    for k, a in enumerate(starts):
        b = starts[k + 1] if k + 1 < len(starts) else re_
        if b - a < WIN + 4 * HOP:
            continue
        mel = pr.fbank.log_mel(x[a:b])
        out = TRUNK.run(None, {"feats": (mel - mel.mean(0))[None].astype(np.float32)})[0][0]
        cols.append(out.astype(np.float64))
        centres.append(a + WIN // 2 + HOP // 2 + np.arange(out.shape[1]) * 2 * HOP)
    if not cols:
        return np.zeros((512, 0)), np.zeros(0)
    return np.concatenate(cols, 1), np.concatenate(centres)


def columns_in(region, s, e):
    cols, centres = region
    inside = (centres >= s) & (centres < e)
    if not inside.any() and len(centres):
        inside = np.abs(centres - (s + e) / 2) == np.abs(centres - (s + e) / 2).min()
    return cols[:, inside]


def pooled_speakers(x, groups, regions, columns):
    out = []
    for speech_s, spans in groups:
        parts = []
        for a, b in spans:
            s, e = pr.span(a, len(x)), pr.span(b, len(x))
            for (rs, re_), region in zip(regions, columns):
                lo, hi = max(s, rs), min(e, re_)
                if hi > lo and ((region[1] >= lo) & (region[1] < hi)).any():
                    parts.append(columns_in(region, lo, hi))
        if parts and sum(p.shape[1] for p in parts) >= pr.MIN_UNPADDED_FRAMES // 2:
            out.append((speech_s, head(np.concatenate(parts, 1))))
    return out


def main():
    pr.setup()
    pr.enroll(pr.args.enroll)
    rules = {"threshold": opt.threshold, "margin": opt.margin}
    labels = {r["clip"]: r for r in csv.DictReader(open(pr.args.clips.parent / "labels.csv"))}
    seconds = dict.fromkeys(("ge2e windows", "cam++ trunk", "cam++ joined cores"), 0.0)
    kinds, modes = ("today", "trunk", "trunk+cam"), ("own", "labelled")
    der_sums = {k: [0, 0] for k in kinds}
    said_right = {(k, m): [0, 0, 0] for k in kinds for m in modes}  # right, wrong names, false accepts
    files = sorted(p for p in pr.args.clips.iterdir() if p.suffix.lower() in pr.AUDIO)
    for f in files:
        x, row = pr.decode(f), labels[f.stem]
        truth = "unknown" if row["employee"] == "none" else row["employee"]
        ref = pr.reference_turns(row)
        regions, windows, region_windows, utterances = pr.plan(x)
        t0 = time.perf_counter()
        ge2e_turns = (pr.finish(x, regions, windows, region_windows, pr.embed_windows(x, windows), utterances=utterances)
                      if windows else [])
        t1 = time.perf_counter()
        columns = [region_columns(x, s, e) for s, e in regions]
        seconds["ge2e windows"] += t1 - t0
        seconds["cam++ trunk"] += time.perf_counter() - t1
        trunk_turns = []
        if windows:
            emb = np.array([head(columns_in(columns[i], *windows[w]))
                            for i, ws in enumerate(region_windows) for w in ws])
            trunk_turns = pr.finish(x, regions, windows, region_windows, emb, opt.change, opt.one_speaker, utterances)
        ref_groups = list(pr.speakers_with_speech(ref))
        t2 = time.perf_counter()
        today_own = pr.joined_speakers(x, list(pr.speakers_with_speech(ge2e_turns)))
        seconds["cam++ joined cores"] += time.perf_counter() - t2
        joined_ref = pr.joined_speakers(x, ref_groups)  # the labelled turns' speakers, as today
        speakers = {
            ("today", "own"): today_own,
            ("today", "labelled"): joined_ref,
            ("trunk", "own"): pooled_speakers(x, list(pr.speakers_with_speech(trunk_turns)), regions, columns),
            ("trunk", "labelled"): pooled_speakers(x, ref_groups, regions, columns),
            ("trunk+cam", "own"): pr.joined_speakers(x, list(pr.speakers_with_speech(trunk_turns))),
            ("trunk+cam", "labelled"): joined_ref,
        }
        for kind, turns in (("today", ge2e_turns), ("trunk", trunk_turns), ("trunk+cam", trunk_turns)):
            scored, errors = pr.der(ref, turns)
            der_sums[kind][0] += scored
            der_sums[kind][1] += errors
            for mode in modes:
                said = pr.decide(speakers[kind, mode], rules) if pr.PROFILES else "unknown"
                tally = said_right[kind, mode]
                tally[0] += said == truth
                tally[1] += said not in (truth, "unknown") and truth != "unknown"
                tally[2] += truth == "unknown" and said != "unknown"
    n = len(files)
    print(f"{pr.args.clips.parent.name}: {n} clips, chunk {opt.chunk_s} s, change {opt.change}, "
          f"one speaker {opt.one_speaker}, threshold {opt.threshold}")
    for kind in kinds:
        scored, errors = der_sums[kind]
        cells = "  ".join(f"{m} {100 * said_right[kind, m][0] / n:5.1f} % (wrong {said_right[kind, m][1]}, "
                          f"false accepts {said_right[kind, m][2]})" for m in modes)
        print(f"  {kind:<10} DER {100 * errors / max(scored, 1):5.1f} %  {cells}")
    print("  model seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
