//! A standalone run's result sink without a database: the results in an output folder and
//! the run's job in memory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use engine::matching::ClipStatus;
use pipeline::{ClipResult, JobRow, NewJob, ResultSink, SinkError};

use super::OutputDir;

/// A standalone run's store without a database: the results in an output folder
/// ([`OutputDir`]: `results.jsonl`, RTTM files) and the run's job in memory. The dispatcher is
/// in the same process, so a job is never abandoned mid-publish.
pub struct FolderSink {
    dir: PathBuf,
    state: Mutex<Folder>,
}

struct Folder {
    out: OutputDir,
    jobs: BTreeMap<String, Job>,
}

struct Job {
    row: JobRow,
    published: bool,
    started: Instant,
    /// The status of each of its clips' results.
    results: BTreeMap<String, ClipStatus>,
}

impl FolderSink {
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        let out = OutputDir::open(dir).map_err(|e| folder_error(dir, &e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(Folder {
                out,
                jobs: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Folder> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the output folder (its profiles file).
    pub fn with_output<T>(&self, f: impl FnOnce(&OutputDir) -> T) -> T {
        f(&self.lock().out)
    }
}

fn folder_error(dir: &Path, e: &std::io::Error) -> SinkError {
    SinkError::transient(format!("output folder {}: {e}", dir.display()))
}

fn missing(job_id: &str) -> SinkError {
    SinkError::transient(format!("job {job_id} is not in this run"))
}

impl Job {
    /// Recounts from its results; closes it when publishing is over and every result is in.
    /// Whether this closed it.
    fn recount(&mut self) -> bool {
        let count = |s: ClipStatus| {
            i32::try_from(self.results.values().filter(|v| **v == s).count()).unwrap_or(i32::MAX)
        };
        let row = &mut self.row;
        row.done = i32::try_from(self.results.len()).unwrap_or(i32::MAX);
        row.matched = count(ClipStatus::Matched);
        row.no_match = count(ClipStatus::NoMatch);
        row.no_speech = count(ClipStatus::NoSpeech);
        row.failed = count(ClipStatus::Failed);
        if self.published && row.is_open() && row.done >= row.total {
            row.status = "completed".into();
            return true;
        }
        false
    }
}

#[async_trait]
impl ResultSink for FolderSink {
    async fn completed_clips(&self, keys: &[String]) -> Result<HashSet<String>, SinkError> {
        let state = self.lock();
        Ok(keys
            .iter()
            .filter(|k| state.out.is_done(k))
            .cloned()
            .collect())
    }

    async fn create_job(&self, job: &NewJob<'_>) -> Result<Vec<String>, SinkError> {
        let row = JobRow {
            job_id: job.job_id.to_string(),
            status: "running".into(),
            total: 0,
            done: 0,
            matched: 0,
            no_match: 0,
            no_speech: 0,
            failed: 0,
            skipped: job.skipped,
        };
        let entry = Job {
            row,
            published: false,
            started: Instant::now(),
            results: BTreeMap::new(),
        };
        self.lock().jobs.insert(job.job_id.to_string(), entry);
        Ok(Vec::new())
    }

    async fn add_published(&self, job_id: &str, confirmed: i32) -> Result<(), SinkError> {
        let mut state = self.lock();
        let job = state.jobs.get_mut(job_id).ok_or_else(|| missing(job_id))?;
        job.row.total += confirmed;
        Ok(())
    }

    async fn finish_publishing(&self, job_id: &str) -> Result<JobRow, SinkError> {
        let mut state = self.lock();
        let job = state.jobs.get_mut(job_id).ok_or_else(|| missing(job_id))?;
        job.published = true;
        job.recount();
        Ok(job.row.clone())
    }

    async fn end_job(&self, job_id: &str, status: &str, _error: &str) -> Result<(), SinkError> {
        let mut state = self.lock();
        if let Some(job) = state.jobs.get_mut(job_id)
            && job.row.is_open()
        {
            job.row.status = status.to_string();
        }
        Ok(())
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRow>, SinkError> {
        Ok(self.lock().jobs.get(job_id).map(|j| j.row.clone()))
    }

    async fn settled_task(
        &self,
        job: &str,
        clip_key: &str,
    ) -> Result<Option<&'static str>, SinkError> {
        let state = self.lock();
        let done = state
            .jobs
            .get(job)
            .and_then(|j| j.results.get(clip_key))
            .is_some_and(|s| *s != ClipStatus::Failed);
        Ok(done.then_some("already completed in this job"))
    }

    async fn write_results(
        &self,
        results: &[ClipResult],
    ) -> Result<Vec<(JobRow, bool)>, SinkError> {
        let mut state = self.lock();
        let mut touched = std::collections::BTreeSet::new();
        for result in results {
            let kept = state
                .jobs
                .get(&result.job_id)
                .and_then(|j| j.results.get(&result.clip_key));
            // A late `failed` duplicate never replaces a completed result of the same job.
            if result.status == ClipStatus::Failed && kept.is_some_and(|s| *s != ClipStatus::Failed)
            {
                continue;
            }
            state
                .out
                .upsert(result)
                .map_err(|e| folder_error(&self.dir, &e))?;
            if let Some(job) = state.jobs.get_mut(&result.job_id) {
                job.results.insert(result.clip_key.clone(), result.status);
                touched.insert(result.job_id.clone());
            }
        }
        let mut jobs = Vec::new();
        for job_id in touched {
            if let Some(job) = state.jobs.get_mut(&job_id) {
                let closed = job.recount();
                jobs.push((job.row.clone(), closed));
            }
        }
        Ok(jobs)
    }

    async fn settle_abandoned_publishing(
        &self,
        _lease: Duration,
    ) -> Result<Vec<JobRow>, SinkError> {
        Ok(Vec::new())
    }

    async fn time_out_jobs(&self, max: Duration) -> Result<Vec<JobRow>, SinkError> {
        let mut state = self.lock();
        Ok(state
            .jobs
            .values_mut()
            .filter(|j| j.row.is_open() && j.started.elapsed() > max)
            .map(|j| {
                j.row.status = "timed_out".into();
                j.row.clone()
            })
            .collect())
    }
}
