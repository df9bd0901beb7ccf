"""Search processes: a server's questions answered on its machine's other cores.

A server such as the bot answers from one interpreter. Searching in threads beside its event loop makes them
take turns under the interpreter lock, and every turn costs a switch: a question answered in a thread beside
the event loop cost about twice the CPU it costs alone (``bench/load_bot.py``). A ``SearchProcesses`` starts
processes that open the same database and index (read-only, the index's arrays mapped from the same files)
and answer the questions sent to them over a socket, one after another, while the event loop goes on with
the server's own traffic. The event loop only writes each question and reads its answer back.

A process answers only from the corpus version the server itself serves: each question carries it, and a
process that holds another version picks up the server's (a reload, as any second reader of the database
does) before it answers again. Whenever no process can answer (starting, following a reload, an error, a
process gone), ``search`` returns None and the caller answers in-process, where any error reaches the member
as it always did. A process that ends is started again, after a wait that grows while it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import pickle
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import Answer, NewsService

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!I")
START_TIMEOUT = 300.0  # seconds a process may take to load a large index before it is given up on
RESTART_AFTER = (1.0, 60.0)  # the first and the longest wait before a process that ended is started again
# A process that takes this long over one question is stuck (stopped, or starved of CPU): it is killed and
# started again, and its questions are answered in-process.
QUESTION_TIMEOUT = 10.0
_STEADY = 600.0  # a process that ran this long before it ended is started again after the first wait

# Messages from a process: its first, then one per question, and one whenever it follows a new version.
READY = "ready"
ANSWER = "answer"  # (ANSWER, question id, Answer or None)
SERVING = "serving"  # (SERVING, (version, stamp)): it answers from this version from now on


def default_processes() -> int:
    """One search process when this process may use two cores or more (the event loop keeps the first); none
    on one core, where a process would only take turns with the event loop."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores >= 2 else 0


# The event loop's policy before ``let_search_processes_go_first`` changed it: its search processes run under it.
_usual_policy: int | None = None


def let_search_processes_go_first() -> bool:
    """Mark the calling thread (a server's event loop, which starts search processes) as batch work for the
    kernel's scheduler (Linux ``SCHED_BATCH``); threads and processes it starts later inherit it, search
    processes excepted (they go back to the policy it had). Returns whether it took effect.

    In a burst the search process sets the pace: questions reach it within a few milliseconds, and the answers
    leave it one by one. When every core is busy, each of the event loop's many short wake-ups (a gateway
    event, a reply's request, an answer read back) would otherwise interrupt a search process mid-question and
    cool its caches; as batch work the event loop waits for the current time slice instead, and still gets its
    fair share of the CPU. On an idle core it runs at once, as before (``bench/RESULTS.md``). A policy chosen by
    whoever runs the server (``chrt``, systemd's ``CPUSchedulingPolicy``) is left as it is."""
    global _usual_policy
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None:  # not Linux
        return False
    try:
        policy = os.sched_getscheduler(0)
        if policy != os.SCHED_OTHER:
            return False
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError as exc:  # refused (a sandbox): the usual policy serves as before
        log.info("the event loop keeps the usual scheduling: %s", exc)
        return False
    _usual_policy = policy
    return True


def _scheduled_as(policy: int) -> None:
    """A search process runs under ``policy``: the one the server's event loop had before it let its search
    processes go first."""
    with contextlib.suppress(OSError):
        if os.sched_getscheduler(0) != policy:
            os.sched_setscheduler(0, policy, os.sched_param(0))


def _child_env() -> dict[str, str]:
    """This environment, with this package findable however the server was started."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class _Process:
    """One search process and the questions sent to it that it has not answered yet."""

    def __init__(self, owner: SearchProcesses, number: int) -> None:
        self.owner, self.number = owner, number
        self.pending: dict[int, asyncio.Future[Answer | None]] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.serving: tuple[int, str] | None = None  # the version it answers from; None: not answering
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0  # how many times it was started

    async def run(self) -> None:
        """Start the process, serve through it, and start it again whenever it ends."""
        wait = RESTART_AFTER[0]
        while True:
            began = time.monotonic()
            try:
                await self._serve()
            except asyncio.CancelledError:
                self._lost()
                raise
            except Exception as exc:  # noqa: BLE001 (anything: answer in-process, start it again later)
                log.warning(
                    "search process %d stopped (%s); answering in-process meanwhile", self.number, exc
                )
            self._lost()
            if time.monotonic() - began > _STEADY:
                wait = RESTART_AFTER[0]
            await asyncio.sleep(wait)
            wait = min(wait * 2, RESTART_AFTER[1])

    async def _serve(self) -> None:
        mine, theirs = socket.socketpair()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(theirs.fileno()),
                str(os.getpid()),
                *([] if _usual_policy is None else [str(_usual_policy)]),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=_child_env(),
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.started += 1
        reader, self.writer = await asyncio.open_connection(sock=mine)
        # The settings go over the socket, not the command line, which every user of the machine can read.
        self.writer.write(_frame(self.owner.service.process_config()))
        first = await asyncio.wait_for(_read(reader), START_TIMEOUT)
        if not (isinstance(first, tuple) and first[0] == READY):
            raise RuntimeError(f"it did not start: {first or 'it ended'}")
        self.serving = first[1]
        log.info("search process %d (pid %s) answers questions", self.number, self.proc.pid)
        while (message := await _read(reader)) is not None:
            if message[0] == ANSWER:
                future = self.pending.pop(message[1], None)
                if future is not None and not future.done():
                    future.set_result(message[2])
            elif message[0] == SERVING:
                self.serving = message[1]
        raise RuntimeError("it ended")

    def _lost(self) -> None:
        self.serving = None
        for future in self.pending.values():
            if not future.done():
                future.set_result(None)
        self.pending.clear()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.kill()

    def kill(self) -> None:
        """End the process now; ``run`` hands back its questions and starts it again. No question is sent to it
        meanwhile."""
        self.serving = None
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def ask(self, serving: tuple[int, str], kwargs: dict[str, Any]) -> asyncio.Future[Answer | None]:
        assert self.writer is not None
        question_id = next(self.owner.ids)
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self.pending[question_id] = future
        self.writer.write(_frame((question_id, serving, kwargs)))
        return future


class SearchProcesses:
    """``count`` search processes for ``service`` (see the module's docstring; default ``default_processes()``,
    0: none, and ``search`` always returns None); ``start`` them from the event loop, ``close`` them when done."""

    def __init__(self, service: NewsService, count: int | None = None) -> None:
        self.service = service
        self.count = default_processes() if count is None else max(0, count)
        self.ids = itertools.count()
        self._processes = [_Process(self, n + 1) for n in range(self.count)]
        self._tasks: list[asyncio.Task] = []
        self.answered = 0  # questions the processes answered (the others were answered in-process)

    def go_first(self) -> bool:
        """With one process or more, let them go first: the calling thread (the event loop that starts them)
        becomes batch work for the kernel's scheduler (``let_search_processes_go_first``). Returns whether it
        took effect."""
        return self.count > 0 and let_search_processes_go_first()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(p.run(), name=f"newsdesk-search-process-{p.number}") for p in self._processes
        ]

    @property
    def answering(self) -> int:
        """How many processes answer from the version the service serves now."""
        serving = self.service.serving()
        return sum(1 for p in self._processes if p.writer is not None and p.serving == serving)

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self._processes if p.proc is not None and p.proc.returncode is None]

    def status(self) -> dict[str, int]:
        """For a health check: processes set, answering now, and questions they answered so far."""
        return {"configured": self.count, "answering": self.answering, "answered": self.answered}

    async def search(self, **kwargs: Any) -> Answer | None:
        """``NewsService.search(**kwargs)``, answered by the least busy process that holds the version the
        service serves; None when none can answer it (the caller answers in-process)."""
        serving = self.service.serving()
        if serving is None:
            return None
        ready = [p for p in self._processes if p.writer is not None and p.serving == serving]
        if not ready:
            # One of them picks up the new version (it answers None meanwhile, then says it serves it).
            for p in self._processes:
                if p.writer is not None and p.serving is not None and not p.pending:
                    p.serving = None
                    p.ask(serving, {})
            return None
        chosen = min(ready, key=lambda p: len(p.pending))
        future = chosen.ask(serving, kwargs)
        # A timer, not ``asyncio.wait_for``: no task and no waiter more per question.
        timer = asyncio.get_running_loop().call_later(QUESTION_TIMEOUT, self._stuck, chosen, future)
        try:
            answer = await future
        finally:
            timer.cancel()
        if answer is not None:
            self.answered += 1
        return answer

    @staticmethod
    def _stuck(process: _Process, future: asyncio.Future[Answer | None]) -> None:
        """The question took over ``QUESTION_TIMEOUT``: answered in-process, and the process started again."""
        if future.done():
            return
        log.warning(
            "search process %d took over %g s over a question; starting it again",
            process.number,
            QUESTION_TIMEOUT,
        )
        future.set_result(None)
        process.kill()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for p in self._processes:
            if p.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    await p.proc.wait()


async def _read(reader: asyncio.StreamReader) -> Any:
    """The next message, or None when the other side is gone."""
    try:
        header = await reader.readexactly(_HEADER.size)
        return pickle.loads(await reader.readexactly(_HEADER.unpack(header)[0]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


# -- in the search process -----------------------------------------------------------------------
def _receive(stream: Any) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    data = stream.read(_HEADER.unpack(header)[0])
    return pickle.loads(data)


def _send(stream: Any, message: Any) -> None:
    stream.write(_frame(message))
    stream.flush()


def _warm_up(service: NewsService) -> None:
    """Before answering from a version: the newest articles' rows read ahead (``NewsService.keep_newest``),
    then one question (the title of the newest article), so that the first member's question does not pay for
    loading the compiled search code and the mapped arrays' first pages."""
    with contextlib.suppress(Exception):
        service.keep_newest()
        newest = service.headlines(1)
        if newest:
            service.search(newest[0].title, k=1)


def serve(fd: int, parent: int, policy: int | None = None) -> None:
    """The search process: answer the questions read from the socket ``fd`` until it closes. The server
    closing it first (it stopped, or gave up on this process) ends the process as quietly: nobody is left to
    answer, and a traceback would only reach the server's log. ``policy``: the scheduling policy to run under
    (the server's usual one, when its event loop let its search processes go first)."""
    from .workers import _watch_parent

    _watch_parent(parent)
    if policy is not None:
        _scheduled_as(policy)
    stream = socket.socket(fileno=fd).makefile("rwb")
    try:
        _serve(stream)
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError):  # what could not be sent is dropped, not flushed again at exit
            stream.close()


def _serve(stream: Any) -> None:
    from .service import NewsService

    config = _receive(stream)
    if config is None:
        return
    try:
        service = NewsService(**config)
        service.snapshot  # noqa: B018 (loaded before the first question)
        _warm_up(service)
    except Exception as exc:  # noqa: BLE001 (told to the server, which answers in-process)
        _send(stream, f"{type(exc).__name__}: {exc}")
        return
    # What start-up made lives as long as the process: left out of the collector's walks, which would
    # otherwise stall a question now and then (as in the bot, bot/memory.py).
    gc.collect()
    gc.freeze()
    _send(stream, (READY, service.serving()))
    while (question := _receive(stream)) is not None:
        question_id, serving, kwargs = question
        answer = None
        try:
            if service.serving() != serving:
                if service.refresh_if_changed():
                    _warm_up(service)
                _send(stream, (SERVING, service.serving()))
            if kwargs and service.serving() == serving:
                answer = service.search(**kwargs)
        except Exception as exc:  # noqa: BLE001 (answered in-process, where the error reaches the member)
            log.debug("answered in-process instead: %s", exc)
        _send(stream, (ANSWER, question_id, answer))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="newsdesk search process: %(levelname)s %(message)s")
    serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
