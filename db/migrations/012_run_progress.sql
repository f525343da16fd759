-- Progress of a run while it goes (Home shows done/total, rate and ETA). `total`: the
-- segments the run will have done when it ends (those done before plus those pending when
-- it started or resumed); `done_before`: how many it had done when it (re)started, so the
-- rate counts only this process's work; `resumed_at`: when it (re)started. Done counts come
-- from run_items, written at each shard merge; runs without items (export) record
-- `progress_done` themselves. NULL for runs recorded before this migration.
ALTER TABLE runs ADD COLUMN total INTEGER;
ALTER TABLE runs ADD COLUMN done_before INTEGER;
ALTER TABLE runs ADD COLUMN resumed_at TIMESTAMP;
ALTER TABLE runs ADD COLUMN progress_done INTEGER;
