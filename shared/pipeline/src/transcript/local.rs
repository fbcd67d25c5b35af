//! The local diarizer as a [`Transcriber`]: no network; its windows are embedded by the shared
//! batcher, in batches with the other clips in flight.

use std::path::Path;

use async_trait::async_trait;

use super::{Submitted, TranscribeError, Transcriber};
use crate::BatcherHandle;
use crate::clip::Decoded;
use engine::diarize::{EDGE_TRIM_S, LocalDiarizer};

pub struct LocalTurns {
    diarizer: LocalDiarizer,
    batcher: BatcherHandle,
}

impl LocalTurns {
    /// The diarizer tuned for the batcher's windows model (its manifest's `[diarizer]`).
    pub fn new(batcher: BatcherHandle) -> Self {
        Self {
            diarizer: LocalDiarizer::for_model(batcher.windows_manifest()),
            batcher,
        }
    }
}

#[async_trait]
impl Transcriber for LocalTurns {
    fn name(&self) -> &'static str {
        "local"
    }

    fn edge_trim_s(&self) -> f64 {
        EDGE_TRIM_S
    }

    async fn submit(&self, _path: &Path, audio: &Decoded) -> Result<Submitted, TranscribeError> {
        let (diarizer, batcher) = (self.diarizer.clone(), self.batcher.clone());
        let audio = audio.clone();
        // Voice activity and clustering are CPU work, and the batcher's answer is waited for.
        let turns = tokio::task::spawn_blocking(move || {
            let plan = diarizer.plan_samples(&audio.samples, audio.sample_rate);
            let windows = plan.windows.iter().map(|&w| vec![w]).collect();
            let embeddings: Vec<Vec<f32>> = batcher
                .embed_windows(&audio.samples, windows)?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            Ok::<_, String>(diarizer.finish(&plan, &embeddings))
        })
        .await
        .map_err(|e| TranscribeError::permanent("internal", format!("diarizing stopped: {e}")))?
        // The model failing says nothing about the clip: worth another try.
        .map_err(|e| TranscribeError::transient("model", e))?;
        Ok(Submitted::done(turns))
    }
}
