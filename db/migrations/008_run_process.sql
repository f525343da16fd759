-- The process that runs a run, so that a run whose process is gone shows as interrupted
-- instead of running forever. Runs used to keep "host:pid" in `host`; split them.
ALTER TABLE runs ADD COLUMN pid INTEGER;
UPDATE runs SET pid = TRY_CAST(split_part(host, ':', 2) AS INTEGER), host = split_part(host, ':', 1)
WHERE contains(host, ':');
