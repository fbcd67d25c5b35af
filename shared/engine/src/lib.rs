//! The CPU-only engine: everything that turns audio into a decision, with no tokio and no
//! network. The modules follow one clip:
//!
//! - [`audio`]: decode any supported file to 16 kHz mono, streaming; level normalisation.
//! - [`features`]: the model's front-end (mel spectrogram), built from its manifest.
//! - [`model`]: the model manifest, loading ONNX Runtime, the speaker encoder (batched runs).
//! - [`diarize`]: the local diarizer (speech detection, window embeddings, clustering).
//! - [`turns`]: speaker turns, and the minimum-length filter.
//! - [`matching`]: voice profiles (enrollment), calibration and the decision rules.
//! - [`eval`]: labelled evaluation sets, accuracy, equal error rate and DER.
//! - [`system`]: this process's memory and the GPU, for health and device choice.

pub mod audio;
pub mod diarize;
pub mod eval;
pub mod features;
pub mod matching;
pub mod model;
pub mod system;
pub mod turns;
