//! Voice profiles of a location and their calibration, as the workers (and `dispatcher enroll`)
//! get them: from memory while the samples are unchanged, else from `voice_profiles` and
//! `voice_calibrations` when they hold this model's, built from exactly these samples (by
//! checksum) with the same prior, else enrolled anew and stored there.
//!
//! The roster is the customer's `workers` table when the database has one, else what the source
//! keeps (a local `workers.csv`), else the sample owners themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::BatcherHandle;
use crate::SinkError;
use crate::profile_store::{Fingerprint, ProfileStore, StoredProfile};
use crate::source::{Assignment, ClipSource, Fetched, SourceError, assign};
use engine::matching::{Calibration, Enrollee, Prior, Profile, ProfileSet, enroll_with};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] SinkError),
    #[error("speaker model: {0}")]
    Model(String),
    #[error("location {0} has no workers in the `workers` table")]
    NoRoster(String),
    #[error("location {0} has no worker with a usable voice sample")]
    NoEmployees(String),
}

impl ProfileError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) => e.is_transient(),
            Self::Store(_) | Self::Model(_) => true,
            Self::NoRoster(_) | Self::NoEmployees(_) => false,
        }
    }
}

/// Where a location's profiles came from this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Memory,
    Store,
    Enrolled,
}

pub struct Enrolled {
    pub profiles: Arc<ProfileSet>,
    pub origin: Origin,
    /// Samples that could not be used, with the reason.
    pub skipped: Vec<String>,
}

/// A location's roster and sample listing is reused this long: every clip asks for it, and
/// a changed sample is noticed within this time.
const LISTING_TTL: Duration = Duration::from_secs(30);

/// A location's profiles with what they were built from.
type Known = (Fingerprint, Arc<ProfileSet>);

/// One location's memo, locked on its own: a slow enrollment holds up that location's clips
/// only, never another location's.
type Slot = Arc<tokio::sync::Mutex<Option<Known>>>;

pub struct Profiles {
    source: Arc<dyn ClipSource>,
    store: Arc<dyn ProfileStore>,
    prior: Prior,
    memo: Mutex<HashMap<String, Slot>>,
    listings: Mutex<HashMap<String, (Instant, Assignment)>>,
}

impl Profiles {
    pub fn new(source: Arc<dyn ClipSource>, store: Arc<dyn ProfileStore>, prior: Prior) -> Self {
        Self {
            source,
            store,
            prior,
            memo: Mutex::default(),
            listings: Mutex::default(),
        }
    }

    /// The location's assignment, listed again once it is `LISTING_TTL` old (or on `fresh`).
    pub async fn listing(&self, location: &str, fresh: bool) -> Result<Assignment, ProfileError> {
        let cached = self.listings.lock().ok().and_then(|l| {
            l.get(location)
                .filter(|(at, _)| !fresh && at.elapsed() < LISTING_TTL)
                .map(|(_, a)| a.clone())
        });
        if let Some(assignment) = cached {
            return Ok(assignment);
        }
        let assignment = self.assignment(location).await?;
        if let Ok(mut listings) = self.listings.lock() {
            listings.insert(location.to_string(), (Instant::now(), assignment.clone()));
        }
        Ok(assignment)
    }

    /// Who the location's workers are and which samples are theirs.
    pub async fn assignment(&self, location: &str) -> Result<Assignment, ProfileError> {
        let roster = self.store.roster(location).await?;
        if roster.as_ref().is_some_and(Vec::is_empty) {
            return Err(ProfileError::NoRoster(location.to_string()));
        }
        let roster = match roster {
            Some(roster) => Some(roster),
            None => self.source.roster(location).await?,
        };
        let samples = self.source.list_samples(location).await?;
        Ok(assign(roster.as_deref(), &samples))
    }

    /// The location's profiles; `force` enrolls again whatever is cached (`dispatcher enroll`).
    pub async fn get(
        &self,
        batcher: &BatcherHandle,
        location: &str,
        force: bool,
    ) -> Result<Enrolled, ProfileError> {
        let assignment = self.listing(location, force).await?;
        let mut fingerprint: Fingerprint = assignment
            .with_samples()
            .map(|w| {
                let mut sums: Vec<String> = w.samples.iter().map(|s| s.checksum.clone()).collect();
                sums.sort();
                (w.worker_id.clone(), sums)
            })
            .collect();
        fingerprint.sort();
        if fingerprint.is_empty() {
            return Err(ProfileError::NoEmployees(location.to_string()));
        }
        // Held across enrollment: clips of a new location wait for one enrollment, not run many.
        let slot = {
            let mut slots = self.memo.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(slots.entry(location.to_string()).or_default())
        };
        let mut memo = slot.lock().await;
        if !force
            && let Some((known, profiles)) = memo.as_ref()
            && *known == fingerprint
        {
            return Ok(Enrolled {
                profiles: Arc::clone(profiles),
                origin: Origin::Memory,
                skipped: Vec::new(),
            });
        }
        let model = batcher.manifest().id.clone();
        let store = &self.store;
        if !force
            && let Some((built_from, calibration)) =
                store.load_calibration(location, &model).await?
            && built_from == fingerprint
            && calibration.prior == self.prior.rules
            && calibration.method == Calibration::METHOD
        {
            let rows = store.load_profiles(location, &model).await?;
            if let Some(profiles) = stored(&rows, &fingerprint, &assignment) {
                tracing::info!(
                    location,
                    workers = profiles.len(),
                    "voice profiles loaded from the profile store"
                );
                let voices = Arc::new(ProfileSet {
                    profiles,
                    calibration,
                });
                *memo = Some((fingerprint, Arc::clone(&voices)));
                return Ok(Enrolled {
                    profiles: voices,
                    origin: Origin::Store,
                    skipped: Vec::new(),
                });
            }
        }

        let (voices, skipped) = self.enroll(batcher, &assignment).await?;
        if voices.profiles.is_empty() {
            return Err(ProfileError::NoEmployees(location.to_string()));
        }
        log_enrollment(&voices);
        let rows: Vec<StoredProfile> = voices
            .profiles
            .iter()
            .filter_map(|p| {
                let (_, sums) = fingerprint.iter().find(|(id, _)| *id == p.worker_id)?;
                Some(StoredProfile {
                    worker_id: p.worker_id.clone(),
                    embedding: p.embedding.clone(),
                    speech_s: p.speech_s,
                    weak_profile: p.weak_profile,
                    checksums: sums.clone(),
                })
            })
            .collect();
        // The profiles are good either way: a store that is away only costs a later re-enrollment.
        if let Err(e) = store
            .save_profiles(location, &model, &rows, &fingerprint, &voices.calibration)
            .await
        {
            tracing::warn!(location, error = %e, "voice profiles could not be stored");
        }
        let voices = Arc::new(voices);
        *memo = Some((fingerprint, Arc::clone(&voices)));
        Ok(Enrolled {
            profiles: voices,
            origin: Origin::Enrolled,
            skipped,
        })
    }

    /// Fetches every sample and embeds them; a sample that cannot be had is skipped, unless
    /// the failure is transient (then the whole enrollment is tried again later).
    async fn enroll(
        &self,
        batcher: &BatcherHandle,
        assignment: &Assignment,
    ) -> Result<(ProfileSet, Vec<String>), ProfileError> {
        let mut fetched: Vec<Fetched> = Vec::new();
        let mut enrollees = Vec::new();
        let mut skipped = Vec::new();
        for worker in assignment.with_samples() {
            let mut paths = Vec::new();
            for sample in &worker.samples {
                match self.source.fetch_sample(sample).await {
                    Ok(file) => {
                        paths.push(file.path().to_path_buf());
                        fetched.push(file);
                    }
                    Err(e) if e.is_transient() => return Err(e.into()),
                    Err(e) => skipped.push(format!("{} ({}): {e}", sample.name, worker.name)),
                }
            }
            enrollees.push(Enrollee {
                worker_id: worker.worker_id.clone(),
                name: worker.name.clone(),
                samples: paths,
            });
        }
        let batcher = batcher.clone();
        let rate = batcher.manifest().sample_rate;
        let prior = self.prior;
        let enrollment = tokio::task::spawn_blocking(move || {
            enroll_with(rate, &enrollees, prior, |requests| {
                batcher.embed_requests(requests)
            })
        })
        .await
        .map_err(|e| ProfileError::Model(e.to_string()))?
        .map_err(ProfileError::Model)?;
        drop(fetched);
        skipped.extend(enrollment.unreadable.iter().map(ToString::to_string));
        for s in &skipped {
            tracing::warn!(sample = %s, "voice sample skipped");
        }
        Ok((enrollment.into_set(), skipped))
    }
}

/// The stored profiles, when they were built from exactly the samples of `fingerprint`, named
/// as the roster names them now. A worker all of whose samples the checks left out has no row.
fn stored(
    rows: &[StoredProfile],
    fingerprint: &Fingerprint,
    assignment: &Assignment,
) -> Option<Vec<Profile>> {
    if rows.is_empty() {
        return None;
    }
    rows.iter()
        .map(|row| {
            let id = &row.worker_id;
            fingerprint
                .iter()
                .find(|(w, sums)| w == id && *sums == row.checksums)?;
            let name = assignment
                .workers
                .iter()
                .find(|w| w.worker_id == *id)
                .map_or_else(|| id.clone(), |w| w.name.clone());
            Some(Profile {
                worker_id: id.clone(),
                name,
                embedding: row.embedding.clone(),
                samples: Vec::new(),
                speech_s: row.speech_s,
                weak_profile: row.weak_profile,
            })
        })
        .collect()
}

/// The location's calibration and every enrollment issue, as log lines.
fn log_enrollment(voices: &ProfileSet) {
    let c = &voices.calibration;
    tracing::info!(
        workers = voices.profiles.len(),
        threshold = c.rules.threshold,
        margin = c.rules.margin,
        "voice profiles enrolled: {}",
        c.explain()
    );
    for p in voices.profiles.iter().filter(|p| p.weak_profile) {
        tracing::warn!(worker = %p.name, speech_s = p.speech_s, "weak profile: under 3 s of voice samples");
    }
    for issue in c.issues() {
        tracing::warn!("enrollment: {issue}");
    }
}
