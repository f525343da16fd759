-- The catalogue: what was ingested, what models and people said about it, and what was made
-- from it. No foreign keys: DuckDB refuses updates to a referenced row, and the storage layer
-- is the only writer, so it keeps references consistent itself.

-- One row per distinct audio content; the id is the start of its content hash, so the same
-- audio gets the same track and segment ids in every project.
CREATE TABLE tracks (
    id           VARCHAR PRIMARY KEY,
    content_hash VARCHAR NOT NULL UNIQUE,
    path         VARCHAR NOT NULL,          -- where it is found now (first path if several)
    duration     DOUBLE,
    sample_rate  INTEGER,
    channels     INTEGER,
    format       VARCHAR,
    subtype      VARCHAR,
    status       VARCHAR NOT NULL,          -- ingested | skipped | missing
    reason       VARCHAR,                   -- why skipped or missing, in words
    added_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Every file a scan found, good or bad, so a re-run skips what did not change and the
-- summary can say what went wrong with each.
CREATE TABLE files (
    path      VARCHAR PRIMARY KEY,
    size      BIGINT,
    mtime_ns  BIGINT,
    track_id  VARCHAR,                      -- null when the file could not be read
    status    VARCHAR NOT NULL,             -- ingested | duplicate | skipped | failed | missing
    reason    VARCHAR,
    seen_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE segments (
    id        VARCHAR PRIMARY KEY,          -- "<track id>-<index>"
    track_id  VARCHAR NOT NULL,
    idx       INTEGER NOT NULL,
    start     DOUBLE NOT NULL,              -- seconds from the start of the track
    duration  DOUBLE NOT NULL,
    rms_db    DOUBLE,                       -- level of the window, dBFS
    peak_db   DOUBLE,
    silent    BOOLEAN NOT NULL DEFAULT false,
    excluded  BOOLEAN NOT NULL DEFAULT false,  -- a curator took it out of training
    note      VARCHAR,
    UNIQUE (track_id, idx)
);

CREATE SEQUENCE run_ids START 1;
-- Who produced what: a tagger, analyzer, prompt writer or import, with its parameters.
-- Segments count as done for a plugin when a run with the same settings_hash (plugin,
-- version, settings, vocabulary) holds them in run_items.
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY DEFAULT nextval('run_ids'),
    kind             VARCHAR NOT NULL,      -- tag | analyze | import | ...
    plugin           VARCHAR NOT NULL,
    plugin_version   VARCHAR NOT NULL,
    settings         JSON,
    settings_hash    VARCHAR NOT NULL,
    vocabulary_hash  VARCHAR,
    tags             JSON,                  -- taggers: [[facet, tag], ...], the order of scores
    from_cache       BOOLEAN NOT NULL DEFAULT false,
    status           VARCHAR NOT NULL,      -- running | finished | interrupted | failed
    host             VARCHAR,
    error            VARCHAR,
    started_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at      TIMESTAMP
);

-- Each segment a run processed, or failed to, and why.
CREATE TABLE run_items (
    run_id     INTEGER NOT NULL,
    segment_id VARCHAR NOT NULL,
    status     VARCHAR NOT NULL,            -- done | failed
    reason     VARCHAR,
    PRIMARY KEY (run_id, segment_id)
);

-- A tagger's scores for one segment in one run, in the order of runs.tags: one row per
-- segment rather than per tag keeps 40,000 segments x 50 tags quick to write and read.
CREATE TABLE scores (
    segment_id VARCHAR NOT NULL,
    run_id     INTEGER NOT NULL,
    scores     FLOAT[] NOT NULL,
    PRIMARY KEY (segment_id, run_id)
);

-- An analyzer's measurement (tempo, key, scale, loudness, ...) with its confidence.
CREATE TABLE measurements (
    segment_id VARCHAR NOT NULL,
    run_id     INTEGER NOT NULL,
    name       VARCHAR NOT NULL,
    value      DOUBLE,
    text       VARCHAR,
    confidence DOUBLE,
    PRIMARY KEY (segment_id, run_id, name)
);

-- Labels with their source: a model (plugin@version, its run and score) or a person
-- (source 'human'). The effective label of a (segment, facet, tag) is the human one when
-- there is one, else the models'. Tempo, key and scale are labels too: facet = tag = the
-- name, and the value in `value`.
CREATE TABLE labels (
    segment_id  VARCHAR NOT NULL,
    facet       VARCHAR NOT NULL,
    tag         VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,           -- plugin@version, or 'human'
    source_kind VARCHAR NOT NULL,           -- model | human
    present     BOOLEAN NOT NULL,           -- false: the tag was rejected
    value       VARCHAR,
    run_id      INTEGER,
    score       DOUBLE,
    actor       VARCHAR,                    -- the person, for human labels
    updated_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (segment_id, facet, tag, source)
);

CREATE SEQUENCE label_change_ids START 1;
-- Append-only history of every human change, so any change (bulk ones too) can be undone.
CREATE TABLE label_history (
    id          BIGINT PRIMARY KEY DEFAULT nextval('label_change_ids'),
    batch_id    VARCHAR NOT NULL,           -- one bulk action shares one batch id
    segment_id  VARCHAR NOT NULL,
    facet       VARCHAR NOT NULL,
    tag         VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,           -- add | reject | remove | set | note | exclude | undo
    old_present BOOLEAN,
    new_present BOOLEAN,
    old_value   VARCHAR,
    new_value   VARCHAR,
    actor       VARCHAR NOT NULL,
    changed_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    undone_by   VARCHAR                     -- batch id of the undo, if undone
);

-- Cached audio embeddings per segment and model, so re-tagging never decodes audio again.
CREATE TABLE embeddings (
    segment_id VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,            -- the tagger's embedding_model
    run_id     INTEGER,
    vector     FLOAT[] NOT NULL,
    PRIMARY KEY (segment_id, model)
);

CREATE TABLE prompts (
    segment_id  VARCHAR NOT NULL,
    writer      VARCHAR NOT NULL,           -- writer@version, or "human"
    text        VARCHAR NOT NULL,
    source_kind VARCHAR NOT NULL,           -- model | human
    run_id      INTEGER,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (segment_id, writer)
);

CREATE SEQUENCE export_ids START 1;
CREATE TABLE exports (
    id           INTEGER PRIMARY KEY DEFAULT nextval('export_ids'),
    path         VARCHAR NOT NULL,
    selection    VARCHAR,
    settings     JSON,
    content_hash VARCHAR,
    n_segments   INTEGER,
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE jobs (
    id          VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,           -- train | generate
    status      VARCHAR NOT NULL,           -- queued | running | succeeded | failed | cancelled
    folder      VARCHAR NOT NULL,
    config      JSON,
    pid         INTEGER,
    error       VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP
);
