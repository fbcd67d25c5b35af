//! The Postgres store (DESIGN §9): jobs, clip results, voice profiles; the customer's workers
//! and transactions, read only.
//!
//! Every statement goes through `query_typed`: unnamed statements with declared parameter
//! types, one round trip, and nothing prepared by name — which Supabase's transaction pooler
//! (PgBouncer in transaction mode) requires.

mod customer;
mod profiles;
mod report;
mod tls;

pub use profiles::{Fingerprint, StoredProfile};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql, Type};

use crate::config::Secret;
use crate::matching::ClipStatus;
use crate::pipeline::ClipResult;

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

    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
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
}

const JOB_COLUMNS: &str =
    "job_id, status, total, done, matched, no_match, no_speech, failed, skipped";

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
        rows.first().map(JobRow::from_row).transpose()
    }

    /// Of `keys`, the clips that already have a completed result (failed ones are retried).
    pub async fn completed_clips(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(
                "SELECT clip_key FROM voice_clip_results
                 WHERE clip_key = ANY($1) AND status <> 'failed'",
                &[(&keys, Type::TEXT_ARRAY)],
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get::<_, String>("clip_key").map_err(StoreError::from))
            .collect()
    }

    /// Why a task of `job` for the clip needs no work any more, if it does not: its job already
    /// stored a completed result for it, or the job was handed over to a later run.
    pub async fn settled_task(
        &self,
        job: &str,
        clip_key: &str,
    ) -> Result<Option<&'static str>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(
                "SELECT (SELECT status FROM voice_jobs WHERE job_id = $2) = 'superseded' AS handed,
                        EXISTS (SELECT 1 FROM voice_clip_results
                                WHERE clip_key = $1 AND job_id = $2 AND status <> 'failed') AS done",
                &[(&clip_key, Type::TEXT), (&job, Type::TEXT)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let handed: Option<bool> = row.try_get("handed")?;
        let done: bool = row.try_get("done")?;
        Ok(if done {
            Some("already completed in this job")
        } else if handed == Some(true) {
            Some("its job was handed over to a later run")
        } else {
            None
        })
    }

    /// Upserts `results` by clip and recounts their jobs, in one transaction; returns the jobs
    /// touched, each with whether this write closed it. Writing the same results again
    /// changes nothing. A result never replaces one
    /// from a job started later (a late redelivery after a `--force` re-run).
    pub async fn write_results(
        &self,
        results: &[ClipResult],
    ) -> Result<Vec<(JobRow, bool)>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        // One row per clip (ON CONFLICT cannot touch a row twice in one statement): the last
        // of a clip's results, except that a `failed` one never displaces a completed one of
        // the same job (a late duplicate of a try that had already succeeded).
        let mut chosen: HashMap<&str, &ClipResult> = HashMap::new();
        for result in results {
            let keep = chosen.get(result.clip_key.as_str()).is_some_and(|kept| {
                kept.job_id == result.job_id
                    && result.status == ClipStatus::Failed
                    && kept.status != ClipStatus::Failed
            });
            if !keep {
                chosen.insert(&result.clip_key, result);
            }
        }
        // In clip order, so that two writers lock the rows they share in the same order.
        let mut unique: Vec<&ClipResult> = chosen.into_values().collect();
        unique.sort_by(|a, b| a.clip_key.cmp(&b.clip_key));
        // Serialised straight into the protocol buffer, with no JSON tree in between.
        let json = Json(&unique);
        let mut jobs: Vec<String> = unique.iter().map(|r| r.job_id.clone()).collect();
        jobs.sort();
        jobs.dedup();

        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One writer per job at a time (two reducers share a job's results): each statement
        // after the lock reads a snapshot that holds the other writer's committed rows, so no
        // recount can miss them. In job order, so that two writers never wait on each other.
        tx.query_typed(LOCK_JOBS, &[(&jobs, Type::TEXT_ARRAY)])
            .await?;
        tx.query_typed(
            UPSERT_RESULTS,
            &[(&json as &(dyn ToSql + Sync), Type::JSONB)],
        )
        .await?;
        let rows = tx
            .query_typed(RECOUNT_JOBS, &[(&jobs, Type::TEXT_ARRAY)])
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((JobRow::from_row(r)?, r.try_get("closed_now")?)))
            .collect()
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
        rows.iter().map(JobRow::from_row).collect()
    }
}

/// Closes a running job whose results are all in (in an `UPDATE voice_jobs SET …`).
const CLOSE_IF_DONE: &str = "status = CASE WHEN status = 'running' AND done >= total THEN 'completed' ELSE status END,
                 finished_at = CASE WHEN status = 'running' AND done >= total THEN now() ELSE finished_at END";

const UPSERT_RESULTS: &str = "
INSERT INTO voice_clip_results AS v (
    clip_key, job_id, location_id, clip_date, clip_name, transaction_id, status,
    worker_id, worker_name, score, margin, threshold, required_margin, speakers, turns,
    audio_s, model, error_kind, error, attempts, timings_ms, transcript_id, transcript_text,
    utterances)
SELECT r->>'clip_key', r->>'job_id', (r->>'location_id')::uuid, (r->>'date')::date,
       r->>'clip', (r->>'transaction_id')::uuid, r->>'status',
       r->>'worker_id', r->>'worker_name', (r->>'score')::real, (r->>'margin')::real,
       (r->>'threshold')::real, (r->>'required_margin')::real,
       COALESCE(r->'speakers', '[]'), COALESCE(r->'turns', '[]'),
       COALESCE((r->>'audio_s')::float8, 0), r->>'model',
       r->>'error_kind', r->>'error', COALESCE((r->>'attempts')::int, 1), r->'timings_ms',
       r->'transcript'->>'id', r->'transcript'->>'text', r->'transcript'->'utterances'
FROM jsonb_array_elements($1) AS input(r)
ON CONFLICT (clip_key) DO UPDATE SET
    job_id = EXCLUDED.job_id, location_id = EXCLUDED.location_id,
    clip_date = EXCLUDED.clip_date, clip_name = EXCLUDED.clip_name,
    transaction_id = EXCLUDED.transaction_id, status = EXCLUDED.status,
    worker_id = EXCLUDED.worker_id, worker_name = EXCLUDED.worker_name,
    score = EXCLUDED.score, margin = EXCLUDED.margin, threshold = EXCLUDED.threshold,
    required_margin = EXCLUDED.required_margin, speakers = EXCLUDED.speakers,
    turns = EXCLUDED.turns, audio_s = EXCLUDED.audio_s, model = EXCLUDED.model,
    error_kind = EXCLUDED.error_kind, error = EXCLUDED.error, attempts = EXCLUDED.attempts,
    timings_ms = EXCLUDED.timings_ms, transcript_id = EXCLUDED.transcript_id,
    transcript_text = EXCLUDED.transcript_text, utterances = EXCLUDED.utterances,
    updated_at = now()
WHERE (v.job_id = EXCLUDED.job_id AND NOT (EXCLUDED.status = 'failed' AND v.status <> 'failed'))
   OR (v.job_id <> EXCLUDED.job_id
       AND COALESCE((SELECT started_at FROM voice_jobs WHERE job_id = EXCLUDED.job_id), now())
           >= COALESCE((SELECT started_at FROM voice_jobs WHERE job_id = v.job_id), '-infinity'))";

const LOCK_JOBS: &str =
    "SELECT 1 FROM voice_jobs WHERE job_id = ANY($1) ORDER BY job_id FOR NO KEY UPDATE";

const RECOUNT_JOBS: &str = "
UPDATE voice_jobs j SET
    done = c.done, matched = c.matched, no_match = c.no_match,
    no_speech = c.no_speech, failed = c.failed, updated_at = now(),
    -- Once publishing is over, only a chunk a killed dispatcher never counted can bring more
    -- results than the total; while publishing, a result may simply beat its chunk's count.
    total = CASE WHEN j.published_at IS NOT NULL THEN GREATEST(j.total, c.done) ELSE j.total END,
    status = CASE WHEN j.status = 'running' AND j.published_at IS NOT NULL AND c.done >= j.total
                  THEN 'completed' ELSE j.status END,
    finished_at = CASE WHEN j.status = 'running' AND j.published_at IS NOT NULL AND c.done >= j.total
                       THEN now() ELSE j.finished_at END
FROM (
    SELECT job_id,
           count(*)::int AS done,
           (count(*) FILTER (WHERE status = 'matched'))::int AS matched,
           (count(*) FILTER (WHERE status = 'no_match'))::int AS no_match,
           (count(*) FILTER (WHERE status = 'no_speech'))::int AS no_speech,
           (count(*) FILTER (WHERE status = 'failed'))::int AS failed
    FROM voice_clip_results WHERE job_id = ANY($1) GROUP BY job_id
) c
WHERE j.job_id = c.job_id
RETURNING j.job_id, j.status, j.total, j.done, j.matched, j.no_match, j.no_speech, j.failed, j.skipped,
          j.status <> 'running' AND j.finished_at = now() AS closed_now";

/// The stages' view of the store: the same queries, behind the trait the output folder also
/// implements.
#[async_trait::async_trait]
impl crate::pipeline::ResultSink for Store {
    async fn completed_clips(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        Store::completed_clips(self, keys).await
    }

    async fn create_job(&self, job: &NewJob<'_>) -> Result<Vec<String>, StoreError> {
        Store::create_job(self, job).await
    }

    async fn add_published(&self, job_id: &str, confirmed: i32) -> Result<(), StoreError> {
        Store::add_published(self, job_id, confirmed).await
    }

    async fn finish_publishing(&self, job_id: &str) -> Result<JobRow, StoreError> {
        Store::finish_publishing(self, job_id).await
    }

    async fn end_job(&self, job_id: &str, status: &str, error: &str) -> Result<(), StoreError> {
        Store::end_job(self, job_id, status, error).await
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRow>, StoreError> {
        Store::job(self, job_id).await
    }

    async fn settled_task(
        &self,
        job: &str,
        clip_key: &str,
    ) -> Result<Option<&'static str>, StoreError> {
        Store::settled_task(self, job, clip_key).await
    }

    async fn write_results(
        &self,
        results: &[ClipResult],
    ) -> Result<Vec<(JobRow, bool)>, StoreError> {
        Store::write_results(self, results).await
    }

    async fn settle_abandoned_publishing(
        &self,
        lease: Duration,
    ) -> Result<Vec<JobRow>, StoreError> {
        Store::settle_abandoned_publishing(self, lease).await
    }

    async fn time_out_jobs(&self, max: Duration) -> Result<Vec<JobRow>, StoreError> {
        Store::time_out_jobs(self, max).await
    }
}
