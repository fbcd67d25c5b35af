//! Clip results: idempotent upserts by clip, and the recount of the jobs they touch.

use super::*;

impl Store {
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
            .map(|r| Ok((job_row(r)?, r.try_get("closed_now")?)))
            .collect()
    }
}

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
