"""A local copy of the corpus that one index version was built from, kept in that index's folder.

With a shared server database (PostgreSQL), each process answers from its memory-mapped index and this small
SQLite file beside it (articles and passages; no files, runs, feedback or settings), which travels with the
index snapshot. Questions, headlines and article pages then read only local files: they keep working while the
database is unreachable, they never wait on the network, and they always show the very version the index was
built from. The shared database stays the place of every write.

The file is an ordinary newsdesk SQLite database (made by the SQLite store itself), so the SQLite store reads
it with its own queries.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.request import pathname2url

import sqlite_utils

from .errors import StoreError
from .sqlite_store import SQLiteStore
from .store import CorpusState

CORPUS_FILE = "corpus.db"
BATCH = 5000

_ARTICLE_COLUMNS = (
    "id",
    "title",
    "published",
    "url",
    "source",
    "category",
    "content_hash",
    "related",
    "added_at",
    "updated_at",
)
# table -> (the columns written, the expression read from the source for each)
COPIED: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("articles", _ARTICLE_COLUMNS, _ARTICLE_COLUMNS),
    # The bodies are not read when answering (the passages hold the text): only the keys are copied.
    ("texts", ("content_hash", "body"), ("content_hash", "''")),
    ("passages", ("id", "text_hash", "ordinal", "text"), ("id", "text_hash", "ordinal", "text")),
)

Select = Callable[[str], Iterable[Sequence]]  # runs one SELECT on the source, yields its rows


def write_corpus_copy(select: Select, folder: Path, state: CorpusState) -> Path:
    """Write ``folder/corpus.db`` from the rows ``select`` reads (the source database, inside the transaction
    that is about to commit ``state``). Replaces an older copy; a failure leaves none half written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / CORPUS_FILE
    tmp = folder / f".{CORPUS_FILE}.{uuid.uuid4().hex[:8]}"
    try:
        SQLiteStore(tmp, create=True).close()  # the SQLite store's own schema
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to upload
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("BEGIN")
            for table, columns, source in COPIED:
                insert = (
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                )
                batch: list[Sequence] = []
                for row in select(f"SELECT {', '.join(source)} FROM {table}"):
                    batch.append(tuple(row))
                    if len(batch) >= BATCH:
                        conn.executemany(insert, batch)
                        batch.clear()
                if batch:
                    conn.executemany(insert, batch)
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("corpus_version", str(state.version)), ("corpus_stamp", state.stamp)],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{tmp}{suffix}")
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return final


class CorpusCopy(SQLiteStore):
    r"""A corpus copy opened for reading only: ``mode=ro&immutable=1`` (the file never changes once in place, so
    SQLite takes no locks and writes nothing: no journal mode set, no ``-wal`` or ``-shm`` beside it), on one
    connection that the threads share (SQLite serializes them). The file stays open while this is, even when
    another process prunes the folder.

    The answers in flight hold it (``acquire`` ... ``release``); after a swap the service ``retire``\s it, and
    it is closed when the last answer reading it is done."""

    def __init__(
        self, path: Path
    ) -> None:  # not SQLiteStore's: that one sets up and migrates a writable file
        self.path = Path(path)
        self.target = str(self.path)
        self.applied_migrations = []
        uri = f"file:{pathname2url(str(self.path.resolve()))}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM meta").fetchone()  # a damaged file fails here, not mid-answer
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the local copy of the corpus {self.path}: {exc}") from exc
        self.db = sqlite_utils.Database(conn)
        self._lease = threading.Lock()
        self._users = 0
        self._retired = False
        self._closed = False

    @property
    def _reader(self) -> sqlite_utils.Database:
        return self.db

    def acquire(self) -> bool:
        """Hold the copy open for one answer; False once it is retired (a newer copy serves)."""
        with self._lease:
            if self._retired:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._lease:
            self._users -= 1
            done = self._retired and self._users == 0
        if done:
            self.close()

    def retire(self) -> None:
        """No new answer reads it; closed now, or when the last one holding it is done."""
        with self._lease:
            self._retired = True
            done = self._users == 0
        if done:
            self.close()

    def close(self) -> None:
        with self._lease:
            if self._closed:
                return
            self._closed = True
        self.db.close()


def open_corpus_copy(folder: Path) -> CorpusCopy | None:
    """The read-only store over ``folder``'s corpus copy, or None when the folder holds none."""
    path = Path(folder) / CORPUS_FILE
    if not path.is_file():
        return None
    return CorpusCopy(path)
