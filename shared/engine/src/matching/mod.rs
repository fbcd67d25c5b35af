//! Voice profiles and the decision: which enrolled worker, if any, each speaker of a clip is.

mod calibrate;
mod decide;
mod enroll;
mod profile;

pub use calibrate::{
    Basis, Calibration, EmployeeSamples, FlaggedSample, LookAlike, MIN_SAMPLE_SPEECH_S, Prior,
    SampleIssue, calibrate, mean_embedding,
};
pub use decide::{
    ClipDecision, ClipStatus, DecisionRules, SpeakerDecision, SpeakerInput, UnknownReason, cosine,
    decide,
};
pub use enroll::{Enrollee, Enrollment, enroll, enroll_with};
pub use profile::{Profile, ProfileSet, SampleEmbedding, WEAK_PROFILE_SECONDS, build_profile};
