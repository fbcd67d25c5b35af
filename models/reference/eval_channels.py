#!/usr/bin/env python3
"""The channel tables: `dispatcher eval` over two labelled sets and their degraded copies, in both turn modes.

Two groups of sets, so that a setting is chosen on one and reported on the other:
- `tune`: speakerid-dev2 (16 employees, 112 clips with short turns and same-sex look-alike customers,
  on a 70-3800 Hz channel) and its copies; the decision's settings are chosen here, where the hard
  cases are;
- `held-out`: speakerid-dev (8 employees, full band) and its copies, the older tables; the settings
  are only reported here.

Each degraded copy (degrade.py) is made once under --sets-dir and remade when its recipe changes.
Channel-matched sets degrade the enrollment samples and the clips alike, as one till records both;
the clip-only sets keep clean enrollment. Every set is evaluated at the defaults (no per-set tuning)
with the labelled turns and with the local diarizer's, and one Markdown table is printed:
open-set accuracy, short employee turns named, wrong names, false accepts, the hindsight ceiling
(the decision rule's best settings for that set, chosen knowing its labels, at 0 wrong names and 0
false accepts: what separates the decision's loss from the model's), DER, two-speaker clips heard as
two, EER, and the threshold and margin used.

Usage: eval_channels.py --dispatcher target/release/dispatcher [--data DIR] [--data2 DIR]
                        [--only NAME,...] [--modes labelled,own] [--json OUT] [--sets-dir .cache/channels]
"""

import argparse
import csv
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# data set, name, channel, SNR, enrollment (same: channel-matched; clean: clips only)
SETS = [
    ("dev", "dev", None, None, None),
    ("dev", "telephone", "telephone", None, "same"),
    ("dev", "band", "band", None, "same"),
    ("dev", "noise20", "noise", 20.0, "same"),
    ("dev", "noise14", "noise", 14.0, "same"),
    ("dev", "noise9", "noise", 9.0, "same"),
    ("dev", "mic", "mic", None, "same"),
    ("dev", "wordgaps", "wordgaps", None, "same"),
    ("dev", "telephone/clips", "telephone", None, "clean"),
    ("dev", "noise14/clips", "noise", 14.0, "clean"),
    ("dev", "noise9/clips", "noise", 9.0, "clean"),
    ("dev", "tel_noise10/clips", "tel_noise", 10.0, "clean"),
    ("dev2", "dev2", None, None, None),
    ("dev2", "dev2/band", "band", None, "same"),
    ("dev2", "dev2/noise14", "noise", 14.0, "same"),
    ("dev2", "dev2/wordgaps", "wordgaps", None, "same"),
    ("dev2", "dev2/tel_noise10/clips", "tel_noise", 10.0, "clean"),
]
GROUP = {"dev2": "tune", "dev": "held-out"}
MODES = [("labelled", ["--oracle-turns"]), ("own", [])]


def recipe(data: Path, channel, snr, enroll) -> str:
    tool = hashlib.sha256((HERE / "degrade.py").read_bytes()).hexdigest()[:16]
    return f"{data.resolve()} {channel} {snr} {enroll} seed0 {tool}"


def make_set(data: Path, sets_dir: Path, name: str, channel, snr, enroll) -> Path:
    if channel is None:
        return data
    out = sets_dir / name.replace("/", "-")
    stamp = out / ".recipe"
    want = recipe(data, channel, snr, enroll)
    if stamp.is_file() and stamp.read_text() == want:
        return out
    cmd = [sys.executable, str(HERE / "degrade.py"), "--data", str(data), "--out", str(out),
           "--channel", channel, "--enroll", enroll]
    if snr is not None:
        cmd += ["--snr", str(snr)]
    subprocess.run(cmd, check=True)
    stamp.write_text(want)
    return out


def evaluate(dispatcher: str, data: Path, flags: list) -> dict:
    proc = subprocess.run([dispatcher, "eval", "--data", str(data), "--json", *flags],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dispatcher eval --data {data} {' '.join(flags)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def shift_for(shifts, speech_s: float) -> float:
    """calibrate/strangers.rs shift_for: the bars' shift for this much speech."""
    if not shifts:
        return 0.0
    if speech_s <= shifts[0]["speech_s"]:
        return shifts[0]["shift"]
    if speech_s >= shifts[-1]["speech_s"]:
        return shifts[-1]["shift"]
    for lo, hi in zip(shifts, shifts[1:]):
        if speech_s <= hi["speech_s"]:
            t = math.log(speech_s / lo["speech_s"]) / math.log(hi["speech_s"] / lo["speech_s"])
            return lo["shift"] + t * (hi["shift"] - lo["shift"])
    return 0.0


def ceiling(report: dict) -> float:
    """The best open-set accuracy the decision rule reaches on this set with 0 wrong names and 0
    false accepts, its settings chosen knowing the labels: the threshold, the margin, the clear
    lead's floor (under the threshold) and margin, or no lead, and the bars for short speech or
    none. Look-alike vetoes and one employee per speaker as decided."""
    results = report["results"]
    shifts = report["calibration"].get("speech") or []
    rows = [(i, s["score"], s["margin"], s["speech_s"], s["best_worker"], shift_for(shifts, s["speech_s"]))
            for i, r in enumerate(results) if r["error"] is None for s in r["speakers"]
            if s["score"] is not None and s.get("unknown_reason") != "look_alike"]
    if not rows:
        return sum(r["expected"] is None for r in results) / max(len(results), 1)
    score, margin, speech, shift = (np.array([r[k] for r in rows]) for k in (1, 2, 3, 5))
    order = sorted(range(len(rows)), key=lambda k: (rows[k][0], -rows[k][1]))
    by_clip = {}
    for k in order:
        by_clip.setdefault(rows[k][0], []).append(k)
    expected = [r["expected"] for r in results]
    unknown_right = sum(e is None for e in expected)
    scores = np.unique(np.round(score, 2))
    thresholds = np.quantile(scores, np.linspace(0, 1, min(len(scores), 30)))
    leads = [None] + [(df, mb) for df in (0.05, 0.1, 0.15, 0.2) for mb in (0.15, 0.2, 0.25, 0.3, 0.35)]
    best = 0
    for lam in (0.0, 1.0):
        moved = lam * shift
        for t in thresholds:
            for ma in (0.0, 0.05, 0.08, 0.12, 0.16, 0.2):
                base = (score >= t + moved) & (margin >= ma)
                for lead in leads:
                    ok = base if lead is None else base | (
                        (score >= t - lead[0] + moved) & (margin >= max(lead[1], ma)))
                    right, wrong = unknown_right, 0
                    for i, ks in by_clip.items():
                        taken, kept = set(), []
                        for k in ks:
                            if ok[k] and rows[k][4] not in taken:
                                taken.add(rows[k][4])
                                kept.append(k)
                        got = rows[max(kept, key=lambda k: (speech[k], score[k]))][4] if kept else None
                        if got is not None and got != expected[i]:
                            wrong += 1
                            break
                        right += got is not None
                    if not wrong:
                        best = max(best, right)
    return best / max(len(results), 1)


def voices(data: Path) -> dict:
    """Each clip's number of labelled voices."""
    with open(data / "labels.csv", newline="") as f:
        return {row["clip"]: len({seg.split(":")[1] for seg in row["segments"].split(";") if seg})
                for row in csv.DictReader(f)}


def two_found(results, n_voices: dict):
    """Of the clips with two labelled voices, the share whose turns gave two or more speakers."""
    two = [r for r in results if n_voices.get(r["clip"]) == 2]
    return None if not two else sum(len(r["speakers"]) >= 2 for r in two) / len(two)


def short_turns(r: dict):
    c = r["per_condition"].get("short_employee")
    return None if not c else c["accuracy"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dispatcher", required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speakerid-dev")
    p.add_argument("--data2", type=Path, default=ROOT.parent / "shared" / "data" / "speakerid-dev2")
    p.add_argument("--sets-dir", type=Path, default=ROOT / ".cache" / "channels")
    p.add_argument("--only", help="comma-separated set names")
    p.add_argument("--modes", default="labelled,own")
    p.add_argument("--json", type=Path, help="write every report here")
    a = p.parse_args()
    roots = {"dev": a.data, "dev2": a.data2}
    for key, root in roots.items():
        if not (root / "labels.csv").is_file():
            raise SystemExit(f"--{'data' if key == 'dev' else 'data2'} {root}: not a labelled set (no labels.csv)")
    only = set(a.only.split(",")) if a.only else None
    modes = [m for m in MODES if m[0] in a.modes.split(",")]
    rows, reports = [], {}
    started = time.time()
    for key, name, channel, snr, enroll in SETS:
        if only and name not in only:
            continue
        data = make_set(roots[key], a.sets_dir, name, channel, snr, enroll)
        n_voices = voices(data)
        for mode, flags in modes:
            r = evaluate(a.dispatcher, data, flags)
            r["ceiling"] = ceiling(r)
            r["two_found"] = two_found(r["results"], n_voices) if mode == "own" else None
            reports[f"{name} {mode}"] = r
            rows.append((name, GROUP[key], "matched" if enroll == "same" else ("clean" if enroll else "-"), mode, r))
            print(f"  {name:<24} {mode:<8} {pct(r['accuracy']):>8}  ceiling {pct(r['ceiling'])}"
                  f"  wrong {r['wrong_names']}  false accepts {r['false_accepts']}", file=sys.stderr, flush=True)
    model = rows[0][4]["model"] if rows else "-"
    print(f"\nmodel {model}, {len(rows)} evaluations in {time.time() - started:.0f} s\n")
    print("| set | group | enrollment | turns | accuracy | ceiling | short turns | wrong names | false accepts "
          "| DER | two heard | EER | threshold | margin |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, group, enroll, mode, r in rows:
        threshold = r.get("threshold_used", r["threshold"])
        margin = r.get("margin_used", r["margin"])
        print(f"| {name} | {group} | {enroll} | {mode} | {pct(r['accuracy'])} | {pct(r['ceiling'])} | "
              f"{pct(short_turns(r))} | {r['wrong_names']} | {r['false_accepts']} of {r['none_clips']} | "
              f"{pct(r.get('der'))} | {pct(r['two_found'])} | {pct(r.get('eer'))} | {threshold:.3f} | {margin:.3f} |")
    if a.json:
        a.json.write_text(json.dumps(reports, indent=1) + "\n")
    bad = [(n, m) for n, _, _, m, r in rows if r["wrong_names"] or r["false_accepts"]]
    if bad:
        print(f"\nwrong names or false accepts in: {', '.join(f'{n} ({m})' for n, m in bad)}")


if __name__ == "__main__":
    main()
