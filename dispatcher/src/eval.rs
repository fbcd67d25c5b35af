//! `dispatcher eval`: enroll a labelled set, decide every clip, print accuracy and the EER.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use app::config::Settings;
use engine::eval::Dataset;
use pipeline::ClipProcessor;
use pipeline::eval::{EvalOptions, Report, evaluate};
use pipeline::transcript::{LabelledTurns, LocalTurns, Transcriber};

use crate::Failure;
use crate::cli::EvalArgs;

pub fn run(config: Option<&Path>, args: &EvalArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    if !args.data.is_dir() {
        return Err(
            Failure::Usage(format!("--data {}: no such folder", args.data.display())).into(),
        );
    }
    let dataset = Dataset::load(&args.data).map_err(|e| Failure::Usage(e.to_string()))?;
    let encoders = settings.encoders().context("loading the speaker model")?;
    let options = EvalOptions {
        prior: settings.prior(encoders.speakers.manifest()),
        // Enough clips at once to fill the batcher's batches.
        in_flight: 8,
    };
    let (batcher, _thread) = pipeline::spawn_batcher(encoders).context("starting the batcher")?;
    let transcriber: Arc<dyn Transcriber> = if args.oracle_turns {
        Arc::new(LabelledTurns::new(&dataset.clips))
    } else {
        Arc::new(LocalTurns::new(batcher.clone()))
    };
    let processor = Arc::new(ClipProcessor {
        batcher,
        min_utterance_ms: settings.voice_min_utterance_ms,
        max_clip_bytes: settings.max_clip_bytes(),
    });
    let runtime = app::service::runtime().context("starting the runtime")?;
    let report = runtime
        .block_on(evaluate(&dataset, processor, transcriber, options))
        .map_err(|e| anyhow::anyhow!("the speaker model failed: {e}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &Report) {
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    println!(
        "model {}  turns {}  prior threshold {:.3}  margin {:.3}",
        r.model, r.turns, r.threshold, r.margin
    );
    let c = &r.calibration;
    println!(
        "location: {} (margin {:.3}; impostor mean {}, spread {}, {} trials)",
        c.explain(),
        c.rules.margin,
        c.impostor_mean.map_or("-".into(), |v| format!("{v:.3}")),
        c.impostor_sd.map_or("-".into(), |v| format!("{v:.3}")),
        c.impostor_trials
    );
    for issue in c.issues() {
        println!("  enrollment: {issue}");
    }
    println!();
    println!("  clips                   {}", r.clips);
    println!("  open-set accuracy       {}", pct(r.accuracy));
    println!("  closed-set accuracy     {}", pct(r.closed_set_accuracy));
    println!(
        "  false accepts (none)    {} of {} ({})",
        r.false_accepts,
        r.none_clips,
        pct(r.false_accept_rate)
    );
    println!("  wrong names             {}", r.wrong_names);
    match (r.eer, r.eer_threshold) {
        (Some(eer), Some(t)) => println!(
            "  EER                     {} at threshold {t:.3} ({} target, {} non-target trials)",
            pct(eer),
            r.target_trials,
            r.nontarget_trials
        ),
        _ => println!("  EER                     n/a (needs target and non-target trials)"),
    }
    if let Some(der) = r.der {
        println!(
            "  DER                     {} (collar 0.25 s, overlap scored)",
            pct(der)
        );
    }
    println!();
    println!(
        "  {:<20} {:>6} {:>8} {:>9}",
        "condition", "clips", "correct", "accuracy"
    );
    for (condition, s) in &r.per_condition {
        println!(
            "  {condition:<20} {:>6} {:>8} {:>9}",
            s.clips,
            s.correct,
            pct(s.accuracy)
        );
    }
    if !r.weak_profiles.is_empty() {
        println!();
        println!(
            "  weak profiles (under 3 s of samples): {}",
            r.weak_profiles.join(", ")
        );
    }
    let wrong: Vec<_> = r.results.iter().filter(|o| !o.correct).collect();
    if !wrong.is_empty() {
        println!();
        println!(
            "  {:<12} {:<16} {:<14} {:<14} {:>7} {:>7}",
            "clip", "condition", "expected", "decided", "score", "margin"
        );
        for o in wrong {
            let name = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
            let num = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:.3}"));
            println!(
                "  {:<12} {:<16} {:<14} {:<14} {:>7} {:>7}{}",
                o.clip,
                o.condition,
                name(&o.expected),
                name(&o.decided),
                num(o.score.or(o.best_score)),
                num(o.margin),
                o.error
                    .as_deref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default()
            );
        }
    }
}
