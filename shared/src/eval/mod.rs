//! Labelled evaluation sets: enroll, decide every clip, compare with the labels.

mod dataset;
mod metrics;
mod run;

pub use dataset::{Dataset, DatasetError, LabelledClip};
pub use metrics::{Eer, equal_error_rate};
pub use run::{
    ClipOutcome, ConditionStats, EvalOptions, OracleTurns, Report, SpeakerOutcome, TurnSource,
    evaluate, identity_of,
};
