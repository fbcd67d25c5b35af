//! Settings that cannot work are refused at start, with the variable that is wrong.

use super::{ConfigError, DiarizerKind, Settings, SourceKind};

impl Settings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        if self.voice_onnx_threads == Some(0) {
            return bad("VOICE_ONNX_THREADS must be at least 1");
        }
        self.broker()?;
        if self.voice_diarizer == DiarizerKind::Assemblyai && self.aai_api_key.is_none() {
            return bad("VOICE_DIARIZER=assemblyai needs AAI_API_KEY");
        }
        if self.voice_source == SourceKind::Gdrive {
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
}
