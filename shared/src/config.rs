//! Settings, layered: built-in defaults < `config/default.toml` < `--config FILE` < environment.
//!
//! Keys are the environment variable names (the predecessor's, which users know) in lower case,
//! in files as in the environment: `VOICE_MIN_UTTERANCE_MS=800` or `voice_min_utterance_ms = 800`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::matching::{DecisionRules, Prior};
use crate::model::{Device, EncoderOptions, Encoders, Manifest, ModelError, load_encoders};
use crate::ops::alerts::WebhookUrlError;
use crate::ops::{Alerter, Limits};
use crate::queue::BrokerConfig;
use crate::source::{ClipSource, DriveConfig, DriveSource, LocalSource};
use crate::transcribe::AssemblyAiConfig;

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
/// CAM++ identifies, GE2E embeds the diarizer's windows (README "Accuracy" says why).
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
    pub voice_source: String,
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
    pub voice_device: String,
    /// Where speaker turns come from: `local` (the built-in diarizer) or `assemblyai`.
    #[serde(default = "default_diarizer")]
    pub voice_diarizer: String,
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

fn default_device() -> String {
    "auto".into()
}

fn default_diarizer() -> String {
    "local".into()
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

/// A setting that may hold a password: never shown by `Debug`, so a logged `Settings` leaks
/// nothing. [`Secret::redacted`] is the form for logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A URL with its password replaced by `***` (`amqp://guest:***@host:5672/vhost`).
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// `text` (a client library's error, say) with this URL and its password, as written and
    /// as decoded, replaced by their redacted forms.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, &self.redacted());
        if let Ok(url) = url::Url::parse(&self.0)
            && let Some(password) = url.password().filter(|p| !p.is_empty())
        {
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            for form in [decoded.as_ref(), password] {
                out = out.replace(form, "***");
            }
        }
        out
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`, read by a URL parser; text
/// that is no URL shows only its scheme, since where its password ends cannot be known.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Cannot fail: a URL with a password has a host.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://***")
            }
            _ => "***".to_string(),
        },
    }
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

fn default_source() -> String {
    "local".into()
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

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self
            .voice_diarization_threshold
            .is_some_and(|t| !(-1.0..=1.0).contains(&t))
        {
            return bad("VOICE_DIARIZATION_THRESHOLD must be a cosine score in [-1, 1]");
        }
        if self.voice_margin.is_some_and(|m| !(0.0..=2.0).contains(&m)) {
            return bad("VOICE_MARGIN must be in [0, 2]");
        }
        if self.voice_max_clip_mb == 0 {
            return bad("VOICE_MAX_CLIP_MB must be at least 1");
        }
        if self.voice_parallel_workers == 0 {
            return bad("VOICE_PARALLEL_WORKERS must be at least 1");
        }
        if !["local", "gdrive"].contains(&self.voice_source.as_str()) {
            return bad("VOICE_SOURCE must be `local` or `gdrive`");
        }
        if self.voice_onnx_threads == Some(0) {
            return bad("VOICE_ONNX_THREADS must be at least 1");
        }
        self.broker()?;
        if !["local", "assemblyai"].contains(&self.voice_diarizer.as_str()) {
            return bad("VOICE_DIARIZER must be `local` or `assemblyai`");
        }
        if self.voice_diarizer == "assemblyai" && self.aai_api_key.is_none() {
            return bad("VOICE_DIARIZER=assemblyai needs AAI_API_KEY");
        }
        if self.voice_source == "gdrive" {
            if self.google_drive_credentials.is_none() {
                return bad(
                    "VOICE_SOURCE=gdrive needs GOOGLE_DRIVE_CREDENTIALS (the service-account key JSON, or its path)",
                );
            }
            if self
                .voice_samples_folder
                .as_deref()
                .is_none_or(|f| f.trim().is_empty())
            {
                return bad(
                    "VOICE_SOURCE=gdrive needs VOICE_SAMPLES_FOLDER (the Drive folder of the voice samples)",
                );
            }
            if self.voice_clips_folder.trim().is_empty() {
                return bad("VOICE_CLIPS_FOLDER must name the clips folder, e.g. Clips_{date}_*");
            }
        }
        if !["auto", "cpu", "cuda"].contains(&self.voice_device.as_str()) {
            return bad("VOICE_DEVICE must be `auto`, `cpu` or `cuda`");
        }
        if self.max_job_duration == 0 {
            return bad("MAX_JOB_DURATION must be a number of seconds above 0");
        }
        if !(self.max_memory_gb.is_finite() && self.max_memory_gb > 0.0) {
            return bad("MAX_MEMORY_GB must be a number of gigabytes above 0");
        }
        if !(0.0..=1.0).contains(&self.min_success_rate) {
            return bad("MIN_SUCCESS_RATE must be a share in [0, 1]");
        }
        if let Err(e) = self.alerter("check") {
            return Err(ConfigError::Invalid(e.to_string()));
        }
        if self.retry_delays().is_none() {
            return bad("AAI_RETRY_DELAYS_S must be seconds separated by commas, e.g. 5,10,15");
        }
        if self
            .aai_speech_models
            .split(',')
            .all(|m| m.trim().is_empty())
        {
            return bad("AAI_SPEECH_MODELS must name at least one model");
        }
        Ok(())
    }

    fn retry_delays(&self) -> Option<Vec<std::time::Duration>> {
        self.aai_retry_delays_s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(std::time::Duration::from_secs_f64)
            })
            .collect()
    }

    /// The AssemblyAI client's settings, when `VOICE_DIARIZER=assemblyai`.
    pub fn assemblyai(&self) -> Option<AssemblyAiConfig> {
        if self.voice_diarizer != "assemblyai" {
            return None;
        }
        let mut config = AssemblyAiConfig::new(&self.aai_base_url, self.aai_api_key.clone()?);
        config.speech_models = self
            .aai_speech_models
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        config.retry_delays = self.retry_delays()?;
        Some(config)
    }

    /// Where clips and samples come from (VOICE_SOURCE).
    pub fn clip_source(&self) -> Result<Arc<dyn ClipSource>, ConfigError> {
        if self.voice_source != "gdrive" {
            return Ok(Arc::new(LocalSource::new(&self.voice_local_root)));
        }
        let (Some(credentials), Some(samples)) =
            (&self.google_drive_credentials, &self.voice_samples_folder)
        else {
            return Err(ConfigError::Invalid(
                "VOICE_SOURCE=gdrive needs GOOGLE_DRIVE_CREDENTIALS and VOICE_SAMPLES_FOLDER"
                    .into(),
            ));
        };
        let key = if credentials.expose().trim_start().starts_with('{') {
            credentials.clone()
        } else {
            let path = credentials.expose().trim();
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "GOOGLE_DRIVE_CREDENTIALS is neither key JSON nor a readable file: {path}: {e}"
                ))
            })?;
            Secret::new(text)
        };
        let config = DriveConfig::new(&self.google_drive_base_url, key);
        let source = DriveSource::new(config, samples, &self.voice_clips_folder)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(Arc::new(source))
    }

    /// The alert channels (SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, MONITORING_WEBHOOK_URL).
    pub fn alerter(&self, service: &'static str) -> Result<Alerter, WebhookUrlError> {
        Alerter::new(
            service,
            self.slack_webhook_url.as_ref(),
            self.discord_webhook_url.as_ref(),
            self.monitoring_webhook_url.as_ref(),
        )
    }

    /// The broker to connect to (AMQP_URL), with AMQP_CA_CERT's certificates; `None` without
    /// AMQP_URL (standalone mode).
    pub fn broker(&self) -> Result<Option<BrokerConfig>, ConfigError> {
        let Some(url) = &self.amqp_url else {
            if self.amqp_ca_cert.is_some() {
                return Err(ConfigError::Invalid(
                    "AMQP_CA_CERT is set but AMQP_URL is not".into(),
                ));
            }
            return Ok(None);
        };
        let mut broker = BrokerConfig::new(url.clone());
        if let Some(path) = &self.amqp_ca_cert {
            if !url.expose().starts_with("amqps://") {
                return Err(ConfigError::Invalid(
                    "AMQP_CA_CERT is set but AMQP_URL is not an amqps:// URL".into(),
                ));
            }
            broker = broker
                .with_ca_cert(path)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        Ok(Some(broker))
    }

    /// VOICE_MAX_CLIP_MB in bytes.
    pub fn max_clip_bytes(&self) -> u64 {
        self.voice_max_clip_mb.saturating_mul(1_000_000)
    }

    /// The `/health` limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_memory_bytes: Some((self.max_memory_gb * 1e9) as u64),
            max_api_failures: Some(self.max_api_failures),
        }
    }

    /// Whether one clips folder name serves every day (no `{date}` in VOICE_CLIPS_FOLDER).
    pub fn clips_folder_is_dated(&self) -> bool {
        self.voice_source != "gdrive" || self.voice_clips_folder.contains("{date}")
    }

    /// The model manifest path: VOICE_MODEL, else the bundled model in the working folder or in the
    /// checkout the binary was built in.
    pub fn model_path(&self) -> PathBuf {
        if let Some(path) = &self.voice_model {
            return path.clone();
        }
        let local = PathBuf::from(DEFAULT_MODEL);
        if local.is_file() {
            return local;
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| {
                exe.ancestors()
                    .skip(1)
                    .take(4)
                    .map(|d| d.join(DEFAULT_MODEL))
                    .find(|p| p.is_file())
            })
            .unwrap_or(local)
    }

    /// Threshold and margin before any location is calibrated: the settings where given, the
    /// model's defaults otherwise.
    pub fn rules(&self, manifest: &Manifest) -> DecisionRules {
        DecisionRules {
            threshold: self
                .voice_diarization_threshold
                .unwrap_or(manifest.decision.threshold),
            margin: self.voice_margin.unwrap_or(manifest.decision.margin),
        }
    }

    /// What every location's calibration starts from and never goes below.
    pub fn prior(&self, manifest: &Manifest) -> Prior {
        let d = &manifest.decision;
        Prior {
            rules: self.rules(manifest),
            impostor_mean: d.impostor_mean,
            impostor_sd: d.impostor_sd,
            target_mean: d.target_mean,
        }
    }

    /// The configured model (and its diarizer's windows model) on the configured ONNX Runtime.
    pub fn encoders(&self) -> Result<Encoders, ModelError> {
        let device = match self.voice_device.as_str() {
            "cuda" => Device::Cuda,
            "cpu" => Device::Cpu,
            _ if crate::ops::system::gpu().is_some() => Device::Cuda,
            _ => Device::Cpu,
        };
        let options = EncoderOptions {
            threads: self.onnx_threads(),
            device,
            ..EncoderOptions::default()
        };
        load_encoders(&self.model_path(), self.ort_dylib_path.as_deref(), options)
    }

    pub fn onnx_threads(&self) -> usize {
        self.voice_onnx_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> config::Map<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.voice_min_utterance_ms, 1000);
        assert_eq!(s.voice_diarization_threshold, None);

        let dir = std::env::temp_dir().join(format!("cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "voice_min_utterance_ms = 700\nvoice_margin = 0.1\n").unwrap();
        let s = Settings::load_from(Some(&file), env(&[("VOICE_MARGIN", "0.2")])).unwrap();
        assert_eq!(s.voice_min_utterance_ms, 700);
        assert_eq!(
            s.voice_margin,
            Some(0.2),
            "the environment wins over the file"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Settings::load_from(
            None,
            env(&[
                ("AMQP_URL", "amqp://voice:hunter2@mq:5672/%2f"),
                ("DATABASE_URL", "postgres://app:s3cret@db/voice"),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        let amqp = s.amqp_url.unwrap();
        assert_eq!(amqp.redacted(), "amqp://voice:***@mq:5672/%2f");
        let bad = Settings::load_from(None, env(&[("AMQP_URL", "guest:hunter2@mq")])).unwrap_err();
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
        assert!(bad.to_string().contains("AMQP_URL"), "{bad}");
        assert_eq!(amqp.expose(), "amqp://voice:hunter2@mq:5672/%2f");
        assert_eq!(redact_url("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?x=@"),
            "postgres://u:***@h/db?x=@"
        );
        assert_eq!(redact_url("amqp://u:ab#cd@h:5673/"), "amqp://***");
        assert_eq!(redact_url("not a url: pw"), "***");
    }

    /// Whatever the password holds, a URL either loads (percent-encoded, in one spelling every
    /// client reads alike) or exits at load naming the variable, never quoting the password.
    #[test]
    fn service_urls_are_parsed_and_never_quoted() {
        for (raw, password) in [
            ("amqp://guest:ab#cd@host:5673/", "ab#cd"),
            ("amqp://guest:a/b@host/", "a/b"),
            ("amqp://guest:a?b@host/", "a?b"),
            ("amqp://guest:50%@host/", "50%"),
            ("amqp://guest:pw@", "pw"),
            ("http://guest:pw9@host/", "pw9"),
            ("amqp://guest:pw7@ho st/", "pw7"),
        ] {
            let e = Settings::load_from(None, env(&[("AMQP_URL", raw)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("AMQP_URL") && !e.contains(password),
                "{raw}: {e}"
            );
            let e = Settings::load_from(
                None,
                env(&[("DATABASE_URL", &raw.replace("amqp", "postgres"))]),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("DATABASE_URL") && !e.contains(password),
                "{raw}: {e}"
            );
        }
        // A raw `@` is the parser's to place: the last one ends the user info.
        let s = Settings::load_from(
            None,
            env(&[
                ("AMQP_URL", "amqp://guest:p@ss@mq:5672/%2f"),
                (
                    "DATABASE_URL",
                    "postgres://app:p@ss@db:5432/voice?sslmode=require",
                ),
            ]),
        )
        .unwrap();
        let amqp = s.amqp_url.unwrap();
        assert_eq!(amqp.expose(), "amqp://guest:p%40ss@mq:5672/%2f");
        assert_eq!(amqp.redacted(), "amqp://guest:***@mq:5672/%2f");
        let db = s.database_url.unwrap();
        assert_eq!(
            db.expose(),
            "postgres://app:p%40ss@db:5432/voice?sslmode=require"
        );
        assert_eq!(
            db.scrub("password p@ss for postgres://app:p%40ss@db:5432/voice?sslmode=require"),
            "password *** for postgres://app:***@db:5432/voice?sslmode=require"
        );
        // Percent-encoded specials load as they are.
        let s = Settings::load_from(None, env(&[("AMQP_URL", "amqps://u:a%23b%2Fc%25d@mq/v")]))
            .unwrap();
        assert_eq!(s.amqp_url.unwrap().expose(), "amqps://u:a%23b%2Fc%25d@mq/v");
    }

    #[test]
    fn the_broker_ca_needs_an_amqps_url_and_a_certificate() {
        let dir = std::env::temp_dir().join(format!("cfg-test-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, "no certificate here").unwrap();
        let ca = file.to_string_lossy().into_owned();
        let e = Settings::load_from(
            None,
            env(&[("AMQP_URL", "amqps://mq/"), ("AMQP_CA_CERT", &ca)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AMQP_CA_CERT") && e.contains("no certificate"),
            "{e}"
        );
        let e = Settings::load_from(
            None,
            env(&[("AMQP_URL", "amqp://mq/"), ("AMQP_CA_CERT", &ca)]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("amqps://"), "{e}");
        let e = Settings::load_from(None, env(&[("AMQP_CA_CERT", &ca)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AMQP_URL"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        assert!(Settings::load_from(None, env(&[("VOICE_DIARIZATION_THRESHOLD", "abc")])).is_err());
        assert!(Settings::load_from(None, env(&[("VOICE_DIARIZATION_THRESHOLD", "1.5")])).is_err());
        assert!(Settings::load_from(None, env(&[("VOICE_PARALLEL_WORKERS", "0")])).is_err());
        let dir = std::env::temp_dir().join(format!("cfg-test-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "voice_treshold = 0.1\n").unwrap();
        let err = Settings::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("voice_treshold"), "{err}");
    }
}
