"""Coordination through PostgreSQL (retrieval/pg_sync.py): the reload lock, version notifications with
reconnects and polling, and index snapshots stored in the database. Against the real throwaway cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from retrieval.analyze import Analyzer
from retrieval.errors import IngestRunning, ReloadInProgress, StoreError
from retrieval.index import BM25Index, IndexDoc
from retrieval.pg_sync import (
    SnapshotError,
    VersionListener,
    announce_version,
    download_snapshot,
    ensure_schema,
    prune_snapshots,
    reload_lock,
    stored_snapshot,
    stored_versions,
    upload_snapshot,
)


@pytest.fixture
def conn(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as connection:
        ensure_schema(connection)
        yield connection


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- connections --------------------------------------------------------------------------------------
def test_connections_notice_a_vanished_server_within_a_minute_unless_the_url_says_otherwise(pg_url):
    """TCP keepalives and a limit on unacknowledged data, on the store's pooled connections and the reload
    lock's own; a setting the database URL gives itself is kept."""
    from retrieval.pg_store import PostgresStore

    store = PostgresStore(pg_url)
    try:
        with store.connection() as pooled:
            assert {"keepalives=1", "keepalives_idle=30", "tcp_user_timeout=30000"} <= set(
                pooled.info.dsn.split()
            )
    finally:
        store.close()
    with reload_lock(pg_url) as own:
        assert {"keepalives_count=3", "keepalives_interval=10"} <= set(own.info.dsn.split())
    store = PostgresStore(pg_url + ("&" if "?" in pg_url else "?") + "keepalives_idle=60")
    try:
        with store.connection() as pooled:
            assert "keepalives_idle=60" in pooled.info.dsn.split()
    finally:
        store.close()


# -- the reload lock ----------------------------------------------------------------------------------
def test_a_second_reload_is_refused_saying_where_the_first_runs(pg_url):
    with reload_lock(pg_url):
        with pytest.raises(ReloadInProgress) as refused, reload_lock(pg_url):
            pytest.fail("two reloads held the lock at once")
        message = str(refused.value)
        assert (
            f"another reload is running on {socket.gethostname()} (process {os.getpid()}, since " in message
        )
        assert message.endswith("try again when it is done")
    with reload_lock(pg_url, what="ingest", error=IngestRunning) as held:  # free again once the first ended
        assert held.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with (
            pytest.raises(IngestRunning, match="another ingest is running on"),
            reload_lock(pg_url, what="ingest", error=IngestRunning),
        ):
            pass


def test_the_lock_of_another_process_names_that_process_and_dies_with_it(pg_url):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from retrieval.pg_sync import reload_lock\n"
            "with reload_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            pg_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ReloadInProgress, match=f"process {holder.pid}, since"), reload_lock(pg_url):
            pass
        holder.kill()  # a reload that dies half way never leaves the lock behind
        holder.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                with reload_lock(pg_url):
                    break
            except ReloadInProgress:
                assert time.monotonic() < deadline, "the lock outlived the process that held it"
                time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait()


def test_waiting_for_the_lock_gets_it_when_the_other_reload_ends(pg_url):
    done = threading.Event()  # set by the holder just before it lets go of the lock

    def hold_briefly():
        with reload_lock(pg_url):
            started.set()
            time.sleep(0.5)
            done.set()

    started = threading.Event()
    thread = threading.Thread(target=hold_briefly)
    thread.start()
    assert started.wait(10)
    with pytest.raises(ReloadInProgress), reload_lock(pg_url, wait=0.1):
        pass
    with reload_lock(pg_url, wait=10):
        assert done.is_set()  # it got the lock only once the other one had finished
    thread.join()


def test_the_lock_on_an_unreachable_database_says_so(pg_cluster):
    url = f"postgresql://{pg_cluster.user}@127.0.0.1:1/nothing"
    with pytest.raises(StoreError, match="cannot reach the database"), reload_lock(url, connect_timeout=2):
        pass


# -- announcing versions ------------------------------------------------------------------------------
def test_a_committed_version_is_heard_within_a_second_and_a_rolled_back_one_never(pg_url, conn):
    heard: list[tuple[float, int | None]] = []
    listener = VersionListener(pg_url, lambda v: heard.append((time.monotonic(), v)), poll_every=60).start()
    try:
        assert listener.wait_connected(10)
        assert wait_until(lambda: [v for _, v in heard] == [None])  # the check after connecting
        heard.clear()
        with pytest.raises(RuntimeError), conn.transaction():
            announce_version(conn, 6)
            raise RuntimeError("the ingest failed")
        with conn.transaction():
            announce_version(conn, 7)
            time.sleep(0.3)
            assert heard == []  # not before the commit
            committed = time.monotonic()
        assert wait_until(lambda: heard, 1.0)
        assert [v for _, v in heard] == [7]
        assert heard[0][0] - committed < 1.0
    finally:
        listener.stop()
    assert not listener._thread or not listener._thread.is_alive()


def test_the_listener_polls_while_the_database_is_down_and_comes_back_listening(pg_cluster, pg_url):
    heard: list[int | None] = []
    listener = VersionListener(pg_url, heard.append, poll_every=0.3, first_backoff=0.2, max_backoff=1.0)
    listener.start()
    try:
        assert listener.wait_connected(10)
        pg_cluster.stop()
        try:
            assert wait_until(lambda: not listener.connected, 5)
            assert listener.last_error and listener.disconnected_since is not None
            heard.clear()
            time.sleep(1.5)
            # The owner is asked to poll the version on its own while notifications cannot arrive.
            assert len(heard) >= 2 and set(heard) == {None}
        finally:
            pg_cluster.start()
        assert listener.wait_connected(10)
        assert listener.reconnects == 1 and listener.last_error is None
        heard.clear()
        with psycopg.connect(pg_url, autocommit=True) as other:
            announce_version(other, 42)
        assert wait_until(lambda: 42 in heard, 2.0)
    finally:
        listener.stop()


def test_a_listener_whose_connection_is_killed_reconnects_and_checks_at_once(pg_url, conn):
    heard: list[int | None] = []
    listener = VersionListener(pg_url, heard.append, poll_every=60, first_backoff=0.1).start()
    try:
        assert listener.wait_connected(10)
        assert wait_until(lambda: heard == [None])
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'newsdesk listener%'"
        )
        # A version committed while it was away is not lost: it is told to check once it is back.
        assert wait_until(lambda: listener.reconnects == 1, 10)
        assert heard.count(None) >= 2
        announce_version(conn, 3)
        assert wait_until(lambda: 3 in heard, 2.0)
    finally:
        listener.stop()


def test_a_failing_handler_does_not_stop_the_listener(pg_url, conn):
    heard: list[int | None] = []

    def handler(version):
        heard.append(version)
        raise ValueError("the owner failed")

    listener = VersionListener(pg_url, handler, poll_every=60).start()
    try:
        assert listener.wait_connected(10)
        announce_version(conn, 1)
        announce_version(conn, 2)
        assert wait_until(lambda: heard[-2:] == [1, 2], 2.0)
        assert listener.connected
    finally:
        listener.stop()


# -- index snapshots ----------------------------------------------------------------------------------
def small_index(words: list[str]) -> BM25Index:
    docs = [
        IndexDoc(
            passage_id=i,
            article_id=f"a{i}",
            title=f"Title {w}",
            text=f"The {w} story number {i}.",
            published=None,
            dup_key=f"h{i}",
        )
        for i, w in enumerate(words)
    ]
    return BM25Index.build(docs, Analyzer("english"))


@pytest.fixture
def index_folder(tmp_path):
    folder = tmp_path / "built" / "v5"
    small_index(["ferry", "library", "harbour", "election"] * 50).save(folder)
    (folder / "corpus_stamp").write_text("stamp-5", encoding="ascii")
    return folder


def test_a_snapshot_round_trips_through_the_database_in_chunks(conn, index_folder, tmp_path):
    stored = upload_snapshot(conn, 5, "stamp-5", index_folder, chunk_bytes=1000)
    sizes = {p.name: p.stat().st_size for p in index_folder.iterdir()}
    assert {f.name: f.size for f in stored.files} == sizes
    assert any(f.chunks > 1 for f in stored.files)  # large files were split
    chunk_rows = conn.execute("SELECT count(*), max(length(data)) FROM index_snapshot_chunks").fetchone()
    assert chunk_rows == (sum(f.chunks for f in stored.files), 1000)

    dest = tmp_path / "cache" / "v5"
    got = download_snapshot(conn, 5, dest, stamp="stamp-5")
    assert got == stored_snapshot(conn, 5) == stored
    for path in index_folder.iterdir():
        assert (dest / path.name).read_bytes() == path.read_bytes()
    index = BM25Index.load(dest)
    assert [h.article_id for h in index.search("ferry", k=2).hits]  # the mapped copy answers
    assert sorted(p.name for p in dest.parent.iterdir()) == ["v5"]  # no temporary folder left


def test_no_snapshot_for_a_version_or_another_corpus_gives_none(conn, index_folder, tmp_path):
    upload_snapshot(conn, 5, "stamp-5", index_folder)
    assert download_snapshot(conn, 6, tmp_path / "v6") is None
    assert download_snapshot(conn, 5, tmp_path / "v5", stamp="another-database") is None
    assert not (tmp_path / "v6").exists() and not (tmp_path / "v5").exists()


def test_a_snapshot_uploaded_in_a_rolled_back_transaction_is_never_seen(pg_url, index_folder):
    with psycopg.connect(pg_url) as writer:  # not autocommit: the caller's ingest transaction
        ensure_schema(writer)
        writer.commit()
        writer.execute("SELECT 1")  # the ingest's transaction is open
        upload_snapshot(writer, 5, "stamp-5", index_folder)
        with psycopg.connect(pg_url, autocommit=True) as other:
            assert stored_versions(other) == []  # not before the commit
        writer.rollback()
        with psycopg.connect(pg_url, autocommit=True) as other:
            assert stored_versions(other) == []
        writer.execute("SELECT 1")
        upload_snapshot(writer, 5, "stamp-5", index_folder)
        writer.commit()
        with psycopg.connect(pg_url, autocommit=True) as other:
            assert stored_versions(other) == [5]


def test_a_damaged_snapshot_is_refused_and_leaves_nothing(conn, index_folder, tmp_path):
    stored = upload_snapshot(conn, 5, "stamp-5", index_folder, chunk_bytes=4096)
    big = max(stored.files, key=lambda f: f.size)
    conn.execute(
        "UPDATE index_snapshot_chunks SET data = overlay(data placing '\\xff'::bytea from 10) "
        "WHERE version = 5 AND name = %s AND seq = 0",
        [big.name],
    )
    dest = tmp_path / "cache" / "v5"
    with pytest.raises(SnapshotError, match=f"{big.name} does not match its checksum"):
        download_snapshot(conn, 5, dest)
    conn.execute("DELETE FROM index_snapshot_chunks WHERE version = 5 AND name = %s AND seq = 0", [big.name])
    with pytest.raises(SnapshotError, match=f"lacks part 0 of {big.name}"):
        download_snapshot(conn, 5, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_a_version_already_downloaded_by_a_neighbour_is_kept(conn, index_folder, tmp_path):
    upload_snapshot(conn, 5, "stamp-5", index_folder)
    dest = tmp_path / "cache" / "v5"
    assert download_snapshot(conn, 5, dest) is not None
    before = (dest / "manifest.json").stat().st_ino
    assert download_snapshot(conn, 5, dest) is not None
    assert (dest / "manifest.json").stat().st_ino == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["v5"]


def test_pruning_keeps_the_current_and_the_previous_version(conn, index_folder):
    for version in (3, 4, 5, 6):
        upload_snapshot(conn, version, f"stamp-{version}", index_folder)
    assert prune_snapshots(conn) == [3, 4]
    assert stored_versions(conn) == [6, 5]
    (chunks_left,) = conn.execute("SELECT count(DISTINCT version) FROM index_snapshot_chunks").fetchone()
    assert chunks_left == 2
    assert prune_snapshots(conn) == []


def test_a_download_keeps_its_view_while_a_prune_commits(pg_url, conn, index_folder, tmp_path):
    upload_snapshot(conn, 5, "stamp-5", index_folder, chunk_bytes=2000)
    upload_snapshot(conn, 6, "stamp-6", index_folder, chunk_bytes=2000)
    upload_snapshot(conn, 7, "stamp-7", index_folder, chunk_bytes=2000)
    with psycopg.connect(pg_url, autocommit=True) as downloader:
        original = downloader.cursor

        def cursor_then_prune(*args, **kwargs):
            if kwargs.get(
                "binary"
            ):  # the download's view is taken; a prune commits before the chunks are read
                assert prune_snapshots(conn) == [5]
            return original(*args, **kwargs)

        downloader.cursor = cursor_then_prune  # type: ignore[method-assign]
        got = download_snapshot(downloader, 5, tmp_path / "v5")
    assert got is not None and BM25Index.load(tmp_path / "v5").n_passages == 200
    assert stored_versions(conn) == [7, 6]


def test_the_schema_can_be_ensured_by_several_processes_at_once(pg_url):
    errors: list[BaseException] = []

    def ensure():
        try:
            with psycopg.connect(pg_url, autocommit=True) as c:
                ensure_schema(c)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_url) as c:
        (storage,) = c.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'index_snapshot_chunks'::regclass "
            "AND attname = 'data'"
        ).fetchone()
    assert storage == "e"  # stored uncompressed


def test_the_migration_makes_the_same_tables_as_ensure_schema(pg_url, pg_cluster):
    from retrieval.pg_store import PostgresStore

    def columns(url):
        with psycopg.connect(url) as c:
            return c.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_name IN ('reload_holder', 'index_snapshots', 'index_snapshot_chunks')"
                " ORDER BY table_name, ordinal_position"
            ).fetchall()

    PostgresStore(pg_url).close()  # the migrations
    bare = pg_cluster.new_database()
    with psycopg.connect(bare, autocommit=True) as c:
        ensure_schema(c)
    assert columns(pg_url) and columns(pg_url) == columns(bare)
