//! Standalone mode: dispatcher → workers → reducer in one process over channels.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::{ClipProcessor, ClipResult, ClipTask, OutputDir, Summary, spawn_batcher};
use crate::diarize::LocalDiarizer;
use crate::matching::{Prior, ProfileSet, enroll};
use crate::model::{Encoders, ModelError};
use crate::source::{DateRange, LocalSource, SourceError};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub location_id: String,
    pub dates: DateRange,
    pub out_dir: PathBuf,
    pub force: bool,
    /// Clips in flight at once (VOICE_PARALLEL_WORKERS).
    pub parallel: usize,
    /// What every location's calibration starts from.
    pub prior: Prior,
    pub min_utterance_ms: u64,
    /// Larger clip files are `too_large` (VOICE_MAX_CLIP_MB).
    pub max_clip_bytes: u64,
    pub job_id: String,
    /// When the run must stop (`--timeout`, MAX_JOB_DURATION): what is stored by then stays.
    pub deadline: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "location {0} has no workers (voice_samples/ and workers.csv are empty): nothing to match against"
    )]
    NoWorkers(String),
    #[error("output folder {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
    #[error("timed out: {} of {planned} clip(s) done; their results are stored", summary.clips)]
    TimedOut { summary: Summary, planned: usize },
}

/// The dispatcher stage: the clips of every day of the range, less those already done.
pub fn plan_tasks(
    source: &LocalSource,
    opts: &RunOptions,
    out: &OutputDir,
) -> Result<(Vec<ClipTask>, usize), SourceError> {
    let mut tasks = Vec::new();
    let mut skipped = 0;
    for day in opts.dates.days() {
        for clip in source.list_clips(&opts.location_id, day)? {
            if !opts.force && out.is_done(&clip.key) {
                skipped += 1;
                continue;
            }
            tasks.push(ClipTask {
                job_id: opts.job_id.clone(),
                location_id: opts.location_id.clone(),
                clip,
                attempt: 1,
                transcript_id: None,
            });
        }
    }
    Ok((tasks, skipped))
}

/// Runs the job; `on_enrolled` sees the location's profiles once they are built (their issues
/// are for an alert), `on_result` each result as the reducer stores it (progress, logs).
pub fn run_standalone(
    source: &LocalSource,
    mut encoders: Encoders,
    opts: &RunOptions,
    on_enrolled: impl FnOnce(&ProfileSet),
    mut on_result: impl FnMut(&ClipResult),
) -> Result<Summary, StandaloneError> {
    let started = Instant::now();
    let output_err = |source| StandaloneError::Output {
        path: opts.out_dir.clone(),
        source,
    };
    let mut out = OutputDir::open(&opts.out_dir).map_err(output_err)?;
    let (tasks, skipped) = plan_tasks(source, opts, &out)?;
    let mut summary = Summary {
        skipped,
        ..Summary::default()
    };
    if tasks.is_empty() {
        summary.wall_s = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    let workers = source.workers(&opts.location_id)?;
    let enrollment = enroll(&mut encoders.speakers, &workers, opts.prior)?;
    for e in &enrollment.unreadable {
        tracing::warn!(error = %e, "voice sample skipped");
    }
    if enrollment.profiles.is_empty() {
        return Err(StandaloneError::NoWorkers(opts.location_id.clone()));
    }
    let voices = enrollment.into_set();
    log_enrollment(&voices);
    out.write_profiles(&voices).map_err(output_err)?;
    on_enrolled(&voices);

    let diarizer = LocalDiarizer::for_model(encoders.windows_manifest());
    let (batcher, batcher_thread) =
        spawn_batcher(encoders).map_err(|e| StandaloneError::Internal(e.to_string()))?;
    let processor = Arc::new(ClipProcessor {
        batcher,
        diarizer,
        min_utterance_ms: opts.min_utterance_ms,
        max_clip_bytes: opts.max_clip_bytes,
    });
    let profiles = Arc::new(voices);
    let planned = tasks.len();
    let stop = Arc::new(AtomicBool::new(false));
    let (task_tx, task_rx) = mpsc::channel::<ClipTask>();
    let task_rx = Arc::new(Mutex::new(task_rx));
    let (result_tx, result_rx) = mpsc::channel::<ClipResult>();
    let mut threads = Vec::new();
    for i in 0..opts.parallel.max(1).min(tasks.len()) {
        let (rx, tx, processor, profiles, stop) = (
            Arc::clone(&task_rx),
            result_tx.clone(),
            Arc::clone(&processor),
            Arc::clone(&profiles),
            Arc::clone(&stop),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("clip-worker-{i}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|rx| rx.recv().map_err(|_| ()));
                    let Ok(task) = next else { break };
                    let path = Path::new(&task.clip.location);
                    if tx.send(processor.process(&task, path, &profiles)).is_err() {
                        break;
                    }
                }
            });
        threads.push(spawned.map_err(|e| StandaloneError::Internal(e.to_string()))?);
    }
    drop(result_tx);
    drop(processor);
    for task in tasks {
        // Workers only stop when the channel closes, so this cannot fail while they run.
        let _ = task_tx.send(task);
    }
    drop(task_tx);

    // The reducer stage: store each result as it arrives.
    let mut store_error = None;
    loop {
        let next = match opts.deadline {
            Some(deadline) => {
                result_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => result_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let result = match next {
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                // Clips in hand are left to finish unobserved: the process is about to exit.
                stop.store(true, Ordering::Relaxed);
                summary.wall_s = started.elapsed().as_secs_f64();
                return match store_error {
                    Some(e) => Err(output_err(e)),
                    None => Err(StandaloneError::TimedOut { summary, planned }),
                };
            }
        };
        if store_error.is_none()
            && let Err(e) = out.upsert(&result)
        {
            store_error = Some(e);
        }
        summary.add(&result);
        on_result(&result);
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = batcher_thread.join();
    if let Some(e) = store_error {
        return Err(output_err(e));
    }
    summary.wall_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The location's calibration and every enrollment issue, as log lines.
pub fn log_enrollment(voices: &ProfileSet) {
    let c = &voices.calibration;
    tracing::info!(
        workers = voices.profiles.len(),
        threshold = c.rules.threshold,
        margin = c.rules.margin,
        "voice profiles enrolled: {}",
        c.explain()
    );
    for p in voices.profiles.iter().filter(|p| p.weak_profile) {
        tracing::warn!(worker = %p.name, speech_s = p.speech_s, "weak profile: under 3 s of voice samples");
    }
    for issue in c.issues() {
        tracing::warn!("enrollment: {issue}");
    }
}
