"""How answers read in Discord: follow-ups led by their own words, Missing lines, spelling corrections.

The real bot, through discord.py, against the local Discord stub.
"""

from __future__ import annotations

import pytest

from retrieval.service import NewsService
from tests.bot_harness import GENERAL, GUILD, READER, corpus_file, shown
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


@pytest.fixture
def service(store_target, tmp_path, sample_corpus):
    # An article that shares a word with the earlier question ("offensive") and none with the follow-up.
    corpus_file(
        sample_corpus,
        "local/manager.txt",
        "Manager Apologises For Offensive Chant",
        "The football manager said the chant was offensive and apologised to the fans on Saturday.",
    )
    svc = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    svc.reload()
    yield svc
    svc.close()


async def _reply_to(stub, channel_id, message):
    replies = await stub.wait_for(
        lambda: [
            m
            for m in stub.messages(channel_id)
            if (m.get("message_reference") or {}).get("message_id") == str(message["id"])
        ],
        timeout=10,
    )
    return replies[0]


def _first_result(reply) -> str:
    return shown(reply["embeds"][0]["description"].split("\n\n")[0])


async def test_a_reply_follow_up_quotes_the_answer_to_its_own_words(discord_stub, bot):  # noqa: F811
    first = await discord_stub.send_message(
        GENERAL, READER, "the SDF offensive to take Manbij", mentions_bot=True
    )
    answer = await _reply_to(discord_stub, GENERAL, first)
    follow_up = await discord_stub.send_message(
        GENERAL, READER, "what share of civilians managed to escape?", reference_message_id=int(answer["id"])
    )
    reply = await _reply_to(discord_stub, GENERAL, follow_up)
    assert "following up on: the SDF offensive to take Manbij" in reply["embeds"][0]["title"]
    first_result = _first_result(reply)
    assert "ISIS Stronghold" in first_result and "80 percent of civilians managed to escape" in first_result


async def test_a_follow_up_in_a_thread_keeps_the_conversation(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "the SDF offensive to take Manbij"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    thread_id = int(record.original["id"])  # a thread started from the answer has the answer's id
    discord_stub.world.add_thread(GUILD, thread_id, parent_id=GENERAL, owner_id=READER, name="Manbij")
    follow = await discord_stub.send_message(thread_id, READER, "what share of civilians managed to escape?")
    reply = await _reply_to(discord_stub, thread_id, follow)
    assert "80 percent of civilians managed to escape" in _first_result(reply)
    # The next message in the thread follows up on the whole conversation, not the first question alone.
    again = await discord_stub.send_message(thread_id, READER, "who fortified themselves to save them?")
    reply = await _reply_to(discord_stub, thread_id, again)
    assert "following up on: what share of civilians managed to escape?" in reply["embeds"][0]["title"]
    assert "ISIS Stronghold" in _first_result(reply)


async def test_a_result_that_lacks_a_distinctive_word_says_so(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask",
        {"question": "how much did the riverside library repairs cost in qatar"},
        user_id=READER,
        channel_id=GENERAL,
    )
    await record.wait_done(timeout=10)
    first = record.original["embeds"][0]["description"].split("\n\n")[0]
    assert "Riverside Library Reopens" in shown(first)
    assert first.endswith("\n-# Missing: qatar")


async def test_a_corrected_spelling_is_shown_above_the_results(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask",
        {"question": "how much did the riverside libary repairs cost"},
        user_id=READER,
        channel_id=GENERAL,
    )
    await record.wait_done(timeout=10)
    description = record.original["embeds"][0]["description"]
    assert description.startswith("Showing results for **library** (not libary)")
    assert "3.2 million pounds" in shown(description)


async def test_a_headline_only_record_is_found_by_its_title_and_listed_in_headlines(
    discord_stub,  # noqa: F811
    service,
    bot,
):
    wire = service.corpus_dir / "wire.jsonl"
    wire.write_text(
        '{"id": "wire/77", "title": "OPEC AGREES TO CUT OUTPUT", "published": "2099-01-02T09:00:00"}\n',
        encoding="utf-8",
    )
    service.reload()
    record = await discord_stub.invoke_command(
        "ask", {"question": "did opec cut output?"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    first = shown(record.original["embeds"][0]["description"].split("\n\n")[0])
    assert "OPEC AGREES TO CUT OUTPUT" in first
    listing = await discord_stub.invoke_command("headlines", {"count": 3}, user_id=READER, channel_id=GENERAL)
    await listing.wait_done(timeout=10)
    assert "OPEC AGREES TO CUT OUTPUT" in shown(listing.original["embeds"][0]["description"]).split("\n")[0]


async def test_a_reply_to_an_answer_not_remembered_reads_the_question_from_its_heading(
    discord_stub,  # noqa: F811
    bot,
):
    first = await discord_stub.send_message(
        GENERAL, READER, "the SDF offensive to take Manbij", mentions_bot=True
    )
    answer = await _reply_to(discord_stub, GENERAL, first)
    bot.answers = type(bot.answers)()  # as after a restart: no answer remembered
    follow_up = await discord_stub.send_message(
        GENERAL, READER, "what share of civilians managed to escape?", reference_message_id=int(answer["id"])
    )
    reply = await _reply_to(discord_stub, GENERAL, follow_up)
    assert "following up on: the SDF offensive to take Manbij" in reply["embeds"][0]["title"]
    assert "80 percent of civilians managed to escape" in _first_result(reply)
