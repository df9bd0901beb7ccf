"""The store: everything newsdesk keeps, behind one interface with two implementations.

- ``SQLiteStore`` (``retrieval.sqlite_store``): one SQLite file, the embedded default that needs no server.
- ``PostgresStore`` (``retrieval.pg_store``): a PostgreSQL database that processes on several machines share.

``open_store(target)`` picks one: a ``postgresql://`` (or ``postgres://``) URL opens PostgreSQL, anything else
is the path of an SQLite file. Both hold the same tables (articles, texts, passages, files, ingest runs,
feedback, per-server settings and their change log, meta), made by the numbered migrations in
``retrieval/migrations/<backend>/`` and recorded in ``schema_migrations``; opening a store applies the ones it
lacks. The store modules are the only places that write SQL, with one exception kept small: the per-server
settings (``retrieval.server_settings``) write portable SQL through :meth:`Store.query` and
:meth:`StoreWriter.execute` (``?`` placeholders, no back-end specific syntax).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .errors import StoreError
from .models import Article, Refusal, RelatedItem

DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_INDEX_CACHE = Path("data/index-cache")
# How long a member's own write (a vote, a settings change) waits for another writer: on SQLite an ingest holds
# the one write lock from its first write to its commit (index build included), which can take a minute on a
# large archive. The bot acknowledges the interaction meanwhile, so the member is told the outcome either way.
MEMBER_WRITE_WAIT_SECONDS = 60.0


def utcnow_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredArticle:
    id: str
    title: str
    published: str | None
    url: str | None
    source: str
    category: str | None
    content_hash: str
    related: list[RelatedItem]


@dataclass(frozen=True, slots=True)
class CorpusState:
    """Which corpus a database holds: its version number and the stamp set with that version."""

    version: int
    stamp: str  # "" for a database written before stamps existed


@dataclass(frozen=True, slots=True)
class KnownFile:
    """A corpus file as the last ingest recorded it."""

    sha256: str
    article_ids: list[str]
    refusals: list[Refusal]  # records of it that were refused (a file with any is parsed again each time)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate_database`` did: the migrations it applied (names, in order) and the schema version now."""

    target: str
    applied: list[str]
    version: int


def related_json(article: Article) -> str:
    """How an article's related items are stored (and compared between ingests)."""
    return json.dumps(
        [{"id": r.id, "title": r.title, "published": r.published} for r in article.related],
        ensure_ascii=False,
    )


def article_from_row(row: Sequence[Any]) -> StoredArticle:
    """A row of ``ARTICLE_COLUMNS`` as a StoredArticle."""
    related = [RelatedItem(**item) for item in json.loads(row[7] or "[]")]
    return StoredArticle(row[0], row[1], row[2], row[3], row[4], row[5], row[6], related)


ARTICLE_COLUMNS = "id, title, published, url, source, category, content_hash, related"


def known_file(sha: str, ids: str | None, refusals: str | None) -> KnownFile:
    return KnownFile(
        sha,
        json.loads(ids or "[]"),
        [Refusal(r["path"], r["reason"]) for r in json.loads(refusals or "[]")],
    )


# -- the interface ----------------------------------------------------------------------------------


class StoreWriter(Protocol):
    """The writes of one transaction, opened by :meth:`Store.writer`: they commit together or not at all."""

    def clear_corpus(self) -> None:
        """Remove every article, text, passage and file row (``ingest --rebuild``); runs and feedback stay."""

    def put_article(self, article: Article, *, now: str, new: bool) -> None: ...

    def put_text(self, content_hash: str, body: str, passages: list[str]) -> None:
        """Store a text and its passages unless that text is already stored."""

    def delete_articles(self, ids: Iterable[str]) -> None: ...

    def drop_orphan_texts(self) -> None: ...

    def put_file(
        self, path: str, sha256: str, size: int, article_ids: list[str], refusals: list[dict], now: str
    ) -> None: ...

    def delete_files(self, paths: Iterable[str]) -> None: ...

    def bump_version(self) -> CorpusState:
        """The next corpus version, with a new stamp."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run portable SQL (``?`` placeholders) in the transaction; returns a cursor (``fetchall``,
        ``fetchone``, ``rowcount``)."""

    def serialize(self, topic: str) -> None:
        """Wait until no other transaction that serialized on ``topic`` is open, then hold it until this one
        ends: read-modify-write sections (per-server settings) never lose a concurrent change."""


class Store(Protocol):
    """A newsdesk database. Safe to share between threads."""

    backend: str  # "sqlite" or "postgres"
    target: str  # what to call it in messages: the file's path, or the URL without its password
    applied_migrations: list[str]  # the migrations this open applied

    def close(self) -> None: ...

    def schema_version(self) -> int:
        """The newest migration applied."""

    def default_index_root(self, cache_dir: Path | None) -> Path:
        """Where this database's search index lives on this machine when no folder is given."""

    # reads
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Rows of portable SQL (``?`` placeholders)."""

    def corpus_version(self) -> int: ...

    def corpus_state(self) -> CorpusState: ...

    def counts(self) -> dict[str, int]: ...

    def known_files(self) -> dict[str, KnownFile]:
        """path -> what the last ingest recorded of that file."""

    def article_fingerprints(self) -> dict[str, tuple]:
        """id -> the tuple of fields whose change makes an article "changed"."""

    def iter_article_fingerprints(self) -> Iterator[tuple[str, tuple]]:
        """(id, fingerprint) of every article, as ``article_fingerprints`` gives them, one row at a time."""

    def article(self, article_id: str) -> StoredArticle | None: ...

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, StoredArticle]: ...

    def passages_for_article(self, article_id: str) -> list[tuple[int, str]]:
        """(ordinal, text) of an article's passages, in order."""

    def passage_ordinals(self, passage_ids: Iterable[int]) -> dict[int, int]:
        """passage id -> its ordinal in its article, without the text."""

    def passages_at(self, wanted: dict[str, Iterable[int]]) -> dict[str, list[tuple[int, str]]]:
        """article id -> (ordinal, text) of the passages at the given ordinals, in order."""

    def headlines(
        self,
        limit: int = 10,
        *,
        offset: int = 0,
        since: str | None = None,
        until: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[StoredArticle]:
        """Newest first by published date; undated articles last (then by id for a stable order)."""

    def index_docs_rows(self) -> Iterator[tuple]:
        """Every passage with the article that shows it (the smallest id among articles sharing the text):
        (passage_id, article_id, title, text, published, content_hash), in passage id order. Inside an open
        :meth:`writer` of the same thread, it reads what that transaction is about to commit."""

    def last_run(self) -> dict | None: ...

    def feedback_summary(self, limit: int = 10) -> tuple[list[dict], list[tuple[str, int]]]:
        """The latest 👎 answers, and the articles most often shown in 👎 answers."""

    # writes
    def writer(self, *, wait: float | None = None) -> AbstractContextManager[StoreWriter]:
        """One write transaction: everything written through the writer commits together or not at all.
        ``wait``: seconds to wait for another writer before giving up (default: the store's own, a few
        seconds); a member's write passes ``MEMBER_WRITE_WAIT_SECONDS``."""

    def ingest_lock(self) -> AbstractContextManager[None]:
        """Held for a whole ingest: a second ingest into the same database, from any process (on any
        machine, for PostgreSQL), is refused with IngestRunning."""

    def record_run(self, run: dict) -> None:
        """Log a finished ingest (outside the ingest's transaction, so failed runs are logged too)."""

    def add_feedback(
        self,
        *,
        guild_id: str | None,
        channel_id: str | None,
        user_id: str,
        question: str,
        article_ids: list[str],
        vote: int,
    ) -> None: ...


# -- choosing one -----------------------------------------------------------------------------------


def is_database_url(target: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``); anything else is an SQLite path."""
    return isinstance(target, str) and target.strip().lower().startswith(DATABASE_URL_SCHEMES)


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """The parts of a PostgreSQL URL that name the database (never the password)."""

    url: str
    user: str
    host: str
    port: int | None
    database: str

    @property
    def shown(self) -> str:
        """The URL as messages show it: without password or options."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{user}{self.host}{port}/{self.database}"

    @property
    def cache_name(self) -> str:
        """A folder name for this database's local index: readable, and distinct per server and database."""
        key = f"{self.host}:{self.port or 5432}/{self.database}"
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.database or "postgres")
        return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def parse_database_url(url: str) -> DatabaseURL:
    """Check a PostgreSQL URL's shape; raises StoreError with one line saying what is wrong."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Not the parser's message: it can quote part of a password.
        raise StoreError(
            "the database URL is malformed (its port, or a password with special characters that are not"
            " percent-encoded); write postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if not is_database_url(url):
        raise StoreError("a database URL starts with postgresql:// or postgres://")
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise StoreError(f"the database URL names {database!r}, which is not one database name")
    return DatabaseURL(
        url=url,
        user=unquote(parts.username or ""),
        host=parts.hostname or "localhost",
        port=port,
        database=database or unquote(parts.username or ""),
    )


def describe_target(target: str | Path) -> str:
    """How messages name a database: an SQLite path as it is, a URL without its password."""
    if is_database_url(target):
        try:
            return parse_database_url(str(target)).shown
        except StoreError:
            return "the database URL"
    return str(target)


def open_store(target: str | Path, *, create: bool = True) -> Store:
    """The store at ``target``: a PostgreSQL URL or an SQLite file path. With ``create`` a new database gets
    the schema; without it (reading commands) only an existing newsdesk database is opened. Pending
    migrations are applied either way. Raises StoreError (NotNewsdeskDatabase, DamagedDatabase) with one
    line saying what is wrong."""
    if is_database_url(target):
        from .pg_store import PostgresStore

        return PostgresStore(str(target).strip(), create=create)
    from .sqlite_store import SQLiteStore

    return SQLiteStore(target, create=create)


def migrate_database(target: str | Path) -> MigrationReport:
    """Apply the pending migrations of the database at ``target`` (creating its schema when it is new)."""
    store = open_store(target, create=True)
    try:
        return MigrationReport(store.target, list(store.applied_migrations), store.schema_version())
    finally:
        store.close()
