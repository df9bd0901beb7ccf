"""Worker processes for an ingest's CPU-bound work: parsing files and analysing passages on the machine's other
cores while the ingest's own process writes the database and builds the index.

``ordered`` runs a function over a sequence of items in worker processes, a few items ahead, and yields the
results in the items' order. When every worker is busy and the next result is not ready, the calling process
runs the next item itself rather than wait, so the work is shared between all the cores, the caller's included.

A worker never outlives the process that started it: it is killed when that process dies (Linux), and on any
system it exits within a second of seeing that its parent is gone. With one core, or when no worker can be
started, everything runs in the calling process, with the same results.

``NEWSDESK_INGEST_WORKERS`` (``NewsService(ingest_workers=...)``) sets how many workers an ingest may start
(default: one less than the cores this process may run on; 0 runs everything in the calling process).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Kept = TypeVar("Kept")
Payload = TypeVar("Payload")
Result = TypeVar("Result")

# Items handed to each worker ahead of the one the caller waits for: enough to keep it busy while the caller
# uses a result or runs an item itself, few enough that memory stays flat.
AHEAD_PER_WORKER = 8
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """How many worker processes an ingest starts unless told: one less than the cores this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, cores - 1)


def _watch_parent(parent: int) -> None:
    """(in a worker) Die with the parent: at once on Linux, else within a second of its end."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="newsdesk-parent-watch", daemon=True).start()


def _start_worker(parent: int, setup: Callable[..., None] | None, args: tuple) -> None:
    _watch_parent(parent)
    with contextlib.suppress(Exception):
        os.nice(5)  # the ingest's own process, which waits for nobody, comes first
    if setup is not None:
        setup(*args)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """A ``spawn`` worker first imports the main module of the process that starts it (``newsdesk``'s command
    line, and with it discord.py: 0.3 s and 50-100 MB a worker, for nothing it uses). Hidden meanwhile."""
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {n: main.__dict__[n] for n in ("__file__", "__spec__") if n in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


@contextlib.contextmanager
def worker_pool(
    workers: int, setup: Callable[..., None] | None = None, args: tuple = ()
) -> Iterator[concurrent.futures.ProcessPoolExecutor | None]:
    """A pool of ``workers`` processes (started when first used; ``setup(*args)`` runs in each), or None when
    ``workers`` is 0 or no pool can be made. The workers are stopped when the block ends."""
    if workers <= 0:
        yield None
        return
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), setup, args),
        )
        with _main_module_hidden():
            # Started now (one job each starts one worker), while the main module is hidden.
            for started in [pool.submit(os.getpid) for _ in range(workers)]:
                started.result()
    except (OSError, ValueError, concurrent.futures.BrokenExecutor) as exc:
        log.warning("working without worker processes: %s", exc)
        yield None
        return
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Ready:
    """A result computed in the calling process, in the queue beside the workers' futures."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        return self.value


def ordered(
    work: Callable[[Payload], Result],
    items: Iterable[tuple[Kept, Payload]],
    pool: concurrent.futures.ProcessPoolExecutor | None,
    workers: int,
    here: Callable[[Payload], Result] | None = None,
) -> Iterator[tuple[Kept, Result]]:
    """``(kept, work(payload))`` for each item ``(kept, payload)``, in the items' order. Up to
    ``AHEAD_PER_WORKER`` payloads per worker run in ``pool`` (``work`` must be a module-level function: it is
    sent by name) while the caller uses the results; when the next result is not ready, the caller runs the
    next payload itself, with ``here`` (default ``work``). Without a pool, or once the pool fails (a worker
    killed), every payload runs in the calling process. Each payload runs once, in a worker or here."""
    run_here = work if here is None else here
    pending: collections.deque[tuple[Kept, Payload, Any]] = collections.deque()
    sent = 0  # payloads in the pool
    source = iter(items)
    finished = False
    limit = max(1, workers) * AHEAD_PER_WORKER
    while True:
        while pool is not None and not finished and sent < limit:
            item = next(source, None)
            if item is None:
                finished = True
                break
            kept, payload = item
            try:
                future: Any = pool.submit(work, payload)
                sent += 1
            except (RuntimeError, concurrent.futures.BrokenExecutor) as exc:
                log.warning("worker processes stopped; working without them: %s", exc)
                pool = None
                future = _Ready(run_here(payload))
            pending.append((kept, payload, future))
        if not pending or (not finished and len(pending) < 2 * limit and not pending[0][2].done()):
            # Nothing in the pool, or its oldest payload still running: run the next payload here meanwhile
            # (a few at most, so that memory stays flat however slow the workers are).
            item = next(source, None)
            if item is None:
                finished = True
                if not pending:
                    return
            else:
                kept, payload = item
                pending.append((kept, payload, _Ready(run_here(payload))))
                continue
        kept, payload, head = pending.popleft()
        if not isinstance(head, _Ready):
            sent -= 1
        try:
            value = head.result()
        except concurrent.futures.BrokenExecutor as exc:
            log.warning("worker processes stopped; working without them: %s", exc)
            pool = None
            value = run_here(payload)
        yield kept, value
