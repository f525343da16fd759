-- Who saved a curator's prompt edit: the signed-in name in the app, else CURATOR_USER or the
-- login name (curator.curation.review.current_curator). A writer's prompt is named by its
-- `writer` (name@version) and its `run_id`, so its actor stays NULL; so do edits saved
-- before this column existed, whose curator was never recorded.
ALTER TABLE prompts ADD COLUMN actor VARCHAR;
