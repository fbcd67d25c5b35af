//! Sweeps the local diarizer's similarities on a labelled set: DER and how often the speaker
//! count is right, for every pair of one-speaker and change similarities given. Window
//! embeddings are computed once per clip, by the model whose manifest `MODEL` names (default
//! GE2E), with its `[diarizer]` windows.
//!
//! `MODEL=models/campplus/campplus.toml cargo run --release -p engine --example tune_diarizer -- \
//!     DIR --one 0.7,0.8 --change 0.4,0.5`
//!
//! VAD_SHARE / VAD_RISE / VAD_BRIDGE override the speech detector for the sweep.

use std::path::{Path, PathBuf};

use engine::audio::decode_file;
use engine::diarize::{DiarizerConfig, LocalDiarizer};
use engine::eval::{Dataset, DerParts, der};
use engine::model::{EncoderOptions, Manifest, load_encoder};

fn list(args: &[String], flag: &str, default: f32) -> Vec<f32> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || vec![default],
            |v| v.split(',').filter_map(|x| x.parse().ok()).collect(),
        )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: tune_diarizer DIR [--one S,...] [--change S,...]");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = std::env::var("MODEL").map_or_else(
        |_| root.join("models/ge2e/ge2e.toml"),
        |m| root.join(PathBuf::from(m)),
    );
    let manifest = Manifest::load(&model).unwrap_or_else(|e| panic!("{e}"));
    let model = manifest.diarizer_manifest().unwrap_or(model);
    let mut encoder = load_encoder(
        &model,
        Some(&root.join(".cache/onnxruntime/libonnxruntime.so.1.31.1")),
        EncoderOptions {
            threads: 2,
            max_batch: 64,
            ..EncoderOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data = Dataset::load(Path::new(dir)).unwrap_or_else(|e| panic!("{e}"));
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    let mut base = DiarizerConfig::for_model(encoder.manifest());
    base.vad.rise_share = env("VAD_SHARE").unwrap_or(base.vad.rise_share);
    base.vad.min_rise_db = env("VAD_RISE").unwrap_or(base.vad.min_rise_db);
    base.vad.bridge_frames = env("VAD_BRIDGE").map_or(base.vad.bridge_frames, |v| v as usize);
    let planner = LocalDiarizer::new(base);
    let mut clips = Vec::new();
    for clip in &data.clips {
        let audio = decode_file(&clip.path, 16000).unwrap_or_else(|e| panic!("{e}"));
        let plan = planner.plan(&audio);
        let emb: Vec<Vec<f32>> = encoder
            .embed(&plan.requests(&audio))
            .expect("embed")
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let mut names: Vec<&str> = clip.turns.iter().map(|t| t.speaker.as_str()).collect();
        names.sort();
        names.dedup();
        clips.push((clip, plan, emb, names.len()));
    }
    for one in list(&args, "--one", base.one_speaker_similarity) {
        for change in list(&args, "--change", base.change_similarity) {
            let d = LocalDiarizer::new(DiarizerConfig {
                one_speaker_similarity: one,
                change_similarity: change,
                ..base
            });
            let mut parts = DerParts::default();
            let mut right = 0;
            for (clip, plan, emb, n_ref) in &clips {
                let turns = d.finish(plan, emb);
                let mut names: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
                names.sort();
                names.dedup();
                right += usize::from(names.len() == *n_ref);
                parts.add(der(&clip.turns, &turns, 0.25));
            }
            println!(
                "one {one:.2} change {change:.2}: DER {:.1} % (miss {:.1} fa {:.1} conf {:.1} s), speaker count right {right}/{}",
                100.0 * parts.der(),
                parts.missed_s,
                parts.false_alarm_s,
                parts.confusion_s,
                clips.len(),
            );
        }
    }
}
