-- Prompt writing: what each stored prompt was written from, and a cache of writers' answers.
-- input_key identifies a prompt's input (the segment's metadata, the writer name@version and
-- its output-changing settings, the vocabulary, the seed): a stored prompt whose key equals
-- the key computed now is current, and is not written again.
ALTER TABLE prompts ADD COLUMN input_key VARCHAR;

-- Every answer a writer gave, by input key: re-running (another seed and back, labels changed
-- and changed back) costs an LLM nothing when the same input was answered before.
CREATE TABLE prompt_cache (
    input_key   VARCHAR PRIMARY KEY,
    writer      VARCHAR NOT NULL,           -- writer@version
    text        VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
