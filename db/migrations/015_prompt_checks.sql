-- The last time every prompt of one writing job was found current, and what the catalogue
-- held then: `curator prompts` that finds the same fingerprint again has nothing to read.
-- job_key hashes what decides a prompt's wording apart from the segment's metadata (writer
-- name@version, its settings, the vocabulary, the seed) and which segments were asked for;
-- fingerprint combines the metadata's (LabelStore.metadata_version) with that writer's
-- stored prompts' (storage.prompts.prompts_version). See curator.prompts.writing.
CREATE TABLE prompt_checks (
    job_key     VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    segments    INTEGER NOT NULL,           -- how many segments the job covered
    checked_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
