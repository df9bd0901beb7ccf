-- Coordination between processes on several machines (retrieval/pg_sync.py): who holds the reload lock, and the
-- index snapshot of each corpus version, stored in chunks so that other machines download it instead of
-- rebuilding it from the rows. The chunks are stored uncompressed: the index arrays barely compress.
CREATE TABLE reload_holder (
    lock_key bigint PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    backend_pid integer NOT NULL,
    what text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE index_snapshots (
    version bigint PRIMARY KEY,
    stamp text NOT NULL,
    files jsonb NOT NULL,
    total_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE TABLE index_snapshot_chunks (
    version bigint NOT NULL REFERENCES index_snapshots (version) ON DELETE CASCADE,
    name text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (version, name, seq)
);
ALTER TABLE index_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
