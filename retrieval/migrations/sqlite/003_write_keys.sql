-- The same columns as PostgreSQL's migration 004: a key the writing process picks for each vote and each ingest
-- run (PostgreSQL sends an insert again after a dropped connection; SQLite leaves them empty).
ALTER TABLE feedback ADD COLUMN write_key TEXT;
CREATE UNIQUE INDEX feedback_write_key ON feedback (write_key);
ALTER TABLE ingest_runs ADD COLUMN write_key TEXT;
CREATE UNIQUE INDEX ingest_runs_write_key ON ingest_runs (write_key);
