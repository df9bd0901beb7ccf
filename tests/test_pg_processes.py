"""Whole processes on one PostgreSQL database: two ``newsdesk run`` bots in working folders of their own (no
shared files) and one ``newsdesk ingest``, and a bot that loses its database for a while.

Each bot is the real ``newsdesk run`` in a subprocess, connected to the local Discord stub."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
import urllib.request

import psycopg
import pytest

from retrieval.pg_store import POOL_TIMEOUT
from tests.bot_harness import button_ids, callback_text, corpus_file, embed_text, shown
from tests.cli_harness import newsdesk
from tests.discord_stub import DiscordStub
from tests.test_bot_processes import (
    CHANNEL_A,
    CHANNEL_B,
    GUILD_A,
    GUILD_B,
    OWNER,
    READER,
    SECRET,
    ask,
    bot_process,
)

FERRY = (
    "local/ferry.txt",
    "Night Ferry Returns",
    "The night ferry to Port Ellen returns on Friday after a winter.",
)
KITES = (
    "local/kites.txt",
    "Kite Festival Moves Inland",
    "The kite festival moves inland to Craigmore this summer.",
)


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


def ingest(url: str, corpus, cwd) -> dict:
    """``newsdesk ingest --json`` in a process and a working folder of its own."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = newsdesk("ingest", str(corpus), "--db", url, "--json", cwd=cwd, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def working_folder(tmp_path, name: str, sample_corpus):
    """A folder of its own for one process, holding its own copy of the corpus."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copytree(sample_corpus, folder / "articles")
    return folder


async def answered(stub, channel, question, title, timeout=10.0) -> float:
    """Ask until an answer shows ``title``; returns when it first did (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while True:
        answer = shown(embed_text(await ask(stub, channel, question)))
        if title in answer:
            return time.monotonic()
        assert time.monotonic() < deadline, f"no answer showing {title!r} within {timeout} s: {answer[:300]}"
        await asyncio.sleep(0.2)


async def vote(stub, reply, emoji) -> str:
    record = await stub.click_button(reply, button_ids(reply)[emoji], user_id=READER)
    await record.wait_done(timeout=20)
    return record.original["content"]


async def test_two_bots_and_an_ingest_share_one_database(stub, pg_url, tmp_path, sample_corpus):
    a = working_folder(tmp_path, "a", sample_corpus)
    b = working_folder(tmp_path, "b", sample_corpus)
    feeder = working_folder(tmp_path, "ingest", sample_corpus)
    first = ingest(pg_url, feeder / "articles", feeder)
    assert first["added"] > 0
    common = {
        "DISCORD_TOKEN": SECRET,
        "NEWSDESK_DB": pg_url,
        "NEWSDESK_SHARD_COUNT": "2",
        "NEWSDESK_ADMIN_USERS": str(READER),
        "NEWSDESK_WATCH_EVERY": "5",  # versions are heard, not polled: swaps come well within this
    }
    async with (
        bot_process(
            stub,
            {**common, "NEWSDESK_SHARD_IDS": "0", "NEWSDESK_CORPUS_DIR": str(a / "articles")},
            a / "bot.log",
        ),
        bot_process(
            stub,
            {**common, "NEWSDESK_SHARD_IDS": "1", "NEWSDESK_CORPUS_DIR": str(b / "articles")},
            b / "bot.log",
        ),
    ):
        await stub.wait_for(lambda: {i["shard_id"] for i in stub.gateway.identifies} == {0, 1}, timeout=60)
        reply_a = await ask(stub, CHANNEL_A, "library repairs cost")
        reply_b = await ask(stub, CHANNEL_B, "library repairs cost")
        assert "3.2 million" in shown(embed_text(reply_a)) and "3.2 million" in shown(embed_text(reply_b))

        # A reload by the bot of shard 0 is answered by the bot of shard 1 within seconds.
        corpus_file(a / "articles", *FERRY)
        reload = await stub.invoke_command(
            "reload", {}, user_id=READER, channel_id=CHANNEL_A, enforce_permissions=False
        )
        await stub.wait_for(
            lambda: "Reload done" in ((reload.original or {}).get("content") or ""), timeout=60
        )
        done = time.monotonic()
        seen = await answered(stub, CHANNEL_B, "when does the night ferry return?", "Night Ferry Returns")
        assert seen - done < 3.0

        # So is one by `newsdesk ingest`, for both bots.
        corpus_file(feeder / "articles", *FERRY)
        corpus_file(feeder / "articles", *KITES)
        third = ingest(pg_url, feeder / "articles", feeder)
        done = time.monotonic()
        for channel in (CHANNEL_A, CHANNEL_B):
            seen = await answered(
                stub, channel, "where does the kite festival move?", "Kite Festival Moves Inland"
            )
            assert seen - done < 3.0

        # Feedback recorded through both bots is kept.
        assert (await vote(stub, reply_a, "👎")).startswith("Thanks")
        assert (await vote(stub, reply_b, "👍")).startswith("Thanks")

    with psycopg.connect(pg_url) as conn:
        votes = sorted(r[0] for r in conn.execute("SELECT vote FROM feedback"))
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'corpus_version'").fetchone()[0])
    assert votes == [-1, 1]
    assert version == third["corpus_version"]
    log_a, log_b = (a / "bot.log").read_text(), (b / "bot.log").read_text()
    # Each bot downloaded the versions it did not build, and built none from the rows.
    assert "downloaded the index of corpus version" in log_b and "building the search index" not in log_b
    assert f"picked up corpus version {third['corpus_version']}" in log_a
    assert f"picked up corpus version {third['corpus_version']}" in log_b
    assert {p.name for p in (a / "data" / "index-cache").iterdir()} and {
        p.name for p in (b / "data" / "index-cache").iterdir()
    }  # each process has its own local cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        return json.loads(response.read())


async def test_a_bot_keeps_answering_while_the_database_is_down_and_recovers(
    stub, pg_cluster, pg_url, tmp_path, sample_corpus
):
    folder = working_folder(tmp_path, "bot", sample_corpus)
    ingest(pg_url, folder / "articles", tmp_path / "ingest")
    port = _free_port()
    env = {
        "DISCORD_TOKEN": SECRET,
        "NEWSDESK_DB": pg_url,
        "NEWSDESK_CORPUS_DIR": str(folder / "articles"),
        "NEWSDESK_ADMIN_USERS": str(READER),
        "NEWSDESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NEWSDESK_WEB_PORT": str(port),
        "NEWSDESK_WATCH_EVERY": "1",
    }
    async with bot_process(stub, env, folder / "bot.log"):
        await stub.wait_for(lambda: stub.gateway.identifies, timeout=60)
        reply = await ask(stub, CHANNEL_A, "library repairs cost")
        assert "3.2 million" in shown(embed_text(reply))
        assert (await asyncio.to_thread(healthz, port))["database"]["reachable"] is True

        pg_cluster.stop()
        try:
            # It keeps answering from the index and the corpus copy it loaded.
            assert "3.2 million" in shown(embed_text(await ask(stub, CHANNEL_A, "library repairs cost")))
            health = await _wait_health(port, reachable=False, timeout=30)
            assert health["status"] == "degraded" and health["database"]["error"]
            about = await stub.invoke_command("about", {}, user_id=READER, channel_id=CHANNEL_A)
            await about.wait_done(timeout=10)
            assert "Unreachable since" in embed_text(about.original)
            # A vote, or a settings change, is not said to be saved unless it was; and the member is told
            # promptly (the store, knowing the database down, waits DOWN_TIMEOUT, not the pool's 10 s).
            started = time.monotonic()
            said = await vote(stub, reply, "👍")
            assert "couldn't record your vote" in said
            change = await results_setting(stub, 1)
            assert "didn't work" in change and "cannot reach the PostgreSQL database" in change
            assert time.monotonic() - started < POOL_TIMEOUT  # both: each waited 10 s or more before
        finally:
            pg_cluster.start()

        health = await _wait_health(port, reachable=True, timeout=45)
        assert health["status"] == "ok"
        assert (await vote(stub, reply, "👍")).startswith("Thanks")  # voting again works, and is kept
        assert "now show 1 answer" in await results_setting(stub, 1)
        # New versions are heard again.
        corpus_file(folder / "articles", *FERRY)
        ingest(pg_url, folder / "articles", tmp_path / "ingest")
        await answered(
            stub, CHANNEL_A, "when does the night ferry return?", "Night Ferry Returns", timeout=10
        )

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT vote FROM feedback").fetchall() == [(1,)]
        assert conn.execute("SELECT results FROM server_settings").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM server_settings_changes").fetchone() == (1,)
    log = (folder / "bot.log").read_text()
    assert "the database does not answer" in log and "the database answers again" in log
    assert "Traceback" not in log


async def results_setting(stub, count: int) -> str:
    """``/settings results count:N`` by an admin in guild A; what the bot said."""
    record = await stub.invoke_command(
        "settings",
        {"count": count},
        subcommand="results",
        user_id=READER,
        channel_id=CHANNEL_A,
        enforce_permissions=False,
    )
    await record.wait_done(timeout=20)
    return shown(callback_text(record))


async def _wait_health(port: int, *, reachable: bool, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = await asyncio.to_thread(healthz, port)
        if health["database"]["reachable"] is reachable:
            return health
        assert time.monotonic() < deadline, f"/healthz still says {health['database']}"
        await asyncio.sleep(0.5)
