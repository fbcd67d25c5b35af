//! The local diarizer: who spoke when, without a transcription service.
//!
//! Speech regions (energy VAD) are cut into windows of exactly one model partial; each window is
//! embedded by the speaker model. Regions are split where the speaker changes, the segments are
//! clustered (the speaker count comes from the audio, 1 to `max_speakers`), windows are refined
//! to the cluster centroids, and every 10 ms of speech takes the label most of its windows carry.
//! Planning and finishing are separate so the windows of many clips can share batches.

mod cluster;
mod vad;

use cluster::{centroid, renumber};
pub use cluster::{cluster, cluster_auto};
pub use vad::{FRAME_MS, VadConfig, speech_regions};

use crate::audio::Audio;
use crate::matching::cosine;
use crate::model::{EmbedRequest, Manifest, ModelError, SpeakerEncoder};
use crate::turns::Turn;

/// Seconds of each local turn's edges left out when identifying its speaker: the diarizer's
/// boundaries are good to about one window step, and overlap sits at turn edges.
pub const EDGE_TRIM_S: f64 = 0.25;
/// A pause up to this long is inside one speaker's speech unless the voices either side of it
/// differ: the utterances around it share one region (whose windows span the pause), and two
/// turns the diarizer gave one speaker become one. Speech spoken word by word (60-250 ms
/// between words) must not break into pieces under the minimum utterance.
pub const MAX_PAUSE_S: f64 = 0.3;

#[derive(Debug, Clone, Copy)]
pub struct DiarizerConfig {
    pub vad: VadConfig,
    /// Samples in one window (one input of the model that embeds the windows).
    pub window_samples: usize,
    /// Seconds between window starts inside a speech region.
    pub step_s: f64,
    /// When even the best two-speaker split leaves centroids this alike, the clip has one speaker.
    pub one_speaker_similarity: f32,
    pub max_speakers: usize,
    /// A cluster with fewer windows is no speaker (overlap, noise): it joins its nearest neighbour.
    pub min_cluster_windows: usize,
    /// Label runs shorter than this join their neighbour.
    pub min_run_s: f64,
    /// Windows per clip at most; longer clips get a coarser step (clustering is quadratic).
    pub max_windows: usize,
    /// Share of a speech region's windows one label needs to take the whole region.
    pub region_majority: f64,
    /// Below this similarity between a window and the next one clear of it, the speaker changes.
    pub change_similarity: f32,
}

impl Default for DiarizerConfig {
    fn default() -> Self {
        // GE2E's (models/ge2e/ge2e.toml); a model's manifest says its own.
        Self {
            vad: VadConfig::default(),
            window_samples: 25600,
            step_s: 0.4,
            one_speaker_similarity: 0.9,
            max_speakers: 4,
            min_cluster_windows: 2,
            min_run_s: 0.3,
            max_windows: 1500,
            region_majority: 0.7,
            change_similarity: 0.78,
        }
    }
}

/// The windows of one clip, waiting for their embeddings.
#[derive(Debug, Clone)]
pub struct WindowPlan {
    pub rate: u32,
    pub n_samples: usize,
    /// Stretches of speech without a pause over the VAD's bridge (sample ranges).
    pub utterances: Vec<(usize, usize)>,
    /// Utterances at most [`MAX_PAUSE_S`] apart, joined: what the windows are laid over.
    pub regions: Vec<(usize, usize)>,
    /// Sample ranges, one model partial each, region by region.
    pub windows: Vec<(usize, usize)>,
    /// The windows of each region (indices into `windows`).
    pub region_windows: Vec<std::ops::Range<usize>>,
}

impl WindowPlan {
    /// One embedding request per window.
    pub fn requests<'a>(&self, audio: &'a Audio) -> Vec<EmbedRequest<'a>> {
        self.windows
            .iter()
            .map(|&(s, e)| EmbedRequest {
                segments: vec![&audio.samples[s..e]],
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LocalDiarizer {
    pub config: DiarizerConfig,
}

impl DiarizerConfig {
    /// The windows and similarities of the model that embeds the windows (its `[diarizer]`).
    pub fn for_model(manifest: &Manifest) -> Self {
        let d = &manifest.diarizer;
        let default = Self::default();
        Self {
            window_samples: d
                .window_frames
                .map_or(default.window_samples, |f| f * manifest.frontend.hop_length),
            step_s: d.step_s.unwrap_or(default.step_s),
            change_similarity: d.change_similarity.unwrap_or(default.change_similarity),
            one_speaker_similarity: d
                .one_speaker_similarity
                .unwrap_or(default.one_speaker_similarity),
            ..default
        }
    }
}

impl LocalDiarizer {
    pub fn new(config: DiarizerConfig) -> Self {
        Self { config }
    }

    /// The diarizer for windows embedded by the model of `manifest`.
    pub fn for_model(manifest: &Manifest) -> Self {
        Self::new(DiarizerConfig::for_model(manifest))
    }

    /// Finds speech and lays windows over it.
    pub fn plan(&self, audio: &Audio) -> WindowPlan {
        self.plan_samples(&audio.samples, audio.sample_rate)
    }

    /// [`Self::plan`] over bare samples at `rate`.
    pub fn plan_samples(&self, samples: &[f32], rate: u32) -> WindowPlan {
        let window_samples = self.config.window_samples;
        let utterances = speech_regions(samples, rate, &self.config.vad);
        let regions = join_close(&utterances, rate, &self.config.vad);
        let speech: usize = regions.iter().map(|(s, e)| e - s).sum();
        let mut step = (self.config.step_s * f64::from(rate)) as usize;
        step = step.max(speech / self.config.max_windows.max(1)).max(1);
        let mut windows = Vec::new();
        let mut region_windows = Vec::with_capacity(regions.len());
        for &(s, e) in &regions {
            let first = windows.len();
            if e - s <= window_samples {
                windows.push((s, e));
            } else {
                let mut start = s;
                while start + window_samples < e {
                    windows.push((start, start + window_samples));
                    start += step;
                }
                windows.push((e - window_samples, e));
            }
            region_windows.push(first..windows.len());
        }
        WindowPlan {
            rate,
            n_samples: samples.len(),
            utterances,
            regions,
            windows,
            region_windows,
        }
    }

    /// Turns from the plan and one embedding per window.
    pub fn finish(&self, plan: &WindowPlan, embeddings: &[Vec<f32>]) -> Vec<Turn> {
        if plan.windows.is_empty() || embeddings.len() != plan.windows.len() {
            return Vec::new();
        }
        // Cluster speaker-homogeneous segments first: a segment's pooled windows are far more
        // reliable than one window. Windows then move to the centroid they are nearest.
        let segment_of = self.segments(plan, embeddings);
        let n_segments = segment_of.iter().max().map_or(0, |m| m + 1);
        let dim = embeddings[0].len();
        let mut pooled = vec![vec![0.0f32; dim]; n_segments];
        let mut windows_in = vec![0usize; n_segments];
        for (e, &r) in embeddings.iter().zip(&segment_of) {
            pooled[r].iter_mut().zip(e).for_each(|(p, v)| *p += v);
            windows_in[r] += 1;
        }
        let used: Vec<usize> = (0..n_segments).filter(|&r| windows_in[r] > 0).collect();
        let used_pooled: Vec<Vec<f32>> = used.iter().map(|&r| pooled[r].clone()).collect();
        let used_windows: Vec<usize> = used.iter().map(|&r| windows_in[r]).collect();
        let segment_labels = cluster_auto(
            &used_pooled,
            &used_windows,
            self.config.max_speakers,
            self.config.one_speaker_similarity,
            self.config.min_cluster_windows,
        );
        let mut labels: Vec<usize> = segment_of
            .iter()
            .map(|r| {
                used.iter()
                    .position(|u| u == r)
                    .map_or(0, |i| segment_labels[i])
            })
            .collect();
        for _ in 0..REFINE_ROUNDS {
            refine_to_centroids(&mut labels, embeddings);
        }
        self.unify_utterances(plan, &mut labels);
        let hop = plan.rate as usize * FRAME_MS / 1000;
        let frames = plan.n_samples.div_ceil(hop);
        let n_labels = labels.iter().max().map_or(0, |m| m + 1);
        // votes[frame * n_labels + label]
        let mut votes = vec![0u16; frames * n_labels];
        for (&(s, e), &label) in plan.windows.iter().zip(&labels) {
            for f in s / hop..e.div_ceil(hop).min(frames) {
                votes[f * n_labels + label] = votes[f * n_labels + label].saturating_add(1);
            }
        }
        let min_run = (self.config.min_run_s * 1000.0 / FRAME_MS as f64) as usize;
        let mut turns = Vec::new();
        for &(s, e) in &plan.regions {
            let (fs, fe) = (s / hop, e.div_ceil(hop).min(frames));
            let mut frame_labels: Vec<usize> = (fs..fe)
                .map(|f| {
                    let v = &votes[f * n_labels..(f + 1) * n_labels];
                    (0..n_labels).max_by_key(|&l| v[l]).unwrap_or(0)
                })
                .collect();
            absorb_short_runs(&mut frame_labels, min_run);
            let mut run_start = 0;
            for i in 1..=frame_labels.len() {
                if i == frame_labels.len() || frame_labels[i] != frame_labels[run_start] {
                    let to_s = |f: usize| {
                        ((fs + f) * hop).min(plan.n_samples) as f64 / f64::from(plan.rate)
                    };
                    turns.push(Turn {
                        start_s: to_s(run_start).max(s as f64 / f64::from(plan.rate)),
                        end_s: to_s(i).min(e as f64 / f64::from(plan.rate)),
                        speaker: speaker_name(frame_labels[run_start]),
                    });
                    run_start = i;
                }
            }
        }
        join_pauses(turns)
    }

    /// Plans, embeds the windows and finishes, for one clip.
    pub fn diarize(
        &self,
        audio: &Audio,
        encoder: &mut SpeakerEncoder,
    ) -> Result<Vec<Turn>, ModelError> {
        let plan = self.plan(audio);
        let embeddings: Vec<Vec<f32>> = encoder
            .embed(&plan.requests(audio))?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(self.finish(&plan, &embeddings))
    }
}

/// Utterances whose pause (less the VAD's padding of both) is at most [`MAX_PAUSE_S`], joined.
fn join_close(utterances: &[(usize, usize)], rate: u32, vad: &VadConfig) -> Vec<(usize, usize)> {
    let hop = rate as usize * FRAME_MS / 1000;
    let padding = 2 * vad.pad_frames * hop;
    let max_gap = ((MAX_PAUSE_S * f64::from(rate)) as usize).saturating_sub(padding);
    let mut regions: Vec<(usize, usize)> = Vec::with_capacity(utterances.len());
    for &(s, e) in utterances {
        match regions.last_mut() {
            Some(last) if s.saturating_sub(last.1) <= max_gap => last.1 = e,
            _ => regions.push((s, e)),
        }
    }
    regions
}

/// Consecutive turns of one speaker at most [`MAX_PAUSE_S`] apart, as one turn.
fn join_pauses(turns: Vec<Turn>) -> Vec<Turn> {
    let mut joined: Vec<Turn> = Vec::with_capacity(turns.len());
    for turn in turns {
        match joined.last_mut() {
            Some(last)
                if last.speaker == turn.speaker && turn.start_s - last.end_s <= MAX_PAUSE_S =>
            {
                last.end_s = last.end_s.max(turn.end_s);
            }
            _ => joined.push(turn),
        }
    }
    joined
}

/// Centroid re-assignment rounds after clustering (k-means style), undoing chaining mistakes.
const REFINE_ROUNDS: usize = 1;
/// How much closer another centroid must be before a window moves to it.
const REFINE_MARGIN: f32 = 0.0;

impl LocalDiarizer {
    /// Splits speech regions at speaker changes: a segment index per window.
    ///
    /// A change is where a window and the next window that does not overlap it (`gap` steps
    /// on: 4 at 1.6 s windows every 0.4 s) are least alike, below `change_similarity`; changes
    /// are at least that far apart.
    fn segments(&self, plan: &WindowPlan, embeddings: &[Vec<f32>]) -> Vec<usize> {
        let step_samples = (self.config.step_s * f64::from(plan.rate)).max(1.0);
        let gap = ((self.config.window_samples as f64 / step_samples).ceil() as usize).max(1);
        let mut segment_of = vec![0usize; plan.windows.len()];
        let mut next = 0;
        for range in &plan.region_windows {
            let inside: Vec<usize> = range.clone().collect();
            if inside.is_empty() {
                continue;
            }
            let sim: Vec<f32> = (0..inside.len().saturating_sub(gap))
                .map(|j| cosine(&embeddings[inside[j]], &embeddings[inside[j + gap]]))
                .collect();
            let mut cuts: Vec<usize> = Vec::new();
            for j in 0..sim.len() {
                let lo = j.saturating_sub(gap);
                let hi = (j + gap + 1).min(sim.len());
                let local_min = sim[lo..hi].iter().all(|&v| v >= sim[j]);
                if sim[j] < self.config.change_similarity
                    && local_min
                    && cuts.last().is_none_or(|&c| j + gap / 2 >= c + gap)
                {
                    cuts.push(j + gap / 2);
                }
            }
            let mut cut = cuts.into_iter().peekable();
            for (k, &w) in inside.iter().enumerate() {
                if cut.peek() == Some(&k) {
                    cut.next();
                    next += 1;
                }
                segment_of[w] = next;
            }
            next += 1;
        }
        segment_of
    }

    /// An utterance whose windows (by their middle) mostly carry one label takes it whole:
    /// speakers usually change at a pause, and a stray window inside a turn is noise, not a
    /// speaker change. Utterances, not regions: a short turn after a short pause is its own.
    fn unify_utterances(&self, plan: &WindowPlan, labels: &mut [usize]) {
        let n = labels.iter().max().map_or(0, |m| m + 1);
        // Each window's utterance, by its middle (utterances are sorted and apart).
        let mut windows_of: Vec<Vec<usize>> = vec![Vec::new(); plan.utterances.len()];
        for (w, &(s, e)) in plan.windows.iter().enumerate() {
            let middle = s.midpoint(e);
            let u = plan.utterances.partition_point(|&(_, end)| end <= middle);
            if plan
                .utterances
                .get(u)
                .is_some_and(|&(start, _)| start <= middle)
            {
                windows_of[u].push(w);
            }
        }
        for inside in windows_of.into_iter().filter(|w| !w.is_empty()) {
            let mut counts = vec![0usize; n];
            inside.iter().for_each(|&i| counts[labels[i]] += 1);
            if let Some((top, &count)) = counts.iter().enumerate().max_by_key(|(_, c)| **c)
                && count as f64 >= self.config.region_majority * inside.len() as f64
            {
                inside.iter().for_each(|&i| labels[i] = top);
            }
        }
    }
}

/// Re-assigns every window to the most similar cluster centroid.
fn refine_to_centroids(labels: &mut [usize], embeddings: &[Vec<f32>]) {
    let n = labels.iter().max().map_or(0, |m| m + 1);
    if n < 2 {
        return;
    }
    let centroids: Vec<Vec<f32>> = (0..n).map(|l| centroid(embeddings, labels, l)).collect();
    let before = labels.to_vec();
    for (label, e) in labels.iter_mut().zip(embeddings) {
        let own = cosine(e, &centroids[*label]);
        if let Some((best, score)) = (0..n)
            .map(|l| (l, cosine(e, &centroids[l])))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            && score >= own + REFINE_MARGIN
        {
            *label = best;
        }
    }
    // A large cluster's centroid is near everything; it may not swallow a smaller one whole.
    if (0..n).any(|l| !labels.contains(&l)) {
        labels.copy_from_slice(&before);
    }
    renumber(labels);
}

/// Speaker labels as AssemblyAI names them: A, B, C, …
pub fn speaker_name(index: usize) -> String {
    let letter = (b'A' + (index % 26) as u8) as char;
    if index < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", index / 26)
    }
}

/// Runs shorter than `min` frames take the label of the run before (or after, at the start).
fn absorb_short_runs(labels: &mut [usize], min: usize) {
    let mut changed = true;
    while changed {
        changed = false;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for i in 1..=labels.len() {
            if i == labels.len() || labels[i] != labels[start] {
                runs.push((start, i));
                start = i;
            }
        }
        if runs.len() < 2 {
            return;
        }
        if let Some(k) = (0..runs.len())
            .filter(|&k| runs[k].1 - runs[k].0 < min)
            .min_by_key(|&k| runs[k].1 - runs[k].0)
        {
            let (s, e) = runs[k];
            let with = if k > 0 {
                labels[runs[k - 1].0]
            } else {
                labels[runs[k + 1].0]
            };
            labels[s..e].iter_mut().for_each(|l| *l = with);
            changed = true;
        }
    }
}

#[cfg(test)]
mod tests;
