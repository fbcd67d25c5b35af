//! What the settings build: the clip source, the broker and AssemblyAI configurations, the
//! alerter, the speaker model and the decision rules.

use std::path::PathBuf;
use std::sync::Arc;

use adapters::assemblyai::AssemblyAiConfig;
use adapters::broker::BrokerConfig;
use adapters::drive::{DriveConfig, DriveSource};
use adapters::local::LocalSource;
use adapters::webhooks::WebhookUrlError;
use engine::matching::{DecisionRules, Prior};
use engine::model::{Device, EncoderOptions, Encoders, Manifest, ModelError, load_encoders};
use ops::{Alerter, Limits, Secret};
use pipeline::source::ClipSource;

use super::{ConfigError, DEFAULT_MODEL, DeviceChoice, DiarizerKind, Settings, SourceKind};

impl Settings {
    pub(super) fn retry_delays(&self) -> Option<Vec<std::time::Duration>> {
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
        if self.voice_diarizer != DiarizerKind::Assemblyai {
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
        if self.voice_source != SourceKind::Gdrive {
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
        adapters::webhooks::alerter(
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
        self.voice_source != SourceKind::Gdrive || self.voice_clips_folder.contains("{date}")
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
        let device = match self.voice_device {
            DeviceChoice::Cuda => Device::Cuda,
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Auto if engine::system::gpu().is_some() => Device::Cuda,
            DeviceChoice::Auto => Device::Cpu,
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
