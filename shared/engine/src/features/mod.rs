//! The model's front-end, configured by the manifest: mel filterbank features.

mod mel;

pub use mel::{MelFrontend, MelScratch, normalize_mean, normalize_per_feature};
