//! `dispatcher run`: a location's clips for a date or range. Without AMQP_URL the dispatcher,
//! worker and reducer stages run here, over channels (standalone mode); with it, the clips are
//! published for the workers (see `publish.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use shared::config::Settings;
use shared::model::Manifest;
use shared::pipeline::{
    ClipResult, ClipTask, OutputDir, RunOptions, Summary, plan_tasks, run_standalone,
};
use shared::source::{DateRange, LocalSource, is_uuid, new_job_id};

use crate::Failure;
use crate::cli::RunArgs;

pub fn run(config: Option<&Path>, args: &RunArgs) -> anyhow::Result<()> {
    // Every argument is checked before anything is read or contacted.
    if !is_uuid(&args.location_id) {
        return Err(
            Failure::Usage(format!("LOCATION_ID `{}` is not a UUID", args.location_id)).into(),
        );
    }
    let dates = DateRange::parse(&args.dates).map_err(|e| Failure::Usage(format!("DATE {e}")))?;
    let settings = Settings::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    if !settings.clips_folder_is_dated() && dates.days().len() > 1 {
        return Err(Failure::Usage(
            "VOICE_CLIPS_FOLDER has no {date}, so it cannot tell one day's clips from another's: \
             give one DATE, or a pattern such as Clips_{date}_*"
                .into(),
        )
        .into());
    }
    let location = args.location_id.to_ascii_lowercase();
    if let Some(amqp_url) = settings.amqp_url.clone() {
        let source = settings
            .clip_source()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        return crate::publish::run(&settings, amqp_url, source, &location, dates, args);
    }
    if settings.voice_source != "local" {
        return Err(Failure::Usage(format!(
            "VOICE_SOURCE={} needs the workers: set AMQP_URL (standalone mode reads VOICE_LOCAL_ROOT)",
            settings.voice_source
        ))
        .into());
    }
    let source = LocalSource::new(&settings.voice_local_root);
    let manifest = Manifest::load(&settings.model_path()).context("reading the model manifest")?;
    let opts = RunOptions {
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(&location)),
        location_id: location,
        dates,
        force: args.force,
        parallel: settings.voice_parallel_workers,
        rules: settings.rules(&manifest),
        min_utterance_ms: settings.voice_min_utterance_ms,
        job_id: new_job_id(),
    };

    if args.dry_run {
        let out = OutputDir::open(&opts.out_dir)
            .with_context(|| format!("reading {}", opts.out_dir.display()))?;
        let (tasks, skipped) = plan_tasks(&source, &opts, &out)?;
        print_dry_run(&tasks, skipped, "written");
        return Ok(());
    }

    let encoder = settings.encoder().context("loading the speaker model")?;
    tracing::info!(job = %opts.job_id, location = %opts.location_id, dates = %opts.dates, "job started");
    let summary = run_standalone(&source, encoder, &opts, ClipResult::log)?;
    print_summary(&summary, &opts);
    Ok(())
}

/// What `--dry-run` shows: clip, transaction, size; then what was left alone.
pub fn print_dry_run(tasks: &[ClipTask], skipped: usize, nothing: &str) {
    println!("{:<56} {:<38} {:>10}", "clip", "transaction", "bytes");
    for t in tasks {
        println!(
            "{:<56} {:<38} {:>10}",
            t.clip.name,
            t.clip.transaction_id.as_deref().unwrap_or("-"),
            t.clip.size
        );
    }
    println!(
        "{} clip(s) would be processed, {skipped} already done (--force redoes them); nothing was {nothing}",
        tasks.len()
    );
}

/// Clips per outcome: matched, no match, no speech, failed.
pub fn print_outcomes<N: std::fmt::Display>(counts: [N; 4]) {
    for (label, n) in ["matched", "no match", "no speech", "failed"]
        .iter()
        .zip(counts)
    {
        println!("  {label:<14} {n:>6}");
    }
}

fn print_summary(s: &Summary, opts: &RunOptions) {
    println!();
    println!(
        "job {}  location {}  dates {}",
        opts.job_id, opts.location_id, opts.dates
    );
    println!(
        "  clips          {:>6}   (skipped, already done: {})",
        s.clips, s.skipped
    );
    print_outcomes([s.matched, s.no_match, s.no_speech, s.failed]);
    for (worker, n) in &s.per_worker {
        println!("    {worker:<20} {n:>4}");
    }
    println!("  audio          {:>9.3} h", s.audio_s / 3600.0);
    println!(
        "  wall time      {:>9.1} s  ({:.0}x real time)",
        s.wall_s,
        s.speed()
    );
    println!(
        "  results        {}",
        opts.out_dir.join("results.jsonl").display()
    );
}
