//! Sweeps the local diarizer's one-speaker similarity (and, with CS=…, its change similarity) on a labelled set: DER and how often the
//! speaker count is right. Window embeddings are computed once per clip.
//!
//! `cargo run --release -p shared --example tune_diarizer -- DIR [threshold ...]`

use std::path::Path;

use shared::audio::decode_file;
use shared::diarize::{DiarizerConfig, LocalDiarizer};
use shared::eval::{Dataset, DerParts, der};
use shared::model::{EncoderOptions, load_encoder};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: tune_diarizer DIR [threshold ...]");
        std::process::exit(2);
    };
    let thresholds: Vec<f32> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![0.6, 0.65, 0.7, 0.75, 0.8, 0.85]
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut encoder = load_encoder(
        &root.join("models/ge2e/ge2e.toml"),
        Some(&root.join(".cache/onnxruntime/libonnxruntime.so.1.31.1")),
        EncoderOptions {
            threads: 2,
            max_batch: 64,
            ..EncoderOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data = Dataset::load(Path::new(dir)).unwrap_or_else(|e| panic!("{e}"));
    // VAD_SHARE / VAD_RISE / VAD_BRIDGE override the speech detector for the sweep.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    let mut vad = DiarizerConfig::default().vad;
    vad.rise_share = env("VAD_SHARE").unwrap_or(vad.rise_share);
    vad.min_rise_db = env("VAD_RISE").unwrap_or(vad.min_rise_db);
    vad.bridge_frames = env("VAD_BRIDGE").map_or(vad.bridge_frames, |v| v as usize);
    let base = LocalDiarizer::new(DiarizerConfig {
        vad,
        ..DiarizerConfig::default()
    });
    let window =
        encoder.manifest().chunking.partial_frames * encoder.manifest().frontend.hop_length;
    let mut clips = Vec::new();
    for clip in &data.clips {
        let audio = decode_file(&clip.path, 16000).unwrap_or_else(|e| panic!("{e}"));
        let plan = base.plan(&audio, window);
        let emb: Vec<Vec<f32>> = encoder
            .embed(&plan.requests(&audio))
            .expect("embed")
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let n_ref = {
            let mut names: Vec<&str> = clip.turns.iter().map(|t| t.speaker.as_str()).collect();
            names.sort();
            names.dedup();
            names.len()
        };
        clips.push((clip, plan, emb, n_ref));
    }
    for t in thresholds {
        let cs: f32 = std::env::var("CS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DiarizerConfig::default().change_similarity);
        let d = LocalDiarizer::new(DiarizerConfig {
            one_speaker_similarity: t,
            change_similarity: cs,
            ..DiarizerConfig::default()
        });
        let mut parts = DerParts::default();
        let mut right = 0;
        let mut worst = Vec::new();
        for (clip, plan, emb, n_ref) in &clips {
            let turns = d.finish(plan, emb);
            let mut names: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
            names.sort();
            names.dedup();
            right += usize::from(names.len() == *n_ref);
            let p = der(&clip.turns, &turns, 0.25);
            worst.push((
                p.der(),
                clip.name.clone(),
                names.len(),
                plan.regions.len(),
                clip.turns.len(),
            ));
            parts.add(p);
        }
        worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!(
            "threshold {t:.2}: DER {:.1} % (miss {:.1} fa {:.1} conf {:.1} s), speaker count right {right}/{}; worst {:?}",
            100.0 * parts.der(),
            parts.missed_s,
            parts.false_alarm_s,
            parts.confusion_s,
            clips.len(),
            &worst[..6.min(worst.len())]
        );
    }
}
