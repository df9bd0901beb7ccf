"""Per-server settings in the store: one transaction per change, a log of who changed what, a version.
On SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.config import Settings
from bot.server_settings import effective_settings, message_content_wanted
from retrieval.errors import StoreError
from retrieval.server_settings import ServerSettings, ServerSettingsTable
from retrieval.service import NewsService
from retrieval.sqlite_store import SQLiteStore
from retrieval.store import open_store

pytestmark = pytest.mark.both_stores

GUILD, OTHER_GUILD = 11, 12
ADMIN, OTHER_ADMIN = 21, 22


@pytest.fixture
def store(store_target):
    opened = open_store(store_target)
    yield opened
    opened.close()


def set_results(value):
    return lambda row: dataclasses.replace(row, results=value)


def add_channel(channel_id):
    return lambda row: dataclasses.replace(row, qa_channels=(row.qa_channels or frozenset()) | {channel_id})


def test_a_change_is_stored_logged_and_bumps_the_version(store):
    table = ServerSettingsTable(store)
    assert (table.version(), table.all()) == (0, {})
    stored = table.update(GUILD, set_results(4), user_id=ADMIN, now="2026-12-01T10:00:00Z")
    assert stored == ServerSettings(GUILD, results=4, changed_by=ADMIN, changed_at="2026-12-01T10:00:00Z")
    assert table.all() == {GUILD: stored} and table.version() == 1
    (change,) = table.changes(GUILD)
    assert (change.setting, change.old_value, change.new_value, change.user_id) == (
        "results",
        None,
        "4",
        ADMIN,
    )
    assert change.changed_at == "2026-12-01T10:00:00Z"


def test_the_table_reads_plainly(store):
    ServerSettingsTable(store).update(GUILD, add_channel(300), user_id=ADMIN)
    rows = store.query("SELECT guild_id, qa_channels, results FROM server_settings")
    assert rows == [(str(GUILD), '["300"]', None)]


def test_a_change_that_changes_nothing_is_not_written(store):
    table = ServerSettingsTable(store)
    table.update(GUILD, set_results(4), user_id=ADMIN)
    table.update(GUILD, set_results(4), user_id=OTHER_ADMIN)
    assert table.version() == 1 and len(table.changes(GUILD)) == 1
    assert table.get(GUILD).changed_by == ADMIN


def test_going_back_to_every_default_deletes_the_row_and_logs_each_setting(store):
    table = ServerSettingsTable(store)
    table.update(GUILD, set_results(4), user_id=ADMIN)
    table.update(GUILD, add_channel(300), user_id=ADMIN)
    table.update(GUILD, ServerSettings.without_own_values, user_id=OTHER_ADMIN)
    assert table.get(GUILD) is None
    latest = {(c.setting, c.new_value, c.user_id) for c in table.changes(GUILD)[:2]}
    assert latest == {("results", None, OTHER_ADMIN), ("qa_channels", None, OTHER_ADMIN)}


def test_a_failed_change_leaves_nothing_behind(store):
    table = ServerSettingsTable(store)

    def broken(row):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        table.update(GUILD, broken, user_id=ADMIN)
    assert table.all() == {} and table.version() == 0 and table.changes(GUILD) == []


def test_two_processes_changing_one_server_both_keep_their_change(store_target):
    first, second = open_store(store_target), open_store(store_target)
    ServerSettingsTable(first).update(GUILD, add_channel(300), user_id=ADMIN)
    ServerSettingsTable(second).update(GUILD, add_channel(301), user_id=OTHER_ADMIN)
    assert ServerSettingsTable(first).get(GUILD).qa_channels == {300, 301}
    assert ServerSettingsTable(first).version() == 2
    first.close()
    second.close()


def test_changes_made_at_the_same_moment_by_several_connections_are_all_kept(store_target):
    stores = [open_store(store_target) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def change(store, channel):
        start.wait()
        for n in range(5):
            ServerSettingsTable(store).update(GUILD, add_channel(channel * 100 + n), user_id=ADMIN)

    threads = [threading.Thread(target=change, args=(s, i)) for i, s in enumerate(stores, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = ServerSettingsTable(stores[0])
    assert len(table.get(GUILD).qa_channels) == 20 and table.version() == 20
    for store in stores:
        store.close()


def test_settings_of_a_server_left_are_kept_then_dropped(store):
    table = ServerSettingsTable(store)
    table.update(GUILD, set_results(4), user_id=ADMIN)
    table.update(OTHER_GUILD, set_results(5), user_id=ADMIN)
    left = datetime(2026, 12, 1, tzinfo=UTC)
    assert table.mark_left(GUILD, now="2026-12-01T00:00:00Z")
    assert not table.mark_left(99)  # a server that never set anything has nothing to keep
    assert table.drop_expired(now=left + timedelta(days=29)) == []
    assert table.drop_expired(now=left + timedelta(days=31)) == [GUILD]
    assert set(table.all()) == {OTHER_GUILD}
    assert table.changes(GUILD)[0].new_value == "dropped"


def test_a_server_back_within_the_period_keeps_its_settings(store):
    table = ServerSettingsTable(store)
    table.update(GUILD, set_results(4), user_id=ADMIN)
    table.mark_left(GUILD, now="2026-12-01T00:00:00Z")
    assert table.mark_back(GUILD) and not table.mark_back(GUILD)
    assert table.drop_expired(now=datetime(2027, 6, 1, tzinfo=UTC)) == []
    assert table.get(GUILD).results == 4


def test_a_change_from_the_server_cancels_its_leaving(store):
    table = ServerSettingsTable(store)
    table.update(GUILD, set_results(4), user_id=ADMIN)
    table.mark_left(GUILD, now="2026-12-01T00:00:00Z")
    assert table.update(GUILD, set_results(5), user_id=ADMIN).left_at is None


def test_settings_survive_a_reload_and_a_rebuild(store_target, tmp_path, sample_corpus):
    service = NewsService(store_target, sample_corpus, index_cache=tmp_path / "cache")
    service.reload()
    ServerSettingsTable(service.store).update(GUILD, set_results(4), user_id=ADMIN)
    (sample_corpus / "local" / "harbour-wind-farm.txt").unlink()
    service.reload()
    service.reload(rebuild=True)
    assert ServerSettingsTable(service.store).get(GUILD).results == 4
    service.close()


def test_a_database_made_before_server_settings_gets_the_tables(tmp_path):
    path = tmp_path / "old.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)  # as newsdesk made it before migrations and server settings
    conn.execute("DROP TABLE server_settings")
    conn.execute("DROP TABLE server_settings_changes")
    conn.execute("DROP TABLE schema_migrations")
    conn.execute("DELETE FROM meta WHERE key = 'settings_version'")
    for table in ("feedback", "ingest_runs"):  # a later migration's columns
        conn.execute(f"DROP INDEX {table}_write_key")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN write_key")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    table = ServerSettingsTable(store)
    assert table.version() == 0
    table.update(GUILD, set_results(4), user_id=ADMIN)
    assert table.version() == 1
    store.close()


def test_a_database_without_the_tables_reads_as_no_settings_and_refuses_changes(tmp_path):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    conn = sqlite3.connect(path)  # e.g. a read-only copy made by an older newsdesk
    conn.execute("DROP TABLE server_settings")
    conn.commit()
    conn.close()
    table = ServerSettingsTable(store)
    assert table.all() == {}
    with pytest.raises(StoreError):
        table.update(GUILD, set_results(4), user_id=ADMIN)
    store.close()


# -- effective values and the Message Content intent ------------------------------------------------


def test_a_servers_own_value_overrides_the_default_and_none_inherits():
    defaults = Settings(qa_channels=frozenset({1}), admin_roles=frozenset({2}), results=3, cooldown=10)
    own = ServerSettings(GUILD, qa_channels=frozenset(), results=5)
    server = effective_settings(defaults, own, GUILD)
    assert (server.qa_channels, server.admin_roles, server.results, server.cooldown) == (
        frozenset(),
        {2},
        5,
        10,
    )
    assert server.is_set_here("qa_channels") and not server.is_set_here("cooldown")
    plain = effective_settings(defaults, None, None)
    assert (plain.qa_channels, plain.results) == ({1}, 3) and not plain.is_set_here("results")


@pytest.mark.parametrize(
    ("mode", "env_channels", "server_channels", "left", "wanted"),
    [
        ("auto", (), None, False, False),
        ("auto", (1,), None, False, True),
        ("auto", (), (300,), False, True),
        ("auto", (), (300,), True, False),  # a server the bot left does not count
        ("auto", (), (), False, False),
        ("on", (), None, False, True),
        ("off", (1,), (300,), False, False),
    ],
)
def test_message_content_intent(store, mode, env_channels, server_channels, left, wanted):
    table = ServerSettingsTable(store)
    if server_channels is not None:
        table.update(
            GUILD, lambda row: dataclasses.replace(row, qa_channels=frozenset(server_channels)), user_id=1
        )
        table.update(GUILD, set_results(2), user_id=1)  # keeps the row when the list is empty
        if left:
            table.mark_left(GUILD)
    settings = Settings(message_content=mode, qa_channels=frozenset(env_channels))
    service = SimpleNamespace(server_settings=table)  # what the bot reads of the service
    assert message_content_wanted(settings, service) is wanted
