-- How a person's label came to be (labels.origin, for source_kind 'human'):
--   review: a person saw this tag on this segment and accepted or rejected it (the Review
--           page, focus mode, `set_labels`): the only labels that count as verified;
--   bulk:   a bulk relabel (add, remove, rename over a filter);
--   import: `curator metadata import --human`.
-- All three win over models; only `review` verifies (docs/review.md, "What counts as
-- verified"). label_history keeps the origin before and after each change, so undo puts
-- back what a label was.
ALTER TABLE labels ADD COLUMN origin VARCHAR;
ALTER TABLE label_history ADD COLUMN origin VARCHAR;
ALTER TABLE label_history ADD COLUMN old_origin VARCHAR;

-- Changes made before this migration: their action tells their origin.
UPDATE label_history SET origin = CASE
    WHEN action IN ('add', 'remove', 'rename') THEN 'bulk'
    WHEN action = 'import' THEN 'import'
    ELSE 'review' END
WHERE facet <> '_segment' AND new_present IS NOT NULL;

-- A person's label takes the origin of the latest change that set it (undo included: an
-- undo restored an earlier change, whose own origin then holds). Labels with no history
-- were set by a person with no record of how: they count as reviewed, as they did before.
UPDATE labels SET origin = coalesce((
    SELECT h.origin FROM label_history h
    WHERE h.segment_id = labels.segment_id AND h.facet = labels.facet AND h.tag = labels.tag
      AND h.action <> 'undo' AND h.undone_by IS NULL AND h.origin IS NOT NULL
    ORDER BY h.id DESC LIMIT 1), 'review')
WHERE source_kind = 'human';
