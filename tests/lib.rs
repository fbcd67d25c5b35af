//! Helpers shared by the integration tests (`tests/it`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use shared::model::{EncoderOptions, SpeakerEncoder, load_encoder};

/// The checkout's root folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub const DEMO_LOCATION: &str = "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e";

pub fn demo_location() -> PathBuf {
    root().join("demo").join(DEMO_LOCATION)
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The bundled model on the setup step's ONNX Runtime, loaded once per test process.
pub fn encoder() -> MutexGuard<'static, SpeakerEncoder> {
    static ENCODER: OnceLock<Mutex<SpeakerEncoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let manifest = root().join("models/ge2e/ge2e.toml");
            let library = root().join(".cache/onnxruntime/libonnxruntime.so.1.31.1");
            let encoder = load_encoder(
                &manifest,
                Some(&library),
                EncoderOptions {
                    threads: 2,
                    max_batch: 32,
                },
            )
            .unwrap_or_else(|e| panic!("{e} (the tests need `make setup`)"));
            Mutex::new(encoder)
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A binary of the workspace, built beside this test executable (`make test` builds them first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("voice-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    shared::matching::cosine(a, b)
}
