"""Faults around the database and the index: each leaves a clear message, the previous corpus answering
and nothing lost.

How each fault is made real (the tests run as root in CI, so file modes alone stop nothing):

- killed mid-reload: ``newsdesk ingest`` in a subprocess, SIGKILL when the write transaction is under way
  (the ``-wal`` file grows), when the index is being built (the ``-wal`` file has stopped growing) or
  when it is being written (a folder appears under ``<db>.index/``);
- read-only: ``chattr +i`` on the database file, which refuses writes to root too (``chmod`` when not root);
- disk full: a small tmpfs mounted for the test (root only; skipped with the reason when mounting fails);
- locked: a second ``sqlite3`` connection holding ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import StoreError
from retrieval.server_settings import ServerSettingsTable
from retrieval.service import NewsService
from retrieval.store import describe_target
from tests.data import REPO, SAMPLE_CORPUS, wait_for_moment

pytestmark = pytest.mark.both_stores  # every test that opens a database: on SQLite and on PostgreSQL

BUSINESS_QUESTION = "Time Warner quarterly profits"  # business/001
TECH_QUESTION = "invisible ink ultraviolet readers Kyrgyz elections"  # tech/001
COMET = "who discovered the comet?"
COMET_TITLE = "Amateur Astronomer Spots New Comet"
LONG = (
    "The council met on Tuesday to discuss the new bridge over the river, which will cost 4 million pounds."
)


def cli(*args, cwd, env=None, stdin=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **(env or {}), "PYTHONPATH": str(REPO)},
        timeout=120,
    )


def one_clear_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_article(folder: Path, name: str, title: str, body: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")


def copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy2(f"{src}{suffix}", f"{dst}{suffix}")
    shutil.copytree(src.with_name(src.name + ".index"), dst.with_name(dst.name + ".index"))


def ids(answer) -> list[str]:
    return [r.article_id for r in answer.results]


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def business_db(tmp_path_factory, bbc_folder) -> tuple[Path, int]:
    """A database of the BBC business articles only (510), so that a reload over the whole BBC folder
    has 1,715 articles to add."""
    root = tmp_path_factory.mktemp("business")
    shutil.copytree(bbc_folder / "business", root / "corpus" / "business")
    service = NewsService(root / "n.db", root / "corpus")
    version = service.reload().corpus_version
    service.close()
    return root / "n.db", version


# -- 1. killed in the middle of a reload -----------------------------------------------------------


# The ingest runs in a child process that says on its output when it reaches a moment, and then lingers there
# (still inside the transaction), so that the kill lands at that moment whatever the machine's speed or SQLite's
# page cache. Nothing is changed in what the ingest does; it only waits at that point.
_AT_MOMENT = """
import sys, time
from bot.cli import main
from retrieval.index import BM25Index
from retrieval.sqlite_store import SQLiteWriter

moment, folder, db = sys.argv[1:4]

def say_and_wait(name):
    print(f"MOMENT {name}", flush=True)
    time.sleep(5)  # killed meanwhile

texts = [0]
put_text = SQLiteWriter.put_text
def counting_put_text(self, *args, **kwargs):
    put_text(self, *args, **kwargs)
    texts[0] += 1
    if texts[0] == 500 and moment == "inserting":
        say_and_wait(moment)
SQLiteWriter.put_text = counting_put_text

build = BM25Index.build.__func__
def marked_build(cls, docs, *args, **kwargs):
    if moment == "indexing":
        docs = list(docs)  # every row of the new version read, inside the transaction
        say_and_wait(moment)
    return build(cls, docs, *args, **kwargs)
BM25Index.build = classmethod(marked_build)

save = BM25Index.save
def marked_save(self, directory):
    result = save(self, directory)
    if moment == "saving the index":
        say_and_wait(moment)  # the new version's folder written, its transaction not yet committed
    return result
BM25Index.save = marked_save

sys.exit(main(["ingest", folder, "--db", db]))
"""


def assert_previous_corpus_serves_and_reloads(service: NewsService, version: int) -> None:
    """After a killed reload: the business-only corpus of ``version`` serves as before, and the next reload adds
    the rest of BBC News."""
    assert service.store.counts()["articles"] == 510
    assert service.snapshot.version == version
    assert ids(service.search(BUSINESS_QUESTION))[0] == "business/001"
    assert not any(i.startswith("tech/") for i in ids(service.search(TECH_QUESTION)))

    summary = service.reload()
    assert (summary.added, summary.failed, summary.corpus_version) == (1715, 0, version + 1)
    assert service.snapshot.version == version + 1
    assert ids(service.search(TECH_QUESTION))[0] == "tech/001"
    assert ids(service.search(BUSINESS_QUESTION))[0] == "business/001"


@pytest.mark.parametrize("moment", ["inserting", "indexing", "saving the index"])
@pytest.mark.shared_corpus
def test_sigkill_during_a_reload_keeps_the_previous_corpus(business_db, bbc_folder, tmp_path, moment):
    base, version = business_db
    db = tmp_path / "n.db"
    copy_db(base, db)
    log_path = tmp_path / "ingest.log"
    log = log_path.open("w")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", _AT_MOMENT, moment, str(bbc_folder), str(db)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**clean, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for_moment(proc, log_path, moment, timeout=90)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    assert integrity(db) == "ok"
    service = NewsService(db, bbc_folder)
    try:
        after = service.store.corpus_version()
        assert after == version, "a killed reload must not commit anything"
        assert_previous_corpus_serves_and_reloads(service, version)
    finally:
        service.close()
    assert integrity(db) == "ok"


# The same kill on PostgreSQL. The moments are seen from outside as on SQLite: the tables' files grow while the
# rows go in (uncommitted rows take room too), stop growing while the index is built, a folder of the new version
# appears in the index cache while it is saved, and the stored-snapshot table grows while it is uploaded.

_PG_SIZE = (
    "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['articles', 'texts', 'passages']::regclass[]) t"
)
_PG_SNAPSHOT_SIZE = "SELECT pg_total_relation_size('index_snapshot_chunks')"


@pytest.fixture(scope="module")
def business_pg(tmp_path_factory, bbc_folder, pg_cluster) -> tuple[str, int]:
    """``business_db`` on PostgreSQL: a database that each test copies (``CREATE DATABASE ... TEMPLATE``)."""
    root = tmp_path_factory.mktemp("business-pg")
    shutil.copytree(bbc_folder / "business", root / "corpus" / "business")
    url = pg_cluster.new_database()
    service = NewsService(url, root / "corpus", index_cache=root / "index-cache")
    version = service.reload().corpus_version
    service.close()
    return url, version


def copy_pg(pg_cluster, url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    return pg_cluster.url(name)


def _pg_moment(moment: str, url: str, cache: Path, version: int):
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    size = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    base, snapshots = size(_PG_SIZE), size(_PG_SNAPSHOT_SIZE)
    state = {"size": -1, "since": 0.0}

    def indexing() -> bool:
        now, current = time.monotonic(), size(_PG_SIZE)
        if current != state["size"]:
            state.update(size=current, since=now)
            return False
        return current >= base + 1_000_000 and now - state["since"] >= 0.5

    ready = {
        "inserting": lambda: size(_PG_SIZE) >= base + 1_000_000,
        "indexing": indexing,
        "saving the index": lambda: any(cache.glob(f"*/v{version + 1}")),
        "storing the index in the database": lambda: size(_PG_SNAPSHOT_SIZE) > snapshots,
    }[moment]
    return ready, conn


@pytest.mark.parametrize(
    "moment", ["inserting", "indexing", "saving the index", "storing the index in the database"]
)
@pytest.mark.shared_corpus
def test_sigkill_during_a_reload_keeps_the_previous_corpus_on_postgres(
    business_pg, pg_cluster, bbc_folder, tmp_path, moment
):
    base, version = business_pg
    url = copy_pg(pg_cluster, base, f"kill_{moment.split()[0]}_{os.getpid()}")
    cache = tmp_path / "index-cache"
    ready, watching = _pg_moment(moment, url, cache, version)
    log = (tmp_path / "ingest.log").open("w")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "ingest", str(bbc_folder), "--db", url],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**clean, "PYTHONPATH": str(REPO), "NEWSDESK_INDEX_CACHE": str(cache)},
    )
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None, (
                f"the ingest ended before the kill: {(tmp_path / 'ingest.log').read_text()}"
            )
            assert time.monotonic() < deadline, "the reload never reached the moment to kill it"
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        watching.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    # Right away, as a user restarting it would: the server has ended the dead process's transaction and lock.
    service = NewsService(url, bbc_folder, index_cache=cache)
    try:
        after = service.store.corpus_version()
        if after == version + 1:  # the kill landed just after COMMIT: then the whole new corpus is served
            assert moment != "inserting"
            assert service.store.counts()["articles"] == 2225
            assert service.snapshot.version == after
            assert ids(service.search(TECH_QUESTION))[0] == "tech/001"
            return
        assert after == version, "a killed reload must not commit anything"
        stored = service.store.query("SELECT version FROM index_snapshots ORDER BY version")
        assert stored == [(version,)]  # the dead reload's snapshot was never stored
        assert_previous_corpus_serves_and_reloads(service, version)
    finally:
        service.close()


# -- 2. read-only database ---------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` refuse writes for real: ``chattr +i`` as root (root ignores file modes), else chmod."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    try:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("chattr is not installed: cannot make a file read-only for root")
    if made.returncode:
        pytest.skip(f"cannot make the database immutable here (chattr: {made.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _read_only_refuses_the_reload_and_keeps_serving(
    open_service, read_only, ingest, sample_corpus, *, after_refusal=lambda: None
):
    """A corpus served, a file added, then the database made read-only (``read_only()``): the reload and
    ``newsdesk ingest`` (``ingest()``) are refused saying so, the old corpus keeps serving and nothing is left
    behind; once writable again, the waiting file is ingested once. ``after_refusal`` checks the store then."""
    first = open_service()
    version = first.reload().corpus_version
    first.close()
    write_article(sample_corpus, "bridge.txt", "Council approves the new bridge", LONG)
    with read_only():
        service = open_service()
        try:
            assert service.snapshot.version == version
            assert ids(service.search(COMET))
            with pytest.raises(StoreError, match="read-only"):
                service.reload()
            assert service.snapshot.version == version and service.store.corpus_version() == version
            assert service.search(COMET).results[0].title == COMET_TITLE
            assert service.store.article("bridge") is None
            assert service.last_reload.ok is False
            assert sorted(p.name for p in service.index_root.iterdir()) == [f"v{version}"]
        finally:
            service.close()
        result = ingest()
        assert result.returncode == 1
        assert "read-only" in one_clear_line(result)
    after_refusal()
    service = open_service()
    try:
        assert service.reload().added == 1  # nothing was lost: the file waiting is ingested once writable
        assert ids(service.search("new bridge council"))[0] == "bridge"
    finally:
        service.close()


@pytest.mark.sqlite_only  # the file made immutable; PostgreSQL: the next test
def test_read_only_database_refuses_the_reload_and_keeps_serving(tmp_path, sample_corpus):
    db = tmp_path / "n.db"
    _read_only_refuses_the_reload_and_keeps_serving(
        lambda: NewsService(db, sample_corpus),
        lambda: read_only(db),
        lambda: cli("ingest", str(sample_corpus), "--db", str(db), cwd=tmp_path),
        sample_corpus,
        after_refusal=lambda: _assert_intact(db),
    )


def _assert_intact(db) -> None:
    assert integrity(db) == "ok"


@contextlib.contextmanager
def read_only_pg(url: str, pg_cluster):
    """A PostgreSQL database that refuses writes: ``default_transaction_read_only`` on the database, which every
    new session takes (a replica, or a database an administrator froze, behaves the same). Reset at the end."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        yield
    finally:
        with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def test_read_only_postgres_database_refuses_the_reload_and_keeps_serving(
    pg_url, pg_cluster, tmp_path, sample_corpus
):
    cache = tmp_path / "index-cache"
    _read_only_refuses_the_reload_and_keeps_serving(
        lambda: NewsService(pg_url, sample_corpus, index_cache=cache),
        lambda: read_only_pg(pg_url, pg_cluster),
        lambda: cli(
            "ingest",
            str(sample_corpus),
            "--db",
            pg_url,
            cwd=tmp_path,
            env={"NEWSDESK_INDEX_CACHE": str(cache)},
        ),
        sample_corpus,
    )


# -- 3. disk full ------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    path.mkdir()
    try:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command: cannot make a small disk to fill")
    if made.returncode:
        pytest.skip(f"mounting a tmpfs is not permitted here ({made.stderr.strip()})")
    try:
        yield path
    finally:
        gc.collect()  # the served index is memory-mapped from the tmpfs
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.mark.sqlite_only  # the database file on a small disk; PostgreSQL: the next test
@pytest.mark.shared_corpus
def test_full_disk_refuses_the_reload_and_keeps_the_database(tmp_path, sample_corpus, bbc_folder):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        db = disk / "n.db"
        service = NewsService(db, sample_corpus)
        try:
            version = service.reload().corpus_version
            before = service.store.counts()
            shutil.copytree(bbc_folder / "tech", sample_corpus / "tech")  # ~2 MB of new text
            with pytest.raises(StoreError, match="full"):
                service.reload()
            assert service.snapshot.version == version and service.store.corpus_version() == version
            assert service.store.counts() == before
            assert service.search(COMET).results[0].title == COMET_TITLE
            assert sorted(p.name for p in service.index_root.iterdir()) == [f"v{version}"]
            result = cli("ingest", str(sample_corpus), "--db", str(db), cwd=tmp_path)
            assert result.returncode == 1
            # Which write meets the full disk first (the database's pages or the new index) depends on how much
            # the ingest's page cache holds back until its commit; either way the line names that disk.
            assert one_clear_line(result) in {
                f"newsdesk: the disk holding {db} is full",
                f"newsdesk: the disk holding the search index {db}.index is full",
            }
            assert integrity(db) == "ok"

            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # room made
            summary = service.reload()  # the same (long-running) service recovers without a restart
            assert (summary.added, summary.corpus_version) == (401, version + 1)
            assert ids(service.search(TECH_QUESTION))[0] == "tech/001"
        finally:
            service.close()
            del service


@pytest.mark.shared_corpus
def test_full_disk_refuses_the_reload_and_keeps_the_postgres_database(
    pg_cluster, pg_url, tmp_path, sample_corpus, bbc_folder
):
    """The PostgreSQL side: newsdesk's tables moved to a tablespace on the small disk."""
    import psycopg

    from tests.postgres import _run_as

    cache = tmp_path / "index-cache"
    name, space = pg_url.rsplit("/", 1)[1], f"small_{os.getpid()}"
    # Under the cluster's folder: the server's user must reach it (the test's tmp_path is root's alone).
    with tmpfs(pg_cluster.folder / f"disk-{tmp_path.name}", "1m") as disk:
        account = _run_as()
        if account is not None:
            os.chown(disk, account.pw_uid, account.pw_gid)
        service = NewsService(pg_url, sample_corpus, index_cache=cache)
        admin = psycopg.connect(pg_cluster.url(), autocommit=True)
        try:
            version = service.reload().corpus_version
            before = service.store.counts()
            admin.execute(f"CREATE TABLESPACE {space} LOCATION '{disk}'")
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f"ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE {space}")
                conn.execute(f"ALTER INDEX ALL IN TABLESPACE pg_default SET TABLESPACE {space}")
            shutil.copytree(bbc_folder / "tech", sample_corpus / "tech")  # ~2 MB of new text
            with pytest.raises(StoreError, match="full"):
                service.reload()
            assert service.snapshot.version == version and service.store.corpus_version() == version
            assert service.store.counts() == before
            assert service.search(COMET).results[0].title == COMET_TITLE
            assert sorted(p.name for p in service.index_root.iterdir()) == [f"v{version}"]
            result = cli(
                "ingest",
                str(sample_corpus),
                "--db",
                pg_url,
                cwd=tmp_path,
                env={"NEWSDESK_INDEX_CACHE": str(cache)},
            )
            assert result.returncode == 1
            assert one_clear_line(result).startswith(
                f"newsdesk: the disk holding the database {describe_target(pg_url)} is full"
            )

            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # room made
            summary = service.reload()  # the same (long-running) service recovers without a restart
            assert (summary.added, summary.corpus_version) == (401, version + 1)
            assert ids(service.search(TECH_QUESTION))[0] == "tech/001"
        finally:
            service.close()
            admin.execute(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            )  # its files live on the small disk
            admin.execute(f"DROP TABLESPACE IF EXISTS {space}")
            admin.close()


@pytest.mark.shared_corpus
def test_full_disk_under_the_index_refuses_the_reload_with_a_clear_message(
    store_target, tmp_path, sample_corpus, bbc_folder
):
    with tmpfs(tmp_path / "disk", "400k") as disk:
        service = NewsService(store_target, sample_corpus, index_root=disk / "index")
        try:
            version = service.reload().corpus_version
            shutil.copytree(bbc_folder / "tech", sample_corpus / "tech")
            with pytest.raises(StoreError, match=r"the disk holding the search index .* is full"):
                service.reload()
            assert service.store.corpus_version() == version and service.store.article("tech/001") is None
            assert service.snapshot.version == version
            assert service.search(COMET).results[0].title == COMET_TITLE
            assert sorted(p.name for p in service.index_root.iterdir()) == [f"v{version}"]
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            assert service.reload().corpus_version == version + 1
            assert ids(service.search(TECH_QUESTION))[0] == "tech/001"
        finally:
            service.close()
            del service


def test_index_missing_and_no_room_to_rewrite_it_still_answers(store_target, tmp_path, sample_corpus):
    with tmpfs(tmp_path / "disk", "400k") as disk:
        first = NewsService(store_target, sample_corpus, index_root=disk / "index")
        version = first.reload().corpus_version
        first.close()
        del first
        gc.collect()
        shutil.rmtree(disk / "index" / f"v{version}")
        filler = disk / "filler"
        with filler.open("wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
        service = NewsService(store_target, sample_corpus, index_root=disk / "index")
        try:
            assert service.search(COMET).results[0].title == COMET_TITLE
            assert service.snapshot.version == version
        finally:
            service.close()
            del service


# -- 4. locked by another writer ---------------------------------------------------------------------


def member_writes(service) -> tuple[list[threading.Thread], dict[str, object]]:
    """A member's vote and a settings change, each in a thread of its own (not started yet); ``outcomes`` says
    how each ended: "stored", or the StoreError."""
    outcomes: dict[str, object] = {}

    def vote() -> None:
        try:
            service.store.add_feedback(
                guild_id="7", channel_id=None, user_id="1", question=COMET, article_ids=[], vote=1
            )
            outcomes["vote"] = "stored"
        except StoreError as exc:
            outcomes["vote"] = exc

    def change_setting() -> None:
        try:
            ServerSettingsTable(service.store).update(7, lambda s: replace(s, results=2), user_id=9)
            outcomes["setting"] = "stored"
        except StoreError as exc:
            outcomes["setting"] = exc

    return [threading.Thread(target=vote), threading.Thread(target=change_setting)], outcomes


def assert_member_writes_stored(
    service, threads: list[threading.Thread], outcomes: dict[str, object]
) -> None:
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == {"vote": "stored", "setting": "stored"}
    assert service.store.query("SELECT guild_id, vote FROM feedback") == [("7", 1)]
    stored = ServerSettingsTable(service.store).get(7)
    assert stored is not None and stored.results == 2


@pytest.mark.sqlite_only  # a second sqlite3 connection holds the write lock; PostgreSQL: the locked test below
def test_a_vote_and_a_settings_change_wait_for_a_reload_that_holds_the_write_lock(service):
    """A reload's transaction holds SQLite's one write lock from its first write to its commit, index build
    included: a member's vote or settings change made meanwhile waits for it, past the few seconds an ingest
    itself waits, and is stored once the lock is free (it used to fail after two seconds)."""
    other = sqlite3.connect(service.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's reload, mid-transaction
    threads, outcomes = member_writes(service)
    try:
        for thread in threads:
            thread.start()
        time.sleep(
            3.0
        )  # past BUSY_TIMEOUT_MS: before, both had failed with "locked by another writer" by now
        assert outcomes == {}
        assert all(thread.is_alive() for thread in threads)
    finally:
        other.rollback()
        other.close()
    assert_member_writes_stored(service, threads, outcomes)


@pytest.mark.sqlite_only  # a second sqlite3 connection holds the write lock; PostgreSQL: the next test
def test_locked_database_refuses_the_reload_then_succeeds_once_released(service, sample_corpus):
    version = service.snapshot.version
    write_article(sample_corpus, "bridge.txt", "Council approves the new bridge", LONG)
    other = sqlite3.connect(service.db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another writer"):
            service.reload()
        assert time.monotonic() - started >= 1.5  # it waited for the busy timeout before giving up
        assert service.snapshot.version == version and service.store.corpus_version() == version
        assert service.search(COMET).results[0].title == COMET_TITLE
        assert not service.reloading
    finally:
        other.rollback()
        other.close()
    summary = service.reload()  # the same service: nothing of the failed attempts is left open
    assert (summary.added, summary.corpus_version) == (1, version + 1)
    assert service.snapshot.version == version + 1
    assert ids(service.search("new bridge council"))[0] == "bridge"
    service.store.add_feedback(
        guild_id=None, channel_id=None, user_id="1", question=COMET, article_ids=[], vote=-1
    )
    assert service.store.feedback_summary()[0][0]["question"] == COMET


def _within(seconds: float, call):
    """``call()``'s result or exception, or AssertionError when it is still waiting after ``seconds``."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        raise AssertionError(f"still waiting after {seconds} s") from None
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def pg_service(pg_url, tmp_path, sample_corpus):
    """``service`` on PostgreSQL alone, for the tests that are the PostgreSQL side of an SQLite-only one."""
    svc = NewsService(pg_url, sample_corpus, index_cache=tmp_path / "index-cache")
    svc.reload()
    yield svc
    svc.close()


def test_locked_postgres_database_refuses_the_reload_and_member_writes_wait_for_it(pg_service, sample_corpus):
    """On PostgreSQL another writer is a transaction holding locks on newsdesk's tables (a maintenance job, a
    migration run by hand): the reload waits for the lock timeout, as SQLite waits its busy timeout, and gives
    up; a member's vote or settings change waits for the lock, and is stored once it is free."""
    import psycopg

    service = pg_service
    version = service.snapshot.version
    write_article(sample_corpus, "bridge.txt", "Council approves the new bridge", LONG)
    other = psycopg.connect(str(service.db_path))
    threads, outcomes = member_writes(service)
    try:
        other.execute("LOCK TABLE articles, feedback, meta IN EXCLUSIVE MODE")  # readers still read
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another writer"):
            _within(30, service.reload)  # it used to wait for as long as the lock was held
        assert time.monotonic() - started >= 1.5  # it waited for the lock timeout before giving up
        assert service.snapshot.version == version and service.store.corpus_version() == version
        assert service.search(COMET).results[0].title == COMET_TITLE
        assert not service.reloading
        for thread in threads:
            thread.start()
        time.sleep(3.0)  # past the reload's lock timeout: the member's writes are still waiting
        assert outcomes == {} and all(thread.is_alive() for thread in threads)
    finally:
        other.rollback()
        other.close()
    assert_member_writes_stored(service, threads, outcomes)
    summary = service.reload()  # the same service: nothing of the failed attempt is left open
    assert (summary.added, summary.corpus_version) == (1, version + 1)
    assert ids(service.search("new bridge council"))[0] == "bridge"


# -- 5. damaged database at start --------------------------------------------------------------------


@pytest.mark.sqlite_only  # the file's bytes damaged; a PostgreSQL server keeps its own files
@pytest.mark.parametrize("damage", ["truncated to half", "garbage"])
def test_damaged_database_at_start_says_how_to_rebuild_and_rebuild_repairs_it(business_db, tmp_path, damage):
    base, _ = business_db
    db = tmp_path / "n.db"
    copy_db(base, db)
    corpus = base.parent / "corpus"
    if damage == "garbage":
        db.write_bytes(os.urandom(db.stat().st_size))
    else:
        os.truncate(db, db.stat().st_size // 2)
    damaged = db.read_bytes()

    ask = cli("ask", BUSINESS_QUESTION, "--db", str(db), cwd=tmp_path)
    run = cli(
        "run",
        cwd=tmp_path,
        env={"NEWSDESK_DB": str(db), "NEWSDESK_CORPUS_DIR": str(corpus)},
        stdin=BUSINESS_QUESTION + "\n",
    )
    for result in (ask, run):
        assert result.returncode == 1
        line = one_clear_line(result)
        assert line.startswith(f"newsdesk: the database {db} is damaged")
        assert f"newsdesk ingest --rebuild --db {db}" in line
        assert result.stdout == ""

    rebuilt = cli("ingest", str(corpus), "--db", str(db), "--rebuild", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "moved the damaged database aside" in rebuilt.stderr
    assert (tmp_path / "n.db.damaged").read_bytes() == damaged  # kept, byte for byte
    assert integrity(db) == "ok"
    answer = cli("ask", BUSINESS_QUESTION, "--db", str(db), cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert "Ad sales boost Time Warner profit" in answer.stdout


# -- 6. damaged or missing index ---------------------------------------------------------------------


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


DAMAGE = {
    "folder deleted": lambda d: shutil.rmtree(d),
    "manifest garbage": lambda d: (d / "manifest.json").write_bytes(os.urandom(300)),
    "manifest empty": lambda d: (d / "manifest.json").write_bytes(b""),
    "array garbage": lambda d: (d / "post_doc.npy").write_bytes(os.urandom(4000)),
    "array truncated": lambda d: _truncate(d / "post_w.npy"),
    "array missing": lambda d: (d / "term_ptr.npy").unlink(),
    "array of another shape": lambda d: np.save(d / "doc_len.npy", np.zeros(3, np.float32)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_rebuilt_from_the_store(service, damage):
    version = service.snapshot.version
    folder = service.index_root / f"v{version}"
    expected = ids(service.search(COMET))
    service.close()
    DAMAGE[damage](folder)
    fresh = NewsService(service.db_path, service.corpus_dir, index_root=service.index_root)
    try:
        assert ids(fresh.search(COMET)) == expected
        assert fresh.snapshot.version == version and fresh.store.corpus_version() == version
    finally:
        fresh.close()
    assert (folder / "manifest.json").is_file()  # rebuilt on disk, so the next start loads it


def test_index_with_out_of_range_numbers_is_rebuilt_not_a_crash(service):
    folder = service.index_root / f"v{service.snapshot.version}"
    service.close()
    post_doc = np.load(folder / "post_doc.npy")
    post_doc[:] = np.iinfo(post_doc.dtype).max - 3  # same shape and type, impossible values
    np.save(folder / "post_doc.npy", post_doc)
    script = (
        "import sys; from retrieval.service import NewsService; "
        "s = NewsService(sys.argv[1], sys.argv[2], index_root=sys.argv[4]);"
        " print(s.search(sys.argv[3]).results[0].title)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(service.db_path),
            str(service.corpus_dir),
            COMET,
            str(service.index_root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    assert result.stdout.strip() == COMET_TITLE


# -- 7. two processes on one database ----------------------------------------------------------------


def test_second_service_picks_up_a_reload_made_by_the_first(store_target, tmp_path, sample_corpus):
    # Two processes of one machine: one index folder (beside the SQLite file, or in one index cache).
    writer = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    writer.reload()
    reader = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    try:
        v1 = reader.snapshot.version
        assert reader.refresh_if_changed() is False
        write_article(sample_corpus, "bridge.txt", "Council approves the new bridge", LONG)
        assert writer.reload().corpus_version == v1 + 1
        # Until it looks, the second keeps answering from its own snapshot.
        assert reader.snapshot.version == v1 and "bridge" not in ids(reader.search("new bridge council"))
        assert reader.refresh_if_changed() is True
        assert reader.snapshot.version == v1 + 1
        assert ids(reader.search("new bridge council"))[0] == "bridge"
        assert reader.refresh_if_changed() is False

        # Two more reloads prune the index folder the second one serves: it still answers, then moves on.
        shutil.copy(SAMPLE_CORPUS / "local" / "harbour-wind-farm.txt", sample_corpus / "wind-copy.txt")
        writer.reload()
        (sample_corpus / "bridge.txt").unlink()
        latest = writer.reload().corpus_version
        assert not (writer.index_root / f"v{v1 + 1}").exists()
        assert reader.search(COMET).results[0].title == COMET_TITLE
        assert reader.refresh_if_changed() is True and reader.snapshot.version == latest
        assert "bridge" not in ids(reader.search("new bridge council"))
        assert reader.search(COMET).results[0].title == COMET_TITLE
    finally:
        reader.close()
        writer.close()
