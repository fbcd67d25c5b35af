//! What `dispatcher report` reads of a job.

use tokio_postgres::types::Type;

use super::{Store, StoreError};
use crate::report::{JobResults, ReportClip};

impl Store {
    /// The job's facts (name, value) and its clips' results, by date and name; `None` for an
    /// unknown job.
    pub async fn job_report(&self, job_id: &str) -> Result<Option<JobResults>, StoreError> {
        let client = self.pool.get().await?;
        let jobs = client
            .query_typed(
                "SELECT location_id::text AS location, date_from::text AS date_from,
                        date_to::text AS date_to, status, total, done, matched, failed,
                        to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS started
                 FROM voice_jobs WHERE job_id = $1",
                &[(&job_id, Type::TEXT)],
            )
            .await?;
        let Some(job) = jobs.first() else {
            return Ok(None);
        };
        let (from, to): (String, String) = (job.try_get("date_from")?, job.try_get("date_to")?);
        let details = vec![
            ("job".to_string(), job_id.to_string()),
            ("location".into(), job.try_get("location")?),
            (
                "dates".into(),
                if from == to {
                    from
                } else {
                    format!("{from} .. {to}")
                },
            ),
            ("status".into(), job.try_get("status")?),
            (
                "clips".into(),
                format!(
                    "{} of {} done, {} matched, {} failed",
                    job.try_get::<_, i32>("done")?,
                    job.try_get::<_, i32>("total")?,
                    job.try_get::<_, i32>("matched")?,
                    job.try_get::<_, i32>("failed")?
                ),
            ),
            ("started".into(), job.try_get("started")?),
        ];
        let rows = client
            .query_typed(
                "SELECT json_build_object(
                     'clip', clip_name, 'date', clip_date::text,
                     'transaction_id', transaction_id::text, 'status', status,
                     'worker_name', worker_name, 'score', score, 'margin', margin,
                     'threshold', threshold, 'required_margin', required_margin,
                     'speakers', speakers, 'turns', turns, 'audio_s', audio_s,
                     'error_kind', error_kind, 'error', error)::text AS r
                 FROM voice_clip_results WHERE job_id = $1 ORDER BY clip_date, clip_name",
                &[(&job_id, Type::TEXT)],
            )
            .await?;
        let clips = rows
            .iter()
            .map(|r| {
                let text: String = r.try_get("r")?;
                serde_json::from_str(&text).map_err(|e| StoreError::Data(e.to_string()))
            })
            .collect::<Result<Vec<ReportClip>, StoreError>>()?;
        Ok(Some((details, clips)))
    }
}
