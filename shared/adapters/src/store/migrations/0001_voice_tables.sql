-- The tables this system owns (DESIGN §9). `workers` and `transactions` belong to the user.

CREATE TABLE IF NOT EXISTS voice_jobs (
    job_id       text PRIMARY KEY,
    location_id  uuid NOT NULL,
    date_from    date NOT NULL,
    date_to      date NOT NULL,
    -- running → completed | failed | timed_out
    status       text NOT NULL DEFAULT 'running',
    total        integer NOT NULL DEFAULT 0,
    done         integer NOT NULL DEFAULT 0,
    matched      integer NOT NULL DEFAULT 0,
    no_match     integer NOT NULL DEFAULT 0,
    no_speech    integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE TABLE IF NOT EXISTS voice_clip_results (
    clip_key        text PRIMARY KEY,
    job_id          text NOT NULL,
    location_id     uuid NOT NULL,
    clip_date       date NOT NULL,
    clip_name       text NOT NULL,
    transaction_id  uuid,
    status          text NOT NULL,
    worker_id       text,
    worker_name     text,
    score           real,
    margin          real,
    speakers        jsonb NOT NULL DEFAULT '[]',
    turns           jsonb NOT NULL DEFAULT '[]',
    audio_s         double precision NOT NULL DEFAULT 0,
    model           text NOT NULL,
    error_kind      text,
    error           text,
    attempts        integer NOT NULL DEFAULT 1,
    timings_ms      jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS voice_clip_results_job ON voice_clip_results (job_id);
CREATE INDEX IF NOT EXISTS voice_clip_results_location_date
    ON voice_clip_results (location_id, clip_date);

CREATE TABLE IF NOT EXISTS voice_profiles (
    location_id       uuid NOT NULL,
    worker_id         text NOT NULL,
    model_id          text NOT NULL,
    embedding         real[] NOT NULL,
    speech_s          double precision NOT NULL,
    weak_profile      boolean NOT NULL,
    sample_checksums  jsonb NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (location_id, worker_id, model_id)
);
