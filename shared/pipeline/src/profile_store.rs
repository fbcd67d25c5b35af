//! Where a location's roster, enrolled profiles and calibration are kept between runs
//! (Postgres' `workers`, `voice_profiles` and `voice_calibrations`), so that its samples are
//! embedded once per model and content, not by every worker at every start.

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
