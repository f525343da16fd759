-- What `curator export` records beyond the first schema's exports table: which exporter
-- wrote it, how many audio files (repeated copies included), and which segments were left
-- out and why (a source file gone or unreadable).
ALTER TABLE exports ADD COLUMN exporter VARCHAR;
ALTER TABLE exports ADD COLUMN n_files INTEGER;
ALTER TABLE exports ADD COLUMN left_out JSON;
