"""Load the real bot through the local Discord stub with the BBC corpus, and report what members would feel.

    .venv/bin/python bench/load_bot.py [--bot-process] [--questions 1000] [--members 50] [--burst 50]

Phases, in one run:
1. ingest the BBC corpus cold, then again unchanged (reload times);
2. 100 questions one at a time (reply latency as one member sees it);
3. N questions from M members in bursts, with no reload running;
4. the same with a /reload running that re-reads a quarter of the corpus; then that /reload again alone
   (the same quarter changed once more), for the event-loop lag the reload itself causes;
5. with --compare (and --bot-process): /ask in bursts (200 from 20 members in bursts of 20 by default) to
   newsdesk, then the same to bench/minimal_bot.py (plain bm25s, defer + edit + a four-button view) through the
   same stub: reply latency p50/p99, REST requests per answer and the bot process's CPU time per answer
   (its event loop, its other threads, and its child processes: newsdesk's search processes), the CPU time of
   this process (the stub and the simulated members: what is left of the machine's cores), and how many of the
   questions newsdesk's search processes answered (`answered_by_search_processes`).
For each: every question answered exactly once, reply latency p50/p99, the longest gap between the bot's
gateway heartbeats (interval 1 s), the worst event-loop lag inside the bot, and peak memory (RSS; with --bot-process
also its search processes', summed).

By default the bot runs on its own event loop in a thread of this process, beside the stub and the simulated
members (they share the interpreter lock: pessimistic; it answers in its threads, without search processes);
with --bot-process it is the unmodified `newsdesk run` in its own process, with its settings' defaults (set
NEWSDESK_SEARCH_PROCESSES=0 in the environment to compare without search processes), its event-loop lag read
from its /healthz, and its questions start once it is connected and its search processes answer. Nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import socket
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.client import build_bot  # noqa: E402
from retrieval.service import NewsService  # noqa: E402
from tests.bot_harness import GENERAL, GUILD, MANAGER, QA, TOKEN, build_world, settings_for  # noqa: E402
from tests.discord_stub import DiscordStub  # noqa: E402

BBC_TAR = REPO.parent / "shared" / "corpora" / "bbc" / "bbc-fulltext.tar.gz"
MEMBER_BASE = 1_600_000_000_000_000_000
LAG_WINDOW_S = 5.0  # the bot's /healthz reports the worst lag of the last 5 s


class BotThread:
    """The newsdesk bot on its own event loop in a thread."""

    def __init__(self, service: NewsService, settings, search_threads: int | None = None) -> None:
        self.service, self.settings, self.search_threads = service, settings, search_threads
        self.bot = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.bot = build_bot(self.settings, self.service, guild_ready_timeout=0.05)
            if self.search_threads:
                self.bot.search_pool = ThreadPoolExecutor(
                    self.search_threads, thread_name_prefix="newsdesk-search"
                )
            task = asyncio.create_task(self.bot.start(TOKEN))
            while not self.bot.is_ready():
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            self.ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(main())

    async def start(self) -> None:
        self.thread.start()
        if not await asyncio.to_thread(self.ready.wait, 30):
            raise RuntimeError("the bot did not connect to the stub")

    def reset_lag(self) -> None:
        self.bot.loop_lag_max = 0.0

    async def worst_lag_ms(self) -> float:
        return round(self.bot.loop_lag_max * 1000, 1)

    def peak_rss_mb(self) -> float:
        """Peak resident memory of this process (bot, stub and members together), in MB."""
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    async def stop(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the bot's loop ends as close() finishes
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.bot.close(), self.loop))
        await asyncio.to_thread(self.thread.join, 10)


class BotProcess:
    """The unmodified ``newsdesk run`` in its own process (pointed at the stub by tests/stub_process.py).

    Its event-loop lag is read from its own /healthz, polled twice a second."""

    TOKEN = "newsdesk-load-bench-token-0123456789"

    def __init__(self, stub: DiscordStub, service: NewsService, work: Path) -> None:
        self.stub, self.service, self.work = stub, service, work
        self.port = free_port()
        self.lag_max_ms = 0.0
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "DISCORD_TOKEN": self.TOKEN,
            "NEWSDESK_DB": str(self.service.db_path),
            "NEWSDESK_CORPUS_DIR": str(self.service.corpus_dir),
            "NEWSDESK_QA_CHANNELS": str(QA),
            "NEWSDESK_COOLDOWN": "0",
            "NEWSDESK_RESULTS": "3",
            "NEWSDESK_ADMIN_USERS": str(MANAGER),
            "NEWSDESK_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "NEWSDESK_WEB_PORT": str(self.port),
            "NEWSDESK_LOG_LEVEL": "WARNING",
        }
        await self._launch(REPO / "tests" / "stub_process.py", ["run"], env, "bot.log")
        deadline = time.monotonic() + 90
        while not self._started(await self._health()):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot process did not connect; see {self.work / 'bot.log'}")
            await asyncio.sleep(0.2)
        self._poller = asyncio.create_task(self._poll())

    async def _launch(self, script: Path, args: list[str], env: dict, log_name: str) -> None:
        """Start ``script`` pointed at the stub, its output in ``log_name`` in the work folder."""
        self.log = open(self.work / log_name, "w")  # noqa: SIM115 (closed in stop)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            self.stub.base_url,
            self.stub.gateway_url + "/",
            *args,
            env=env,
            cwd=self.work,
            stdout=self.log,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.http = aiohttp.ClientSession()

    async def _health(self) -> dict:
        try:
            async with self.http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                return await response.json()
        except (aiohttp.ClientError, ValueError):
            return {}

    @staticmethod
    def _started(health: dict) -> bool:
        """Connected, and its search processes (if any) answering."""
        processes = health.get("search_processes") or {}
        return bool(health.get("discord_connected")) and processes.get("answering", 0) >= processes.get(
            "configured", 0
        )

    async def answered_by_processes(self) -> int | None:
        return ((await self._health()).get("search_processes") or {}).get("answered")

    async def _poll(self) -> None:
        while True:
            lag = (await self._health()).get("event_loop_lag_ms", {}).get("last_5s")
            if lag is not None:
                self.lag_max_ms = max(self.lag_max_ms, lag)
            await asyncio.sleep(0.5)

    def reset_lag(self) -> None:
        self.lag_max_ms = 0.0

    async def worst_lag_ms(self) -> float:
        await asyncio.sleep(0.6)  # one more poll covering the phase's end
        return round(self.lag_max_ms, 1)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot process so far, with its worker processes'."""
        return sum(self.cpu_split().values())

    def cpu_split(self) -> dict[str, float]:
        """CPU seconds so far: the event loop's thread, the bot's other threads, and its worker processes
        (those alive now, and those that ended and were waited for)."""
        pid = self.proc.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        total = (int(fields[11]) + int(fields[12])) / tick  # every thread's, ended ones too
        loop = _cpu_of(Path(f"/proc/{pid}/task/{pid}/stat"))
        split = {
            "event_loop": loop,
            "threads": total - loop,
            "workers": (int(fields[13]) + int(fields[14])) / tick,
        }
        for child in _children(pid):
            with contextlib.suppress(OSError):
                split["workers"] += _cpu_of(Path(f"/proc/{child}/stat"))
        return split

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the bot process (VmHWM), in MB."""
        return _peak_rss_mb(self.proc.pid)

    def children_peak_rss_mb(self) -> float:
        """The sum of the peak resident memory of the bot's child processes now alive (its search processes),
        in MB: pages they share with the bot (the index's mapped arrays) are counted in each."""
        return round(sum(_peak_rss_mb(child) for child in _children(self.proc.pid)), 1)

    async def stop(self) -> None:
        self._poller.cancel()
        await self.http.close()
        self.proc.terminate()
        await self.proc.wait()
        self.log.close()


def _peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_of(stat: Path) -> float:
    """User + system CPU seconds of a process or thread, from its /proc stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Every process started by ``pid``, and theirs."""
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return [c for child in found for c in (child, *_children(child))]


class MinimalBotProcess(BotProcess):
    """bench/minimal_bot.py in its own process, over the same passages."""

    async def start(self) -> None:
        env = {**os.environ, "DISCORD_TOKEN": self.TOKEN}
        await self._launch(
            REPO / "bench" / "minimal_bot.py", ["--db", str(self.service.db_path)], env, "minimal_bot.log"
        )
        deadline = time.monotonic() + 90
        while not any(
            c["name"] == "ask" and len(c.get("options") or []) == 1 for c in self.stub.registered_commands()
        ):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the minimal bot did not connect; see {self.work / 'minimal_bot.log'}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # its guilds arrive after the command sync
        self._poller = asyncio.create_task(asyncio.sleep(0))


async def _answered_by_processes(bot) -> int | None:
    """Questions the bot's search processes answered so far (newsdesk in its own process only)."""
    method = getattr(bot, "answered_by_processes", None)
    return await method() if method is not None else None


async def ask_bursts(
    stub: DiscordStub, bot, questions: list[str], members: int, burst: int, *, timeline: bool = False
) -> dict:
    """``/ask`` in bursts of ``burst`` (round-robin over members): latency until the answer is sent, REST
    requests per answer, and the bot process's CPU time per answer. ``timeline``: also each burst's answers, in
    ms from the burst's first question, in the order they were sent (a stall shows as a gap)."""
    cpu_before = bot.cpu_split()
    by_processes_before = await _answered_by_processes(bot)
    stub_cpu_before = time.process_time()
    first_request = len(stub.requests)
    records = []
    for start in range(0, len(questions), burst):
        batch = questions[start : start + burst]
        records += await asyncio.gather(
            *(
                stub.invoke_command(
                    "ask", {"question": q}, user_id=MEMBER_BASE + (start + i) % members, channel_id=GENERAL
                )
                for i, q in enumerate(batch)
            )
        )
        await asyncio.sleep(0.2)
    by_token = {r.token: r for r in records}

    def scan() -> tuple[dict[str, float], dict[str, int]]:
        answered: dict[str, float] = {}
        calls: dict[str, int] = {}
        for request in stub.requests[first_request:]:
            parts = request.path.split("/")
            token = next((p for p in parts if p in by_token), None)
            if token is None:
                continue
            calls[token] = calls.get(token, 0) + 1
            body = request.json if isinstance(request.json, dict) else {}
            if request.path.endswith("/callback"):
                body = body.get("data") or {}
            if body.get("embeds") and token not in answered:
                answered[token] = request.at
        return answered, calls

    deadline = time.monotonic() + 300
    while len(scan()[0]) < len(records) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # let the last replies' work finish before reading the CPU time
    split = {where: seconds - cpu_before.get(where, 0.0) for where, seconds in bot.cpu_split().items()}
    stub_cpu = time.process_time() - stub_cpu_before
    by_processes = await _answered_by_processes(bot)
    cpu = sum(split.values())
    answered, calls = scan()
    latencies = sorted((at - by_token[t].created_at) * 1000 for t, at in answered.items())
    report = {
        "questions": len(records),
        "answered": len(answered),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "requests_per_answer": round(sum(calls.values()) / max(len(answered), 1), 2),
        "cpu_ms_per_answer": round(cpu * 1000 / max(len(answered), 1), 2),
        "cpu_ms_per_answer_by_place": {
            where: round(seconds * 1000 / max(len(answered), 1), 2) for where, seconds in split.items()
        },
        "stub_cpu_ms_per_answer": round(stub_cpu * 1000 / max(len(answered), 1), 2),
    }
    if by_processes is not None and by_processes_before is not None:
        report["answered_by_search_processes"] = by_processes - by_processes_before
    if timeline:
        bursts = [records[i : i + burst] for i in range(0, len(records), burst)]
        report["burst_answers_ms"] = [
            sorted(round((answered[r.token] - b[0].created_at) * 1000) for r in b if r.token in answered)
            for b in bursts
        ]
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions_from(service: NewsService, n: int, seed: int = 7) -> list[str]:
    """Member-like questions: article titles and phrases from their passages, a few with no answer."""
    rng = random.Random(seed)
    rows = service.store._query(
        "SELECT a.title, p.text FROM passages p JOIN articles a ON a.content_hash = p.text_hash ORDER BY p.id"
    )
    out = []
    for _ in range(n):
        title, text = rng.choice(rows)
        kind = rng.random()
        if kind < 0.4:
            out.append(f"what happened with {title.lower()}?")
        elif kind < 0.95:
            words = text.split()
            start = rng.randrange(max(1, len(words) - 8))
            out.append("who " + " ".join(words[start : start + rng.randint(4, 8)]) + "?")
        else:
            out.append(rng.choice(["xyzzy plugh", "zorblax quantum fnord", "qwertyuiop asdf"]))
    return out


async def ask_all(stub: DiscordStub, questions: list[str], members: int, burst: int) -> dict:
    """Send questions in bursts of ``burst`` (round-robin over members); wait for every reply."""
    sent: dict[str, float] = {}
    for start in range(0, len(questions), burst):
        batch = questions[start : start + burst]
        messages = await asyncio.gather(
            *(stub.send_message(QA, MEMBER_BASE + (start + i) % members, q) for i, q in enumerate(batch))
        )
        now = time.monotonic()
        for message in messages:
            sent[message["id"]] = now
        await asyncio.sleep(0.2)
    bot_id = str(stub.bot_user_id)

    def replies() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for request in stub.requests:
            body = request.json if isinstance(request.json, dict) else {}
            ref = str((body.get("message_reference") or {}).get("message_id"))
            if request.method == "POST" and ref in sent:
                found.setdefault(ref, []).append(request.at)
        return found

    deadline = time.monotonic() + 300
    while len(replies()) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    got = replies()
    latencies = sorted((min(times) - sent[mid]) * 1000 for mid, times in got.items())
    own = [m for m in stub.messages(QA) if m["author"]["id"] == bot_id]
    return {
        "questions": len(sent),
        "answered": len(got),
        "answered_more_than_once": sum(1 for t in got.values() if len(t) > 1),
        "bot_messages": len(own),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


def heartbeat_gap(stub: DiscordStub, since: float) -> float:
    beats = [t for t in stub.heartbeats.get(0, []) if t >= since]
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    return round(max(gaps), 3) if gaps else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument(
        "--search-threads",
        type=int,
        default=None,
        help="threads answering questions (default: the bot's own choice, one per core)",
    )
    parser.add_argument(
        "--bot-process",
        action="store_true",
        help="run the bot as its own `newsdesk run` process instead of a thread beside the stub",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="after the other phases, /ask in bursts to newsdesk and to bench/minimal_bot.py (needs --bot-process)",
    )
    parser.add_argument(
        "--compare-only", action="store_true", help="only the /ask comparison (with --compare)"
    )
    parser.add_argument("--ask-questions", type=int, default=200)
    parser.add_argument("--ask-members", type=int, default=20)
    parser.add_argument("--ask-burst", type=int, default=20)
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="with --compare: each burst's answers in ms from its first question (burst_answers_ms)",
    )
    args = parser.parse_args()
    if args.compare and not args.bot_process:
        parser.error("--compare needs --bot-process (CPU time is read per process)")
    report: dict = {}

    def phase(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="newsdesk-load-"))
    with tarfile.open(BBC_TAR) as tar:
        tar.extractall(work, filter="data")
    corpus = work / "bbc"
    service = NewsService(work / "newsdesk.db", corpus)
    phase("ingesting the BBC corpus")
    started = time.perf_counter()
    cold = service.reload()
    report["reload_cold_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    unchanged = service.reload()
    report["reload_unchanged_s"] = round(time.perf_counter() - started, 3)
    report["corpus"] = {
        "articles": cold.added,
        "unchanged_second_time": unchanged.unchanged,
        "passages": service.store.counts()["passages"],
    }

    monkeypatch = pytest.MonkeyPatch()
    stub = DiscordStub(token=BotProcess.TOKEN) if args.bot_process else DiscordStub()
    await stub.start()
    stub.install(monkeypatch)
    build_world(stub)
    for i in range(args.members):
        stub.add_member(GUILD, MEMBER_BASE + i, name=f"member{i}")
    # The stub runs in this process beside the ingest's leftovers: a full pass of the garbage collector here
    # stalled whichever bot was being measured for ~100 ms. What exists now lives until the end of the run.
    gc.collect()
    gc.freeze()
    if args.bot_process:
        bot = BotProcess(stub, service, work)
        report["bot"] = "own process"
    else:
        bot = BotThread(service, settings_for(service, cooldown=0, results=3), args.search_threads)
        report["bot"] = "thread beside the stub"
        report["search_threads"] = args.search_threads or "bot default"
    phase("starting the bot")
    await bot.start()
    if not args.compare_only:
        phase("questions one at a time")
        await asyncio.sleep(2.5)  # a few heartbeats at rest

        qs = questions_from(service, args.sequential + 2 * args.questions)
        # 1. one at a time
        one: list[float] = []
        for q in qs[: args.sequential]:
            message = await stub.send_message(QA, MEMBER_BASE, q)
            t0 = time.monotonic()
            while True:
                hits = [
                    r.at
                    for r in stub.requests
                    if r.method == "POST"
                    and isinstance(r.json, dict)
                    and str((r.json.get("message_reference") or {}).get("message_id")) == message["id"]
                ]
                if hits:
                    one.append((hits[0] - t0) * 1000)
                    break
                await asyncio.sleep(0.002)
        one.sort()
        report["sequential"] = {
            "questions": len(one),
            "p50_ms": round(statistics.median(one), 1),
            "p99_ms": round(one[int(len(one) * 0.99) - 1], 1),
        }

        phase("bursts")
        bot.reset_lag()
        since = time.monotonic()
        burst = await ask_all(
            stub, qs[args.sequential : args.sequential + args.questions], args.members, args.burst
        )
        burst["longest_heartbeat_gap_s"] = heartbeat_gap(stub, since)
        burst["worst_loop_lag_ms"] = await bot.worst_lag_ms()
        burst["peak_rss_mb"] = bot.peak_rss_mb()
        if hasattr(bot, "children_peak_rss_mb"):
            burst["search_processes_peak_rss_mb"] = bot.children_peak_rss_mb()
        report["burst"] = burst

        phase("bursts during a reload")
        # 3. bursts while a /reload re-reads a quarter of the corpus
        files = sorted(corpus.rglob("*.txt"))
        for path in files[::4]:
            path.write_text(
                path.read_text(encoding="utf-8", errors="replace") + "\n\nUpdated.", encoding="utf-8"
            )
        bot.reset_lag()
        since = time.monotonic()
        reload_record = await stub.invoke_command("reload", {}, user_id=MANAGER, channel_id=GENERAL)
        reload_started = time.monotonic()
        during = await ask_all(stub, qs[args.sequential + args.questions :], args.members, args.burst)

        def reload_text() -> str:
            message = reload_record.original or {}
            return message.get("content") or ""

        while "Reload done" not in reload_text() and "failed" not in reload_text():
            await asyncio.sleep(0.1)
        during["reload_s_seen_by_admin"] = round(time.monotonic() - reload_started, 2)
        during["reload_summary"] = reload_text().splitlines()[0]
        during["longest_heartbeat_gap_s"] = heartbeat_gap(stub, since)
        during["worst_loop_lag_ms"] = await bot.worst_lag_ms()
        during["peak_rss_mb"] = bot.peak_rss_mb()
        if hasattr(bot, "children_peak_rss_mb"):
            during["search_processes_peak_rss_mb"] = bot.children_peak_rss_mb()
        report["burst_during_reload"] = during

        phase("a /reload alone")
        # 4b. the same quarter changed again, reloaded with no questions: the lag the reload itself causes
        for path in files[::4]:
            path.write_text(path.read_text(encoding="utf-8", errors="replace") + "\nAgain.", encoding="utf-8")
        await asyncio.sleep(LAG_WINDOW_S + 0.5)  # the bot's lag window forgets the bursts
        bot.reset_lag()
        since = time.monotonic()
        alone = await stub.invoke_command("reload", {}, user_id=MANAGER, channel_id=GENERAL)
        started = time.monotonic()
        while (
            "Reload done" not in ((alone.original or {}).get("content") or "")
            and time.monotonic() - started < 120
        ):
            await asyncio.sleep(0.05)
        seen = round(time.monotonic() - started, 2)
        await asyncio.sleep(1.0)  # the swap happens before the summary is sent; one more lag sample after it
        report["reload_alone"] = {
            "reload_summary": ((alone.original or {}).get("content") or "").splitlines()[0],
            "reload_s_seen_by_admin": seen,
            "worst_loop_lag_ms": await bot.worst_lag_ms(),
            "longest_heartbeat_gap_s": heartbeat_gap(stub, since),
        }
    if args.compare:
        ask_qs = questions_from(service, 20 + args.ask_questions, seed=11)
        phase("/ask bursts: newsdesk")
        await ask_bursts(stub, bot, ask_qs[:20], args.ask_members, args.ask_burst)  # warm up
        report["ask_newsdesk"] = await ask_bursts(
            stub, bot, ask_qs[20:], args.ask_members, args.ask_burst, timeline=args.timeline
        )
        await bot.stop()
        phase("/ask bursts: the minimal bot (bm25s, defer + edit + four-button view)")
        bot = MinimalBotProcess(stub, service, work)
        await bot.start()
        await ask_bursts(stub, bot, ask_qs[:20], args.ask_members, args.ask_burst)
        report["ask_minimal_bot"] = await ask_bursts(
            stub, bot, ask_qs[20:], args.ask_members, args.ask_burst, timeline=args.timeline
        )
        mine, ref = report["ask_newsdesk"], report["ask_minimal_bot"]
        report["ask_ratio_newsdesk_to_minimal"] = {
            "p99": round(mine["p99_ms"] / ref["p99_ms"], 2),
            "cpu_per_answer": round(mine["cpu_ms_per_answer"] / ref["cpu_ms_per_answer"], 2),
        }
    print(json.dumps(report, indent=2), flush=True)
    await bot.stop()
    await stub.close()
    monkeypatch.undo()
    service.close()
    shutil.rmtree(work, ignore_errors=True)  # kept when a run fails: its logs say why


if __name__ == "__main__":
    asyncio.run(main())
