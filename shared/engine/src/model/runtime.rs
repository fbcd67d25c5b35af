use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::AsPointer;
use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};

/// The ONNX Runtime release the project is built and tested against (`api-31`).
pub const ORT_VERSION: &str = "1.31.1";
/// What a user runs to fetch the library; every "not found" error names it.
pub const SETUP_COMMAND: &str = "make setup";
const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime {ORT_VERSION} library not found (looked for {}); run `{SETUP_COMMAND}` to fetch it, or set ORT_DYLIB_PATH",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Missing { looked: Vec<PathBuf> },
    #[error("ONNX Runtime library {} cannot be loaded: {reason}; run `{SETUP_COMMAND}` to fetch a working copy, or fix ORT_DYLIB_PATH", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime environment could not be created: {0}")]
    Environment(String),
}

/// Where the library is looked for when ORT_DYLIB_PATH is not set: the setup step's cache in the
/// working folder and in the checkout above the binary, beside the binary, and the images' path.
pub fn default_library_candidates() -> Vec<PathBuf> {
    let mut candidates = vec![PathBuf::from(".cache/onnxruntime").join(LIBRARY_FILE)];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(LIBRARY_FILE));
        // target/{debug,release}[/deps] inside a checkout
        for up in dir.ancestors().skip(1).take(3) {
            candidates.push(up.join(".cache/onnxruntime").join(LIBRARY_FILE));
        }
    }
    candidates.push(PathBuf::from("/usr/local/lib").join(LIBRARY_FILE));
    candidates
}

/// The library to load: `explicit` (ORT_DYLIB_PATH) when given, else the first default that exists.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let candidates = match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => default_library_candidates(),
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .ok_or(RuntimeError::Missing { looked: candidates })
}

/// The process's ONNX Runtime environment, loading the library on first use, with one intra-op
/// thread pool of `threads` and one CPU arena that every session shares.
///
/// One shared pool lets its threads spin between runs: with a pool per session, the idle
/// model's spinning threads took the cores from the running one (measured on the dev clips
/// with CAM++ and GE2E's windows: 25–28 s spinning against 22–23 s not), and without spinning
/// every one of CAM++'s thousand small operators waits for its threads to wake.
///
/// ONNX Runtime allows one environment per process; later calls return the same one whatever
/// path and thread count they name.
pub fn environment(
    explicit: Option<&Path>,
    threads: usize,
) -> Result<&'static Environment, RuntimeError> {
    static ENV: OnceLock<Environment> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let path = find_library(explicit)?;
    let builder = ort::init_from(&path).map_err(|e| RuntimeError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let pool = GlobalThreadPoolOptions::default()
        .with_intra_threads(threads.max(1))
        .and_then(|pool| pool.with_inter_threads(1))
        .and_then(|pool| pool.with_spin_control(true))
        .map_err(|e| RuntimeError::Environment(e.to_string()))?;
    let env = builder
        .with_name("voice-diarization")
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| RuntimeError::Environment(e.to_string()))?;
    share_cpu_arena(&env).map_err(|e| RuntimeError::Environment(e.to_string()))?;
    Ok(ENV.get_or_init(|| env))
}

/// Registers one CPU arena with the environment, for every session that opts in
/// (`with_env_allocators`) in place of an arena of its own.
///
/// Each arena keeps what its session's largest run needed; with one per session, the process
/// held the sum of both models' largest runs (CAM++'s on a 15 s input, GE2E's on a full batch)
/// although the two never need it at once. Measured in ONNX Runtime alone on CAM++ and GE2E
/// inputs of the dev clips' sizes: peak RSS 169 MiB shared against 217 MiB one arena each.
fn share_cpu_arena(env: &Environment) -> ort::Result<()> {
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Arena,
        MemoryType::Default,
    )?;
    // SAFETY: the environment and the memory info are alive for the call, which copies what it
    // keeps of them; a null arena configuration asks for ONNX Runtime's default arena. The
    // status is either null or one the call created, owned and released by `result_from_status`.
    unsafe {
        let status = (ort::api().CreateAndRegisterAllocator)(
            env.ptr().cast_mut(),
            info.ptr(),
            std::ptr::null(),
        );
        ort::Error::result_from_status(status)
    }
}
