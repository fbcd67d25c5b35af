//! The speaker model: its manifest, the ONNX Runtime library, and the batched encoder.

mod encoder;
mod manifest;
mod runtime;

pub use encoder::{
    Device, EmbedRequest, Embedding, EncoderOptions, Featurizer, ModelError, Partials,
    SpeakerEncoder, gpu_batch, l2_normalize_f64,
};
pub use manifest::{
    Chunking, Decision, Frontend, InputLayout, LogKind, Manifest, ManifestError, MelNorm,
    ModelInput, Normalize, WindowKind,
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
    let env = environment(ort_library)?;
    SpeakerEncoder::load(&manifest, env, options)
}
