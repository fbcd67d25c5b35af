//! The speaker model: its manifest, the ONNX Runtime library, and the batched encoder.

mod encoder;
mod featurizer;
mod manifest;
mod runtime;

pub use encoder::{
    Device, EmbedRequest, Embedding, EncoderOptions, ModelError, SpeakerEncoder, gpu_batch,
    l2_normalize_f64,
};
pub use featurizer::{Featurizer, Partials};
pub use manifest::{
    Chunking, Decision, DiarizerWindows, Frontend, FrontendStyle, InputLayout, LogKind, Manifest,
    ManifestError, MelNorm, ModelInput, Normalize, Padding, WindowKind,
};
pub use runtime::{
    ORT_VERSION, RuntimeError, SETUP_COMMAND, default_library_candidates, environment, find_library,
};

use std::path::Path;

/// Reads the manifest, loads ONNX Runtime (from `ort_library`, or the default places) and the model.
pub fn load_encoder(
    manifest: &Path,
    ort_library: Option<&Path>,
    options: EncoderOptions,
) -> Result<SpeakerEncoder, ModelError> {
    let manifest = Manifest::load(manifest)?;
    let env = environment(ort_library, options.threads)?;
    SpeakerEncoder::load(&manifest, env, options)
}

/// The speaker model, and the model that embeds the local diarizer's windows when its manifest
/// names another one (`[diarizer] model`).
pub struct Encoders {
    pub speakers: SpeakerEncoder,
    pub windows: Option<SpeakerEncoder>,
}

impl Encoders {
    /// The encoder of the diarizer's windows.
    pub fn windows_mut(&mut self) -> &mut SpeakerEncoder {
        self.windows.as_mut().unwrap_or(&mut self.speakers)
    }

    pub fn windows_manifest(&self) -> &Manifest {
        self.windows.as_ref().unwrap_or(&self.speakers).manifest()
    }

    /// What the manifests name, for a log line: `campplus` or `campplus (windows: ge2e)`.
    pub fn describe(&self) -> String {
        match &self.windows {
            Some(w) => format!(
                "{} (diarizer windows: {})",
                self.speakers.manifest().id,
                w.manifest().id
            ),
            None => self.speakers.manifest().id.clone(),
        }
    }
}

/// [`load_encoder`], plus the diarizer's windows model when the manifest names one.
pub fn load_encoders(
    manifest: &Path,
    ort_library: Option<&Path>,
    options: EncoderOptions,
) -> Result<Encoders, ModelError> {
    let parsed = Manifest::load(manifest)?;
    let windows_manifest = parsed.diarizer_manifest();
    let env = environment(ort_library, options.threads)?;
    let speakers = SpeakerEncoder::load(&parsed, env, options)?;
    let windows = match windows_manifest {
        Some(path) => {
            let windows = Manifest::load(&path)?;
            if windows.diarizer.model.is_some() {
                return Err(ManifestError::Invalid {
                    path,
                    reason: "a model that embeds the diarizer's windows must not name another"
                        .into(),
                }
                .into());
            }
            Some(SpeakerEncoder::load(&windows, env, options)?)
        }
        None => None,
    };
    Ok(Encoders { speakers, windows })
}
