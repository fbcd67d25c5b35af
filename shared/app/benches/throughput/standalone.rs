//! The whole standalone pipeline (decode, diarize, identify, store) over the bench clips as one
//! location, beside the Python reference of the same pipeline
//! (`models/reference/pipeline_reference.py`: same models, manifests and threads), with the
//! model work per audio second and the peak RSS of each side.

use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::audio::decode_file;
use engine::diarize::{EDGE_TRIM_S, LocalDiarizer};
use engine::model::{Device, EncoderOptions, Manifest};
use engine::turns::speakers_with_speech;
use pipeline::ClipResult;

/// Turns shorter than this are not identified (VOICE_MIN_UTTERANCE_MS's default).
const MIN_UTTERANCE_MS: u64 = 1000;

/// The default model, CAM++ with GE2E's diarizer windows, then GE2E alone. Runs first in the
/// bench process, so that the peak RSS read after it is the pipeline's own.
pub fn compare(root: &Path, clips: &Path, library: &Path, threads: usize, device: Device) {
    let location = BenchLocation::new(root, clips);
    let default = root.join("models/campplus/campplus.toml");
    let (wall, results) = location.run(&default, library, threads, device);
    let rss_mb = peak_rss_mb();
    let (ge2e_wall, _) = location.run(
        &root.join("models/ge2e/ge2e.toml"),
        library,
        threads,
        device,
    );
    let audio_s: f64 = results.iter().map(|r| r.audio_s).sum();
    let (windows, window_frames, frames) = model_work(&default, clips, &results);
    let python = python_pipeline(root, clips, threads);
    let field = |k: &str| {
        python
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_f64)
    };
    // The reference times enrollment apart; the Rust job enrolls inside its wall.
    let py_wall = field("wall_s").zip(field("enroll_s")).map(|(w, e)| w + e);
    println!(
        "standalone pipeline (decode, diarize, identify, store), {} clips, {:.1} min, {threads} threads, 2 clips in flight:",
        results.len(),
        audio_s / 60.0
    );
    println!(
        "  {:<40} {:>7} {:>9} {:>9} {:>10} {:>14} {:>12}",
        "", "wall", "× real", "peak RSS", "windows/s", "win. frames/s", "frames/s"
    );
    let row = |name: &str, wall: Option<f64>, rss: Option<f64>, work: [Option<f64>; 3]| {
        let show = |v: Option<f64>, fmt: &dyn Fn(f64) -> String| v.map_or("-".into(), fmt);
        println!(
            "  {name:<40} {:>7} {:>9} {:>9} {:>10} {:>14} {:>12}",
            show(wall, &|v| format!("{v:.1} s")),
            show(wall, &|v| format!("{:.0}×", audio_s / v)),
            show(rss, &|v| format!("{v:.0} MB")),
            show(work[0], &|v| format!("{v:.2}")),
            show(work[1], &|v| format!("{v:.1}")),
            show(work[2], &|v| format!("{v:.1}")),
        );
    };
    row(
        "Rust, CAM++ (GE2E windows), the default",
        Some(wall),
        Some(rss_mb),
        [windows, window_frames, frames].map(|w| Some(w / audio_s)),
    );
    row(
        "Python reference, same models",
        py_wall,
        field("peak_rss_mb"),
        [
            field("windows_per_audio_s"),
            field("window_frames_per_audio_s"),
            field("speaker_frames").map(|f| f / audio_s),
        ],
    );
    row("Rust, GE2E alone", Some(ge2e_wall), None, [None; 3]);
    if let Some(p) = py_wall {
        println!(
            "  the Rust pipeline runs {:.2}× the reference's speed",
            p / wall
        );
    }
    println!(
        "  windows/s: diarizer windows embedded per audio second; win. frames/s: the windows \
         model's frames in them; frames/s: speaker-model frames embedded for identification per \
         audio second"
    );
    println!();
}

/// The diarizer's windows (as planned for every clip), the windows model's frames in them, and
/// the speaker model's frames (each speaker's turn cores, as identification embeds them).
fn model_work(manifest: &Path, clips: &Path, results: &[ClipResult]) -> (f64, f64, f64) {
    let speakers = Manifest::load(manifest).unwrap_or_else(|e| panic!("{e}"));
    let windows_manifest = speakers.diarizer_manifest().map_or_else(
        || speakers.clone(),
        |p| Manifest::load(&p).unwrap_or_else(|e| panic!("{e}")),
    );
    let diarizer = LocalDiarizer::for_model(&windows_manifest);
    let frame_s = speakers.frontend.hop_length as f64 / f64::from(speakers.sample_rate);
    let mut windows = 0;
    let mut frames = 0.0;
    for result in results {
        let audio =
            decode_file(&clips.join(&result.clip), speakers.sample_rate).expect("decodable clip");
        windows += diarizer.plan(&audio).windows.len();
        frames += speakers_with_speech(&result.turns, MIN_UTTERANCE_MS, EDGE_TRIM_S)
            .iter()
            .flat_map(|s| &s.spans)
            .map(|(start, end)| (end - start) / frame_s)
            .sum::<f64>();
    }
    let window_frames = diarizer.config.window_samples / windows_manifest.frontend.hop_length;
    (windows as f64, (windows * window_frames) as f64, frames)
}

/// The process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn python_pipeline(root: &Path, clips: &Path, threads: usize) -> Option<serde_json::Value> {
    let enroll = clips
        .parent()
        .map(|p| p.join("enroll"))
        .filter(|p| p.is_dir())?;
    let threads = threads.to_string();
    super::python_script(
        root,
        "pipeline_reference.py",
        &[
            "--clips".as_ref(),
            clips.as_os_str(),
            "--enroll".as_ref(),
            enroll.as_os_str(),
            "--threads".as_ref(),
            threads.as_ref(),
        ],
    )
}

/// The bench clips as one location in the local layout, with the set's enrollment samples.
struct BenchLocation {
    root: PathBuf,
}

const BENCH_LOCATION: &str = "0b0b0b0b-0000-4000-8000-000000000000";

impl BenchLocation {
    fn new(checkout: &Path, clips: &Path) -> Self {
        let root = std::env::temp_dir().join(format!("voice-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let location = root.join(BENCH_LOCATION);
        let day = location.join("clips/2025-01-01");
        std::fs::create_dir_all(&day).expect("bench folder");
        let link = |from: &Path, to: &Path| {
            std::os::unix::fs::symlink(from, to).unwrap_or_else(|e| panic!("{}: {e}", to.display()))
        };
        for entry in std::fs::read_dir(clips).expect("clips").flatten() {
            link(&entry.path(), &day.join(entry.file_name()));
        }
        // The dev set keeps its samples in enroll/<speaker>/, the demo in voice_samples/.
        let beside = clips
            .parent()
            .map(|p| p.join("enroll"))
            .filter(|p| p.is_dir());
        let samples = beside.unwrap_or_else(|| {
            checkout.join("demo/8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e/voice_samples")
        });
        link(&samples, &location.join("voice_samples"));
        Self { root }
    }

    /// One standalone run with the model of `manifest`: wall seconds and the results. The same
    /// in-process job `dispatcher run` runs without a broker.
    fn run(
        &self,
        manifest: &Path,
        library: &Path,
        threads: usize,
        device: Device,
    ) -> (f64, Vec<ClipResult>) {
        use adapters::local::FolderSink;
        use engine::matching::{DecisionRules, Prior};
        use pipeline::queue::MemoryBroker;
        use pipeline::services::Shutdown;
        use pipeline::services::dispatch::plan;
        use pipeline::services::in_process::{InProcess, JobEnd};
        use pipeline::services::reducer::ReducerService;
        use pipeline::services::worker::WorkerService;
        use pipeline::{ClipProcessor, ResultSink, spawn_batcher};
        use std::sync::Arc;
        let options = EncoderOptions {
            threads,
            max_batch: 64,
            device,
        };
        let encoders = engine::model::load_encoders(manifest, Some(library), options)
            .unwrap_or_else(|e| panic!("{e}"));
        let d = encoders.speakers.manifest().decision.clone();
        let prior = Prior {
            rules: DecisionRules {
                threshold: d.threshold,
                margin: d.margin,
            },
            impostor_mean: d.impostor_mean,
            impostor_sd: d.impostor_sd,
            target_mean: d.target_mean,
        };
        let out = self.root.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let (batcher, _thread) = spawn_batcher(encoders).expect("batcher");
        let processor = ClipProcessor {
            batcher,
            min_utterance_ms: MIN_UTTERANCE_MS,
            max_clip_bytes: u64::MAX,
        };
        let runtime = app::service::runtime().expect("runtime");
        let started = Instant::now();
        let clips = runtime.block_on(async {
            let source: Arc<dyn pipeline::source::ClipSource> =
                Arc::new(adapters::local::LocalSource::new(&self.root));
            let sink: Arc<dyn ResultSink> = Arc::new(FolderSink::open(&out).expect("out"));
            let dates = pipeline::source::DateRange::parse("2025-01-01").expect("date");
            let plan = plan(&*source, &*sink, BENCH_LOCATION, &dates, "bench", true)
                .await
                .expect("plan");
            let queues = MemoryBroker::new();
            let mut worker = WorkerService::new(
                Arc::new(queues.clone()),
                source,
                Arc::new(pipeline::profile_store::MemoryProfileStore::default()),
                None,
                processor,
                prior,
                2,
            );
            worker.sink = Some(Arc::clone(&sink));
            let reducer = ReducerService::new(Arc::new(queues.clone()), Arc::clone(&sink));
            let job = InProcess {
                queues,
                worker: Arc::new(worker),
                reducer,
                sink,
            };
            let (_stop, shutdown) = Shutdown::manual();
            let far = Instant::now() + std::time::Duration::from_secs(3600);
            let (end, results) = job
                .run(&plan, BENCH_LOCATION, &dates, far, &shutdown, |_| {})
                .await
                .expect("job");
            assert!(matches!(end, JobEnd::Closed(_)), "the job did not close");
            results
        });
        (started.elapsed().as_secs_f64(), clips)
    }
}

impl Drop for BenchLocation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
