#!/usr/bin/env python3
"""The channel tables: `dispatcher eval` over a labelled set and its degraded copies, in both turn modes.

Each degraded copy (degrade.py) is made once under --sets-dir and remade when its recipe changes.
Channel-matched sets degrade the enrollment samples and the clips alike, as one till records both;
the clip-only sets keep clean enrollment. Every set is evaluated at the defaults (no per-set tuning)
with the labelled turns and with the local diarizer's, and one Markdown table is printed:
open-set accuracy, wrong names, false accepts, DER, EER, and the threshold and margin used.

Usage: eval_channels.py --dispatcher target/release/dispatcher [--data DIR] [--only NAME,...]
                        [--json OUT] [--sets-dir .cache/channels]
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# name, channel, SNR, enrollment (same: channel-matched; clean: clips only)
SETS = [
    ("dev", None, None, None),
    ("telephone", "telephone", None, "same"),
    ("noise20", "noise", 20.0, "same"),
    ("noise14", "noise", 14.0, "same"),
    ("noise9", "noise", 9.0, "same"),
    ("mic", "mic", None, "same"),
    ("telephone/clips", "telephone", None, "clean"),
    ("noise14/clips", "noise", 14.0, "clean"),
    ("noise9/clips", "noise", 9.0, "clean"),
    ("tel_noise10/clips", "tel_noise", 10.0, "clean"),
]
MODES = [("labelled", ["--oracle-turns"]), ("own", [])]


def recipe(channel, snr, enroll) -> str:
    tool = hashlib.sha256((HERE / "degrade.py").read_bytes()).hexdigest()[:16]
    return f"{channel} {snr} {enroll} seed0 {tool}"


def make_set(data: Path, sets_dir: Path, name: str, channel, snr, enroll) -> Path:
    if channel is None:
        return data
    out = sets_dir / name.replace("/", "-")
    stamp = out / ".recipe"
    want = recipe(channel, snr, enroll)
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dispatcher", required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speakerid-dev")
    p.add_argument("--sets-dir", type=Path, default=ROOT / ".cache" / "channels")
    p.add_argument("--only", help="comma-separated set names")
    p.add_argument("--modes", default="labelled,own")
    p.add_argument("--json", type=Path, help="write every report here")
    a = p.parse_args()
    if not (a.data / "labels.csv").is_file():
        raise SystemExit(f"--data {a.data}: not a labelled set (no labels.csv)")
    only = set(a.only.split(",")) if a.only else None
    modes = [m for m in MODES if m[0] in a.modes.split(",")]
    rows, reports = [], {}
    started = time.time()
    for name, channel, snr, enroll in SETS:
        if only and name not in only:
            continue
        data = make_set(a.data, a.sets_dir, name, channel, snr, enroll)
        for mode, flags in modes:
            r = evaluate(a.dispatcher, data, flags)
            reports[f"{name} {mode}"] = {k: v for k, v in r.items() if k != "results"}
            rows.append((name, "matched" if enroll == "same" else ("clean" if enroll else "-"), mode, r))
            print(f"  {name:<18} {mode:<8} {pct(r['accuracy']):>8}  wrong {r['wrong_names']}"
                  f"  false accepts {r['false_accepts']}", file=sys.stderr, flush=True)
    model = rows[0][3]["model"] if rows else "-"
    print(f"\nmodel {model}, {len(rows)} evaluations in {time.time() - started:.0f} s\n")
    print("| set | enrollment | turns | accuracy | wrong names | false accepts | DER | EER | threshold | margin |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, enroll, mode, r in rows:
        threshold = r.get("threshold_used", r["threshold"])
        margin = r.get("margin_used", r["margin"])
        print(f"| {name} | {enroll} | {mode} | {pct(r['accuracy'])} | {r['wrong_names']} | "
              f"{r['false_accepts']} of {r['none_clips']} | {pct(r.get('der'))} | {pct(r.get('eer'))} | "
              f"{threshold:.3f} | {margin:.3f} |")
    if a.json:
        a.json.write_text(json.dumps(reports, indent=1) + "\n")
    bad = [(n, m) for n, _, m, r in rows if r["wrong_names"] or r["false_accepts"]]
    if bad:
        print(f"\nwrong names or false accepts in: {', '.join(f'{n} ({m})' for n, m in bad)}")


if __name__ == "__main__":
    main()
