//! Enrolled voice profiles (`voice_profiles`) and their location's calibration
//! (`voice_calibrations`), so that a location's samples are embedded once per model and
//! content, not by every worker at every start.

use tokio_postgres::types::{Json, ToSql, Type};

use async_trait::async_trait;
use pipeline::SinkError;
use pipeline::profile_store::{Fingerprint, ProfileStore, StoredProfile};
use pipeline::source::RosterEntry;

use super::{Store, StoreError};
use engine::matching::Calibration;

impl Store {
    pub async fn load_profiles(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Vec<StoredProfile>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(
                "SELECT worker_id, embedding, speech_s, weak_profile, sample_checksums
                 FROM voice_profiles WHERE location_id = $1::uuid AND model_id = $2
                 ORDER BY worker_id",
                &[(&location, Type::TEXT), (&model_id, Type::TEXT)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredProfile {
                    worker_id: r.try_get("worker_id")?,
                    embedding: r.try_get("embedding")?,
                    speech_s: r.try_get("speech_s")?,
                    weak_profile: r.try_get("weak_profile")?,
                    checksums: r.try_get::<_, Json<Vec<String>>>("sample_checksums")?.0,
                })
            })
            .collect()
    }

    /// The location's stored calibration for the model, with the samples it was built from.
    pub async fn load_calibration(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Option<(Fingerprint, Calibration)>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(
                "SELECT samples, calibration FROM voice_calibrations
                 WHERE location_id = $1::uuid AND model_id = $2",
                &[(&location, Type::TEXT), (&model_id, Type::TEXT)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let samples: Json<Fingerprint> = row.try_get("samples")?;
        let calibration: Json<Calibration> = row.try_get("calibration")?;
        Ok(Some((samples.0, calibration.0)))
    }

    /// Every location's stored calibration for the model (what `validate` warns about).
    pub async fn calibrations(
        &self,
        model_id: &str,
    ) -> Result<Vec<(String, Calibration)>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query_typed(
                "SELECT location_id::text AS location, calibration FROM voice_calibrations
                 WHERE model_id = $1 ORDER BY location_id",
                &[(&model_id, Type::TEXT)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let calibration: Json<Calibration> = r.try_get("calibration")?;
                Ok((r.try_get("location")?, calibration.0))
            })
            .collect()
    }

    /// Replaces the location's profiles for the model with `profiles`, and its calibration,
    /// built from `samples`, in one transaction.
    pub async fn save_profiles(
        &self,
        location: &str,
        model_id: &str,
        profiles: &[StoredProfile],
        samples: &Fingerprint,
        calibration: &Calibration,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (samples, calibration) = (Json(samples), Json(calibration));
        tx.query_typed(
            "INSERT INTO voice_calibrations (location_id, model_id, samples, calibration)
             VALUES ($1::uuid, $2, $3, $4)
             ON CONFLICT (location_id, model_id) DO UPDATE SET
                 samples = EXCLUDED.samples, calibration = EXCLUDED.calibration,
                 updated_at = now()",
            &[
                (&location, Type::TEXT),
                (&model_id, Type::TEXT),
                (&samples as &(dyn ToSql + Sync), Type::JSONB),
                (&calibration as &(dyn ToSql + Sync), Type::JSONB),
            ],
        )
        .await?;
        let workers: Vec<&str> = profiles.iter().map(|p| p.worker_id.as_str()).collect();
        tx.query_typed(
            "DELETE FROM voice_profiles
             WHERE location_id = $1::uuid AND model_id = $2 AND NOT worker_id = ANY($3)",
            &[
                (&location, Type::TEXT),
                (&model_id, Type::TEXT),
                (&workers, Type::TEXT_ARRAY),
            ],
        )
        .await?;
        for p in profiles {
            let checksums = Json(&p.checksums);
            tx.query_typed(
                "INSERT INTO voice_profiles AS v (location_id, worker_id, model_id, embedding,
                     speech_s, weak_profile, sample_checksums)
                 VALUES ($1::uuid, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (location_id, worker_id, model_id) DO UPDATE SET
                     embedding = EXCLUDED.embedding, speech_s = EXCLUDED.speech_s,
                     weak_profile = EXCLUDED.weak_profile,
                     sample_checksums = EXCLUDED.sample_checksums, updated_at = now()",
                &[
                    (&location, Type::TEXT),
                    (&p.worker_id, Type::TEXT),
                    (&model_id, Type::TEXT),
                    (&p.embedding, Type::FLOAT4_ARRAY),
                    (&p.speech_s, Type::FLOAT8),
                    (&p.weak_profile, Type::BOOL),
                    (&checksums as &(dyn ToSql + Sync), Type::JSONB),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ProfileStore for Store {
    async fn roster(&self, location: &str) -> Result<Option<Vec<RosterEntry>>, SinkError> {
        Ok(Store::roster(self, location).await?)
    }

    async fn load_profiles(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Vec<StoredProfile>, SinkError> {
        Ok(Store::load_profiles(self, location, model_id).await?)
    }

    async fn load_calibration(
        &self,
        location: &str,
        model_id: &str,
    ) -> Result<Option<(Fingerprint, Calibration)>, SinkError> {
        Ok(Store::load_calibration(self, location, model_id).await?)
    }

    async fn save_profiles(
        &self,
        location: &str,
        model_id: &str,
        profiles: &[StoredProfile],
        samples: &Fingerprint,
        calibration: &Calibration,
    ) -> Result<(), SinkError> {
        Ok(Store::save_profiles(self, location, model_id, profiles, samples, calibration).await?)
    }
}
