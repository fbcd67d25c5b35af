-- A job's total counts the tasks the broker confirmed, as they are confirmed; `planned` is what
-- the dispatcher meant to publish. Until `published_at` is set the job cannot close: a
-- dispatcher killed mid-publish leaves it open with the true total, and the reducer settles it
-- once `publishing_at` (the dispatcher's last sign of life) is stale. Jobs from before were
-- published in full.
ALTER TABLE voice_jobs
    ADD COLUMN IF NOT EXISTS planned integer,
    ADD COLUMN IF NOT EXISTS published_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS publishing_at timestamptz;
