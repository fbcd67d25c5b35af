//! One thread owns the ONNX sessions (the speaker model, and the diarizer's windows model when
//! it is another); the clips in flight send it their audio and it runs the embeddings of
//! everything waiting in shared batches.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use engine::model::{EmbedRequest, Embedding, Encoders, Manifest, SpeakerEncoder};

/// Per request, its segments as sample ranges of the clip (one embedding per request).
pub type Spans = Vec<Vec<(usize, usize)>>;
type Reply = Result<Vec<Option<Embedding>>, String>;

/// Audio per ONNX batch, at most (unless one clip alone needs more): about 60 partials, past
/// which ONNX Runtime's throughput no longer grows, while every clip in the batch waits for
/// all of it.
const BATCH_AUDIO_S: f64 = 48.0;

/// The clip's samples are shared, not copied: a long clip is held once.
struct Job {
    samples: Arc<Vec<f32>>,
    requests: Spans,
    /// For the diarizer's windows model rather than the speaker model.
    windows: bool,
    reply: mpsc::Sender<Reply>,
}

impl Job {
    /// Samples this job asks to embed.
    fn audio_len(&self) -> usize {
        self.requests
            .iter()
            .flatten()
            .map(|&(s, e)| e.saturating_sub(s))
            .sum()
    }
}

/// A cheap, cloneable way to the batcher; the batcher stops when the last handle is dropped.
#[derive(Clone)]
pub struct BatcherHandle {
    tx: mpsc::Sender<Job>,
    manifest: Manifest,
    windows_manifest: Manifest,
}

impl BatcherHandle {
    /// The speaker model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest of the model that embeds the diarizer's windows.
    pub fn windows_manifest(&self) -> &Manifest {
        &self.windows_manifest
    }

    /// Embeds borrowed requests (voice samples at enrollment), copied once into one buffer.
    pub fn embed_requests(&self, requests: &[EmbedRequest<'_>]) -> Reply {
        let total = requests
            .iter()
            .flat_map(|r| &r.segments)
            .map(|s| s.len())
            .sum();
        let mut samples = Vec::with_capacity(total);
        let spans = requests
            .iter()
            .map(|r| {
                r.segments
                    .iter()
                    .map(|segment| {
                        let start = samples.len();
                        samples.extend_from_slice(segment);
                        (start, samples.len())
                    })
                    .collect()
            })
            .collect();
        self.embed(&Arc::new(samples), spans)
    }

    /// Embeds `requests` (ranges of `samples`) with the speaker model, waiting for a batch
    /// they share with other clips.
    pub fn embed(&self, samples: &Arc<Vec<f32>>, requests: Spans) -> Reply {
        self.send(samples, requests, false)
    }

    /// Embeds the diarizer's windows with the windows model.
    pub fn embed_windows(&self, samples: &Arc<Vec<f32>>, windows: Spans) -> Reply {
        self.send(samples, windows, true)
    }

    fn send(&self, samples: &Arc<Vec<f32>>, requests: Spans, windows: bool) -> Reply {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Job {
                samples: Arc::clone(samples),
                requests,
                windows,
                reply,
            })
            .map_err(|_| "the embedding batcher has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the embedding batcher stopped before answering".to_string())?
    }
}

/// Starts the batcher thread with `encoders`.
pub fn spawn_batcher(mut encoders: Encoders) -> std::io::Result<(BatcherHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Job>();
    let manifest = encoders.speakers.manifest().clone();
    let windows_manifest = encoders.windows_manifest().clone();
    let manifest_rate = manifest.sample_rate;
    let thread = std::thread::Builder::new()
        .name("embedding-batcher".into())
        .spawn(move || {
            let budget = (BATCH_AUDIO_S * f64::from(manifest_rate)) as usize;
            let mut waiting: VecDeque<Job> = VecDeque::new();
            loop {
                if waiting.is_empty() {
                    match rx.recv() {
                        Ok(job) => waiting.push_back(job),
                        Err(_) => break,
                    }
                }
                // What queued while the last batch ran joins this one, oldest first, up to
                // the budget: a clip's answer never waits for a whole crowd behind it.
                waiting.extend(rx.try_iter());
                let mut jobs = Vec::new();
                let mut audio = 0;
                while let Some(job) = waiting.front() {
                    let size = job.audio_len();
                    if !jobs.is_empty() && audio + size > budget {
                        break;
                    }
                    audio += size;
                    jobs.extend(waiting.pop_front());
                }
                let (windows, speakers): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| j.windows);
                run_jobs(encoders.windows_mut(), &windows);
                run_jobs(&mut encoders.speakers, &speakers);
            }
        })?;
    Ok((
        BatcherHandle {
            tx,
            manifest,
            windows_manifest,
        },
        thread,
    ))
}

/// Embeds every request of `jobs` in shared batches and answers each job.
fn run_jobs(encoder: &mut SpeakerEncoder, jobs: &[Job]) {
    if jobs.is_empty() {
        return;
    }
    let requests: Vec<EmbedRequest<'_>> = jobs
        .iter()
        .flat_map(|j| j.requests.iter().map(move |spans| (&j.samples, spans)))
        .map(|(samples, spans)| EmbedRequest {
            // Ranges come from the clip's own plan and turns; clamp all the same.
            segments: spans
                .iter()
                .map(|&(s, e)| {
                    let start = s.min(samples.len());
                    &samples[start..e.clamp(start, samples.len())]
                })
                .collect(),
        })
        .collect();
    let result = encoder.embed(&requests).map_err(|e| e.to_string());
    drop(requests);
    match result {
        Ok(mut all) => {
            for job in jobs.iter().rev() {
                let mine = all.split_off(all.len() - job.requests.len());
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => jobs.iter().for_each(|j| {
            let _ = j.reply.send(Err(e.clone()));
        }),
    }
}
