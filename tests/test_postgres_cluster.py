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


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # finished and reaped: no process has this pid now (barring a quick reuse)


def test_a_new_session_removes_only_the_clusters_whose_session_is_gone(pg_cluster, tmp_path):
    import os

    from tests.postgres import FOLDER_PREFIX, OWNER_FILE, stop_orphaned_clusters

    orphan, alive, foreign = (tmp_path / f"{FOLDER_PREFIX}{name}" for name in ("orphan", "alive", "foreign"))
    for folder in (orphan, alive, foreign):
        folder.mkdir()
    (orphan / OWNER_FILE).write_text(str(_dead_pid()))
    (alive / OWNER_FILE).write_text(str(os.getpid()))
    assert stop_orphaned_clusters(pg_cluster.bin_dir, tmp_path) == [orphan]
    assert not orphan.exists() and alive.is_dir() and foreign.is_dir()


def test_a_killed_test_session_does_not_leave_its_cluster_running(pg_cluster, tmp_path):
    """The session is SIGKILLed (no teardown runs): its watchdog stops the server and removes its folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.data import REPO

    err = (tmp_path / "session.err").open("w")
    session = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tests.postgres import start_cluster\n"
            "c = start_cluster(); print(c.url(), c.folder, flush=True)\n"
            "import time; time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    try:
        started = session.stdout.readline().split()
        assert len(started) == 2, (tmp_path / "session.err").read_text()
        url, folder = started
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        os.kill(session.pid, signal.SIGKILL)
        session.wait(timeout=10)
        deadline = time.monotonic() + 30
        while os.path.exists(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(folder)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        err.close()
