//! Where a location's roster, enrolled profiles and calibration are kept between runs
//! (Postgres' `workers`, `voice_profiles` and `voice_calibrations`), so that its samples are
//! embedded once per model and content, not by every worker at every start; without a
//! database, in the process' memory ([`MemoryProfileStore`]).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use engine::matching::Calibration;

use crate::SinkError;
use crate::source::RosterEntry;

/// (employee id, sorted sample checksums), sorted: what a location's profiles were built from.
pub type Fingerprint = Vec<(String, Vec<String>)>;

/// One employee's profile as stored, with the checksums of the samples it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProfile {
    pub worker_id: String,
    pub embedding: Vec<f32>,
    pub speech_s: f64,
    pub weak_profile: bool,
    /// Sorted md5s of the samples.
    pub checksums: Vec<String>,
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The location's employees as the customer's own table lists them; `None` without one.
    async fn roster(&self, location: &str) -> Result<Option<Vec<RosterEntry>>, SinkError>;

    async fn load_profiles(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Vec<StoredProfile>, SinkError>;

    /// The location's stored calibration for the model, with the samples it was built from.
    async fn load_calibration(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Option<(Fingerprint, Calibration)>, SinkError>;

    /// Replaces the location's profiles for the model, and its calibration, built from
    /// `samples`, at once.
    async fn save_profiles(
        &self,
        location: &str,
        model_id: &str,
        profiles: &[StoredProfile],
        samples: &Fingerprint,
        calibration: &Calibration,
    ) -> Result<(), SinkError>;
}

/// Profiles kept in this process only (no DATABASE_URL): what one worker enrolled, for as long
/// as it runs. It keeps no roster: the source's is used.
#[derive(Default)]
pub struct MemoryProfileStore {
    kept: Mutex<HashMap<(String, String), Kept>>,
}

struct Kept {
    profiles: Vec<StoredProfile>,
    samples: Fingerprint,
    calibration: Calibration,
}

impl MemoryProfileStore {
    fn kept<T>(&self, location: &str, model_id: &str, f: impl FnOnce(&Kept) -> T) -> Option<T> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&(location.to_string(), model_id.to_string()))
            .map(f)
    }
}

#[async_trait]
impl ProfileStore for MemoryProfileStore {
    async fn roster(&self, _location: &str) -> Result<Option<Vec<RosterEntry>>, SinkError> {
        Ok(None)
    }

    async fn load_profiles(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Vec<StoredProfile>, SinkError> {
        Ok(self
            .kept(location, model_id, |k| k.profiles.clone())
            .unwrap_or_default())
    }

    async fn load_calibration(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Option<(Fingerprint, Calibration)>, SinkError> {
        Ok(self.kept(location, model_id, |k| {
            (k.samples.clone(), k.calibration.clone())
        }))
    }

    async fn save_profiles(
        &self,
        location: &str,
        model_id: &str,
        profiles: &[StoredProfile],
        samples: &Fingerprint,
        calibration: &Calibration,
    ) -> Result<(), SinkError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.insert(
            (location.to_string(), model_id.to_string()),
            Kept {
                profiles: profiles.to_vec(),
                samples: samples.clone(),
                calibration: calibration.clone(),
            },
        );
        Ok(())
    }
}
