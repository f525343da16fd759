-- The tags a prompt was written from, as JSON {facet: [tags...]} (facets without tags left
-- out): a writer's prompt records the segment's effective tags when it was written, a
-- curator's edit those when it was saved. A prompt whose tags differ from the segment's
-- current effective tags is stale (curator.prompts.editing.stale_prompt). NULL for prompts
-- written before this migration: their inputs are known only as a hash, so they are never
-- flagged.
ALTER TABLE prompts ADD COLUMN written_from JSON;
