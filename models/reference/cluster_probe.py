#!/usr/bin/env python3
"""Would the diarizer's clustering do better without its one-window segments? DER and accuracy on one set.

The diarizer clusters segments (a speech region's windows between speaker changes, pooled) on an
average-linkage tree cut by silhouette. A segment of one window is the noisiest item in that
tree and is split off first, so on narrow-band, noisy clips the cut can isolate such outliers
instead of the two speakers. The variant leaves segments of fewer than --tree-windows windows out
of the tree and gives each the nearest cluster afterwards. Everything else is
pipeline_reference.py's (which matches the Rust diarizer's turns); windows are embedded once.

Printed for the set (the diarizer's own turns; DER with a 0.25 s collar, accuracy open-set):
  today:    every segment in the tree;
  variant:  segments of --tree-windows windows or more in the tree.
No calibration: --threshold stands for the one a location's samples give (the channel tables
list it).

Usage: cluster_probe.py --clips SET/clips --enroll SET/enroll [--threshold 0.5] [--tree-windows 2]
                        [--model models/campplus/campplus.toml]
"""

import argparse
import csv

import pipeline_reference as pr  # parses --clips, --enroll, --model, --threads

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--threshold", type=float, default=0.5)
ap.add_argument("--margin", type=float, default=0.05)
ap.add_argument("--tree-windows", type=int, default=2)
opt = ap.parse_known_args()[0]


def main():
    pr.setup()
    pr.enroll(pr.args.enroll)
    rules = {"threshold": opt.threshold, "margin": opt.margin}
    labels = {r["clip"]: r for r in csv.DictReader(open(pr.args.clips.parent / "labels.csv"))}
    kinds = {"today": 1, "variant": opt.tree_windows}
    tally = {k: [0, 0, 0, 0] for k in kinds}  # scored, errors, right, wrong names or false accepts
    files = sorted(p for p in pr.args.clips.iterdir() if p.suffix.lower() in pr.AUDIO)
    for f in files:
        x, row = pr.decode(f), labels[f.stem]
        truth = "unknown" if row["employee"] == "none" else row["employee"]
        regions, windows, region_windows = pr.plan(x)
        emb = pr.embed_windows(x, windows) if windows else None
        for kind, tree_windows in kinds.items():
            turns = pr.finish(x, regions, windows, region_windows, emb, tree_windows=tree_windows) if windows else []
            scored, errors = pr.der(pr.reference_turns(row), turns)
            said = pr.decide(pr.joined_speakers(x, list(pr.speakers_with_speech(turns))), rules) if pr.PROFILES else "unknown"
            t = tally[kind]
            t[0], t[1], t[2] = t[0] + scored, t[1] + errors, t[2] + (said == truth)
            t[3] += said not in (truth, "unknown")
    print(f"{pr.args.clips.parent.name}: {len(files)} clips, threshold {opt.threshold}, tree windows {opt.tree_windows}")
    for kind, (scored, errors, right, wrong) in tally.items():
        print(f"  {kind:<8} DER {100 * errors / max(scored, 1):5.1f} %  accuracy {100 * right / len(files):5.1f} %"
              f"  wrong names or false accepts {wrong}")


if __name__ == "__main__":
    main()
