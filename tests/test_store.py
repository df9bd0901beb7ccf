"""The store interface, on both back ends: the same calls give the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import sys

import pytest

from retrieval.errors import IngestRunning, NotNewsdeskDatabase, StoreError
from retrieval.migrations import latest, migrations
from retrieval.models import Article
from retrieval.store import describe_target, migrate_database, open_store, parse_database_url, utcnow_iso

pytestmark = pytest.mark.both_stores


@pytest.fixture
def store(store_target):
    opened = open_store(store_target)
    yield opened
    opened.close()


def article(article_id, title, body, *, published=None):
    return Article(
        id=article_id,
        title=title,
        body=body,
        source=f"{article_id}.txt",
        published=published,
    )


def write(store, *articles, passages_per_text=2):
    now = utcnow_iso()
    with store.writer() as writer:
        for a in articles:
            writer.put_article(a, now=now, new=True)
            writer.put_text(a.content_hash, a.body, [f"{a.body} {i}" for i in range(passages_per_text)])
        return writer.bump_version()


def test_a_new_store_has_every_migration_and_reopening_applies_none(store, store_target):
    assert store.applied_migrations == [m.name for m in migrations(store.backend)]
    assert store.schema_version() == latest(store.backend)
    again = open_store(store_target)
    assert again.applied_migrations == [] and again.schema_version() == latest(store.backend)
    again.close()


def test_articles_texts_and_passages_round_trip(store):
    state = write(store, article("b", "Bee", "one"), article("a", "Ay", "two", published="2016-06-21"))
    assert state.version == 1 and len(state.stamp) == 32
    assert store.corpus_state() == state
    assert store.counts() == {"articles": 2, "passages": 4, "texts": 2}
    assert store.article("a").title == "Ay" and store.article("nope") is None
    assert set(store.articles_by_id(["a", "b", "c"])) == {"a", "b"}
    assert store.passages_for_article("b") == [(0, "one 0"), (1, "one 1")]
    assert store.passages_at({"a": [1, 5], "b": [0]}) == {"a": [(1, "two 1")], "b": [(0, "one 0")]}
    rows = list(store.index_docs_rows())
    assert [(r[1], r[3]) for r in rows] == [("b", "one 0"), ("b", "one 1"), ("a", "two 0"), ("a", "two 1")]
    assert store.passage_ordinals([rows[1][0], rows[2][0]]) == {rows[1][0]: 1, rows[2][0]: 0}


def test_headlines_are_newest_first_undated_last_then_by_id_in_byte_order(store):
    write(
        store,
        article("b", "B", "1"),
        article("Z", "Z", "2"),
        article("a", "A", "3", published="2016-01-01"),
        article("c", "C", "4", published="2017-01-01"),
    )
    assert [h.id for h in store.headlines(10)] == ["c", "a", "Z", "b"]
    assert [h.id for h in store.headlines(10, since="2016-06-01")] == ["c"]
    assert [h.id for h in store.headlines(2, offset=1, ids=["a", "b", "c"])] == ["a", "b"]
    assert store.headlines(10, ids=[]) == []


def test_the_same_text_under_two_ids_is_stored_once_and_shown_by_the_smaller_id(store):
    write(store, article("b", "Same", "same"), article("a", "Same", "same"))
    assert store.counts() == {"articles": 2, "passages": 2, "texts": 1}
    assert {r[1] for r in store.index_docs_rows()} == {"a"}


def test_a_failed_write_leaves_nothing_behind(store):
    with pytest.raises(RuntimeError), store.writer() as writer:
        writer.put_article(article("a", "A", "x"), now=utcnow_iso(), new=True)
        writer.bump_version()
        raise RuntimeError("boom")
    assert store.counts()["articles"] == 0 and store.corpus_version() == 0


def test_inside_a_write_the_index_reads_what_is_about_to_commit_and_others_do_not(store, store_target):
    other = open_store(store_target)
    with store.writer() as writer:
        new = article("a", "A", "x")
        writer.put_article(new, now=utcnow_iso(), new=True)
        writer.put_text(new.content_hash, "x", ["x 0"])
        assert [r[1] for r in store.index_docs_rows()] == ["a"]
        assert list(other.index_docs_rows()) == [] and other.counts()["articles"] == 0
    assert other.counts()["articles"] == 1
    other.close()


def test_files_changes_deletes_and_orphans(store):
    write(store, article("a", "A", "x"), article("b", "B", "y"))
    now = utcnow_iso()
    with store.writer() as writer:
        writer.put_file("a.txt", "sha1", 10, ["a"], [], now)
        writer.put_file("a.txt", "sha2", 11, ["a", "b"], [{"path": "a.txt", "reason": "bad"}], now)
        writer.put_file("gone.txt", "sha3", 1, [], [], now)
        writer.delete_files(["gone.txt"])
        writer.delete_articles(["b"])
        writer.drop_orphan_texts()
    known = store.known_files()
    assert list(known) == ["a.txt"] and known["a.txt"].sha256 == "sha2"
    assert known["a.txt"].article_ids == ["a", "b"] and known["a.txt"].refusals[0].reason == "bad"
    assert store.counts() == {"articles": 1, "passages": 2, "texts": 1}
    assert store.article_fingerprints()["a"][0] == "A"
    with store.writer() as writer:
        writer.clear_corpus()
    assert store.counts() == {"articles": 0, "passages": 0, "texts": 0} and store.known_files() == {}


def test_runs_and_feedback_are_kept(store):
    assert store.last_run() is None
    store.record_run({"started_at": "t0", "status": "ok", "added": 2, "seconds": 0.5})
    store.record_run({"started_at": "t1", "status": "failed", "error": "disk"})
    run = store.last_run()
    assert (run["started_at"], run["status"], run["error"]) == ("t1", "failed", "disk")
    for ids, vote in ((["a", "b"], -1), (["b"], -1), (["c"], 1)):
        store.add_feedback(
            guild_id="1", channel_id="2", user_id="3", question=f"q{ids}", article_ids=ids, vote=vote
        )
    latest, worst = store.feedback_summary()
    assert [r["article_ids"] for r in latest] == [["b"], ["a", "b"]]
    assert worst == [("b", 2), ("a", 1)]


def test_one_ingest_at_a_time_across_connections(store, store_target):
    other = open_store(store_target)
    with store.ingest_lock(), pytest.raises(IngestRunning, match="another ingest"), other.ingest_lock():
        pass
    with other.ingest_lock():  # released
        pass
    other.close()


def test_migrate_database_reports_what_it_applied(store_target):
    first = migrate_database(store_target)
    assert first.applied == [m.name for m in migrations("postgres" if "://" in store_target else "sqlite")]
    second = migrate_database(store_target)
    assert second.applied == [] and second.version == first.version == latest(
        "postgres" if "://" in store_target else "sqlite"
    )
    assert "@" not in first.target or ":" not in first.target.split("@")[0].removeprefix("postgresql://")


# -- PostgreSQL: URLs, other programs' databases, a missing driver -----------------------------------


def test_a_reading_open_of_an_empty_postgres_database_creates_nothing(pg_url):
    with pytest.raises(StoreError, match="no newsdesk tables yet; run `newsdesk migrate`"):
        open_store(pg_url, create=False)
    import psycopg

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_a_postgres_database_of_another_program_is_left_as_it_is(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE articles (slug text)")
    with pytest.raises(NotNewsdeskDatabase, match="tables of something else"):
        open_store(pg_url)
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == [("articles",)]


def test_an_unreachable_server_is_one_line_naming_it_without_the_password(pg_cluster):
    url = f"postgresql://newsdesk:s3cret@127.0.0.1:{pg_cluster.port + 1}/news"  # nothing listens there
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("cannot reach the PostgreSQL database postgresql://newsdesk@127.0.0.1:")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://u@host:port/db", "malformed"),
        ("postgresql://u@host/a/b", "not one database name"),
    ],
)
def test_a_malformed_url_is_refused_with_one_line(url, why):
    with pytest.raises(StoreError, match=why):
        open_store(url)


def test_urls_are_shown_without_passwords_and_cached_apart():
    one = parse_database_url("postgres://bot:pw@db.example.org:6432/news")
    two = parse_database_url("postgresql://bot@db.example.org/news")
    assert one.shown == "postgresql://bot@db.example.org:6432/news"
    assert describe_target("postgresql://bot:pw@db/news") == "postgresql://bot@db/news"
    assert one.cache_name != two.cache_name and one.cache_name.startswith("news-")


def test_without_the_driver_a_postgres_url_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if newsdesk[postgres] were not installed
    with pytest.raises(StoreError, match=r"install newsdesk\[postgres\]"):
        open_store("postgresql://bot@127.0.0.1:1/news")


def test_a_role_with_the_documented_grants_runs_on_a_schema_migrated_by_the_owner(pg_cluster, pg_url):
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    bot = f"bot_{database}"  # a role of this test's own
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{bot}" LOGIN')
    fresh = pg_cluster.new_database()
    as_bot = fresh.replace(f"{pg_cluster.user}@", f"{bot}@")
    with pytest.raises(StoreError, match="the database role lacks a permission") as refused:
        open_store(as_bot)  # a new database, and a role that may not create tables
    assert "\n" not in str(refused.value)
    migrate_database(pg_url)  # the owner applies the schema
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the README's grants
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {bot}')
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {bot}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {bot}")
    store = open_store(pg_url.replace(f"{pg_cluster.user}@", f"{bot}@"))
    state = write(store, article("a", "A", "x"))
    store.add_feedback(guild_id="1", channel_id="2", user_id="3", question="q", article_ids=["a"], vote=1)
    store.record_run({"started_at": "t0", "status": "ok"})
    with store.ingest_lock(), store.writer() as writer:
        writer.delete_articles(["a"])
        writer.drop_orphan_texts()
    assert state.version == 1 and store.counts()["articles"] == 0 and store.last_run()["status"] == "ok"
    store.close()


def test_a_restart_of_the_server_costs_no_read_and_no_write(pg_cluster, pg_url):
    store = open_store(pg_url)
    write(store, article("a", "A", "x"))
    assert store.counts()["articles"] == 1
    pg_cluster.stop()
    with pytest.raises(StoreError, match="cannot reach the PostgreSQL database"):
        store.counts()
    pg_cluster.start()
    # The pooled connections died with the server: each is dropped and the statement runs on a fresh one.
    assert store.counts()["articles"] == 1
    store.add_feedback(guild_id="1", channel_id="2", user_id="3", question="q", article_ids=["a"], vote=-1)
    write(store, article("b", "B", "y"))
    with store.ingest_lock():
        pass
    assert store.counts()["articles"] == 2 and store.feedback_summary()[1] == [("a", 1)]
    store.close()


def test_a_restart_of_the_server_costs_no_read_when_several_connections_were_idle(pg_cluster, pg_url):
    store = open_store(pg_url)
    write(store, article("a", "A", "x"))
    with store.connection(), store.connection(), store.connection():
        pass  # three connections at once (as for three search threads), then idle in the pool
    pg_cluster.stop()
    pg_cluster.start()
    # The first dead connection found has the pool check the others: the read runs on a fresh one.
    assert store.counts()["articles"] == 1
    store.close()


class DropsAfterAnswering:
    """A pooled connection whose first statement runs (and, in autocommit, commits) and then loses the
    connection before the answer arrives: what a server that dies at that moment looks like to the store."""

    broken = True

    def __init__(self, conn):
        self._conn = conn

    def execute(self, *args, **kwargs):
        import psycopg

        self._conn.execute(*args, **kwargs)
        raise psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("what", ["vote", "ingest run"])
def test_an_insert_sent_again_after_the_connection_dropped_is_stored_once(pg_url, monkeypatch, what):
    from contextlib import contextmanager

    import psycopg

    store = open_store(pg_url)
    real = store._pool.connection
    checkouts = []

    @contextmanager
    def drops_once(*args, **kwargs):
        with real(*args, **kwargs) as conn:
            checkouts.append(conn)
            yield DropsAfterAnswering(conn) if len(checkouts) == 1 else conn

    monkeypatch.setattr(store._pool, "connection", drops_once)
    if what == "vote":
        store.add_feedback(
            guild_id="1", channel_id="2", user_id="3", question="q", article_ids=["a"], vote=-1
        )
        table = "feedback"
    else:
        store.record_run({"started_at": utcnow_iso(), "status": "ok", "added": 1})
        table = "ingest_runs"
    store.close()
    assert len(checkouts) == 2  # it was sent again, on a fresh connection
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


def test_once_the_database_is_found_down_writes_fail_within_the_short_timeout(
    pg_cluster, pg_url, monkeypatch
):
    import time

    from retrieval.pg_store import DOWN_TIMEOUT, POOL_TIMEOUT

    store = open_store(pg_url)
    real = store._pool.connection
    waits = []

    def recording(*args, timeout=None, **kwargs):
        waits.append(timeout)
        return real(*args, timeout=timeout, **kwargs)

    monkeypatch.setattr(store._pool, "connection", recording)
    assert store.counts()["articles"] == 0 and waits == [POOL_TIMEOUT]
    pg_cluster.stop()
    try:
        with pytest.raises(StoreError, match="cannot reach"):
            store.counts()  # finds it down
        waits.clear()
        started = time.monotonic()
        with pytest.raises(StoreError, match="cannot reach"):
            store.add_feedback(
                guild_id="1", channel_id="2", user_id="3", question="q", article_ids=[], vote=1
            )
        with pytest.raises(StoreError, match="cannot reach"), store.writer() as writer:  # a settings change
            writer.execute("SELECT 1")
        assert waits == [DOWN_TIMEOUT, DOWN_TIMEOUT] and DOWN_TIMEOUT < POOL_TIMEOUT
        assert time.monotonic() - started < POOL_TIMEOUT  # loose: the two took 10 s each before
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 60
    while True:  # the pool reconnects on its own schedule; the first call answered ends the short waits
        try:
            store.counts()
            break
        except StoreError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    waits.clear()
    store.add_feedback(guild_id="1", channel_id="2", user_id="3", question="q", article_ids=[], vote=1)
    assert waits == [POOL_TIMEOUT]
    store.close()
