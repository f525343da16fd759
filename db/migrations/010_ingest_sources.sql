-- The folders `curator ingest` was given, as typed (made absolute), one row each however
-- often they are ingested. Export refuses to write inside one (the next ingest of it would
-- take the exported audio as new tracks), even where the folder holds no audio itself.
-- Catalogues ingested before this table existed have no rows: export then infers the
-- folders from the files' paths, as it did before.
CREATE TABLE ingest_sources (
    path             VARCHAR PRIMARY KEY,
    first_ingested   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    last_ingested    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
