"""Several bot processes on one database, and the token kept out of every log line.

Each process is the real ``newsdesk run`` in a subprocess, connected to the local Discord stub."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys

import pytest

from retrieval.service import NewsService
from tests.bot_harness import corpus_file, embed_text, shown
from tests.data import REPO, descendants, process_alive
from tests.discord_stub import DiscordStub

SECRET = "NEWSDESK-SECRET-TOKEN-0123456789abcdefXYZ"
GUILD_A = 290_000_000_000 << 22  # shard 0 of 2
GUILD_B = 290_000_000_001 << 22  # shard 1 of 2
CHANNEL_A = 1_300_000_000_000_000_011
CHANNEL_B = 1_300_000_000_000_000_012
OWNER = 1_400_000_000_000_000_010
READER = 1_400_000_000_000_000_011


@pytest.fixture
async def stub():
    async with DiscordStub(token=SECRET, shard_count=2) as running:
        running.add_guild(GUILD_A, name="A", owner_id=OWNER)
        running.add_guild(GUILD_B, name="B", owner_id=OWNER)
        running.add_channel(GUILD_A, CHANNEL_A)
        running.add_channel(GUILD_B, CHANNEL_B)
        running.add_member(GUILD_A, READER, name="reader")
        running.add_member(GUILD_B, READER, name="reader")
        yield running


# Starts the bot as a terminal would: Ctrl-C (SIGINT) enabled, even when these tests run in a background job,
# which starts its commands with SIGINT ignored (and Python then leaves it ignored).
_INTERRUPTIBLE = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@contextlib.asynccontextmanager
async def bot_process(
    stub: DiscordStub, env: dict, log_path, *, interruptible: bool = False, preexec_fn=None
):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    full_env.update({"NEWSDESK_LOG_LEVEL": "DEBUG", "NEWSDESK_COOLDOWN": "0", "NEWSDESK_WATCH_EVERY": "1"})
    full_env.update(env)
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *(["-c", _INTERRUPTIBLE] if interruptible else []),
        str(REPO / "tests" / "stub_process.py"),
        stub.base_url,
        stub.gateway_url + "/",
        "run",
        cwd=log_path.parent,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


async def ask(stub, channel, question):
    message = await stub.send_message(channel, READER, question, mentions_bot=True)

    def reply():
        return [
            m
            for m in stub.messages(channel)
            if (m.get("message_reference") or {}).get("message_id") == message["id"]
        ]

    return (await stub.wait_for(reply, timeout=20))[0]


@pytest.mark.both_stores
async def test_two_shard_processes_answer_their_guilds_and_follow_a_reload(
    stub, store_target, tmp_path, sample_corpus
):
    service = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    service.reload()
    service.close()
    common = {
        "DISCORD_TOKEN": SECRET,
        "NEWSDESK_DB": store_target,
        "NEWSDESK_INDEX_CACHE": str(tmp_path / "index-cache"),
        "NEWSDESK_CORPUS_DIR": str(sample_corpus),
        "NEWSDESK_SHARD_COUNT": "2",
        "NEWSDESK_ADMIN_USERS": str(READER),
    }
    async with (
        bot_process(stub, {**common, "NEWSDESK_SHARD_IDS": "0"}, tmp_path / "shard0.log"),
        # Shard 1 keeps its index apart, as on another machine (an SQLite file keeps it beside the file).
        bot_process(
            stub,
            {**common, "NEWSDESK_SHARD_IDS": "1", "NEWSDESK_INDEX_CACHE": str(tmp_path / "shard1-cache")},
            tmp_path / "shard1.log",
        ),
    ):
        await stub.wait_for(lambda: {i["shard_id"] for i in stub.gateway.identifies} == {0, 1}, timeout=30)
        assert "3.2 million" in shown(embed_text(await ask(stub, CHANNEL_A, "library repairs cost")))
        assert "3.2 million" in shown(embed_text(await ask(stub, CHANNEL_B, "library repairs cost")))

        corpus_file(
            sample_corpus,
            "local/ferry.txt",
            "Night Ferry Returns",
            "The night ferry to Port Ellen returns on Friday after a winter without sailings.",
        )
        reload = await stub.invoke_command(
            "reload", {}, user_id=READER, channel_id=CHANNEL_A, enforce_permissions=False
        )
        await stub.wait_for(
            lambda: "Reload done" in ((reload.original or {}).get("content") or ""), timeout=30
        )
        # The process of shard 1 did not run the reload; it watches the corpus version in the database.
        for _ in range(20):
            answer = shown(embed_text(await ask(stub, CHANNEL_B, "when does the night ferry return?")))
            if "Night Ferry Returns" in answer:
                break
            await asyncio.sleep(0.5)
        assert "Night Ferry Returns" in answer
    logs = (tmp_path / "shard0.log").read_text() + (tmp_path / "shard1.log").read_text()
    assert "picked up corpus version" in (tmp_path / "shard1.log").read_text()
    assert SECRET not in logs
    # uvloop's event loop where it is installed (a dependency on Linux and macOS)
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert logs.count(f"event loop: {loop}") == 2
    assert "Sending IDENTIFY" in logs or "Shard ID" in logs or "shard" in logs.lower()


async def test_a_refused_token_fails_with_one_line_and_never_shows_the_token(tmp_path, sample_corpus):
    async with DiscordStub(token="a-different-token-0123456789abcdef") as stub:
        env = {
            "DISCORD_TOKEN": SECRET,
            "NEWSDESK_DB": str(tmp_path / "n.db"),
            "NEWSDESK_CORPUS_DIR": str(sample_corpus),
        }
        async with bot_process(stub, env, tmp_path / "bad.log") as process:
            code = await asyncio.wait_for(process.wait(), 60)
    output = (tmp_path / "bad.log").read_text()
    assert code == 2
    assert "Discord refused the token in DISCORD_TOKEN" in output
    assert SECRET not in output and "Traceback" not in output


def test_without_uvloop_the_bot_runs_on_asyncios_own_loop(monkeypatch):
    from bot.main import event_loop_factory

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it cannot be installed (Windows)
    assert event_loop_factory() is None
    monkeypatch.delitem(sys.modules, "uvloop")
    if importlib.util.find_spec("uvloop"):
        factory = event_loop_factory()
        assert factory is not None
        loop = factory()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()


def _ingested(tmp_path, sample_corpus, *, search_processes: str) -> dict:
    """The sample corpus ingested into a database in ``tmp_path``; the bot's settings to serve it."""
    service = NewsService(str(tmp_path / "news.db"), sample_corpus)
    service.reload()
    service.close()
    return {
        "DISCORD_TOKEN": SECRET,
        "NEWSDESK_DB": str(tmp_path / "news.db"),
        "NEWSDESK_CORPUS_DIR": str(sample_corpus),
        "NEWSDESK_SEARCH_PROCESSES": search_processes,
    }


def _search_processes_of(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as f:
            if b"retrieval.search_process" in f.read():
                found.append(child)
    return found


def _as_batch_work() -> None:
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
@pytest.mark.parametrize(
    "processes, run_as_batch, bot_policy, search_policy",
    [
        # With a search process, the bot's event loop is batch work for the kernel (its wake-ups do not
        # interrupt the search process mid-question), and the search process runs under the usual policy.
        ("1", False, "SCHED_BATCH", "SCHED_OTHER"),
        # Without one, the bot keeps the usual policy.
        ("0", False, "SCHED_OTHER", None),
        # A policy chosen by whoever runs the bot (here: all of it as batch work) is left as it is.
        ("1", True, "SCHED_BATCH", "SCHED_BATCH"),
    ],
    ids=["search-process", "none", "chosen-by-the-operator"],
)
async def test_the_event_loop_lets_its_search_process_go_first(
    stub, tmp_path, sample_corpus, processes, run_as_batch, bot_policy, search_policy
):
    env = _ingested(tmp_path, sample_corpus, search_processes=processes)
    preexec = _as_batch_work if run_as_batch else None
    async with bot_process(stub, env, tmp_path / "bot.log", preexec_fn=preexec) as process:
        await stub.wait_for(lambda: stub.gateway.identifies, timeout=30)
        assert "3.2 million" in shown(embed_text(await ask(stub, CHANNEL_A, "library repairs cost")))
        assert os.sched_getscheduler(process.pid) == getattr(os, bot_policy)
        searching = _search_processes_of(process.pid)
        if search_policy is None:
            assert not searching
        else:
            assert searching, "no search process beside the bot"
            # Once it has started (the first answer may come from the bot itself meanwhile): it sets its policy
            # first thing, before it says it is ready.
            await stub.wait_for(lambda: "answers questions" in (tmp_path / "bot.log").read_text(), timeout=30)
            assert {os.sched_getscheduler(pid) for pid in searching} == {getattr(os, search_policy)}
    log = (tmp_path / "bot.log").read_text()
    assert "Traceback" not in log, log


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_ctrl_c_or_sigterm_stops_the_bot_and_its_search_process(stub, tmp_path, sample_corpus, signum):
    env = _ingested(tmp_path, sample_corpus, search_processes="1")
    async with bot_process(stub, env, tmp_path / "bot.log", interruptible=True) as process:
        await stub.wait_for(lambda: stub.gateway.identifies, timeout=30)
        assert "3.2 million" in shown(embed_text(await ask(stub, CHANNEL_A, "library repairs cost")))
        children = descendants(process.pid)
        assert children, "no search process beside the bot"
        process.send_signal(signum)
        try:
            code = await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            code = None
        assert code == 0, (tmp_path / "bot.log").read_text()
        # The gateway session was closed by the bot (1000), not dropped with the process: Discord shows it
        # offline at once.
        await stub.wait_for(lambda: not stub.gateway.connected(), timeout=10)
        assert {c.ws.close_code for c in stub.gateway.connections} == {1000}
    for child in children:
        await stub.wait_for(lambda child=child: not process_alive(child), timeout=10)
    log = (tmp_path / "bot.log").read_text()
    assert "Traceback" not in log, log
