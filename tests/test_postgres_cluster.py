"""The throwaway cluster the PostgreSQL tests run against (tests/postgres.py)."""

from __future__ import annotations

import psycopg
import pytest


def test_each_test_gets_a_fresh_database(pg_cluster, pg_url):
    other = pg_cluster.new_database()
    assert other != pg_url
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with psycopg.connect(other) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone()
    assert tables == (0,)


def test_the_server_can_be_stopped_and_started_again(pg_cluster, pg_url):
    pg_cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_url, connect_timeout=2)
    pg_cluster.start()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
