-- A key the writing process picks for each vote and each ingest run, so that an insert sent again after the
-- connection dropped (it may have committed just before) is stored once.
ALTER TABLE feedback ADD COLUMN write_key text;
CREATE UNIQUE INDEX feedback_write_key ON feedback (write_key);
ALTER TABLE ingest_runs ADD COLUMN write_key text;
CREATE UNIQUE INDEX ingest_runs_write_key ON ingest_runs (write_key);
