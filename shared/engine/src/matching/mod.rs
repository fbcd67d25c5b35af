//! Voice profiles and the decision: which enrolled worker, if any, each speaker of a clip is.

mod calibrate;
mod decide;
mod enroll;
mod profile;

pub use calibrate::{
    Basis, Calibration, EmployeeSamples, FlaggedSample, LeadRule, LookAlike, MIN_SAMPLE_SPEECH_S,
    Prior, SampleIssue, SpeechShift, calibrate, mean_embedding, shift_for,
};
pub use decide::{
    ClipDecision, ClipStatus, DecisionRules, SpeakerDecision, SpeakerInput, UnknownReason, cosine,
    decide,
};
pub use enroll::{Enrollee, Enrollment, enroll, enroll_with};
pub use profile::{
    Piece, Profile, ProfileSet, SampleEmbedding, WEAK_PROFILE_SECONDS, build_profile,
};
