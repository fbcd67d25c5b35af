//! What each binary runs, from its settings, until it is done or stopped.

mod job;
mod reducer;
mod worker;

pub use job::{JobAlerts, JobOutcome, JobRequest, JobRun, run_job};
pub use reducer::run_reducer;
pub use worker::run_worker;
