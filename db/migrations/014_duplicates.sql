-- Audio fingerprints per track, for finding the same recording twice (a re-encode, a gain
-- change, a trimmed intro). `method` names the fingerprinter and its version, so a catalogue
-- fingerprinted by an older one is fingerprinted again rather than compared across methods.
CREATE TABLE fingerprints (
    track_id  VARCHAR PRIMARY KEY,
    method    VARCHAR NOT NULL,
    duration  DOUBLE NOT NULL,               -- seconds of audio the codes cover
    codes     UINTEGER[] NOT NULL,           -- the fingerprint's 32-bit frames, in order
    made_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Groups of segments that are the same music more than once, as `curator duplicates` last
-- found them. level 'same': the same recording (fingerprints match); level 'near': the same
-- loop or sample under different beats (embeddings match beyond what the tags explain). A
-- segment belongs to at most one group per level. group_id is stable across runs: the
-- smallest member segment id. evidence: JSON saying why (matched pairs, scores, offsets).
CREATE TABLE duplicate_groups (
    level     VARCHAR NOT NULL,
    group_id  VARCHAR NOT NULL,
    evidence  JSON,
    found_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (level, group_id)
);

CREATE TABLE duplicate_members (
    level      VARCHAR NOT NULL,
    segment_id VARCHAR NOT NULL,
    group_id   VARCHAR NOT NULL,
    PRIMARY KEY (level, segment_id)
);
