"""Several newsdesk processes on several machines, coordinated through one PostgreSQL database.

Three pieces, each on plain psycopg connections: the lock and the listener on connections of their own,
the snapshots on connections from the store's pool:

- **One reload at a time** across every machine: ``reload_lock`` holds a session-level advisory lock on a
  connection of its own for the whole reload, and records who holds it (host, process, since when) in
  ``reload_holder``, so that a refused reload can say where the other one runs.
- **New versions are announced**: ``announce_version`` sends ``NOTIFY newsdesk_corpus, '<version>'`` inside
  the transaction that bumps the version (PostgreSQL delivers it at the commit, never after a rollback), and
  ``VersionListener`` listens on a connection of its own in a thread. While that connection is down it
  reconnects with exponential backoff and meanwhile asks its owner to poll the version; after every
  reconnect it asks once more, since notifications sent while it was away are lost.
- **The index snapshot travels through the database**: the process that builds the index for a version
  uploads its folder (``upload_snapshot``: each file in chunked ``bytea`` rows with its size and SHA-256);
  the others download it into their local cache folder (``download_snapshot``: a temporary folder, checked,
  then renamed into place) and memory-map it instead of rebuilding it from the rows.
  ``prune_snapshots`` keeps the newest two versions.

Why chunked ``bytea`` rows and not large objects: rows are covered by the ordinary table grants (large
objects have their own ownership and privileges), deleting a version is one ``DELETE`` (a large object
outlives the row that names it unless something calls ``lo_unlink``), they travel with logical replication
and plain ``pg_dump`` of the tables, and an 8 MB chunk bounds what either side holds in memory while the
snapshot itself may be gigabytes. The chunks are stored without compression (``STORAGE EXTERNAL``): the index
arrays barely compress and pglz would only cost time on both sides.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from .errors import ReloadInProgress, StoreError

log = logging.getLogger(__name__)

CHANNEL = "newsdesk_corpus"
RELOAD_LOCK_KEY = int.from_bytes(b"newsdesk", "big")  # one bigint key for "a reload is running"
_SCHEMA_LOCK_KEY = RELOAD_LOCK_KEY + 1  # serializes CREATE TABLE IF NOT EXISTS between processes
CHUNK_BYTES = 8 * 1024 * 1024
KEEP_SNAPSHOTS = 2  # the current version and the one before

# The tables of this module, as migration postgres/003_index_snapshots makes them in a newsdesk database;
# ensure_schema makes them where they are missing (a bare database: the module's own tests and tools).
SCHEMA = """
CREATE TABLE IF NOT EXISTS reload_holder (
    lock_key bigint PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    backend_pid integer NOT NULL,
    what text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS index_snapshots (
    version bigint PRIMARY KEY,
    stamp text NOT NULL,
    files jsonb NOT NULL,
    total_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE TABLE IF NOT EXISTS index_snapshot_chunks (
    version bigint NOT NULL REFERENCES index_snapshots (version) ON DELETE CASCADE,
    name text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (version, name, seq)
);
ALTER TABLE index_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
"""


# TCP settings of every connection newsdesk opens, where the database URL does not set its own: a server that
# vanishes without closing its connections (a host powered off, a network that drops everything) is noticed
# within about a minute, instead of the operating system's default of two hours for an idle connection and
# about a quarter of an hour for one waiting on an answer to a sent request.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,  # seconds idle before the first probe
    "keepalives_interval": 10,  # seconds between probes
    "keepalives_count": 3,  # unanswered probes before the connection counts as lost
    "tcp_user_timeout": 30_000,  # ms that sent data may stay unacknowledged
}


def tcp_settings(url: str) -> dict[str, Any]:
    """``KEEPALIVES`` less whatever ``url`` sets itself (``?keepalives_idle=60`` is the operator's choice)."""
    given = psycopg.conninfo.conninfo_to_dict(url)
    return {name: value for name, value in KEEPALIVES.items() if name not in given}


def this_process() -> str:
    """``host:pid``, as other processes see this one in messages and ``application_name``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create this module's tables where they are missing (safe to call from several processes at once)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK_KEY])
        exists = conn.execute("SELECT to_regclass('index_snapshot_chunks') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            conn.execute(SCHEMA)


# -- one reload at a time ----------------------------------------------------------------------------
def _holder_message(conn: psycopg.Connection, what: str) -> str:
    """Who holds the reload lock, from ``reload_holder`` (only a row whose session still holds the lock)."""
    row = conn.execute(
        """
        SELECT h.host, h.pid, h.what, h.started_at FROM reload_holder h
        WHERE h.lock_key = %s AND EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.pid = h.backend_pid
              AND l.classid = (%s >> 32)::oid AND l.objid = (%s & 4294967295)::oid AND l.objsubid = 1)
        """,
        [RELOAD_LOCK_KEY, RELOAD_LOCK_KEY, RELOAD_LOCK_KEY],
    ).fetchone()
    if row is None:
        return f"another {what} is running in another newsdesk process; try again when it is done"
    host, pid, _, started_at = row
    since = started_at.strftime("%H:%M:%S UTC") if isinstance(started_at, datetime) else str(started_at)
    return f"another {what} is running on {host} (process {pid}, since {since}); try again when it is done"


@contextlib.contextmanager
def reload_lock(
    url: str,
    *,
    wait: float | None = None,
    what: str = "reload",
    target: str | None = None,
    error: type[ReloadInProgress] = ReloadInProgress,
    connect_timeout: float = 10,
) -> Iterator[psycopg.Connection]:
    """Hold the one reload lock of the database at ``url`` for the ``with`` block.

    The lock lives on a connection of its own (yielded, for information only): it is released when the block
    ends, and by PostgreSQL itself when this process dies or loses its connection. Without ``wait`` a lock
    held elsewhere raises ``error`` at once, saying on which host and process the other reload runs; with
    ``wait`` (seconds) it waits that long first. ``what`` and ``target`` name the work in that message
    ("another ingest into postgresql://... is running on HOST (process PID, since 18:02:11 UTC)"). A database that cannot be reached raises StoreError."""
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, int(connect_timeout)),
            application_name=f"newsdesk {what} {this_process()}"[:63],
            **tcp_settings(url),
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot reach the database to take the reload lock: {_one_line(exc)}") from exc
    try:
        try:
            ensure_schema(conn)
            if wait is None:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", [RELOAD_LOCK_KEY]).fetchone()
                got = bool(row and row[0])
            else:
                conn.execute(f"SET lock_timeout = {max(1, int(wait * 1000))}")
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", [RELOAD_LOCK_KEY])
                    got = True
                except pg_errors.LockNotAvailable:
                    got = False
                conn.execute("RESET lock_timeout")
            if not got:
                raise error(_holder_message(conn, f"{what} into {target}" if target else what))
            conn.execute(
                """
                INSERT INTO reload_holder (lock_key, host, pid, backend_pid, what, started_at)
                VALUES (%s, %s, %s, pg_backend_pid(), %s, now())
                ON CONFLICT (lock_key) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                    backend_pid = excluded.backend_pid, what = excluded.what, started_at = excluded.started_at
                """,
                [RELOAD_LOCK_KEY, socket.gethostname(), os.getpid(), what],
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot take the reload lock: {_one_line(exc)}") from exc
        try:
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "DELETE FROM reload_holder WHERE lock_key = %s AND backend_pid = pg_backend_pid()",
                    [RELOAD_LOCK_KEY],
                )
                conn.execute("SELECT pg_advisory_unlock(%s)", [RELOAD_LOCK_KEY])
    finally:
        conn.close()


# -- announcing and hearing new versions --------------------------------------------------------------
def announce_version(conn: psycopg.Connection, version: int) -> None:
    """``NOTIFY newsdesk_corpus, '<version>'`` in ``conn``'s current transaction: the listeners hear it when
    that transaction commits, and never when it rolls back."""
    conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(int(version))])


class VersionListener:
    """Hears new corpus versions: ``LISTEN newsdesk_corpus`` on a connection of its own, in a daemon thread.

    ``on_change(version)`` is called in that thread: with the announced version on each notification, and
    with None when the version may have changed unseen, i.e. right after each (re)connect and, while the
    connection is down, every ``poll_every`` seconds (the owner then reads the version itself: polling is the
    fallback). Reconnects wait 0.5 s, 1 s, 2 s ... up to ``max_backoff`` seconds, with some jitter, and start
    again from 0.5 s once connected. ``connected`` and ``last_error`` say how it stands (for health checks)."""

    def __init__(
        self,
        url: str,
        on_change: Callable[[int | None], None],
        *,
        poll_every: float = 5.0,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        tick: float = 0.5,
    ) -> None:
        self.url = url
        self.on_change = on_change
        self.poll_every = poll_every
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.tick = tick  # how often the thread checks for stop() while waiting
        self.connected = False
        self.last_error: str | None = None
        self.disconnected_since: float | None = time.time()
        self.reconnects = 0  # successful connects after the first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ever_connected = False

    def start(self) -> VersionListener:
        self._thread = threading.Thread(target=self._run, name="newsdesk-version-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected:
                return True
            time.sleep(0.02)
        return self.connected

    def _call(self, version: int | None) -> None:
        try:
            self.on_change(version)
        except Exception:  # the owner's business; the listener keeps listening
            log.exception("handling a corpus version change failed")

    def _run(self) -> None:
        delay = self.first_backoff
        last_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"newsdesk listener {this_process()}"[:63],
                    **tcp_settings(self.url),
                )
            except psycopg.Error as exc:
                self._went_down(exc)
                # Wait before the next attempt, polling the version meanwhile.
                deadline = time.monotonic() + delay * random.uniform(0.8, 1.2)
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if time.monotonic() - last_poll >= self.poll_every:
                        last_poll = time.monotonic()
                        self._call(None)
                    self._stop.wait(min(self.tick, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, self.max_backoff)
                continue
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._came_up()
                    delay = self.first_backoff
                    self._call(None)  # anything announced while this connection was not listening
                    last_check = time.monotonic()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=self.tick):
                            self._call(_version_of(notify.payload))
                            if self._stop.is_set():
                                break
                        if time.monotonic() - last_check >= self.poll_every:
                            conn.execute("SELECT 1")  # a connection that died silently fails here
                            last_check = time.monotonic()
                    return
            except psycopg.Error as exc:
                self._went_down(exc)
                last_poll = time.monotonic()
                self._call(None)

    def _came_up(self) -> None:
        if self._ever_connected:
            self.reconnects += 1
            log.info("listening for new corpus versions again")
        self._ever_connected = True
        self.connected = True
        self.last_error = None
        self.disconnected_since = None

    def _went_down(self, exc: Exception) -> None:
        if self.connected or self.last_error is None:
            log.warning("lost the database connection that hears new corpus versions: %s", _one_line(exc))
        if self.connected or self.disconnected_since is None:
            self.disconnected_since = time.time()
        self.connected = False
        self.last_error = _one_line(exc)


def _version_of(payload: str) -> int | None:
    try:
        return int(payload)
    except ValueError:
        return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# -- index snapshots ----------------------------------------------------------------------------------
class SnapshotError(StoreError):
    """A stored index snapshot is incomplete or does not match its checksums."""


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    name: str
    size: int
    sha256: str
    chunks: int


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    version: int
    stamp: str
    files: tuple[SnapshotFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def upload_snapshot(
    conn: psycopg.Connection,
    version: int,
    stamp: str,
    folder: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> StoredSnapshot:
    """Store the files of the index folder ``folder`` as the snapshot of ``version`` (replacing one stored
    before). Runs in ``conn``'s transaction when one is open (a savepoint), else in its own: the snapshot
    becomes visible to others, whole, when that commits."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    if not paths:
        raise SnapshotError(f"no index files in {folder} to store")
    files: list[SnapshotFile] = []
    with conn.transaction():
        conn.execute("DELETE FROM index_snapshots WHERE version = %s", [version])
        conn.execute(
            "INSERT INTO index_snapshots (version, stamp, files, total_bytes, created_by) "
            "VALUES (%s, %s, '[]', 0, %s)",
            [version, stamp, this_process()],
        )
        with conn.cursor() as cur:
            for path in paths:
                digest = hashlib.sha256()
                size = seq = 0
                with path.open("rb") as handle:
                    while chunk := handle.read(chunk_bytes):
                        digest.update(chunk)
                        size += len(chunk)
                        cur.execute(
                            "INSERT INTO index_snapshot_chunks (version, name, seq, data) VALUES (%s, %s, %s, %b)",
                            [version, path.name, seq, chunk],
                        )
                        seq += 1
                files.append(SnapshotFile(path.name, size, digest.hexdigest(), seq))
        conn.execute(
            "UPDATE index_snapshots SET files = %s, total_bytes = %s WHERE version = %s",
            [Jsonb([_file_json(f) for f in files]), sum(f.size for f in files), version],
        )
    return StoredSnapshot(version, stamp, tuple(files))


def _file_json(f: SnapshotFile) -> dict[str, Any]:
    return {"name": f.name, "size": f.size, "sha256": f.sha256, "chunks": f.chunks}


def stored_snapshot(conn: psycopg.Connection, version: int) -> StoredSnapshot | None:
    """The snapshot stored for ``version``, or None."""
    row = conn.execute("SELECT stamp, files FROM index_snapshots WHERE version = %s", [version]).fetchone()
    if row is None:
        return None
    stamp, files = row
    return StoredSnapshot(
        version,
        stamp,
        tuple(SnapshotFile(f["name"], int(f["size"]), f["sha256"], int(f["chunks"])) for f in files),
    )


def stored_versions(conn: psycopg.Connection) -> list[int]:
    """The versions that have a stored snapshot, newest first."""
    return [r[0] for r in conn.execute("SELECT version FROM index_snapshots ORDER BY version DESC")]


def download_snapshot(
    conn: psycopg.Connection, version: int, dest: Path, *, stamp: str | None = None
) -> StoredSnapshot | None:
    """Download the snapshot of ``version`` into the folder ``dest`` and return it; None when the database
    holds none for that version (or, with ``stamp``, only one of another corpus).

    The files are written into a temporary folder beside ``dest``, each checked against its size and
    SHA-256, and the folder is renamed into place: ``dest`` is whole or absent, never half written. When
    another process on this machine put the same version there first, its copy is kept. Raises
    SnapshotError when the stored snapshot is damaged (nothing is left behind) and StoreError when the
    database or the disk fails."""
    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.download-{uuid.uuid4().hex[:8]}"
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    try:
        with conn.transaction():
            if idle:  # one consistent view: a prune committed meanwhile cannot take chunks away mid-way
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = stored_snapshot(conn, version)
            if snapshot is None or (stamp is not None and snapshot.stamp != stamp):
                return None
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            with conn.cursor(binary=True) as cur:
                for f in snapshot.files:
                    if "/" in f.name or f.name in (".", "..") or not f.name:
                        raise SnapshotError(f"the stored index of version {version} names a file {f.name!r}")
                    digest = hashlib.sha256()
                    size = 0
                    with (tmp / f.name).open("wb") as out:
                        for seq in range(f.chunks):
                            cur.execute(
                                "SELECT data FROM index_snapshot_chunks WHERE version = %s AND name = %s AND seq = %s",
                                [version, f.name, seq],
                            )
                            row = cur.fetchone()
                            if row is None:
                                raise SnapshotError(
                                    f"the stored index of version {version} lacks part {seq} of {f.name}"
                                )
                            data = row[0]
                            digest.update(data)
                            size += len(data)
                            out.write(data)
                    if size != f.size or digest.hexdigest() != f.sha256:
                        raise SnapshotError(
                            f"the stored index of version {version} is damaged ({f.name} does not match "
                            "its checksum)"
                        )
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process put this version here first
        return snapshot
    except OSError as exc:
        raise StoreError(
            f"cannot write the downloaded index into {dest.parent}: {exc.strerror or exc}"
        ) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prune_snapshots(conn: psycopg.Connection, keep: int = KEEP_SNAPSHOTS) -> list[int]:
    """Delete the stored snapshots of all but the newest ``keep`` versions; returns the versions deleted."""
    with conn.transaction():
        rows = conn.execute(
            "DELETE FROM index_snapshots WHERE version NOT IN "
            "(SELECT version FROM index_snapshots ORDER BY version DESC LIMIT %s) RETURNING version",
            [keep],
        ).fetchall()
    return sorted(r[0] for r in rows)


# -- for the service: whole steps, each on a connection from the store's pool ---------------------------
def stream_rows(conn: psycopg.Connection, sql: str, *, itersize: int = 5000) -> Iterator[tuple]:
    """The rows of ``sql`` through a server-side cursor, in ``conn``'s open transaction: a large table is
    never held whole in memory."""
    with conn.cursor(name=f"newsdesk_{uuid.uuid4().hex[:8]}") as cursor:
        cursor.itersize = itersize
        cursor.execute(sql)
        yield from cursor


Connect = Callable[
    [], AbstractContextManager[psycopg.Connection]
]  # a pooled connection: PostgresStore.connection


def fetch_snapshot(connect: Connect, version: int, stamp: str, dest: Path) -> StoredSnapshot | None:
    """Download the snapshot of ``version`` (of the corpus ``stamp``) into ``dest`` on a connection from
    ``connect``; None when the database holds none. Raises SnapshotError for a damaged one and StoreError when
    the database cannot be reached."""
    try:
        with connect() as conn:
            return download_snapshot(conn, version, dest, stamp=stamp)
    except psycopg.Error as exc:
        raise StoreError(f"cannot download the index of corpus version {version}: {_one_line(exc)}") from exc


def store_snapshot_if_missing(
    connect: Connect, version: int, stamp: str, folder: Path, *, replace_damaged: bool = False
) -> bool:
    """Upload ``folder`` as the snapshot of ``version`` unless one is stored already (an index a process had to
    build from the rows, so that the next one need not). With ``replace_damaged`` the stored one (found damaged)
    is replaced. True when it uploaded. Never raises for a race with another process doing the same."""
    try:
        with connect() as conn:
            if not replace_damaged and stored_snapshot(conn, version) is not None:
                return False
            upload_snapshot(conn, version, stamp, folder)
            return True
    except (psycopg.Error, StoreError) as exc:  # e.g. another process stored it a moment ago
        log.info("did not store the index of corpus version %s: %s", version, _one_line(exc))
        return False
    except OSError as exc:  # the local folder changed under us (pruned by another process on this machine)
        log.warning("did not store the index of corpus version %s: %s", version, exc)
        return False


def prune_stored_snapshots(connect: Connect, keep: int = KEEP_SNAPSHOTS) -> list[int]:
    """``prune_snapshots`` on a connection from ``connect``; an unreachable database prunes nothing (next time)."""
    try:
        with connect() as conn:
            return prune_snapshots(conn, keep)
    except (psycopg.Error, StoreError) as exc:
        log.warning("could not prune the stored index snapshots: %s", _one_line(exc))
        return []
