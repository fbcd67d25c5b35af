//! Where a job and its results are kept: Postgres (DATABASE_URL), or
//! an output folder for a standalone run without one. The dispatcher records
//! the job and what it published, the worker asks whether a clip still needs work, and the
//! reducer writes results and closes the job, against either.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;

use crate::ClipResult;

/// A job as stored: its counters are recounted from the results, so they stay right however
/// often a result is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub status: String,
    pub total: i32,
    pub done: i32,
    pub matched: i32,
    pub no_match: i32,
    pub no_speech: i32,
    pub failed: i32,
    pub skipped: i32,
}

impl JobRow {
    pub fn is_open(&self) -> bool {
        self.status == "running"
    }

    /// The share of the day's clips that did not fail, those already done before the job
    /// (skipped) included: a re-run of one broken clip is not a failed day. 1 with none.
    pub fn success_rate(&self) -> f64 {
        let all = self.done + self.skipped;
        if all <= 0 {
            return 1.0;
        }
        f64::from(all - self.failed) / f64::from(all)
    }
}

/// What the dispatcher records before it publishes.
pub struct NewJob<'a> {
    pub job_id: &'a str,
    pub location_id: &'a str,
    pub date_from: &'a str,
    pub date_to: &'a str,
    /// What the dispatcher means to publish; the total grows as the broker confirms.
    pub planned: i32,
    pub skipped: i32,
}

/// A sink that could not do what was asked. `permanent`: it refuses these data for good (a
/// violated constraint, a bad value); trying them again can never succeed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    pub permanent: bool,
}

impl SinkError {
    /// A failure that may pass (the database restarting, a timeout).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

#[async_trait]
pub trait ResultSink: Send + Sync {
    /// Of `keys`, the clips that already have a completed result (not redone without `force`).
    async fn completed_clips(&self, keys: &[String]) -> Result<HashSet<String>, SinkError>;

    /// Records a running job; returns the running jobs it takes the clips over from.
    async fn create_job(&self, job: &NewJob<'_>) -> Result<Vec<String>, SinkError>;

    /// Counts `confirmed` more published tasks into the job's total.
    async fn add_published(&self, job_id: &str, confirmed: i32) -> Result<(), SinkError>;

    /// Publishing is over: the job may close (at once, if its results are all in).
    async fn finish_publishing(&self, job_id: &str) -> Result<JobRow, SinkError>;

    /// Ends a running job with `status` (`failed`, `timed_out`) and the reason.
    async fn end_job(&self, job_id: &str, status: &str, error: &str) -> Result<(), SinkError>;

    async fn job(&self, job_id: &str) -> Result<Option<JobRow>, SinkError>;

    /// Why a task of `job` for the clip needs no work any more, if it does not.
    async fn settled_task(
        &self,
        job: &str,
        clip_key: &str,
    ) -> Result<Option<&'static str>, SinkError>;

    /// Stores `results` by clip and recounts their jobs; the jobs touched, each with whether
    /// this write closed it. Writing the same results again changes nothing.
    async fn write_results(&self, results: &[ClipResult])
    -> Result<Vec<(JobRow, bool)>, SinkError>;

    /// Jobs whose dispatcher stopped mid-publish for `lease`: publishing declared over.
    async fn settle_abandoned_publishing(&self, lease: Duration) -> Result<Vec<JobRow>, SinkError>;

    /// Running jobs older than `max`, now `timed_out`.
    async fn time_out_jobs(&self, max: Duration) -> Result<Vec<JobRow>, SinkError>;
}
