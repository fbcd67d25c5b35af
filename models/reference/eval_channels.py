#!/usr/bin/env python3
"""The channel tables: `dispatcher eval` over two labelled sets and their degraded copies, in both turn modes.

Two groups of sets, so that a setting is chosen on one and reported on the other:
- `tune`: speakerid-dev (8 employees, full band) and its copies; the settings are chosen here;
- `held-out`: speakerid-dev2 (16 employees, 112 clips with short turns and same-sex look-alikes, on a
  70-3800 Hz channel) and its copies; the settings are only reported here.

Each degraded copy (degrade.py) is made once under --sets-dir and remade when its recipe changes.
Channel-matched sets degrade the enrollment samples and the clips alike, as one till records both;
the clip-only sets keep clean enrollment. Every set is evaluated at the defaults (no per-set tuning)
with the labelled turns and with the local diarizer's, and one Markdown table is printed:
open-set accuracy, short employee turns named, wrong names, false accepts, the hindsight ceiling
(the best threshold and margin for that set, chosen knowing its labels, at 0 wrong names and 0 false
accepts: what separates the decision's loss from the model's), DER, two-speaker clips heard as two,
EER, and the threshold and margin used.

Usage: eval_channels.py --dispatcher target/release/dispatcher [--data DIR] [--data2 DIR]
                        [--only NAME,...] [--modes labelled,own] [--json OUT] [--sets-dir .cache/channels]
"""

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

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
GROUP = {"dev": "tune", "dev2": "held-out"}
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


def named(speakers, threshold, margin):
    """decide.rs over one clip's speakers at another threshold and margin (look-alike vetoes kept):
    each employee to its best-scoring speaker, the clip to the accepted speaker with most speech."""
    ok = [s for s in speakers if s["score"] is not None and s["score"] >= threshold
          and s["margin"] >= margin and s.get("unknown_reason") != "look_alike"]
    kept, taken = [], set()
    for s in sorted(ok, key=lambda s: -s["score"]):
        if s["best_worker"] not in taken:
            taken.add(s["best_worker"])
            kept.append(s)
    return max(kept, key=lambda s: (s["speech_s"], s["score"]))["best_worker"] if kept else None


def ceiling(results) -> float:
    """The best open-set accuracy any one threshold and margin reach on this set with 0 wrong names
    and 0 false accepts, chosen knowing the labels: the decision rule's ceiling."""
    clips = [r for r in results if r["error"] is None]
    scores = sorted({round(s["score"], 3) for r in clips for s in r["speakers"] if s["score"] is not None})
    best = 0
    for margin in [m / 100 for m in range(0, 31)]:
        for threshold in scores:
            decided = [named(r["speakers"], threshold - 1e-6, margin) for r in clips]
            if any(d is not None and d != r["expected"] for d, r in zip(decided, clips)):
                continue
            best = max(best, sum(d == r["expected"] for d, r in zip(decided, clips)))
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
            r["ceiling"] = ceiling(r["results"])
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
