//! Labelled evaluation sets and their measures: the set itself, the diarization error rate and
//! the equal error rate. The evaluation (enroll, decide, compare) is `pipeline::eval`: the same
//! stages as the worker's.

mod dataset;
mod der;
mod metrics;

pub use dataset::{Dataset, DatasetError, LabelledClip};
pub use der::{DerParts, der};
pub use metrics::{Eer, equal_error_rate};
