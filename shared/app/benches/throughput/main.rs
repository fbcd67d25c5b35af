//! Throughput on a folder of clips beside the Python references: first the whole standalone
//! pipeline (see `standalone.rs`), then GE2E's embedding stage by stage.
//!
//! `make bench` (or `cargo bench -p app --bench throughput`). Environment:
//! - `VOICE_BENCH_CLIPS`: the clips (default: the dev set beside the checkout, else the demo clips)
//! - `VOICE_BENCH_THREADS`: threads for every stage, Rust and Python (default 2)
//! - `VOICE_BENCH_PYTHON`: the Python that runs models/reference/{pipeline,bench}_reference.py
//!   (default .cache/venv/bin/python, made by `make venv`; unset and absent → Rust only)
//! - `VOICE_BENCH_BATCHES`: the batch sizes of the sweep (default 1,8,16,32,64,128; on a GPU
//!   try 64,256,1024,4096)
//! - `VOICE_DEVICE=cuda` and `ORT_DYLIB_PATH` (the onnxruntime-gpu library): the model on the GPU
//!
//! Each clip is embedded as one utterance, as the reference does. Figures are audio seconds per
//! wall second (× real time), the best of three runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Instant;

use engine::audio::{Audio, decode_file};
use engine::model::{Device, EncoderOptions, Partials, SpeakerEncoder, load_encoder};

mod standalone;

const RUNS: usize = 3;

fn main() {
    // The checkout: this crate is shared/app.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let clips_dir = std::env::var_os("VOICE_BENCH_CLIPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let dev = root.join("../shared/data/speakerid-dev/clips");
            if dev.is_dir() {
                dev
            } else {
                root.join("demo/8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e/clips/2025-10-06")
            }
        });
    let threads: usize = std::env::var("VOICE_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&clips_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", clips_dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();

    let manifest = root.join("models/ge2e/ge2e.toml");
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/onnxruntime/libonnxruntime.so.1.31.1"));
    let device = match std::env::var("VOICE_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda,
        _ => Device::Cpu,
    };
    standalone::compare(&root, &clips_dir, &library, threads, device);

    let mut encoder = load_encoder(
        &manifest,
        Some(&library),
        EncoderOptions {
            threads,
            max_batch: 64,
            device,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let sweep: Vec<usize> = std::env::var("VOICE_BENCH_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .filter(|b: &Vec<usize>| !b.is_empty())
        .unwrap_or_else(|| vec![1, 8, 16, 32, 64, 128]);

    let decoded: Vec<Audio> = files
        .iter()
        .map(|f| decode_file(f, 16000).expect("decodable clip"))
        .collect();
    let audio_s: f64 = decoded.iter().map(Audio::duration_s).sum();
    println!(
        "{} clips, {:.1} min of audio, {threads} threads, model {} on {:?}",
        files.len(),
        audio_s / 60.0,
        encoder.manifest().id,
        encoder.options().device
    );

    let decode_s = best(|| {
        parallel(&files, threads, |f| {
            decode_file(f, 16000).expect("decodable clip");
        })
    });
    let (frontend_s, batches) = {
        let mut batches = Vec::new();
        let t = best(|| {
            batches = featurize(&encoder, &decoded, 64);
        });
        (t, batches)
    };
    let partials: usize = batches.iter().map(Partials::len).sum();
    let onnx_s = best(|| {
        for b in &batches {
            encoder.run(b).expect("model run");
        }
    });
    let e2e_s = best(|| end_to_end(&mut encoder, &files));

    println!();
    println!("batch sweep, ONNX Runtime alone ({partials} partials):");
    for &size in &sweep {
        let sized = featurize(&encoder, &decoded, size);
        let t = best(|| {
            for b in &sized {
                encoder.run(b).expect("model run");
            }
        });
        println!(
            "  batch {size:>3}: {:>6.0} partials/s  {:>6.0}× real time",
            partials as f64 / t,
            audio_s / t
        );
    }

    let python = python_reference(&root, &clips_dir, threads);
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "stage (× real time)", "Rust", "Python ref", "ratio"
    );
    let row = |name: &str, rust_s: f64, py_s: Option<f64>| {
        let py = py_s.map(|p| audio_s / p);
        println!(
            "{name:<34} {:>13.0}× {:>14} {:>8}",
            audio_s / rust_s,
            py.map_or("-".into(), |v| format!("{v:.0}×")),
            py_s.map_or("-".into(), |p| format!("{:.2}", p / rust_s)),
        );
    };
    let field = |k: &str| {
        python
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_f64)
    };
    row("decode + resample", decode_s, field("decode_s"));
    row(
        "front-end (mel + partials)",
        frontend_s,
        field("frontend_s"),
    );
    row("ONNX Runtime alone", onnx_s, field("onnx_s"));
    row("clip → embedding, end to end", e2e_s, field("end_to_end_s"));
    println!();
    println!(
        "Rust end to end is {:.1} % over ONNX Runtime alone (front-end and glue); {partials} partials, batches of 64",
        100.0 * (e2e_s / onnx_s - 1.0)
    );
}

fn best(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn parallel<T: Sync>(items: &[T], threads: usize, f: impl Fn(&T) + Sync) {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let f = &f;
            s.spawn(move || part.iter().for_each(f));
        }
    });
}

/// All partials of all clips, in batches of `size`.
fn featurize(encoder: &SpeakerEncoder, clips: &[Audio], size: usize) -> Vec<Partials> {
    let featurizer = encoder.featurizer();
    let mut scratch = featurizer.scratch();
    let mut batches = vec![Partials::default()];
    for (i, clip) in clips.iter().enumerate() {
        featurizer.push_segment(
            &clip.samples,
            i,
            &mut scratch,
            batches.last_mut().expect("one batch"),
        );
        while batches.last().is_some_and(|b| b.len() >= size) {
            let full = batches.pop().expect("one batch");
            let (head, tail) = split(full, size, featurizer.manifest());
            batches.push(head);
            batches.push(tail);
        }
    }
    batches.retain(|b| !b.is_empty());
    batches
}

fn split(mut p: Partials, at: usize, m: &engine::model::Manifest) -> (Partials, Partials) {
    let per = m.chunking.partial_frames * m.frontend.n_mels;
    let tail = Partials {
        features: p.features.split_off(at * per),
        valid_frames: p.valid_frames.split_off(at),
        owner: p.owner.split_off(at),
    };
    (p, tail)
}

/// Decode and front-end on one thread, feeding full batches to ONNX Runtime on this one: the
/// pipeline the worker runs.
fn end_to_end(encoder: &mut SpeakerEncoder, files: &[PathBuf]) {
    let (tx, rx) = mpsc::sync_channel::<Partials>(2);
    let dim = encoder.manifest().embedding_size;
    let mut sums = vec![vec![0.0f64; dim]; files.len()];
    let featurizer = std::sync::Arc::clone(encoder.featurizer());
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut scratch = featurizer.scratch();
            let mut batch = Partials::default();
            for (i, f) in files.iter().enumerate() {
                let audio = decode_file(f, 16000).expect("decodable clip");
                featurizer.push_segment(&audio.samples, i, &mut scratch, &mut batch);
                if batch.len() >= 64 && tx.send(std::mem::take(&mut batch)).is_err() {
                    return;
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        });
        for batch in rx {
            run_and_pool(encoder, &batch, &mut sums);
        }
    });
    std::hint::black_box(sums);
}

fn run_and_pool(encoder: &mut SpeakerEncoder, batch: &Partials, sums: &mut [Vec<f64>]) {
    let dim = encoder.manifest().embedding_size;
    let out = encoder.run(batch).expect("model run");
    for (row, &owner) in out.chunks_exact(dim).zip(&batch.owner) {
        sums[owner]
            .iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
}

fn python_reference(root: &Path, clips: &Path, threads: usize) -> Option<serde_json::Value> {
    let threads = threads.to_string();
    python_script(
        root,
        "bench_reference.py",
        &[
            "--clips".as_ref(),
            clips.as_os_str(),
            "--threads".as_ref(),
            threads.as_ref(),
        ],
    )
}

/// Runs `models/reference/<script>` with `args` and reads the one JSON object it prints; `None`
/// (with its error) when there is no Python or it fails.
fn python_script(root: &Path, script: &str, args: &[&OsStr]) -> Option<serde_json::Value> {
    let python = std::env::var_os("VOICE_BENCH_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(root.join(".cache/venv/bin/python")).filter(|p| p.is_file()))?;
    let out = Command::new(&python)
        .arg(root.join("models/reference").join(script))
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{script} failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}
