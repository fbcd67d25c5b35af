//! The store as the stages see it ([`ResultSink`]), and its readiness check.

use std::collections::HashSet;
use std::time::Duration;

use pipeline::{ClipResult, JobRow, NewJob, ResultSink, SinkError};

use super::Store;

impl Store {
    /// The `database` readiness check: the store answers `SELECT 1`.
    pub fn health_check(&self) -> ops::health::Check {
        let store = self.clone();
        Box::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.is_ok() })
        })
    }
}

/// The stages' view of the store: the same queries, behind the trait the output folder also
/// implements.
#[async_trait::async_trait]
impl ResultSink for Store {
    async fn completed_clips(&self, keys: &[String]) -> Result<HashSet<String>, SinkError> {
        Store::completed_clips(self, keys)
            .await
            .map_err(SinkError::from)
    }

    async fn create_job(&self, job: &NewJob<'_>) -> Result<Vec<String>, SinkError> {
        Store::create_job(self, job).await.map_err(SinkError::from)
    }

    async fn add_published(&self, job_id: &str, confirmed: i32) -> Result<(), SinkError> {
        Store::add_published(self, job_id, confirmed)
            .await
            .map_err(SinkError::from)
    }

    async fn finish_publishing(&self, job_id: &str) -> Result<JobRow, SinkError> {
        Store::finish_publishing(self, job_id)
            .await
            .map_err(SinkError::from)
    }

    async fn end_job(&self, job_id: &str, status: &str, error: &str) -> Result<(), SinkError> {
        Store::end_job(self, job_id, status, error)
            .await
            .map_err(SinkError::from)
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRow>, SinkError> {
        Store::job(self, job_id).await.map_err(SinkError::from)
    }

    async fn settled_task(
        &self,
        job: &str,
        clip_key: &str,
    ) -> Result<Option<&'static str>, SinkError> {
        Store::settled_task(self, job, clip_key)
            .await
            .map_err(SinkError::from)
    }

    async fn write_results(
        &self,
        results: &[ClipResult],
    ) -> Result<Vec<(JobRow, bool)>, SinkError> {
        Store::write_results(self, results)
            .await
            .map_err(SinkError::from)
    }

    async fn settle_abandoned_publishing(&self, lease: Duration) -> Result<Vec<JobRow>, SinkError> {
        Store::settle_abandoned_publishing(self, lease)
            .await
            .map_err(SinkError::from)
    }

    async fn time_out_jobs(&self, max: Duration) -> Result<Vec<JobRow>, SinkError> {
        Store::time_out_jobs(self, max)
            .await
            .map_err(SinkError::from)
    }
}
