"""The SQLite store: one database file, the embedded default (see ``retrieval.store`` for the interface).

Tables a person can read with ``sqlite-utils`` or Datasette:

- ``articles``: one row per article id (``business/312``), its metadata and ``content_hash``.
- ``texts``: the body of each distinct ``content_hash``; the same text under two names is stored once.
- ``passages``: the ranked and quoted units of each text (``text_hash``, ``ordinal``, ``text``).
- ``files``: each corpus file seen, its hash and the article ids it produced (to skip unchanged files).
- ``ingest_runs``: one row per ingest or reload, with its counts and failures.
- ``feedback``: 👍 / 👎 votes on answers.
- ``meta``: ``corpus_version`` (bumped by every ingest that changes anything), ``corpus_stamp`` (a random
  token set with each new version, so that another database at the same version is told apart),
  ``schema_version`` and ``settings_version`` (bumped by every change of a server's settings).
- ``server_settings`` and ``server_settings_changes``: per-server settings and who changed them
  (``retrieval.server_settings``); a reload never touches them.
- view ``article_passages``: passages joined with their article, for reading.

- ``schema_migrations``: the migrations (``retrieval/migrations/sqlite``) applied to the file. A file made
  before migrations existed is upgraded in place: its tables are those of migration 1.

Writes of one ingest happen in a single transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) made of plain
statements, because sqlite-utils' table helpers commit on their own: :meth:`SQLiteStore.writer` hands out a
:class:`SQLiteWriter` for it. Reads go through sqlite-utils.

A file that is not a newsdesk database is never changed: reading (``create=False``) opens only a
newsdesk database, and writing creates the schema only in a new or empty file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import sqlite_utils

from .errors import DamagedDatabase, IngestRunning, NotNewsdeskDatabase, StoreError
from .migrations import migrations
from .models import Article
from .store import (
    MEMBER_WRITE_WAIT_SECONDS,
    CorpusState,
    related_json,
    utcnow_iso,
)
from .store_reads import FINGERPRINTS, LATEST_RUN, SharedReads

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one ingest at a time is then up to the user
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_MS = 2000
SQLITE_HEADER = b"SQLite format 3\x00"


# Primary SQLite result codes (the low byte of an extended code), by the name SQLite gives them.
_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_READONLY = ("SQLITE_READONLY",)
_FULL = ("SQLITE_FULL",)
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_CANTOPEN = ("SQLITE_CANTOPEN",)


def _primary_name(exc: sqlite3.Error) -> str | None:
    """``SQLITE_IOERR_WRITE`` -> ``SQLITE_IOERR``; None when SQLite gave no code (e.g. a closed connection)."""
    name = getattr(exc, "sqlite_errorname", None)
    if not name:
        return None
    return "_".join(name.split("_")[:2])


def _sqlite_error(path: Path, exc: sqlite3.Error, *, newsdesk_file: bool = True) -> StoreError:
    """The StoreError to raise for ``exc``, classified by SQLite's error code."""
    name = _primary_name(exc)
    if name in _BUSY:
        return StoreError(f"the database {path} is locked by another writer; try again when it is done")
    if name in _READONLY:
        return StoreError(f"the database {path} is read-only; check its file and folder permissions")
    if name in _FULL:
        return StoreError(f"the disk holding {path} is full")
    if name in _DAMAGED:
        return _damaged(path, str(exc)) if newsdesk_file else _not_newsdesk(path, str(exc))
    if name in _CANTOPEN:
        return StoreError(f"cannot open the database {path}: check that its folder exists and is writable")
    return StoreError(f"database error on {path}: {exc}")


def _damaged(path: Path, why: str) -> DamagedDatabase:
    return DamagedDatabase(
        f"the database {path} is damaged ({why}); rebuild it with `newsdesk ingest --rebuild --db {path}`"
    )


def _not_newsdesk(path: Path, why: str) -> NotNewsdeskDatabase:
    return NotNewsdeskDatabase(
        f"{path} is not a newsdesk database ({why}); it was left as it is: pass another file with --db"
    )


def _read_header(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the database {path}: {exc.strerror or exc}") from exc


def _has_index_beside(path: Path) -> bool:
    """Evidence that a file no longer readable as SQLite was newsdesk's: its index folder beside it."""
    return path.with_name(path.name + ".index").is_dir()


def _classify(path: Path) -> str:
    """``"new"`` (missing or empty), ``"newsdesk"``, or raises NotNewsdeskDatabase / DamagedDatabase.

    Reads only: a read-only connection looks at the schema, so nothing is written to a file that turns
    out not to be newsdesk's."""
    header = _read_header(path)
    if not header:
        return "new"
    if header != SQLITE_HEADER:
        if _has_index_beside(path):
            raise _damaged(path, "file is not a database")
        raise _not_newsdesk(path, "not an SQLite file")
    try:
        conn = sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?mode=ro", uri=True)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if _primary_name(exc) in _DAMAGED:
            if _has_index_beside(path):
                raise _damaged(path, str(exc)) from exc
            raise _not_newsdesk(path, str(exc)) from exc
        raise _sqlite_error(path, exc) from exc
    if not names:
        return "new"
    if {"meta", "articles", "passages"} <= names:
        return "newsdesk"
    raise _not_newsdesk(path, "an SQLite database of something else")


class SQLiteStore(SharedReads):
    """A newsdesk database file. Safe to share between threads: each thread reads on its own
    connection; writes are serialized by one lock."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open the newsdesk database at ``path``. With ``create`` a missing or empty file becomes a new
        database; without it (reading commands) only an existing newsdesk database is opened.
        Raises StoreError, NotNewsdeskDatabase or DamagedDatabase; never changes another file."""
        self.path = Path(path)
        self.target = str(self.path)
        self.applied_migrations: list[str] = []
        if not create and not self.path.exists():
            raise StoreError(f"no database at {self.path}; run `newsdesk ingest` first")
        if not self.path.parent.exists():
            raise StoreError(
                f"cannot create the database {self.path}: the folder {self.path.parent} does not exist"
            )
        kind = _classify(self.path)
        if kind == "new" and not create:
            raise StoreError(f"the database {self.path} is empty; run `newsdesk ingest` first")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            self.db = sqlite_utils.Database(self._connect())
            self._ensure_schema()
        except sqlite3.Error as exc:
            raise _sqlite_error(self.path, exc) from exc

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    @property
    def _reader(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self._connect())
            self._local.db = db
        return db

    def close(self) -> None:
        self.db.close()
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _ensure_schema(self) -> None:
        db = self.db
        # Fail fast with a clear message on a file that is not a database, before writing anything.
        db.execute("PRAGMA schema_version").fetchone()
        if db.journal_mode != "wal":
            with contextlib.suppress(sqlite3.OperationalError):  # a read-only file still serves as it is
                db.enable_wal()
        self.applied_migrations = _migrate(db.conn)

    def schema_version(self) -> int:
        try:
            versions = _applied_versions(self._reader.conn)
        except sqlite3.Error as exc:
            raise _sqlite_error(self.path, exc) from exc
        return versions[-1] if versions else 0

    def default_index_root(self, cache_dir: Path | None) -> Path:
        """Beside the file (``FILE.index``): the index belongs with the database it was built from."""
        return self.path.with_name(self.path.name + ".index")

    # -- reads ---------------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        try:
            return self._reader.execute(sql, list(params)).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(self.path, exc) from exc

    _query = query

    def iter_article_fingerprints(self) -> Iterator[tuple[str, tuple]]:
        """(id, fingerprint) of every article, as ``article_fingerprints`` gives them, one row at a time."""
        try:
            for row in self._reader.execute(FINGERPRINTS):
                yield row[0], tuple(row[1:])
        except sqlite3.Error as exc:
            raise _sqlite_error(self.path, exc) from exc

    def passages_at(self, wanted: dict[str, Iterable[int]]) -> dict[str, list[tuple[int, str]]]:
        """article id -> (ordinal, text) of the passages at the given ordinals, in order, in one query."""
        groups = [
            (aid, sorted({int(o) for o in ordinals if int(o) >= 0})) for aid, ordinals in wanted.items()
        ]
        groups = [(aid, ordinals) for aid, ordinals in groups if ordinals]
        out: dict[str, list[tuple[int, str]]] = {aid: [] for aid in wanted}
        if not groups:
            return out
        where = " OR ".join(f"(a.id = ? AND p.ordinal IN ({','.join('?' * len(o))}))" for _, o in groups)
        params = [v for aid, ordinals in groups for v in (aid, *ordinals)]
        for article_id, ordinal, text in self._query(
            "SELECT a.id, p.ordinal, p.text FROM passages p JOIN articles a ON a.content_hash = p.text_hash"
            f" WHERE {where} ORDER BY a.id, p.ordinal",
            params,
        ):
            out[article_id].append((ordinal, text))
        return out

    def index_docs_rows(self) -> Iterator[tuple]:
        """Every passage with the article that shows it (the smallest id among articles sharing the text).

        Yields (passage_id, article_id, title, text, published, content_hash), in passage id order.
        Runs on the writer connection so that an ingest can index what it is about to commit."""
        # The rows of the shared INDEX_DOCS, planned for SQLite: passages in id order, each joined to its text's
        # first article by a lookup, so that the passages' text is never sorted in a temporary B-tree.
        yield from self.db.execute(
            "SELECT p.id, a.id, a.title, p.text, a.published, a.content_hash FROM passages p"
            " JOIN articles a ON a.id = (SELECT min(id) FROM articles WHERE content_hash = p.text_hash)"
            " ORDER BY p.id"
        )

    def last_run(self) -> dict | None:
        rows = self._reader.execute(LATEST_RUN)
        cols = [c[0] for c in rows.description]
        row = rows.fetchone()
        return dict(zip(cols, row, strict=True)) if row else None

    def integrity_ok(self) -> bool:
        return self._query("PRAGMA integrity_check")[0][0] == "ok"

    # -- writes --------------------------------------------------------------------------------
    @contextmanager
    def _write_connection(self, wait: float | None) -> Iterator[sqlite3.Connection]:
        """The writing connection, for one write at a time in this process. ``wait`` (seconds) bounds how long
        it waits for another writer, in this process or another; by default this process's writers queue and
        another process's lock is waited for ``BUSY_TIMEOUT_MS``."""
        if not self._write_lock.acquire(timeout=-1 if wait is None else wait):
            raise StoreError(
                f"the database {self.path} is locked by another writer; try again when it is done"
            )
        try:
            conn = self.db.conn
            if wait is None:
                yield conn
                return
            conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            try:
                yield conn
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        finally:
            self._write_lock.release()

    @contextmanager
    def writer(self, *, wait: float | None = None) -> Iterator[SQLiteWriter]:
        """One write transaction: everything written through the writer commits together or not at all."""
        with self._write_connection(wait) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _sqlite_error(self.path, exc) from exc
            try:
                yield SQLiteWriter(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _sqlite_error(self.path, exc) from exc
                raise

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Held for a whole ingest, from the scan to the commit: a second ingest into the same database
        (from any process) is refused with IngestRunning before it computes its changes, instead of
        failing at the end on the first one's rows."""
        lock_path = self.path.with_name(self.path.name + ".ingest-lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield  # a read-only folder: the ingest will say so when it writes
            return
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise IngestRunning(
                        f"another ingest into {self.path} is running; try again when it is done"
                    ) from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def record_run(self, run: dict) -> None:
        """Log a finished ingest (outside the ingest's transaction, so failed runs are logged too)."""
        columns = ",".join(run)
        marks = ",".join("?" * len(run))
        # A read-only or full database cannot log the run; the caller reports the failure itself.
        with contextlib.suppress(sqlite3.Error):
            self._write_one(f"INSERT INTO ingest_runs ({columns}) VALUES ({marks})", list(run.values()))

    def _write_one(self, sql: str, params: list, *, wait: float | None = None) -> None:
        """One statement in its own transaction. When it fails, the implicit transaction Python opened
        for it is rolled back: left open, it would make every later ``BEGIN IMMEDIATE`` fail."""
        with self._write_connection(wait) as conn:
            try:
                conn.execute(sql, params)
                conn.commit()
            except sqlite3.Error:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.rollback()
                raise

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
        try:
            self._write_one(
                "INSERT INTO feedback (created_at, guild_id, channel_id, user_id, question, article_ids, vote)"
                " VALUES (?,?,?,?,?,?,?)",
                [utcnow_iso(), guild_id, channel_id, user_id, question, json.dumps(article_ids), int(vote)],
                wait=MEMBER_WRITE_WAIT_SECONDS,  # a reload's transaction ends within the wait
            )
        except sqlite3.Error as exc:
            raise _sqlite_error(self.path, exc) from exc

    def feedback_summary(self, limit: int = 10) -> tuple[list[dict], list[tuple[str, int]]]:
        """The latest 👎 answers, and the articles most often shown in 👎 answers."""
        latest = self._latest_downvotes(limit)
        worst = [
            (article_id, n)
            for article_id, n in self._query(
                "SELECT j.value, count(*) AS n FROM feedback, json_each(feedback.article_ids) j WHERE vote < 0"
                " GROUP BY j.value ORDER BY n DESC, j.value LIMIT ?",
                [limit],
            )
        ]
        return latest, worst


class SQLiteWriter:
    """The writes of one transaction, inside the one :meth:`SQLiteStore.writer` opened."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        """The transaction's connection."""
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, list(params))

    def serialize(self, topic: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already lets one writer at a time in."""

    def clear_corpus(self) -> None:
        """Remove every article, text, passage and file row (``ingest --rebuild``); runs and feedback stay."""
        for sql in ("DELETE FROM passages", "DELETE FROM texts", "DELETE FROM articles", "DELETE FROM files"):
            self._conn.execute(sql)

    def put_article(self, article: Article, *, now: str, new: bool) -> None:
        related = related_json(article)
        fields = [
            article.title,
            article.published,
            article.url,
            article.source,
            article.category,
            article.content_hash,
            related,
        ]
        if new:
            self._conn.execute(
                "INSERT INTO articles (title, published, url, source, category, content_hash, related,"
                " id, added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [*fields, article.id, now, now],
            )
        else:
            self._conn.execute(
                "UPDATE articles SET title=?, published=?, url=?, source=?, category=?, content_hash=?, related=?,"
                " updated_at=? WHERE id=?",
                [*fields, now, article.id],
            )

    def put_text(self, content_hash: str, body: str, passages: list[str]) -> None:
        """Store a text and its passages unless that text is already stored."""
        conn = self._conn
        if not conn.execute(
            "INSERT OR IGNORE INTO texts (content_hash, body) VALUES (?, ?)", [content_hash, body]
        ).rowcount:
            return  # already stored
        conn.executemany(
            "INSERT INTO passages (text_hash, ordinal, text) VALUES (?, ?, ?)",
            [(content_hash, i, text) for i, text in enumerate(passages)],
        )

    def delete_articles(self, ids: Iterable[str]) -> None:
        self._conn.executemany("DELETE FROM articles WHERE id = ?", [(i,) for i in ids])

    def drop_orphan_texts(self) -> None:
        orphan = (
            "SELECT content_hash FROM texts WHERE content_hash NOT IN (SELECT content_hash FROM articles)"
        )
        self._conn.execute(f"DELETE FROM passages WHERE text_hash IN ({orphan})")
        self._conn.execute(f"DELETE FROM texts WHERE content_hash IN ({orphan})")

    def put_file(
        self, path: str, sha256: str, size: int, article_ids: list[str], refusals: list[dict], now: str
    ) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO files (path, sha256, size, article_ids, refusals, seen_at) VALUES (?,?,?,?,?,?)",
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
        self._conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def bump_version(self) -> CorpusState:
        """The next corpus version, with a new stamp."""
        conn = self._conn
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'corpus_version'")
        stamp = uuid.uuid4().hex
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('corpus_stamp', ?)", [stamp])
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'corpus_version'").fetchone()[0])
        return CorpusState(version, stamp)


# -- migrations ---------------------------------------------------------------------------------------


def _table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _applied_versions(conn: sqlite3.Connection) -> list[int]:
    """The migrations a file has, in order. A file made before migrations existed has migration 1: its
    tables are those migration 1 makes (migration 2 makes its tables only where they are missing)."""
    names = _table_names(conn)
    if "schema_migrations" in names:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    return [1] if "articles" in names else []


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (so that they run inside one transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        yield pending


def _migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations in one transaction; returns their names. A file that cannot be written
    (read-only) is left as it is and served with the schema it has."""
    known = migrations("sqlite")
    if "schema_migrations" in _table_names(conn) and {m.version for m in known} <= set(
        _applied_versions(conn)
    ):
        return []  # the common case: nothing to write
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return []  # read-only: serve it as it is
    try:
        have = set(_applied_versions(conn))  # again, now that no other process can be migrating
        if "schema_migrations" not in _table_names(conn):
            conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            conn.executemany(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [(m.version, m.name, utcnow_iso()) for m in known if m.version in have],
            )
        applied = []
        for migration in known:
            if migration.version in have:
                continue
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, utcnow_iso()],
            )
            applied.append(migration.name)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and _primary_name(exc) in _READONLY:
            return []  # read-only: serve it as it is
        raise
    return applied
