//! The services as the settings describe them: what `worker`, `reducer` and `dispatcher run`
//! build before they run.

use std::sync::Arc;

use adapters::assemblyai::AssemblyAi;
use adapters::store::Store;
use ops::Alerter;
use pipeline::profile_store::{MemoryProfileStore, ProfileStore};
use pipeline::queue::Connect;
use pipeline::services::worker::WorkerService;
use pipeline::source::ClipSource;
use pipeline::{ClipProcessor, ResultSink};

use crate::config::Settings;

/// Why the worker service could not be built from the settings.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct SetupError {
    what: &'static str,
    message: String,
}

/// `what` failed with `e`.
fn setup(what: &'static str, e: impl std::fmt::Display) -> SetupError {
    SetupError {
        what,
        message: e.to_string(),
    }
}

/// The service the settings describe: the speaker model behind its batcher, turns from the
/// local diarizer or AssemblyAI, VOICE_PARALLEL_WORKERS clips in flight. Also returns the
/// batcher's thread (the worker is not alive without it).
pub fn worker_service(
    settings: &Settings,
    queues: Arc<dyn Connect>,
    source: Arc<dyn ClipSource>,
    store: Option<Store>,
    alerter: Alerter,
) -> Result<(WorkerService, std::thread::JoinHandle<()>), SetupError> {
    let encoders = settings
        .encoders()
        .map_err(|e| setup("loading the speaker model", e))?;
    let manifest = encoders.speakers.manifest().clone();
    tracing::info!(model = %encoders.describe(), "speaker model loaded");
    let (batcher, batcher_thread) =
        pipeline::spawn_batcher(encoders).map_err(|e| setup("starting the batcher", e))?;
    let processor = ClipProcessor {
        batcher,
        min_utterance_ms: settings.voice_min_utterance_ms,
        max_clip_bytes: settings.max_clip_bytes(),
    };
    let prefetch = u16::try_from(settings.voice_parallel_workers).unwrap_or(u16::MAX);
    let prior = settings.prior(&manifest);
    let profiles: Arc<dyn ProfileStore> = match &store {
        Some(store) => Arc::new(store.clone()),
        None => Arc::new(MemoryProfileStore::default()),
    };
    let sink = store.map(|s| Arc::new(s) as Arc<dyn ResultSink>);
    let mut service =
        WorkerService::new(queues, source, profiles, sink, processor, prior, prefetch);
    service.alerter = alerter;
    if let Some(config) = settings.assemblyai() {
        tracing::info!(base_url = %config.base_url, "speaker turns from AssemblyAI");
        let transcriber = AssemblyAi::new(config).map_err(|e| setup("AssemblyAI client", e))?;
        service.transcriber = Arc::new(transcriber);
        service.delete_transcripts = settings.aai_delete_transcripts;
    }
    Ok((service, batcher_thread))
}
