"""The schema in numbered migrations: new databases get them all, older ones are upgraded in place."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from retrieval.migrations import BACKENDS, migrations
from retrieval.server_settings import ServerSettingsTable
from retrieval.service import NewsService
from retrieval.sqlite_store import SQLiteStore
from retrieval.store import migrate_database, open_store
from tests.data import REPO

# A database made by newsdesk before migrations existed (`sqlite3 n.db .dump` of one with two articles, a
# vote and a server's setting).
BEFORE_MIGRATIONS = REPO / "tests" / "fixtures" / "newsdesk_before_migrations.sql"


def old_database(path, *, without_server_settings=False):
    conn = sqlite3.connect(path)
    conn.executescript(BEFORE_MIGRATIONS.read_text(encoding="utf-8"))
    if without_server_settings:  # older still: made before per-server settings
        conn.executescript(
            "DROP TABLE server_settings; DROP TABLE server_settings_changes;"
            " DELETE FROM meta WHERE key = 'settings_version';"
        )
    conn.close()
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_are_numbered_from_one_without_gaps(backend):
    listed = migrations(backend)
    assert [m.version for m in listed] == list(range(1, len(listed) + 1))
    assert all(m.name.startswith(f"{m.version:03d}_") and m.sql.strip() for m in listed)


@pytest.mark.sqlite_only  # databases made before migrations existed were SQLite files: PostgreSQL came later
def test_a_database_made_before_migrations_is_upgraded_in_place_and_keeps_everything(tmp_path):
    path = old_database(tmp_path / "n.db")
    store = SQLiteStore(path)
    assert store.applied_migrations == ["002_server_settings", "003_write_keys"]
    rows = store.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(1, "001_initial"), (2, "002_server_settings"), (3, "003_write_keys")]
    assert store.counts()["articles"] == 2 and store.corpus_state().version == 1
    assert ServerSettingsTable(store).get(11).results == 4
    assert store.feedback_summary()[1] == [("ferry", 1)]
    store.close()


@pytest.mark.sqlite_only  # databases made before migrations existed were SQLite files: PostgreSQL came later
def test_a_database_made_before_server_settings_gets_its_tables(tmp_path):
    path = old_database(tmp_path / "n.db", without_server_settings=True)
    report = migrate_database(path)
    assert report.applied == ["002_server_settings", "003_write_keys"] and report.version == 3
    store = SQLiteStore(path)
    table = ServerSettingsTable(store)
    assert table.version() == 0 and table.all() == {}
    table.update(11, lambda row: row.__class__(11, results=3), user_id=21)
    assert table.version() == 1
    store.close()


@pytest.mark.sqlite_only  # databases made before migrations existed were SQLite files: PostgreSQL came later
def test_an_upgraded_database_takes_the_next_ingest_and_keeps_its_votes(tmp_path, sample_corpus):
    path = old_database(tmp_path / "n.db")
    service = NewsService(path, sample_corpus)
    assert service.article("ferry")[0].title == "Night Ferry Returns"
    summary = service.reload()
    assert (summary.removed, summary.corpus_version) == (2, 2) and summary.added > 0
    assert service.search("who surrounded Manbij in 2016?").results
    assert service.feedback_summary().worst == [("ferry", 1)]
    service.close()


def test_two_processes_opening_a_new_database_at_once_migrate_it_once(fresh_target):
    opened, errors = [], []

    def open_one():
        try:
            opened.append(open_store(fresh_target))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = [store.applied_migrations for store in opened]
    assert sorted(map(len, applied)) == [0, 0, len(migrations(opened[0].backend))]
    assert len(opened[0].query("SELECT version FROM schema_migrations")) == len(migrations(opened[0].backend))
    for store in opened:
        store.close()


@pytest.fixture(params=BACKENDS)
def fresh_target(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "n.db")
