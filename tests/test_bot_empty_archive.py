"""The bot over an archive with no articles yet: it starts, and says so instead of failing."""

from __future__ import annotations

import pytest

from retrieval.service import NewsService
from tests.bot_harness import GENERAL, READER, callback_text, embed_text, shown
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


@pytest.fixture
def service(store_target, tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    svc = NewsService(store_target, corpus, index_cache=tmp_path / "index-cache")
    svc.reload()
    svc.open()
    yield svc
    svc.close()


async def test_ask_on_an_empty_archive_says_there_are_no_articles_yet(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "comet?"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert "no articles yet" in shown(callback_text(record))


async def test_a_mention_on_an_empty_archive_is_answered_in_one_line(discord_stub, bot):  # noqa: F811
    question = await discord_stub.send_message(GENERAL, READER, "who saw the comet?", mentions_bot=True)
    replies = await discord_stub.wait_for(
        lambda: [
            m
            for m in discord_stub.messages(GENERAL)
            if (m.get("message_reference") or {}).get("message_id") == str(question["id"])
        ],
        timeout=10,
    )
    assert "no articles yet" in embed_text(replies[0])


async def test_headlines_on_an_empty_archive_answer(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command("headlines", {}, user_id=READER, channel_id=GENERAL)
    await record.wait_done(timeout=10)
    assert "Traceback" not in callback_text(record) and callback_text(record).strip()
