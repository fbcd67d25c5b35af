#!/usr/bin/env python3
"""The standalone pipeline (decode -> diarize -> identify) as a Python service would run it.

Same ONNX files, manifests and thread count as the Rust pipeline, clips one after another; one JSON
object on stdout. Mirrors shared/engine/src/diarize (energy VAD, one windows-model partial per
window, segments, average-linkage clustering, refinement, 10 ms frame votes, short pauses joined),
turns.rs (cores of turns >= 1 s) and matching/ (profiles, threshold + margin, one speaker per
employee). Not mirrored: a location's calibration and its clear-lead path (the manifest's [decision]
threshold and margin are used as they are).
"""

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--clips", type=Path, required=True)
ap.add_argument("--enroll", type=Path, required=True, help="DIR/<employee>/*.wav")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--model", type=Path, default=ROOT / "models" / "campplus" / "campplus.toml")
ap.add_argument("--windows-onnx", type=Path, help="ONNX file of the diarizer's windows model")
# Imported (trunk_probe.py), the importer's own flags follow these.
args = ap.parse_args() if __name__ == "__main__" else ap.parse_known_args()[0]
# numpy/BLAS threads too, so both sides use the same cores.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(args.threads)
sys.path[:0] = [str(ROOT / "models" / "reference"), str(ROOT / "models" / "campplus")]

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import soundfile as sf  # noqa: E402
from scipy.cluster.hierarchy import fcluster, linkage  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import fbank  # noqa: E402
from reference_pipeline import load_manifest, normalize_volume, partial_mels  # noqa: E402

AUDIO = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
HOP = 160  # 10 ms frames of the VAD and the votes, at 16 kHz
MIN_RISE_DB, RISE_SHARE, MIN_SPEECH, BRIDGE, PAD = 4.0, 0.2, 20, 15, 5  # VadConfig::default
MAX_SPEAKERS, MIN_CLUSTER, MIN_RUN, MAX_WINDOWS, MAJORITY = 4, 2, 30, 1500, 0.7  # DiarizerConfig
LIGHT_CLUSTERS_MAX = 4  # cluster.rs
MIN_UTTERANCE_S, EDGE_TRIM_S, CORE_MIN_S = 1.0, 0.25, 0.8  # VOICE_MIN_UTTERANCE_MS, diarize, turns.rs
MAX_PAUSE_S = 0.3  # diarize/mod.rs: one speaker's turns this close are one
MIN_SAMPLE_SPEECH_S, MIN_UNPADDED_FRAMES, BATCH = 1.0, 20, 64  # calibrate.rs, encoder.rs


def session(manifest, onnx=None, spinning=True):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # As encoder.rs: unpadded inputs vary in length, so memory patterns only add to the peak.
    opts.enable_mem_pattern = manifest["chunking"].get("padding", "zeros") != "none"
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = onnx or manifest["_dir"] / manifest["onnx"]
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess, m, feats):
    inp = m["input"]
    out = sess.run([inp["output"]], {inp["features"]: np.ascontiguousarray(feats, np.float32)})[0]
    return out.astype(np.float64)


def decode(path):
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1, dtype=np.float32)
    return x if sr == RATE else librosa.resample(x, orig_sr=sr, target_sr=RATE).astype(np.float32)


def levelled(x, m):
    target = m["frontend"].get("volume_norm_dbfs")
    return x if target is None else normalize_volume(x, target)


def l2(v):
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def cos(a, b):
    return float(l2(a) @ l2(b))


def renumber(labels):  # 0.. by first appearance
    order = {}
    return np.array([order.setdefault(int(v), len(order)) for v in labels], dtype=int)


def speech_regions(x):
    """vad.rs: 10 ms frames louder than the clip's floor by a share of its range, bridged, padded."""
    n = len(x)
    if n == 0:
        return []
    sq = np.pad(x.astype(np.float64) ** 2, (0, -n % HOP)).reshape(-1, HOP).sum(1)
    energy = 10 * np.log10(sq / np.minimum(HOP, n - np.arange(len(sq)) * HOP) + 1e-12)
    srt = np.sort(energy)
    floor, loud = (srt[int((len(srt) - 1) * q)] for q in (0.10, 0.95))
    if loud - floor < MIN_RISE_DB:
        return []
    on = energy >= floor + max(MIN_RISE_DB, RISE_SHARE * (loud - floor))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    speech = [(s, e) for s, e in join(zip(edges[::2], edges[1::2]), BRIDGE) if e - s >= MIN_SPEECH]
    return join([(max(s - PAD, 0) * HOP, min((e + PAD) * HOP, n)) for s, e in speech], 0)


def join(spans, gap):  # sorted spans at most `gap` apart become one
    out = []
    for s, e in spans:
        if out and s - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([int(s), int(e)])
    return out


def silhouette(x, labels):  # mean, on cosine distance; items alone in their cluster count 0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d, own, rows = 1.0 - xn @ xn.T, np.eye(labels.max() + 1)[labels], np.arange(len(x))
    np.fill_diagonal(d, 0.0)
    others = own.sum(0) - own  # each item's fellow members of every cluster
    means = np.where(others > 0, (d @ own) / np.maximum(others, 1), np.inf)
    a, means[rows, labels] = means[rows, labels].copy(), np.inf
    b = means.min(1)
    a, b = a[np.isfinite(a) & np.isfinite(b)], b[np.isfinite(a) & np.isfinite(b)]
    return float(((b - a) / np.maximum(np.maximum(a, b), 1e-6)).sum() / len(x))


def cluster_auto(x, weights, one_speaker):
    """cluster.rs: the average-linkage tree (average cosine distance merges in Rust's order) cut at
    every point from 2 clusters to MAX_SPEAKERS speakers (plus LIGHT_CLUSTERS_MAX clusters too light
    to be one); each cut scored by the silhouette of its folded labels (fold_light: clusters under
    MIN_CLUSTER windows join the nearest heavier one); one speaker when the first cut with two
    speakers leaves their centroids this alike."""
    zeros = np.zeros(len(x), dtype=int)
    if len(x) < 2:
        return zeros
    tree, best, checked = linkage(x, method="average", metric="cosine"), (None, zeros), False
    for k in range(2, min(MAX_SPEAKERS + LIGHT_CLUSTERS_MAX, len(x)) + 1):
        labels, speakers = fold_light(renumber(fcluster(tree, k, criterion="maxclust")), x, weights)
        if speakers < 2:
            continue
        if speakers > MAX_SPEAKERS:
            break
        if not checked:
            checked = True
            if speakers == 2 and cos(x[labels == 0].sum(0), x[labels == 1].sum(0)) >= one_speaker:
                return zeros
        s = silhouette(x, labels)
        best = (s, labels) if best[0] is None or s > best[0] else best
    return best[1]


def fold_light(labels, x, weights):
    """cluster.rs fold_light_clusters: the labels with every cluster under MIN_CLUSTER (weights
    summed) joined to the nearest heavier one, and how many are that heavy."""
    w = np.bincount(labels, weights=weights)
    heavy = [l for l in range(len(w)) if w[l] >= MIN_CLUSTER]
    if not heavy or len(heavy) == len(w):
        return labels, len(heavy)
    cents = [x[labels == l].sum(0) for l in heavy]
    return renumber([l if w[l] >= MIN_CLUSTER else heavy[nearest(x[i], cents)] for i, l in enumerate(labels)]), len(heavy)


def segments(emb, region_windows, change):
    """Splits regions where a window and the first one clear of it (`gap` steps on) are least alike."""
    gap = max(math.ceil(CFG["window_samples"] / max(CFG["step_s"] * RATE, 1.0)), 1)
    seg, nxt = np.zeros(len(emb), dtype=int), 0
    for idx in region_windows:
        sim = [cos(emb[idx[j]], emb[idx[j + gap]]) for j in range(max(len(idx) - gap, 0))]
        cuts = []
        for j, v in enumerate(sim):
            local_min = all(w >= v for w in sim[max(j - gap, 0) : j + gap + 1])
            if v < change and local_min and (not cuts or j + gap // 2 >= cuts[-1] + gap):
                cuts.append(j + gap // 2)
        for k, w in enumerate(idx):
            nxt += k in cuts
            seg[w] = nxt
        nxt += 1
    return seg


def nearest(e, centroids):  # Rust's max_by keeps the last of equal maxima
    scores = [cos(e, c) for c in centroids]
    return len(scores) - 1 - int(np.argmax(scores[::-1]))


def join_close(utterances):
    """diarize/mod.rs join_close: utterances at most MAX_PAUSE_S apart (less the padding of both)."""
    return join(utterances, max(int(MAX_PAUSE_S * RATE) - 2 * PAD * HOP, 0))


def plan(x):
    """diarize/mod.rs plan_samples: utterances, the regions they join into, the windows over the
    regions, each region's windows."""
    utterances = speech_regions(x)
    regions, win = join_close(utterances), CFG["window_samples"]
    step = max(int(CFG["step_s"] * RATE), sum(e - s for s, e in regions) // MAX_WINDOWS, 1)
    windows, region_windows = [], []
    for s, e in regions:
        first = len(windows)
        inside = [(t, t + win) for t in range(s, e - win, step)] + [(e - win, e)]
        windows += [(s, e)] if e - s <= win else inside
        region_windows.append(list(range(first, len(windows))))
    return regions, windows, region_windows, utterances


def diarize(x):
    """diarize/mod.rs: turns (start_s, end_s, label) and the window count."""
    regions, windows, region_windows, utterances = plan(x)
    if not windows:
        return [], 0
    emb = embed_windows(x, windows)
    return finish(x, regions, windows, region_windows, emb, utterances=utterances), len(windows)


def embed_windows(x, windows):
    """The windows model's embedding of each window, one partial each, in batches."""
    mels = [partial_mels(levelled(x[s:e], WM), WM) for s, e in windows]
    batches = (run(WINDOWS, WM, np.concatenate(mels[i : i + BATCH])) for i in range(0, len(mels), BATCH))
    return np.array([l2(r) for out in batches for r in out])


def finish(x, regions, windows, region_windows, emb, change=None, one_speaker=None, utterances=None):
    """diarize/mod.rs finish: the turns of a clip from its windows' embeddings. The similarities
    default to the windows model's; embeddings on another model's scale bring their own."""
    change = CFG["change_similarity"] if change is None else change
    one_speaker = CFG["one_speaker_similarity"] if one_speaker is None else one_speaker
    # Cluster speaker-homogeneous segments (pooled windows), then windows move to the centroids.
    seg = segments(emb, region_windows, change)
    pooled = np.array([emb[seg == r].sum(0) for r in range(seg.max() + 1)])
    labels = cluster_auto(pooled, np.bincount(seg), one_speaker)[seg]
    n = labels.max() + 1
    if n >= 2:
        moved = np.array([nearest(e, [emb[labels == l].sum(0) for l in range(n)]) for e in emb])
        labels = renumber(moved) if len(set(moved.tolist())) == n else labels  # none swallowed whole
    mids = np.array([(s + e) // 2 for s, e in windows])
    for s, e in regions if utterances is None else utterances:  # an utterance mostly one label takes it whole
        idx = np.flatnonzero((mids >= s) & (mids < e))
        if len(idx) == 0:
            continue
        c = np.bincount(labels[idx], minlength=labels.max() + 1)
        top = len(c) - 1 - int(np.argmax(c[::-1]))
        if c[top] >= MAJORITY * len(idx):
            labels[idx] = top
    n, frames = labels.max() + 1, -(-len(x) // HOP)
    votes = np.zeros((frames, n), dtype=np.int32)
    for (s, e), l in zip(windows, labels):
        votes[s // HOP : min(-(-e // HOP), frames), l] += 1
    turns = []
    for s, e in regions:
        fs, fe = s // HOP, min(-(-e // HOP), frames)
        fl = absorb_short_runs(list(n - 1 - np.argmax(votes[fs:fe, ::-1], axis=1)))
        for a, b in runs_of(fl):
            t0, t1 = (min((fs + f) * HOP, len(x)) / RATE for f in (a, b))
            turns.append((max(t0, s / RATE), min(t1, e / RATE), chr(65 + int(fl[a]))))
    return join_pauses(turns)


def join_pauses(turns):
    """diarize/mod.rs join_pauses: one speaker's consecutive turns at most MAX_PAUSE_S apart, joined."""
    out = []
    for t in turns:
        if out and out[-1][2] == t[2] and t[0] - out[-1][1] <= MAX_PAUSE_S:
            out[-1] = (out[-1][0], max(out[-1][1], t[1]), t[2])
        else:
            out.append(t)
    return out


def runs_of(fl):
    edges = [0] + [i for i in range(1, len(fl)) if fl[i] != fl[i - 1]] + [len(fl)]
    return list(zip(edges, edges[1:]))


def absorb_short_runs(fl):
    """The shortest run under MIN_RUN frames takes the label before it (after it, at the start)."""
    while len(runs := runs_of(fl)) > 1 and (short := [r for r in runs if r[1] - r[0] < MIN_RUN]):
        k = runs.index(min(short, key=lambda r: r[1] - r[0]))
        (a, b), with_ = runs[k], fl[runs[k - 1][0] if k > 0 else runs[k + 1][0]]
        fl[a:b] = [with_] * (b - a)
    return fl


def embed(segs):
    """One embedding of a speaker's segments (featurizer.rs) or None, and the frames embedded."""
    m, segs = MODEL, [s for s in segs if len(s)]
    if m["chunking"].get("join_segments"):  # CAM++: joined fbank, unpadded pieces, each less its mean
        mel = np.concatenate([fbank.log_mel(s) for s in segs]) if segs else np.zeros((0, 0))
        n, p, step = len(mel), m["chunking"]["partial_frames"], m["chunking"]["step_frames"]
        if n < MIN_UNPADDED_FRAMES:
            return None, 0
        pieces = [mel[t : t + min(n, p)] for t in ([0] if n <= p else [*range(0, n - p, step), n - p])]
        total = sum(run(SPEAKERS, m, (q - q.mean(0))[None])[0] for q in pieces)
        return l2(total), sum(len(q) for q in pieces)
    if not segs:
        return None, 0
    feats = np.concatenate([partial_mels(levelled(s, m), m) for s in segs])  # padded, each segment alone
    total = sum(run(SPEAKERS, m, feats[i : i + BATCH]).sum(0) for i in range(0, len(feats), BATCH))
    return l2(total), feats.shape[0] * feats.shape[1]


def span(t, n):  # audio/mod.rs span_range: rounded half away from zero, clamped
    return min(int(max(t, 0.0) * RATE + 0.5), n)


def speakers_with_speech(turns):
    """turns.rs: turns of at least MIN_UTTERANCE_S by label, each embedded by its trimmed core."""
    groups = {}
    for t0, t1, who in (t for t in turns if t[1] - t[0] >= MIN_UTTERANCE_S):
        trim = min(EDGE_TRIM_S, max((t1 - t0 - CORE_MIN_S) / 2, 0.0))
        g = groups.setdefault(who, [0.0, []])
        g[0] += t1 - t0
        g[1].append((t0 + trim, t1 - trim))
    return groups.values()


def decide(speakers, rules):
    """decide.rs less look-alikes: best score over the threshold and the runner-up by the margin;
    each employee to its best-scoring speaker; the accepted speaker with most speech names the clip."""
    names, mat, accepted = list(PROFILES), np.array(list(PROFILES.values())), []
    for speech_s, e in speakers:
        scores = mat @ e
        order = np.argsort(-scores)
        best = scores[order[0]]
        margin = best - (max(scores[order[1]], 0.0) if len(order) > 1 else 0.0)
        if best >= rules["threshold"] and margin >= rules["margin"]:
            accepted.append((best, speech_s, names[order[0]]))
    kept, taken = [], set()
    for best, speech_s, who in sorted(accepted, key=lambda a: -a[0]):
        if who not in taken:
            taken.add(who)
            kept.append((speech_s, best, who))
    return max(kept)[2] if kept else "unknown"


def joined_speakers(x, groups):
    out = []
    for speech_s, spans in groups:
        e, _ = embed([x[span(a, len(x)) : max(span(a, len(x)), span(b, len(x)))] for a, b in spans])
        if e is not None:
            out.append((speech_s, e))
    return out


def der(ref, hyp, collar=0.25):
    """eval/der.rs: scored reference seconds and errors, on 10 ms frames, best one-to-one mapping."""
    frames = int(math.ceil(max([t[1] for t in ref + hyp] + [0]) / 0.01)) + 1

    def activity(turns):
        names = sorted({t[2] for t in turns})
        act = np.zeros((len(names), frames), bool)
        for t0, t1, who in turns:
            lo, hi = int(round(t0 / 0.01)), min(int(round(t1 / 0.01)), frames)
            act[names.index(who), min(lo, hi) : hi] = True
        return act

    scored = np.ones(frames, bool)
    for t in ref:
        for edge in t[:2]:
            scored[max(math.floor((edge - collar) / 0.01), 0) : min(math.ceil((edge + collar) / 0.01), frames)] = False
    r, h = activity(ref)[:, scored], activity(hyp)[:, scored]
    overlap = h.astype(int) @ r.T.astype(int)
    rows, cols = linear_sum_assignment(-overlap)
    n_ref, n_hyp = r.sum(0), h.sum(0)
    errors = np.abs(n_ref - n_hyp).sum() + np.minimum(n_ref, n_hyp).sum() - overlap[rows, cols].sum()
    return n_ref.sum(), errors


def reference_turns(row):
    out = []
    for part in row["segments"].split(";"):
        times, who = part.split(":")
        a, b = times.split("-")
        out.append((float(a), float(b), who))
    return out


def setup():
    """Loads the models and sessions the functions above read (module globals), warmed up."""
    global MODEL, RATE, WM, CFG, SPEAKERS, WINDOWS
    MODEL = load_manifest(args.model)
    RATE = MODEL["sample_rate"]
    windows_model = MODEL.get("diarizer", {}).get("model")
    WM = load_manifest(MODEL["_dir"] / windows_model) if windows_model else MODEL
    d = WM.get("diarizer", {})  # DiarizerConfig::for_model: the windows model's [diarizer] over the defaults
    CFG = {"window_samples": d["window_frames"] * WM["frontend"]["hop_length"] if "window_frames" in d else 25600,
           "step_s": d.get("step_s", 0.4), "change_similarity": d.get("change_similarity", 0.78),
           "one_speaker_similarity": d.get("one_speaker_similarity", 0.9)}
    two = WM is not MODEL or args.windows_onnx is not None
    # Python has no shared pool: two spinning sessions measured 15.0 s against 12.4 s not spinning.
    SPEAKERS = session(MODEL, spinning=not two)
    WINDOWS = session(WM, args.windows_onnx, spinning=not two) if two else SPEAKERS
    # Warm-up, outside the timings: librosa's lazy imports, onnxruntime's arenas.
    run(WINDOWS, WM, np.concatenate([partial_mels(np.zeros(CFG["window_samples"], np.float32), WM)] * BATCH))


def enroll(root):
    """The employees' profiles from root/<employee>/*: every sample embedded, as calibrate.rs keeps them."""
    global PROFILES
    PROFILES = {}
    for who in sorted(p for p in root.iterdir() if p.is_dir()):
        samples = [decode(f) for f in sorted(who.iterdir()) if f.suffix.lower() in AUDIO]
        # calibrate.rs leaves out the samples with under a second of speech.
        embs = [(embed([x])[0], sum(e - s for s, e in speech_regions(x)) / RATE) for x in samples]
        if embs := [e for e, speech_s in embs if e is not None and speech_s >= MIN_SAMPLE_SPEECH_S]:
            PROFILES[who.name] = l2(np.sum(embs, axis=0))


def main():
    setup()
    t0 = time.perf_counter()
    enroll(args.enroll)
    enroll_s = time.perf_counter() - t0
    print(f"enrolled {len(PROFILES)} employees in {enroll_s:.1f} s", file=sys.stderr)

    files = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in AUDIO)
    stats = dict.fromkeys(("audio_s", "decode_s", "diarize_s", "identify_s", "windows", "speaker_frames"), 0)
    decisions = {}
    t_loop = time.perf_counter()
    for i, f in enumerate(files):
        t = time.perf_counter()
        x = decode(f)
        t1 = time.perf_counter()
        turns, n_windows = diarize(x)
        t2 = time.perf_counter()
        speakers = []
        for speech_s, spans in speakers_with_speech(turns):
            e, n = embed([x[span(a, len(x)) : max(span(a, len(x)), span(b, len(x)))] for a, b in spans])
            stats["speaker_frames"] += n
            if e is not None:
                speakers.append((speech_s, e))
        decisions[f.stem] = decide(speakers, MODEL["decision"]) if PROFILES else "unknown"
        t3 = time.perf_counter()
        for k, v in zip(("audio_s", "decode_s", "diarize_s", "identify_s", "windows"),
                        (len(x) / RATE, t1 - t, t2 - t1, t3 - t2, n_windows)):
            stats[k] += v
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{len(files)} clips", file=sys.stderr)
    wall_s = time.perf_counter() - t_loop

    out = {"clips": len(files), "audio_s": stats.pop("audio_s"), "enroll_s": enroll_s, "wall_s": wall_s, **stats}
    out["windows_per_audio_s"] = out["windows"] / max(out["audio_s"], 1e-9)
    out["window_frames_per_audio_s"] = out["windows_per_audio_s"] * WM["chunking"]["partial_frames"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({**{k: round(v, 3) for k, v in out.items()}, "decisions": decisions}))


if __name__ == "__main__":
    main()
