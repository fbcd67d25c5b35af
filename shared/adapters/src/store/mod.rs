//! The Postgres store (DESIGN §9): jobs, clip results, voice profiles; the customer's workers
//! and transactions, read only.
//!
//! Every statement goes through `query_typed`: unnamed statements with declared parameter
//! types, one round trip, and nothing prepared by name — which Supabase's transaction pooler
//! (PgBouncer in transaction mode) requires.

mod customer;
mod profiles;
mod report;
mod results;
mod sink;
mod tls;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql, Type};

use engine::matching::ClipStatus;
use ops::Secret;
use pipeline::{ClipResult, JobRow, NewJob, SinkError};

/// Applied in order, each once, under an advisory lock (several binaries start together).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_voice_tables.sql")),
    (2, include_str!("migrations/0002_transcripts.sql")),
    (3, include_str!("migrations/0003_calibration.sql")),
    (4, include_str!("migrations/0004_publishing.sql")),
];
/// Any fixed number: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x766f_6963_6531;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The parser's message names the bad part, never the password.
    #[error("DATABASE_URL is not a Postgres connection string: {0}")]
    BadUrl(String),
    #[error("database: {}", with_causes(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("database: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Data(String),
    #[error("database TLS: {0}")]
    Tls(String),
}

impl From<StoreError> for SinkError {
    fn from(e: StoreError) -> Self {
        Self {
            permanent: e.is_permanent(),
            message: e.to_string(),
        }
    }
}

impl StoreError {
    /// Whether the database refused the data itself (SQLSTATE class 22 data exception, 23
    /// integrity violation, 42 syntax or access, 54 a limit exceeded): trying the same rows
    /// again can never succeed.
    pub fn is_permanent(&self) -> bool {
        let Self::Db(e) = self else {
            return false;
        };
        e.code().is_some_and(|c| {
            ["22", "23", "42", "54"]
                .iter()
                .any(|class| c.code().starts_with(class))
        })
    }
}

/// tokio-postgres keeps the reason (a refused certificate, a reset) in its source chain.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Self::Db(e),
            other => Self::Pool(other.to_string()),
        }
    }
}

/// Reads a job row the way every query selects it ([`JOB_COLUMNS`]).
fn job_row(row: &Row) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        job_id: row.try_get("job_id")?,
        status: row.try_get("status")?,
        total: row.try_get("total")?,
        done: row.try_get("done")?,
        matched: row.try_get("matched")?,
        no_match: row.try_get("no_match")?,
        no_speech: row.try_get("no_speech")?,
        failed: row.try_get("failed")?,
        skipped: row.try_get("skipped")?,
    })
}

const JOB_COLUMNS: &str =
    "job_id, status, total, done, matched, no_match, no_speech, failed, skipped";

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// A pool that connects on first use: a database that is down now is not an error here.
    /// TLS as the URL's `sslmode` says; `ca_cert` (DATABASE_CA_CERT) makes it verified.
    pub fn connect(url: &Secret, ca_cert: Option<&Path>) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url.expose())
            .map_err(|e| StoreError::BadUrl(url.scrub(&e.to_string())))?;
        tls::settle_mode(&mut config, url, ca_cert.is_some());
        config
            .application_name("voice-diarization")
            .connect_timeout(Duration::from_secs(5));
        let manager = Manager::from_config(
            config,
            tls::connector(ca_cert)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(5)))
            .wait_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Creates or updates the tables this system owns.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.query_typed(
            "SELECT pg_advisory_xact_lock($1)",
            &[(&MIGRATION_LOCK, Type::INT8)],
        )
        .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS voice_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let applied: i32 = tx
            .query_typed(
                "SELECT COALESCE(max(version), 0) AS v FROM voice_schema_migrations",
                &[],
            )
            .await?
            .first()
            .map(|r| r.try_get("v"))
            .transpose()?
            .unwrap_or(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            tx.batch_execute(sql).await?;
            tx.query_typed(
                "INSERT INTO voice_schema_migrations (version) VALUES ($1)",
                &[(version, Type::INT4)],
            )
            .await?;
            tracing::info!(version, "database migration applied");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the job, and hands over to it every job still running for the same location and
    /// overlapping days (an earlier run a CronJob retried): those end `superseded`, their
    /// remaining tasks are skipped by the workers, and this job publishes what is not done.
    /// Returns the jobs handed over.
    pub async fn create_job(&self, job: &NewJob<'_>) -> Result<Vec<String>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let handed = tx
            .query_typed(
                "UPDATE voice_jobs SET status = 'superseded', finished_at = now(), updated_at = now(),
                     error = 'handed over to job ' || $1
                 WHERE location_id = $2::uuid AND status = 'running' AND job_id <> $1
                   AND date_from <= $4::date AND date_to >= $3::date
                 RETURNING job_id",
                &[
                    (&job.job_id, Type::TEXT),
                    (&job.location_id, Type::TEXT),
                    (&job.date_from, Type::TEXT),
                    (&job.date_to, Type::TEXT),
                ],
            )
            .await?
            .iter()
            .map(|r| r.try_get::<_, String>("job_id"))
            .collect::<Result<Vec<_>, _>>()?;
        tx.query_typed(
            "INSERT INTO voice_jobs (job_id, location_id, date_from, date_to, total, skipped,
                                         planned, published_at, publishing_at)
                 VALUES ($1, $2::uuid, $3::date, $4::date, 0, $6, $5, NULL, now())",
            &[
                (&job.job_id, Type::TEXT),
                (&job.location_id, Type::TEXT),
                (&job.date_from, Type::TEXT),
                (&job.date_to, Type::TEXT),
                (&job.planned, Type::INT4),
                (&job.skipped, Type::INT4),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(handed)
    }

    /// Counts `confirmed` more published tasks into the job's total (the dispatcher's sign of
    /// life while it publishes).
    pub async fn add_published(&self, job_id: &str, confirmed: i32) -> Result<(), StoreError> {
        self.pool
            .get()
            .await?
            .query_typed(
                "UPDATE voice_jobs SET total = total + $2, publishing_at = now(), updated_at = now()
                 WHERE job_id = $1",
                &[(&job_id, Type::TEXT), (&confirmed, Type::INT4)],
            )
            .await?;
        Ok(())
    }

    /// Publishing is over: the job may close, and one whose results are all in closes here,
    /// since no further result will come to close it.
    pub async fn finish_publishing(&self, job_id: &str) -> Result<JobRow, StoreError> {
        let sql = format!(
            "UPDATE voice_jobs SET published_at = now(), updated_at = now(),
                 {CLOSE_IF_DONE}
             WHERE job_id = $1 RETURNING {JOB_COLUMNS}"
        );
        self.updated_jobs(&sql, &[(&job_id, Type::TEXT)])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Data(format!("job {job_id} is not in voice_jobs")))
    }

    /// Jobs whose dispatcher stopped mid-publish (no sign of life for `lease`): publishing is
    /// declared over with what was confirmed, noted in `error`; those with every result in close.
    /// A chunk the broker confirmed but the dispatcher never counted (it died in between) is
    /// counted by its results as they come, before or after the job closes.
    pub async fn settle_abandoned_publishing(
        &self,
        lease: Duration,
    ) -> Result<Vec<JobRow>, StoreError> {
        let seconds = lease.as_secs_f64();
        let sql = format!(
            "UPDATE voice_jobs SET published_at = now(), updated_at = now(),
                 error = 'the dispatcher stopped after publishing ' || total || ' of '
                         || COALESCE(planned, total) || ' clips',
                 {CLOSE_IF_DONE}, total = GREATEST(total, done)
             WHERE published_at IS NULL
               AND COALESCE(publishing_at, started_at) < now() - make_interval(secs => $1::float8)
             RETURNING {JOB_COLUMNS}"
        );
        self.updated_jobs(&sql, &[(&seconds, Type::FLOAT8)]).await
    }

    /// Ends a job that is still running with `status` (`failed`, `timed_out`) and the reason.
    pub async fn end_job(&self, job_id: &str, status: &str, error: &str) -> Result<(), StoreError> {
        self.pool
            .get()
            .await?
            .query_typed(
                "UPDATE voice_jobs SET status = $2, error = $3, finished_at = now(), updated_at = now()
                 WHERE job_id = $1 AND status = 'running'",
                &[
                    (&job_id, Type::TEXT),
                    (&status, Type::TEXT),
                    (&error, Type::TEXT),
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn job(&self, job_id: &str) -> Result<Option<JobRow>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM voice_jobs WHERE job_id = $1");
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(&sql, &[(&job_id, Type::TEXT)])
            .await?;
        rows.first().map(job_row).transpose()
    }

    /// Answers a trivial query: the readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get().await?.query_typed("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Marks the jobs running for longer than `max` as `timed_out`; returns them.
    pub async fn time_out_jobs(&self, max: Duration) -> Result<Vec<JobRow>, StoreError> {
        let seconds = max.as_secs_f64();
        let sql = format!(
            "UPDATE voice_jobs SET status = 'timed_out', finished_at = now(), updated_at = now(),
                 error = 'running for longer than MAX_JOB_DURATION (' || $1::float8 || ' s)'
             WHERE status = 'running' AND started_at < now() - make_interval(secs => $1::float8)
             RETURNING {JOB_COLUMNS}"
        );
        self.updated_jobs(&sql, &[(&seconds, Type::FLOAT8)]).await
    }

    /// Runs a `… RETURNING {JOB_COLUMNS}` statement; the jobs it returned.
    async fn updated_jobs(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = self.pool.get().await?.query_typed(sql, params).await?;
        rows.iter().map(job_row).collect()
    }
}

/// Closes a running job whose results are all in (in an `UPDATE voice_jobs SET …`).
const CLOSE_IF_DONE: &str = "status = CASE WHEN status = 'running' AND done >= total THEN 'completed' ELSE status END,
                 finished_at = CASE WHEN status = 'running' AND done >= total THEN now() ELSE finished_at END";
