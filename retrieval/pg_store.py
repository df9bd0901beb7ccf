"""The PostgreSQL store: a database that processes on several machines share (see ``retrieval.store``).

The same tables as the SQLite file, made by ``retrieval/migrations/postgres`` and recorded in
``schema_migrations``. Connections come from a psycopg pool (autocommit; a write transaction is an explicit
``BEGIN`` ... ``COMMIT`` on one pooled connection). The driver is imported only when a ``postgresql://`` URL
is opened: SQLite users need nothing of it.

Locks are PostgreSQL advisory locks, so they hold across machines: one ingest at a time per database
(:meth:`PostgresStore.ingest_lock`, held on its own connection for the whole ingest), one migration run at a
time, and the read-modify-write sections of per-server settings (:meth:`PostgresWriter.serialize`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IngestRunning, NotNewsdeskDatabase, StoreError
from .migrations import migrations
from .models import Article
from .pg_sync import announce_version, reload_lock, tcp_settings
from .store import (
    DEFAULT_INDEX_CACHE,
    MEMBER_WRITE_WAIT_SECONDS,
    CorpusState,
    parse_database_url,
    related_json,
    utcnow_iso,
)
from .store_reads import FINGERPRINTS, INDEX_DOCS, LATEST_RUN, SharedReads

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5  # seconds to reach the server when opening
POOL_TIMEOUT = 10.0  # seconds to wait for a pooled connection before saying the database is unreachable
# While the database is known not to answer, a call waits this long for a connection before it fails: a
# member is told at once that a vote or a setting was not saved, instead of after POOL_TIMEOUT.
DOWN_TIMEOUT = 1.5
# How long a statement waits for a lock another transaction holds on newsdesk's tables (a maintenance job, a
# migration run by hand) before giving up as "locked by another writer", as SQLite waits its busy timeout:
# without it a reload waits as long as that transaction. A member's write waits MEMBER_WRITE_WAIT_SECONDS.
LOCK_TIMEOUT_MS = 2000
POOL_MIN, POOL_MAX = 1, 8  # an ingest holds two (its lock and its transaction); readers take the rest
INSTALL_HINT = "install newsdesk[postgres] (pip install 'newsdesk[postgres]')"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``, from a name (``"ingest"``)."""
    digest = hashlib.sha256(f"newsdesk:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


MIGRATE_LOCK = advisory_key("migrate")


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """Portable SQL (``?`` placeholders) in psycopg's form (``%s``; a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise StoreError(f"a postgresql:// database needs the PostgreSQL driver: {INSTALL_HINT}") from None
    return psycopg, psycopg_pool


@lru_cache(maxsize=1)
def _pipeline_supported() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _configure_connection(conn: psycopg.Connection) -> None:
    """Each pooled connection, once when it is made: waits for locks are bounded (``LOCK_TIMEOUT_MS``)."""
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


class PostgresStore(SharedReads):
    """A newsdesk database in PostgreSQL. Safe to share between threads: each call takes a pooled connection."""

    backend = "postgres"

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open the database at ``url``. With ``create`` an empty database gets the schema; without it only a
        database that already holds newsdesk's tables is opened. Pending migrations are applied either way.
        Raises StoreError (NotNewsdeskDatabase) with one line; never touches another program's tables."""
        self._parsed = parse_database_url(url)
        self._url = url
        self.target = self._parsed.shown
        self.applied_migrations: list[str] = []
        psycopg, psycopg_pool = _driver()
        self._psycopg = psycopg
        self._pool_timeout_error = psycopg_pool.PoolTimeout
        self._local = threading.local()
        self.unreachable = False  # the last call found the database down: the next ones wait DOWN_TIMEOUT
        self.answered_at = 0.0  # time.time() of the last call the database answered, whoever made it
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreError(f"the database URL {self.target} is malformed: {_first_line(exc)}") from None
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **tcp_settings(url)
            ) as conn:
                self.applied_migrations = self._migrate(conn, create=create)
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, **tcp_settings(url)},
            configure=_configure_connection,
            timeout=POOL_TIMEOUT,
            name=f"newsdesk {self.target}",
            open=True,
        )

    # -- errors and connections ----------------------------------------------------------------
    def _error(self, exc: BaseException) -> StoreError:
        """The StoreError to raise for a driver or pool error, in one line."""
        psycopg = self._psycopg
        errors = psycopg.errors
        why = _first_line(exc)
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, errors.LockNotAvailable):
            return StoreError(
                f"the database {self.target} is locked by another writer ({why}); try again when it is done"
            )
        if isinstance(exc, self._pool_timeout_error | psycopg.OperationalError) and not isinstance(
            exc, errors.DiskFull | errors.InsufficientResources
        ):
            self.unreachable = True
            return StoreError(f"cannot reach the PostgreSQL database {self.target}: {why}")
        if isinstance(exc, errors.InsufficientPrivilege):
            return StoreError(
                f"the database role lacks a permission on {self.target} ({why}); "
                "see the README's roles and grants"
            )
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return StoreError(f"the database {self.target} is read-only ({why})")
        if isinstance(exc, errors.DiskFull | errors.InsufficientResources):
            return StoreError(f"the disk holding the database {self.target} is full ({why})")
        if isinstance(exc, errors.UndefinedTable):
            return StoreError(f"no such table in {self.target} ({why}); run `newsdesk migrate`")
        return StoreError(f"database error on {self.target}: {why}")

    def _answered(self) -> None:
        self.unreachable = False
        self.answered_at = time.time()

    def mark_unreachable(self) -> None:
        """The database was found down elsewhere (the connection that hears new versions): calls fail fast."""
        self.unreachable = True

    def _checkout(self) -> AbstractContextManager[psycopg.Connection]:
        """A pooled connection, waited for POOL_TIMEOUT seconds, or DOWN_TIMEOUT while the database is down."""
        return self._pool.connection(timeout=DOWN_TIMEOUT if self.unreachable else POOL_TIMEOUT)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit); driver errors come out as StoreError."""
        try:
            with self._checkout() as conn:
                self._answered()
                yield conn
        except (self._psycopg.Error, self._pool_timeout_error) as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        self._pool.close()

    # -- schema --------------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection, *, create: bool) -> list[str]:
        """Apply the pending migrations in one transaction, one process at a time; returns their names."""
        known = migrations("postgres")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATE_LOCK])
            row = conn.execute(
                "SELECT to_regclass('schema_migrations') IS NOT NULL, to_regclass('meta') IS NOT NULL,"
                " to_regclass('articles') IS NOT NULL"
            ).fetchone()
            has_migrations, has_meta, has_articles = row or (False, False, False)
            if not has_migrations:
                if has_meta or has_articles:
                    raise NotNewsdeskDatabase(
                        f"{self.target} holds tables of something else (meta, articles); it was left as it is:"
                        " give newsdesk a database (or a schema, with ?options=-csearch_path=NAME) of its own"
                    )
                if not create:
                    raise StoreError(
                        f"the database {self.target} has no newsdesk tables yet; run `newsdesk migrate` "
                        "or `newsdesk ingest` first"
                    )
                conn.execute(
                    "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at text NOT NULL)"
                )
                have: set[int] = set()
            else:
                have = {v for (v,) in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            applied = []
            for migration in known:
                if migration.version in have:
                    continue
                conn.execute(migration.sql.encode())  # several statements: sent as one simple query
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    [migration.version, migration.name, utcnow_iso()],
                )
                applied.append(migration.name)
        return applied

    def schema_version(self) -> int:
        (version,) = self.query("SELECT coalesce(max(version), 0) FROM schema_migrations")[0]
        return int(version)

    def default_index_root(self, cache_dir: Path | None) -> Path:
        """A folder of its own under the index cache (``NEWSDESK_INDEX_CACHE``), named after the database."""
        return (cache_dir or DEFAULT_INDEX_CACHE) / self._parsed.cache_name

    # -- reads (the ones written alike for both stores are in SharedReads) -----------------------
    def _one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]  # one array parameter, whatever the count

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._rows(pg_sql(sql), list(params))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of SQL already in psycopg's form (``%s``). A pooled connection that the server closed (it
        restarted) fails once and is dropped by the pool: the statement is then tried once more on a fresh
        one, so that a restart of the server costs no answer. (Connections are not checked on each checkout:
        that would cost a round trip per statement.)"""
        with self._started(lambda conn: conn.execute(sql, params)) as (_, cursor):
            return cursor.fetchall()

    @contextmanager
    def _started(self, first: Any) -> Iterator[tuple[psycopg.Connection, Any]]:
        """A pooled connection on which ``first(conn)`` has run: yields (connection, what it returned).
        When the connection turns out closed by the server and the server answers again (it restarted), the
        pool drops its dead connections and ``first`` runs once more on a live one; driver errors come out as
        StoreError. The connection can also drop after the server ran the statement and before its answer
        arrived: an insert sent again that way must be one the table ignores the second time (``add_feedback``
        and ``record_run`` send a ``write_key``)."""
        psycopg = self._psycopg
        for attempt in (1, 2):
            stack = ExitStack()
            conn = None
            try:
                conn = stack.enter_context(self._checkout())
                started = first(conn)
                self._answered()
            except BaseException as exc:
                with suppress(Exception):
                    stack.close()
                retry = isinstance(exc, psycopg.OperationalError) and conn is not None and conn.broken
                if retry and attempt == 1 and self._server_answers():
                    # The server restarted: the other idle connections died with it. Each is tried now (a round
                    # trip each) and the dead are replaced, so that the second attempt gets a live one. (While
                    # the server is down the pool is left alone: emptied, it would come back more slowly.)
                    with suppress(Exception):
                        self._pool.check()
                    continue
                if isinstance(exc, psycopg.Error | self._pool_timeout_error):
                    raise self._error(exc) from exc
                raise
            try:
                with stack:
                    yield conn, started
            except (psycopg.Error, self._pool_timeout_error) as exc:
                raise self._error(exc) from exc
            return

    def _server_answers(self) -> bool:
        """Does the server take a new connection now? (Asked only after a pooled connection was found dead.)"""
        try:
            with self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **tcp_settings(self._url)
            ):
                return True
        except self._psycopg.Error:
            return False

    def iter_article_fingerprints(self) -> Iterator[tuple[str, tuple]]:
        """(id, fingerprint) of every article, one row at a time, through a server-side cursor."""
        with self.connection() as conn, conn.transaction():
            try:
                with conn.cursor(name=f"fingerprints_{uuid.uuid4().hex[:8]}") as cursor:
                    cursor.itersize = 5000
                    cursor.execute(FINGERPRINTS)
                    for row in cursor:
                        yield row[0], tuple(row[1:])
            except self._psycopg.Error as exc:
                raise self._error(exc) from exc

    def passages_at(self, wanted: dict[str, Iterable[int]]) -> dict[str, list[tuple[int, str]]]:
        pairs = [
            (aid, o) for aid, ordinals in wanted.items() for o in sorted({int(o) for o in ordinals}) if o >= 0
        ]
        out: dict[str, list[tuple[int, str]]] = {aid: [] for aid in wanted}
        if not pairs:
            return out
        for article_id, ordinal, text in self._rows(
            "SELECT a.id, p.ordinal, p.text FROM unnest(%s::text[], %s::int[]) AS w(id, ordinal)"
            " JOIN articles a ON a.id = w.id"
            " JOIN passages p ON p.text_hash = a.content_hash AND p.ordinal = w.ordinal"
            " ORDER BY a.id, p.ordinal",
            [[aid for aid, _ in pairs], [o for _, o in pairs]],
        ):
            out[article_id].append((ordinal, text))
        return out

    def index_docs_rows(self) -> Iterator[tuple]:
        writer = getattr(self._local, "writer", None)
        if writer is not None:  # inside this thread's write transaction: what it is about to commit
            writer.end_pipeline()  # a server-side cursor does not run in pipeline mode
            yield from self._stream(writer._conn)
            return
        with self.connection() as conn, conn.transaction():
            yield from self._stream(conn)

    def _stream(self, conn: psycopg.Connection) -> Iterator[tuple]:
        """The rows in batches through a server-side cursor: a large corpus is never held whole."""
        try:
            with conn.cursor(name=f"index_docs_{uuid.uuid4().hex[:8]}") as cursor:
                cursor.itersize = 5000
                cursor.execute(INDEX_DOCS)
                yield from cursor
        except self._psycopg.Error as exc:
            raise self._error(exc) from exc

    def last_run(self) -> dict | None:
        with self._started(lambda conn: conn.execute(LATEST_RUN)) as (_, cursor):
            row = cursor.fetchone()
            cols = [c.name for c in cursor.description or ()]
        return dict(zip(cols, row, strict=True)) if row else None

    def feedback_summary(self, limit: int = 10) -> tuple[list[dict], list[tuple[str, int]]]:
        latest = self._latest_downvotes(limit)
        worst = [
            (article_id, n)
            for article_id, n in self._rows(
                "SELECT j.value, count(*) AS n FROM feedback,"
                " jsonb_array_elements_text(feedback.article_ids::jsonb) AS j(value) WHERE vote < 0"
                ' GROUP BY j.value ORDER BY n DESC, j.value COLLATE "C" LIMIT %s',
                [limit],
            )
        ]
        return latest, worst

    # -- writes --------------------------------------------------------------------------------
    @contextmanager
    def writer(self, *, wait: float | None = None) -> Iterator[PostgresWriter]:
        """One transaction on one pooled connection. The writes are sent in pipeline mode (without waiting for
        each statement's answer) until something reads a result; a failed statement fails the whole
        transaction all the same. An ingest's transaction locks only its own rows, so a member's write does not
        wait for it; ``wait`` (seconds) bounds the wait for a lock that another transaction holds on newsdesk's
        tables (default ``LOCK_TIMEOUT_MS``), after which the write fails as "locked by another writer"."""

        def begin(conn: psycopg.Connection) -> Any:
            transaction = conn.transaction()
            transaction.__enter__()  # BEGIN
            if wait is not None:
                try:
                    conn.execute(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")
                except BaseException as exc:
                    transaction.__exit__(type(exc), exc, exc.__traceback__)
                    raise
            return transaction

        with self._started(begin) as (conn, transaction):
            writer = PostgresWriter(conn)
            self._local.writer = writer
            try:
                yield writer
                writer.end_pipeline()
            except BaseException as exc:
                with suppress(self._psycopg.Error):
                    writer.end_pipeline()
                transaction.__exit__(type(exc), exc, exc.__traceback__)  # ROLLBACK
                raise
            else:
                transaction.__exit__(None, None, None)  # COMMIT
            finally:
                self._local.writer = None

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """A session advisory lock on a connection of its own, held for the whole ingest: one at a time across
        every machine, and a refusal names the host and process of the one running. A process that dies (or
        loses its connection) releases it with its session."""
        with reload_lock(
            self._parsed.url,
            what="ingest",
            target=self.target,
            error=IngestRunning,
            connect_timeout=CONNECT_TIMEOUT,
        ):
            yield

    def record_run(self, run: dict) -> None:
        keyed = {**run, "write_key": uuid.uuid4().hex}  # sent again after a dropped connection: stored once
        columns = ",".join(keyed)
        marks = ",".join(["%s"] * len(keyed))
        # An unreachable or read-only database cannot log the run; the caller reports the failure itself.
        with suppress(StoreError):
            self._rows(
                f"INSERT INTO ingest_runs ({columns}) VALUES ({marks}) ON CONFLICT (write_key) DO NOTHING"
                " RETURNING id",
                list(keyed.values()),
            )

    def add_feedback(
        self,
        *,
        guild_id: str | None,
        channel_id: str | None,
        user_id: str,
        question: str,
        article_ids: list[str],
        vote: int,
    ) -> None:
        from psycopg import sql

        # The key makes the insert safe to send again after a dropped connection: a vote is stored once. One
        # simple query, one transaction: a lock another transaction holds on the table is waited for as long as
        # a member's write waits (SET LOCAL), and the query is still one statement to send again.
        values = [utcnow_iso(), guild_id, channel_id, user_id, question, json.dumps(article_ids), int(vote)]
        insert = sql.SQL(
            "SET LOCAL lock_timeout = {}; INSERT INTO feedback (created_at, guild_id, channel_id, user_id,"
            " question, article_ids, vote, write_key) VALUES ({}) ON CONFLICT (write_key) DO NOTHING"
        ).format(
            sql.Literal(int(MEMBER_WRITE_WAIT_SECONDS * 1000)),
            sql.SQL(", ").join(sql.Literal(v) for v in [*values, uuid.uuid4().hex]),
        )
        with self._started(lambda conn: conn.execute(insert)):
            pass


class PostgresWriter:
    """The writes of one transaction, on the pooled connection :meth:`PostgresStore.writer` holds."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._pipeline = ExitStack()
        if _pipeline_supported():  # libpq 14 or later (the binary wheel has it)
            self._pipeline.enter_context(conn.pipeline())

    def end_pipeline(self) -> None:
        """Send what is queued and wait for every answer (raising the first error); later statements run one
        by one."""
        self._pipeline.close()

    @property
    def connection(self) -> psycopg.Connection:
        """The transaction's connection (the index snapshot of a new version is stored through it)."""
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._conn.execute(pg_sql(sql), list(params))

    def serialize(self, topic: str) -> None:
        """A transaction-scoped advisory lock: released when this transaction ends."""
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(topic)])

    def clear_corpus(self) -> None:
        # DELETE, not TRUNCATE: readers in other processes keep reading the old rows until the commit.
        for sql in ("DELETE FROM passages", "DELETE FROM texts", "DELETE FROM articles", "DELETE FROM files"):
            self._conn.execute(sql)

    def put_article(self, article: Article, *, now: str, new: bool) -> None:
        fields = [
            article.title,
            article.published,
            article.url,
            article.source,
            article.category,
            article.content_hash,
            related_json(article),
        ]
        if new:
            self._conn.execute(
                "INSERT INTO articles (title, published, url, source, category, content_hash, related,"
                " id, added_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [*fields, article.id, now, now],
            )
        else:
            self._conn.execute(
                "UPDATE articles SET title=%s, published=%s, url=%s, source=%s, category=%s, content_hash=%s,"
                " related=%s, updated_at=%s WHERE id=%s",
                [*fields, now, article.id],
            )

    def put_text(self, content_hash: str, body: str, passages: list[str]) -> None:
        # A stored text already has its passages (the same text splits the same way): both inserts do nothing.
        self._conn.execute(
            "INSERT INTO texts (content_hash, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [content_hash, body],
        )
        with self._conn.cursor() as many:
            many.executemany(
                "INSERT INTO passages (text_hash, ordinal, text) VALUES (%s, %s, %s)"
                " ON CONFLICT (text_hash, ordinal) DO NOTHING",
                [(content_hash, i, text) for i, text in enumerate(passages)],
            )

    def delete_articles(self, ids: Iterable[str]) -> None:
        doomed = list(ids)
        if doomed:
            self._conn.execute("DELETE FROM articles WHERE id = ANY(%s)", [doomed])

    def drop_orphan_texts(self) -> None:
        orphan = "SELECT t.content_hash FROM texts t WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.content_hash = t.content_hash)"
        self._conn.execute(f"DELETE FROM passages WHERE text_hash IN ({orphan})")
        self._conn.execute(f"DELETE FROM texts WHERE content_hash IN ({orphan})")

    def put_file(
        self, path: str, sha256: str, size: int, article_ids: list[str], refusals: list[dict], now: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO files (path, sha256, size, article_ids, refusals, seen_at) VALUES (%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
            " article_ids = excluded.article_ids, refusals = excluded.refusals, seen_at = excluded.seen_at",
            [
                path,
                sha256,
                size,
                json.dumps(article_ids, ensure_ascii=False),
                json.dumps(refusals, ensure_ascii=False),
                now,
            ],
        )

    def delete_files(self, paths: Iterable[str]) -> None:
        gone = list(paths)
        if gone:
            self._conn.execute("DELETE FROM files WHERE path = ANY(%s)", [gone])

    def bump_version(self) -> CorpusState:
        row = self._conn.execute(
            "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'corpus_version' RETURNING value"
        ).fetchone()
        stamp = uuid.uuid4().hex
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('corpus_stamp', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [stamp],
        )
        state = CorpusState(int(row[0]) if row else 0, stamp)
        announce_version(self._conn, state.version)  # NOTIFY: heard by the other processes when this commits
        return state
