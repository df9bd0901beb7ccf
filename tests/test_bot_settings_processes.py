"""Per-server settings across real ``newsdesk run`` processes: a restart, two shards, the Message Content intent.

Each process is the real ``newsdesk run`` in a subprocess, connected to the local Discord stub."""

from __future__ import annotations

import asyncio
import re

import pytest

from retrieval.server_settings import ServerSettings, ServerSettingsTable
from retrieval.service import NewsService
from retrieval.store import open_store
from tests.bot_harness import embed_text, shown
from tests.discord_stub import DiscordStub
from tests.test_bot_processes import (
    CHANNEL_A,
    CHANNEL_B,
    GUILD_A,
    GUILD_B,
    OWNER,
    READER,
    SECRET,
    bot_process,
)

ADMIN = 1_400_000_000_000_000_012
MESSAGE_CONTENT = 1 << 15
QUESTION = "how much did the library repairs cost?"

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


def make_stub(shard_count: int) -> DiscordStub:
    return DiscordStub(token=SECRET, shard_count=shard_count)


def build(stub: DiscordStub) -> None:
    stub.add_guild(GUILD_A, name="A", owner_id=OWNER)
    stub.add_guild(GUILD_B, name="B", owner_id=OWNER)
    stub.add_channel(GUILD_A, CHANNEL_A)
    stub.add_channel(GUILD_B, CHANNEL_B)
    for guild in (GUILD_A, GUILD_B):
        stub.add_member(guild, READER, name="reader")
        stub.add_member(guild, ADMIN, name="admin")


@pytest.fixture
def db(store_target, tmp_path, sample_corpus) -> str:
    service = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    service.reload()
    service.close()
    return store_target


def env_for(db, sample_corpus, **extra) -> dict:
    return {
        "DISCORD_TOKEN": SECRET,
        "NEWSDESK_DB": db,
        "NEWSDESK_INDEX_CACHE": str(sample_corpus.parent / "index-cache"),
        "NEWSDESK_CORPUS_DIR": str(sample_corpus),
        "NEWSDESK_ADMIN_USERS": str(ADMIN),
        **extra,
    }


async def settings(stub, channel, subcommand, options=None) -> str:
    # ADMIN is in NEWSDESK_ADMIN_USERS without Manage Server: a server admin has shown it the command.
    record = await stub.invoke_command(
        "settings",
        options or {},
        subcommand=subcommand,
        user_id=ADMIN,
        channel_id=channel,
        enforce_permissions=False,
    )
    await record.wait_done(timeout=20)
    return shown(embed_text(record.callbacks[0]["data"]))


def reply_to(stub, channel, message) -> list[dict]:
    return [
        m
        for m in stub.messages(channel)
        if (m.get("message_reference") or {}).get("message_id") == message["id"]
    ]


async def answered(stub, channel, content=QUESTION, *, mention=False) -> dict:
    message = await stub.send_message(channel, READER, content, mentions_bot=mention)
    return (await stub.wait_for(lambda: reply_to(stub, channel, message), timeout=20))[0]


def results_in(reply: dict) -> int:
    return len(re.findall(r"^\*\*\d+\. ", embed_text(reply), re.M))


async def test_settings_survive_a_restart_and_auto_asks_for_the_intent_they_need(tmp_path, sample_corpus, db):
    async with make_stub(1) as stub:
        build(stub)
        env = env_for(db, sample_corpus)  # NEWSDESK_MESSAGE_CONTENT unset: auto
        async with bot_process(stub, env, tmp_path / "first.log"):
            await stub.wait_for(lambda: len(stub.gateway.identifies) == 1, timeout=30)
            assert not stub.gateway.identifies[0]["intents"] & MESSAGE_CONTENT  # no Q&A channel anywhere
            text = await settings(stub, CHANNEL_A, "qa-channel add", {"channel": CHANNEL_A})
            assert "is now a Q&A channel" in text and "Message Content Intent" in text
            assert "now show 1 answer." in await settings(stub, CHANNEL_A, "results", {"count": 1})

        async with bot_process(stub, env, tmp_path / "second.log"):
            await stub.wait_for(lambda: len(stub.gateway.identifies) == 2, timeout=30)
            assert stub.gateway.identifies[1]["intents"] & MESSAGE_CONTENT  # a server has a Q&A channel now
            reply = await answered(stub, CHANNEL_A)  # no mention: a Q&A channel set before the restart
            assert "3.2 million" in shown(embed_text(reply)) and results_in(reply) == 1
            # Guild B never changed anything: today's behaviour, from the environment.
            plain = await answered(stub, CHANNEL_B, mention=True)
            service = NewsService(db, sample_corpus, index_cache=tmp_path / "index-cache")
            default = len(service.search(QUESTION, k=3).results)  # NEWSDESK_RESULTS unset: 3
            service.close()
            assert default > 1 and results_in(plain) == default


async def test_a_change_through_one_shard_process_is_in_force_in_the_other(tmp_path, sample_corpus, db):
    async with make_stub(2) as stub:
        build(stub)
        common = env_for(db, sample_corpus, NEWSDESK_SHARD_COUNT="2", NEWSDESK_MESSAGE_CONTENT="on")
        async with (
            bot_process(stub, {**common, "NEWSDESK_SHARD_IDS": "0"}, tmp_path / "shard0.log"),
            bot_process(stub, {**common, "NEWSDESK_SHARD_IDS": "1"}, tmp_path / "shard1.log"),
        ):
            await stub.wait_for(
                lambda: {i["shard_id"] for i in stub.gateway.identifies} == {0, 1}, timeout=30
            )
            await stub.wait_for_guild_session(GUILD_B, timeout=10)
            # Guild A belongs to shard 0: its process takes the command and writes the setting.
            assert "is now a Q&A channel" in await settings(
                stub, CHANNEL_A, "qa-channel add", {"channel": CHANNEL_A}
            )
            # Then guild A moves to shard 1's process, which never saw the command: the database told it.
            await stub.move_guild(GUILD_A, 1)
            replies: list[dict] = []
            for _ in range(20):  # within NEWSDESK_WATCH_EVERY (1 s) of the change, give or take the move
                message = await stub.send_message(CHANNEL_A, READER, QUESTION)
                await asyncio.sleep(1.5)
                replies = reply_to(stub, CHANNEL_A, message)
                if replies:
                    break
            assert replies and "3.2 million" in shown(embed_text(replies[0]))
        assert "picked up server settings version" in (tmp_path / "shard1.log").read_text()


async def test_auto_starts_without_the_intent_when_discord_refuses_it_for_a_servers_channel(
    tmp_path, sample_corpus, db
):
    store = open_store(db)
    ServerSettingsTable(store).update(
        GUILD_A, lambda row: ServerSettings(GUILD_A, qa_channels=frozenset({CHANNEL_A})), user_id=ADMIN
    )
    store.close()
    async with make_stub(1) as stub:
        stub.application_flags = 0  # Message Content not enabled in the developer portal
        build(stub)
        async with bot_process(stub, env_for(db, sample_corpus), tmp_path / "bot.log"):
            await stub.wait_for(lambda: len(stub.gateway.identifies) == 1, timeout=30)
            reply = await answered(stub, CHANNEL_A, mention=True)  # mentions still work
            assert "3.2 million" in shown(embed_text(reply))
    assert "Discord refused the Message Content intent" in (tmp_path / "bot.log").read_text()


async def test_an_environment_qa_channel_without_the_intent_still_stops_the_start(
    tmp_path, sample_corpus, db
):
    async with make_stub(1) as stub:
        stub.application_flags = 0
        build(stub)
        env = env_for(db, sample_corpus, NEWSDESK_QA_CHANNELS=str(CHANNEL_A))
        async with bot_process(stub, env, tmp_path / "bot.log") as process:
            code = await asyncio.wait_for(process.wait(), 60)
    output = (tmp_path / "bot.log").read_text()
    assert code == 2
    assert "NEWSDESK_QA_CHANNELS needs the Message Content intent" in output and "Traceback" not in output
