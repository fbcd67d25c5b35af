-- Each location's calibration (threshold, margin, enrollment checks), stored with its profiles
-- and built from exactly the samples listed in `samples` by the model `model_id`.
CREATE TABLE IF NOT EXISTS voice_calibrations (
    location_id  uuid NOT NULL,
    model_id     text NOT NULL,
    samples      jsonb NOT NULL,
    calibration  jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (location_id, model_id)
);

-- The threshold and margin each clip was decided by.
ALTER TABLE voice_clip_results
    ADD COLUMN IF NOT EXISTS threshold real,
    ADD COLUMN IF NOT EXISTS required_margin real;
