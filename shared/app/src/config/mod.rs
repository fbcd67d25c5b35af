//! Settings, layered: built-in defaults < `config/default.toml` < `--config FILE` < environment.
//!
//! Keys are the environment variable names (the predecessor's, which users know) in lower case,
//! in files as in the environment: `VOICE_MIN_UTTERANCE_MS=800` or `voice_min_utterance_ms = 800`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod build;
mod kinds;
#[cfg(test)]
mod tests;
mod validate;

pub use kinds::{DeviceChoice, DiarizerKind, SourceKind};

use ops::Secret;

/// The environment variables read; anything else in the environment is ignored.
const ENV_KEYS: &[&str] = &[
    "AMQP_URL",
    "AMQP_CA_CERT",
    "DATABASE_URL",
    "VOICE_SOURCE",
    "VOICE_LOCAL_ROOT",
    "VOICE_MODEL",
    "ORT_DYLIB_PATH",
    "VOICE_DIARIZATION_THRESHOLD",
    "VOICE_MARGIN",
    "VOICE_MIN_UTTERANCE_MS",
    "VOICE_MAX_CLIP_MB",
    "VOICE_PARALLEL_WORKERS",
    "VOICE_ONNX_THREADS",
    "VOICE_DIARIZER",
    "AAI_API_KEY",
    "AAI_BASE_URL",
    "AAI_SPEECH_MODELS",
    "AAI_RETRY_DELAYS_S",
    "AAI_DELETE_TRANSCRIPTS",
    "GOOGLE_DRIVE_CREDENTIALS",
    "GOOGLE_DRIVE_BASE_URL",
    "VOICE_SAMPLES_FOLDER",
    "VOICE_CLIPS_FOLDER",
    "DATABASE_CA_CERT",
    "SUPABASE_URL",
    "SUPABASE_SERVICE_KEY",
    "MAX_JOB_DURATION",
    "MAX_MEMORY_GB",
    "MIN_SUCCESS_RATE",
    "MAX_API_FAILURES",
    "SLACK_WEBHOOK_URL",
    "DISCORD_WEBHOOK_URL",
    "MONITORING_WEBHOOK_URL",
    "NOTIFY_JOB_START",
    "VOICE_DEVICE",
];

const DEFAULT_FILE: &str = "config/default.toml";
/// CAM++ identifies, GE2E embeds the diarizer's windows (docs/accuracy.md and README "Models" say why).
const DEFAULT_MODEL: &str = "models/campplus/campplus.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// RabbitMQ; unset → standalone mode (everything in one `dispatcher run` process).
    #[serde(default)]
    pub amqp_url: Option<Secret>,
    /// PEM file of the CA that signed the broker's certificate (`amqps://` to a private CA);
    /// the system's roots are trusted as well.
    #[serde(default)]
    pub amqp_ca_cert: Option<PathBuf>,
    /// Postgres (Supabase's connection string); required with a broker.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// Where clips and samples come from: `local` (VOICE_LOCAL_ROOT) or `gdrive`.
    #[serde(default = "default_source")]
    pub voice_source: SourceKind,
    /// Root of the local layout (DESIGN §5): `<root>/<location_id>/{voice_samples,clips}`.
    #[serde(default = "default_local_root")]
    pub voice_local_root: PathBuf,
    /// Path to the model manifest (TOML beside the ONNX file).
    #[serde(default)]
    pub voice_model: Option<PathBuf>,
    /// Path to `libonnxruntime.so`; unset → `.cache/onnxruntime/` (see `make setup`).
    #[serde(default)]
    pub ort_dylib_path: Option<PathBuf>,
    /// Cosine score a speaker must reach; unset → the model manifest's default.
    #[serde(default)]
    pub voice_diarization_threshold: Option<f32>,
    /// Lead over the second-best worker; unset → the model manifest's default.
    #[serde(default)]
    pub voice_margin: Option<f32>,
    /// Turns shorter than this are not used to identify a speaker.
    #[serde(default = "default_min_utterance_ms")]
    pub voice_min_utterance_ms: u64,
    /// A clip file larger than this (its listed size, then its downloaded one) is a `failed`
    /// result of kind `too_large`, never downloaded or decoded.
    #[serde(default = "default_max_clip_mb")]
    pub voice_max_clip_mb: u64,
    /// Clips in flight at once.
    #[serde(default = "default_parallel_workers")]
    pub voice_parallel_workers: usize,
    /// ONNX Runtime intra-op threads per encoder; unset → the machine's cores.
    #[serde(default)]
    pub voice_onnx_threads: Option<usize>,
    /// Where the model runs: `auto` (CUDA when NVML sees a GPU), `cpu` or `cuda`.
    #[serde(default = "default_device")]
    pub voice_device: DeviceChoice,
    /// Where speaker turns come from: `local` (the built-in diarizer) or `assemblyai`.
    #[serde(default = "default_diarizer")]
    pub voice_diarizer: DiarizerKind,
    #[serde(default)]
    pub aai_api_key: Option<Secret>,
    /// AssemblyAI's API root: the EU endpoint (`https://api.eu.assemblyai.com`), or a test server.
    #[serde(default = "default_aai_base_url")]
    pub aai_base_url: String,
    /// `speech_models` to ask for, in order of preference, comma-separated.
    #[serde(default = "default_aai_speech_models")]
    pub aai_speech_models: String,
    /// Waits in seconds before each retry of a failed AssemblyAI call, comma-separated.
    #[serde(default = "default_aai_retry_delays")]
    pub aai_retry_delays_s: String,
    /// Delete each transcript from AssemblyAI once its result is safely with the broker.
    #[serde(default)]
    pub aai_delete_transcripts: bool,
    /// The Drive service account's key: the JSON itself, or the path of a file holding it.
    #[serde(default)]
    pub google_drive_credentials: Option<Secret>,
    /// Drive's API root (the token endpoint is the key's own `token_uri`).
    #[serde(default = "default_drive_base_url")]
    pub google_drive_base_url: String,
    /// The Drive folder of the voice samples (`{location}` = the location id).
    #[serde(default)]
    pub voice_samples_folder: Option<String>,
    /// The Drive folder(s) of a day's clips: `{date}` is the day, `*` any text.
    #[serde(default = "default_clips_folder")]
    pub voice_clips_folder: String,
    /// PEM file of the CA that signed the database's certificate (Supabase's, from the
    /// dashboard): the server is then verified. Without it TLS encrypts but trusts the server,
    /// like libpq's `sslmode=require`.
    #[serde(default)]
    pub database_ca_cert: Option<PathBuf>,
    /// The predecessor's REST settings: read so old environments still load, and used only to
    /// point at DATABASE_URL (this system talks to Supabase's Postgres directly).
    #[serde(default)]
    pub supabase_url: Option<String>,
    #[serde(default)]
    pub supabase_service_key: Option<Secret>,
    /// Seconds a job may run before it is marked `timed_out` (and `dispatcher run` exits 124).
    #[serde(default = "default_max_job_duration")]
    pub max_job_duration: u64,
    /// Resident memory of a process over this many GB is an alert and a `/health` issue.
    #[serde(default = "default_max_memory_gb")]
    pub max_memory_gb: f64,
    /// A job whose share of clips that did not fail is under this is a failed job (exit 1).
    #[serde(default = "default_min_success_rate")]
    pub min_success_rate: f64,
    /// Failed calls to AssemblyAI or Drive over this many (since start) are an alert.
    #[serde(default = "default_max_api_failures")]
    pub max_api_failures: u64,
    #[serde(default)]
    pub slack_webhook_url: Option<Secret>,
    #[serde(default)]
    pub discord_webhook_url: Option<Secret>,
    #[serde(default)]
    pub monitoring_webhook_url: Option<Secret>,
    /// Alert when a job starts, too.
    #[serde(default)]
    pub notify_job_start: bool,
}

fn default_max_job_duration() -> u64 {
    6 * 3600
}

fn default_max_memory_gb() -> f64 {
    7.5
}

fn default_min_success_rate() -> f64 {
    0.7
}

fn default_max_api_failures() -> u64 {
    10
}

fn default_drive_base_url() -> String {
    "https://www.googleapis.com".into()
}

fn default_clips_folder() -> String {
    "Clips_{date}_*".into()
}

fn default_device() -> DeviceChoice {
    DeviceChoice::Auto
}

fn default_diarizer() -> DiarizerKind {
    DiarizerKind::Local
}

fn default_aai_base_url() -> String {
    "https://api.assemblyai.com".into()
}

fn default_aai_speech_models() -> String {
    "universal-3-pro,universal-2".into()
}

fn default_aai_retry_delays() -> String {
    "5,10,15".into()
}

/// Parses a service URL (AMQP_URL, DATABASE_URL) with a real URL parser and returns it in the
/// parser's own spelling, so that every client reads the same user, password and host: a raw
/// `@` in the password becomes `%40`. The error never quotes the URL.
fn service_url(raw: &str, name: &str, schemes: &[&str]) -> Result<Secret, ConfigError> {
    let bad = |why: String| {
        ConfigError::Invalid(format!(
            "{name} is not a valid {} URL: {why} (a password holding `#`, `/`, `?` or `%` must be \
             percent-encoded: `#` is %23, `/` %2F, `?` %3F, `%` %25)",
            schemes.join(" or ")
        ))
    };
    let raw = raw.trim();
    // The parser lets a stray `%` through; a client would decode `%41` in a password as `A`.
    let bytes = raw.as_bytes();
    let stray = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if stray {
        return Err(bad("a `%` is not followed by two hex digits".into()));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(format!(
            "it must start with {}",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    if url.scheme().starts_with("amqp") && url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host".into()));
    }
    if let Some(password) = url.password()
        && percent_encoding::percent_decode_str(password)
            .decode_utf8()
            .is_err()
    {
        return Err(bad("its password is not valid percent-encoded UTF-8".into()));
    }
    Ok(Secret::new(url.to_string()))
}

fn default_max_clip_mb() -> u64 {
    100
}

fn default_min_utterance_ms() -> u64 {
    1000
}

fn default_source() -> SourceKind {
    SourceKind::Local
}

fn default_local_root() -> PathBuf {
    PathBuf::from("data")
}

fn default_parallel_workers() -> usize {
    5
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads the layers; `file` is the `--config` argument.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env = std::env::vars()
            .filter(|(k, _)| ENV_KEYS.contains(&k.as_str()))
            .collect();
        Self::load_from(file, env)
    }

    fn load_from(
        file: Option<&Path>,
        env: config::Map<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(
            config::File::with_name(DEFAULT_FILE)
                .format(config::FileFormat::Toml)
                .required(false),
        );
        if let Some(file) = file {
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::default()
                    .source(Some(env))
                    .try_parsing(true),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut settings = settings;
        if let Some(url) = &settings.amqp_url {
            settings.amqp_url = Some(service_url(url.expose(), "AMQP_URL", &["amqp", "amqps"])?);
        }
        if let Some(url) = &settings.database_url {
            settings.database_url = Some(service_url(
                url.expose(),
                "DATABASE_URL",
                &["postgres", "postgresql"],
            )?);
        }
        settings.validate()?;
        Ok(settings)
    }
}
