//! A job's end as the reducer sees it: closed by its last result or timed out, and the
//! alerts either raises.

use super::*;

impl ReducerService {
    pub(super) async fn sweep_timeouts(&self) {
        loop {
            match self.store.settle_abandoned_publishing(PUBLISH_LEASE).await {
                Ok(jobs) => {
                    for job in jobs {
                        tracing::warn!(job = %job.job_id, total = job.total, "its dispatcher stopped while publishing: the job goes on with the clips it published");
                        if !job.is_open() {
                            self.closed(&job);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking for abandoned publishing failed"),
            }
            match self.store.time_out_jobs(self.max_job_duration).await {
                Ok(jobs) => {
                    for job in jobs {
                        metrics()
                            .jobs_failed
                            .with_label_values(&["timed_out"])
                            .inc();
                        self.alerter
                            .send(&job_alert(
                                &job,
                                "job_timed_out",
                                format!(
                                    "job {} ran for longer than MAX_JOB_DURATION ({} s) and was marked timed out",
                                    job.job_id,
                                    self.max_job_duration.as_secs()
                                ),
                            ))
                            .await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking for timed-out jobs failed"),
            }
            tokio::time::sleep(TIMEOUT_SWEEP).await;
        }
    }

    /// Counts and alerts for a job this reducer just closed. The alert is sent on its own task:
    /// a slow webhook never holds up a batch's ack.
    pub(super) fn closed(&self, job: &JobRow) {
        tracing::info!(
            job = %job.job_id,
            status = %job.status,
            done = job.done,
            total = job.total,
            matched = job.matched,
            failed = job.failed,
            "job closed"
        );
        let rate = job.success_rate();
        if rate < self.min_success_rate {
            metrics()
                .jobs_failed
                .with_label_values(&["low_success_rate"])
                .inc();
            let text = format!(
                "job {} finished with {:.0} % of its clips processed, under MIN_SUCCESS_RATE {:.0} %",
                job.job_id,
                100.0 * rate,
                100.0 * self.min_success_rate
            );
            let (alerter, alert) = (
                self.alerter.clone(),
                job_alert(job, "low_success_rate", text),
            );
            let mut alerts = self
                .alerts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Those already sent are let go.
            while alerts.try_join_next().is_some() {}
            alerts.spawn(async move { alerter.send(&alert).await });
        } else {
            metrics().jobs_completed.inc();
        }
    }
}

/// An alert about one job, with its counters.
pub fn job_alert(job: &JobRow, event: &'static str, text: String) -> Alert {
    Alert {
        event,
        level: Level::Critical,
        title: format!(
            "voice diarization: job {} {}",
            job.job_id,
            event.replace('_', " ")
        ),
        text,
        fields: vec![
            ("job".into(), job.job_id.clone()),
            ("clips".into(), job.total.to_string()),
            ("done".into(), job.done.to_string()),
            ("matched".into(), job.matched.to_string()),
            ("failed".into(), job.failed.to_string()),
        ],
    }
}
