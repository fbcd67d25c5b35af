//! Labelled evaluation sets: enroll, decide every clip, compare with the labels.

mod dataset;
mod der;
mod metrics;
mod run;

pub use dataset::{Dataset, DatasetError, LabelledClip};
pub use der::{DerParts, der};
pub use metrics::{Eer, equal_error_rate};
pub use run::{
    ClipOutcome, ConditionStats, EvalOptions, LocalTurns, OracleTurns, Report, SpeakerOutcome,
    TurnSource, evaluate, identity_of,
};
