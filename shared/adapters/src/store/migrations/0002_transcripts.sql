-- What a transcription service (AssemblyAI) returned for a clip, kept with its result.
ALTER TABLE voice_clip_results
    ADD COLUMN IF NOT EXISTS transcript_id text,
    ADD COLUMN IF NOT EXISTS transcript_text text,
    ADD COLUMN IF NOT EXISTS utterances jsonb;
