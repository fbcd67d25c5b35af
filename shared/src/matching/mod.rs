//! Voice profiles and the decision: which enrolled worker, if any, each speaker of a clip is.

mod decide;
mod enroll;
mod profile;

pub use decide::{
    ClipDecision, ClipStatus, DecisionRules, SpeakerDecision, SpeakerInput, UnknownReason, cosine,
    decide,
};
pub use enroll::{Enrollee, Enrollment, enroll, enroll_with};
pub use profile::{Profile, SampleEmbedding, WEAK_PROFILE_SECONDS, build_profile};
