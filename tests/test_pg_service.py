"""The service on a shared PostgreSQL database: a reload stores the index snapshot and announces the version;
another process (its own index folder) downloads that snapshot instead of rebuilding, answers from it and from
the local corpus copy beside it, and keeps answering while the database is down."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import time

import psycopg
import pytest

from retrieval.errors import IngestRunning, StoreError
from retrieval.pg_sync import VersionListener, stored_snapshot, stored_versions
from retrieval.service import NewsService
from tests.bot_harness import corpus_file

FERRY = (
    "local/ferry.txt",
    "Night Ferry Returns",
    "The night ferry to Port Ellen returns on Friday after a winter.",
)


def service_on(url, corpus, index_root) -> NewsService:
    return NewsService(url, corpus, index_root=index_root)


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_reload_stores_its_index_and_another_process_downloads_it(pg_url, sample_corpus, tmp_path, caplog):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    reader = None
    try:
        summary = writer.reload()
        with psycopg.connect(pg_url) as conn:
            stored = stored_snapshot(conn, summary.corpus_version)
        assert stored is not None and stored.stamp == writer.snapshot.stamp
        assert "corpus.db" in {f.name for f in stored.files}  # the texts travel with the index

        caplog.set_level(logging.INFO, logger="retrieval.service")
        reader = service_on(pg_url, tmp_path / "no-corpus-here", tmp_path / "b")
        snapshot = reader.open()
        assert snapshot.version == summary.corpus_version
        assert "downloaded the index of corpus version" in caplog.text
        assert "building the search index" not in caplog.text
        for f in stored.files:
            assert (tmp_path / "b" / f"v{summary.corpus_version}" / f.name).stat().st_size == f.size
        a, b = writer.search("library repairs cost"), reader.search("library repairs cost")
        assert [r.article_id for r in a.results] == [r.article_id for r in b.results]
        assert b.results and b.results[0].excerpt.text == a.results[0].excerpt.text
    finally:
        writer.close()
        if reader is not None:
            reader.close()


def test_a_new_version_is_announced_and_picked_up_at_once(pg_url, sample_corpus, tmp_path):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    writer.reload()
    reader = service_on(pg_url, sample_corpus, tmp_path / "b")
    reader.open()
    heard: list[float] = []
    listener = reader.listen_for_versions(
        lambda v: heard.append(time.monotonic()) if v else None, poll_every=60
    )
    try:
        assert isinstance(listener, VersionListener) and listener.wait_connected(10)
        corpus_file(sample_corpus, *FERRY)
        summary = writer.reload()
        committed = time.monotonic()
        assert wait_until(lambda: heard, 2.0)
        assert heard[0] - committed < 1.0
        assert reader.refresh_if_changed()
        assert reader.snapshot.version == summary.corpus_version
        assert reader.search("night ferry Port Ellen").results[0].title == "Night Ferry Returns"
    finally:
        writer.close()
        reader.close()


def test_only_the_two_newest_snapshots_are_kept(pg_url, sample_corpus, tmp_path):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    try:
        versions = []
        for n in range(4):
            corpus_file(
                sample_corpus, f"local/extra{n}.txt", f"Extra {n}", f"Extra story number {n} about kites."
            )
            versions.append(writer.reload().corpus_version)
        with psycopg.connect(pg_url) as conn:
            assert stored_versions(conn) == versions[:-3:-1]
    finally:
        writer.close()


def test_without_a_stored_snapshot_the_index_is_built_from_the_rows_and_stored(
    pg_url, sample_corpus, tmp_path
):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    version = writer.reload().corpus_version
    writer.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM index_snapshots")
    reader = service_on(pg_url, sample_corpus, tmp_path / "b")
    try:
        assert reader.open().version == version
        assert reader.search("library repairs cost").results
        with psycopg.connect(pg_url) as conn:
            assert stored_versions(conn) == [version]  # the next process downloads it
    finally:
        reader.close()


def test_a_damaged_stored_snapshot_is_rebuilt_from_the_rows(pg_url, sample_corpus, tmp_path, caplog):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    version = writer.reload().corpus_version
    writer.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE index_snapshot_chunks SET data = '\\x00'::bytea WHERE name = 'manifest.json'")
    reader = service_on(pg_url, sample_corpus, tmp_path / "b")
    try:
        caplog.set_level(logging.INFO, logger="retrieval.service")
        assert reader.open().version == version
        assert "is unusable" in caplog.text and "building the search index" in caplog.text
        assert reader.search("library repairs cost").results
        caplog.clear()
        third = service_on(pg_url, sample_corpus, tmp_path / "c")  # the damaged one was replaced
        assert third.open().version == version and "downloaded the index" in caplog.text
        third.close()
    finally:
        reader.close()


def test_one_reload_at_a_time_across_processes_says_where_the_other_runs(pg_url, sample_corpus, tmp_path):
    first = service_on(pg_url, sample_corpus, tmp_path / "a")
    second = service_on(pg_url, sample_corpus, tmp_path / "b")
    try:
        with (
            first.store.ingest_lock(),
            pytest.raises(IngestRunning, match=r"another ingest .*is running on .* \(process \d+, since"),
        ):
            second.reload()
        second.reload()
    finally:
        first.close()
        second.close()


def test_with_the_database_down_it_answers_from_what_it_loaded_and_says_so(
    pg_cluster, pg_url, sample_corpus, tmp_path
):
    service = service_on(pg_url, sample_corpus, tmp_path / "a")
    try:
        service.reload()
        before = service.search("library repairs cost")
        assert service.stats().database.reachable
        pg_cluster.stop()
        try:
            during = service.search("library repairs cost")  # the index and the corpus copy are local
            assert [r.excerpt.text for r in during.results] == [r.excerpt.text for r in before.results]
            assert service.article(before.results[0].article_id) is not None
            assert service.headlines(3)
            assert not service.refresh_if_changed()
            stats = service.stats()
            assert not stats.database.reachable and stats.database.since is not None
            assert stats.articles > 0 and stats.passages > 0
            with pytest.raises(StoreError, match="cannot reach"):
                service.add_feedback(
                    guild_id=None, channel_id=None, user_id="1", question="q", article_ids=[], vote=1
                )
        finally:
            pg_cluster.start()
        assert wait_until(
            lambda: service.refresh_if_changed() is False and service.stats().database.reachable, 30
        )
        service.add_feedback(
            guild_id=None, channel_id=None, user_id="1", question="q", article_ids=[], vote=1
        )
        assert service.feedback_summary().latest == []  # a 👍 is kept but not listed among the 👎
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
    finally:
        service.close()


def test_any_call_the_database_answers_ends_the_outage_it_reported(
    pg_cluster, pg_url, sample_corpus, tmp_path
):
    """After an outage the status clears on the first call the database answers, whoever makes it (a bot's
    periodic settings check reads the store directly), not only on the service's own calls."""
    service = service_on(pg_url, sample_corpus, tmp_path / "a")
    try:
        service.reload()
        pg_cluster.stop()
        try:
            with pytest.raises(StoreError, match="cannot reach"):
                service.add_feedback(
                    guild_id=None, channel_id=None, user_id="1", question="q", article_ids=[], vote=1
                )
            assert not service.database_status().reachable
        finally:
            pg_cluster.start()
        assert not service.database_status().reachable  # nothing was answered since
        assert wait_until(lambda: _answers(service.store), 30)  # a read straight through the store
        assert service.database_status().reachable
    finally:
        service.close()


def _answers(store) -> bool:
    try:
        return store.query("SELECT 1") == [(1,)]
    except StoreError:
        return False


def test_a_reader_keeps_only_the_newest_versions_in_its_cache(pg_url, sample_corpus, tmp_path):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    reader = service_on(pg_url, sample_corpus, tmp_path / "b")
    try:
        writer.reload()
        reader.open()
        for n in range(3):
            corpus_file(
                sample_corpus, f"local/extra{n}.txt", f"Extra {n}", f"Extra story number {n} about kites."
            )
            version = writer.reload().corpus_version
            assert reader.refresh_if_changed() and reader.snapshot.version == version
        kept = sorted(p.name for p in (tmp_path / "b").iterdir())
        assert kept == [f"v{version - 1}", f"v{version}"]
    finally:
        writer.close()
        reader.close()


def test_swaps_close_the_old_corpus_copies_and_serving_never_writes_to_them(pg_url, sample_corpus, tmp_path):
    from tests.test_corpus_copy import open_files

    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    reader = service_on(pg_url, tmp_path / "no-corpus-here", tmp_path / "b")
    try:
        writer.reload()
        reader.open()
        for n in range(6):
            corpus_file(sample_corpus, f"local/notice{n}.txt", f"Notice {n}", f"Harbour notice number {n}.")
            writer.reload()
            assert reader.refresh_if_changed()
            assert reader.search("library repairs cost").results and reader.headlines(3)
            assert len(open_files(tmp_path / "b")) <= 2
        version = reader.snapshot.version
        folder = tmp_path / "b" / f"v{version}"
        with psycopg.connect(pg_url) as conn:
            stored = stored_snapshot(conn, version)
        assert stored is not None
        copy = next(f for f in stored.files if f.name == "corpus.db")
        # Byte for byte what was downloaded, and nothing written beside it.
        assert hashlib.sha256((folder / "corpus.db").read_bytes()).hexdigest() == copy.sha256
        assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in stored.files)
    finally:
        writer.close()
        reader.close()
    assert open_files(tmp_path / "b") == []


def test_snapshots_travel_over_the_stores_pool(pg_url, sample_corpus, tmp_path, monkeypatch):
    writer = service_on(pg_url, sample_corpus, tmp_path / "a")
    reader = service_on(pg_url, tmp_path / "no-corpus-here", tmp_path / "b")
    real_connect = psycopg.connect
    opened: list[str] = []

    def connect(*args, **kwargs):
        opened.append(kwargs.get("application_name") or "a connection of its own")
        return real_connect(*args, **kwargs)

    try:
        writer.reload()
        monkeypatch.setattr(psycopg, "connect", connect)
        reader.open()  # downloads the snapshot
        corpus_file(sample_corpus, *FERRY)
        writer.reload()  # stores the new snapshot and prunes the old ones
        assert reader.refresh_if_changed()
        reader._snapshot = None
        shutil.rmtree(tmp_path / "b")
        with real_connect(pg_url, autocommit=True) as conn:
            conn.execute("DELETE FROM index_snapshots")
        reader.open()  # builds it from the rows and stores it
        with real_connect(pg_url) as conn:
            assert stored_versions(conn) == [reader.snapshot.version]
    finally:
        writer.close()
        reader.close()
    # The ingest lock alone has a connection of its own (it must outlive the ingest's transactions).
    assert len(opened) == 1 and opened[0].startswith("newsdesk ingest"), opened


def test_a_database_restored_from_another_dump_at_the_same_version_is_picked_up(
    pg_cluster, sample_corpus, tmp_path
):
    """An operator restores another newsdesk database's dump (``pg_dump --clean``) over the live one: the
    version number is the same, the corpus is not, and the service answers from the restored one."""
    urls = {}
    for name, title, text in (
        ("a", "Comet news", "An amateur astronomer discovered the comet on Tuesday night."),
        ("b", "Harbour news", "The harbour master closed the quay to ferries today."),
    ):
        urls[name] = pg_cluster.new_database()
        shutil.copytree(sample_corpus, tmp_path / f"{name}-corpus")
        corpus_file(tmp_path / f"{name}-corpus", "news.txt", title, text)
        built = service_on(urls[name], tmp_path / f"{name}-corpus", tmp_path / f"{name}-index")
        assert built.reload().corpus_version == 1
        built.close()
    service = service_on(urls["a"], tmp_path / "a-corpus", tmp_path / "live-index")
    try:
        assert service.search("comet astronomer").results[0].title == "Comet news"
        dump = subprocess.run(
            [str(pg_cluster.bin_dir / "pg_dump"), "--clean", "--if-exists", "--no-owner", urls["b"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        subprocess.run(
            [str(pg_cluster.bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", urls["a"]],
            input=dump,
            capture_output=True,
            text=True,
            check=True,
        )
        assert service.refresh_if_changed()
        assert service.snapshot.version == 1
        assert service.search("harbour quay").results[0].title == "Harbour news"
    finally:
        service.close()
