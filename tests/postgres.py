"""A throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary folder, a free port on 127.0.0.1,
run as an unprivileged user, stopped at the end of the session.

The server programs are looked up on ``PATH`` and then in Debian's ``/usr/lib/postgresql/<major>/bin``. On a
machine without them, every test that asks for ``pg_cluster`` or ``pg_url`` skips with one reason
(``POSTGRES_MISSING``); under CI (``CI=true``, where ``.ci/run`` installs them) that is a failure instead.

PostgreSQL refuses to run as root. When the tests run as root, the cluster runs as the ``postgres`` user that
Debian's package creates (or ``nobody``), with its folder handed over to that user.

A test session that is killed (Ctrl-C twice, SIGKILL) never reaches its teardown, and ``pg_ctl`` starts the server
in a session of its own, so nothing would stop it. Two things do: a watchdog process started with the cluster
stops it and removes its folder as soon as the pytest process that owns it is gone (the watchdog's parent
changes), and each new session first stops and removes any cluster whose owner (``owner.pid`` in its folder) is
no longer running, in case the watchdog was killed too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FOLDER_PREFIX = "newsdesk-pg-"
OWNER_FILE = "owner.pid"  # in a cluster's folder: the pid of the test session that started it
POSTGRES_MISSING = "needs the PostgreSQL server programs (initdb, pg_ctl); .ci/run installs them"


def server_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL's server is not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return debian[-1].parent if debian else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> pwd.struct_passwd | None:
    """The user to run the server as: None for the current user, unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(
        "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


@dataclass
class PgCluster:
    """A running cluster. ``url()`` names its ``postgres`` database; ``new_database()`` makes a fresh one."""

    folder: Path
    port: int
    user: str
    bin_dir: Path
    watchdog: subprocess.Popen | None = None  # stops the cluster when the session that started it is gone
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return _run(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), *args])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (as when the database machine goes away); ``start()`` brings it back."""
        self.pg_ctl("stop", "-m", mode, "-w")

    def start(self) -> None:
        log = self.folder / "server.log"
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", options)


def _as_server_user() -> dict:
    account = _run_as()
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(cluster_or_user, argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **_as_server_user())  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_and_remove(bin_dir: Path, folder: Path) -> None:
    """Stop the cluster in ``folder`` (if it runs) and delete the folder."""
    if (folder / "data" / "postmaster.pid").exists():
        with contextlib.suppress(OSError):
            subprocess.run(
                [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "stop", "-m", "immediate", "-w"],
                capture_output=True,
                timeout=60,
                **_as_server_user(),  # type: ignore[call-overload]
            )
    shutil.rmtree(folder, ignore_errors=True)


def stop_orphaned_clusters(bin_dir: Path, tmp: Path | None = None) -> list[Path]:
    """Stop and remove the clusters left by test sessions that were killed: those whose owner is gone."""
    stopped = []
    for folder in sorted(Path(tmp or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*")):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if not _pid_alive(owner):
            _stop_and_remove(bin_dir, folder)
            stopped.append(folder)
    return stopped


def start_watchdog(bin_dir: Path, folder: Path) -> subprocess.Popen:
    """A process that stops the cluster in ``folder`` and removes the folder when this process is gone, however
    it ended. It runs in a session of its own, so the Ctrl-C that stops the tests does not stop it first."""
    return subprocess.Popen(
        [sys.executable, __file__, "watch", str(os.getpid()), str(bin_dir), str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _watch(owner: int, bin_dir: Path, folder: Path) -> None:
    # The owner is our parent: once it dies, we are handed to another process (and a reused pid cannot fool us).
    while os.getppid() == owner and folder.exists():
        time.sleep(0.5)
    if folder.exists():
        _stop_and_remove(bin_dir, folder)


def start_cluster() -> PgCluster:
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(POSTGRES_MISSING)
    stop_orphaned_clusters(bin_dir)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    watchdog = start_watchdog(bin_dir, folder)  # before initdb: a kill from here on leaves nothing behind
    account = _run_as()
    user = account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)
    cluster = PgCluster(folder=folder, port=_free_port(), user=user, bin_dir=bin_dir, watchdog=watchdog)
    _run(
        cluster,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(folder / "data"),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    for attempt in range(3):
        try:
            cluster.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
            cluster.port = _free_port()  # the port was taken meanwhile
            time.sleep(0.2)
    return cluster


def stop_cluster(cluster: PgCluster) -> None:
    with contextlib.suppress(RuntimeError):
        cluster.pg_ctl("stop", "-m", "immediate", "-w")
    shutil.rmtree(cluster.folder, ignore_errors=True)
    if cluster.watchdog is not None:
        cluster.watchdog.wait(timeout=10)  # it sees the folder gone and ends


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the session; skipped (failed under CI) where PostgreSQL is not installed."""
    if server_bin_dir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(POSTGRES_MISSING)
        pytest.skip(POSTGRES_MISSING)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of the session's cluster, as a ``postgresql://`` URL."""
    return pg_cluster.new_database()


if __name__ == "__main__":  # the watchdog: python tests/postgres.py watch OWNER_PID BIN_DIR FOLDER
    _watch(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
