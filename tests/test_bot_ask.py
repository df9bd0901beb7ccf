"""Asking in Discord, end to end: the real bot, through discord.py, against the local Discord stub."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest

from retrieval.service import NewsService
from tests.bot_harness import (
    EPHEMERAL,
    GENERAL,
    OTHER_READER,
    QA,
    READER,
    build_world,
    button_ids,
    corpus_file,
    embed_text,
    running_bot,
    shown,
)
from tests.data import REPO
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

SEED_TITLE = "ISIS Stronghold Fled Civilians Surrounded by US-Backed Forces"


@pytest.fixture
def service(store_target, tmp_path, sample_corpus):
    corpus_file(
        sample_corpus,
        "hostile.txt",
        "Mass ping attempt @everyone",
        "Visitors to the harbour festival were told @everyone and @here and <@123456789012345678> "
        "should bring **umbrellas** and `coats` and [click here](https://evil.example) for tickets.",
    )
    svc = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    svc.reload()
    yield svc
    svc.close()


def bot_replies_to(stub, channel_id, message_id):
    return [
        m
        for m in stub.messages(channel_id)
        if (m.get("message_reference") or {}).get("message_id") == str(message_id)
    ]


async def wait_reply(stub, channel_id, message):
    replies = await stub.wait_for(lambda: bot_replies_to(stub, channel_id, message["id"]), timeout=10)
    return replies[0]


async def test_registered_commands_match_the_documented_schema(discord_stub, bot):  # noqa: F811
    commands = {c["name"]: c for c in discord_stub.registered_commands()}
    assert {"ask", "headlines", "reload", "feedback", "about", "help"} <= set(commands)
    ask = {o["name"]: o for o in commands["ask"]["options"]}
    assert (ask["question"]["type"], ask["question"].get("required")) == (3, True)
    assert (ask["private"]["type"], ask["private"].get("required", False)) == (5, False)
    headlines = {o["name"]: o for o in commands["headlines"]["options"]}
    assert (headlines["count"]["min_value"], headlines["count"]["max_value"]) == (1, 25)
    assert set(headlines) == {"count", "query", "since", "until"}
    for admin in ("reload", "feedback"):
        assert commands[admin]["default_member_permissions"] == str(0x20)
        assert commands[admin].get("contexts") == [0] or commands[admin].get("dm_permission") is False
    readme = (REPO / "README.md").read_text()
    for name in commands:
        assert f"`/{name}" in readme, f"/{name} is not documented in the README"


async def test_slash_ask_answers_in_its_first_response_with_quote_link_and_date(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "when did the SDF encircle Manbij?"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert record.callback_types == [4]  # answered at once: no deferral, no edit
    assert not [r for r in discord_stub.requests if r.method == "PATCH"]
    text = embed_text(record.original)
    bold = re.findall(r"\*\*([^*]+)\*\*", text)
    assert any("Manbij" in b for b in bold) and any("encircl" in b for b in bold)
    assert f"{SEED_TITLE} · 2016-06-21" in shown(text)
    assert "> After fully encircling Manbij on June 8" in shown(text)


async def test_a_mention_is_answered_as_a_reply_that_pings_no_one(discord_stub, bot):  # noqa: F811
    question = await discord_stub.send_message(
        GENERAL, READER, "how much did the library repairs cost?", mentions_bot=True
    )
    reply = await wait_reply(discord_stub, GENERAL, question)
    assert "3.2 million pounds" in shown(embed_text(reply))
    mentions = discord_stub.allowed_mentions(int(reply["id"]))
    assert mentions["parse"] == [] and mentions.get("replied_user") is False


async def test_every_message_in_a_qa_channel_is_a_question(discord_stub, bot):  # noqa: F811
    question = await discord_stub.send_message(QA, READER, "who discovered the comet?")
    reply = await wait_reply(discord_stub, QA, question)
    assert "Amateur Astronomer Spots New Comet" in shown(embed_text(reply))
    assert "retired teacher in Dunmore" in shown(embed_text(reply))


async def test_other_channels_are_left_alone_without_a_mention(discord_stub, bot):  # noqa: F811
    question = await discord_stub.send_message(GENERAL, READER, "who discovered the comet?")
    await discord_stub.send_message(GENERAL, READER, "checkpoint", mentions_bot=True)
    await discord_stub.wait_for(
        lambda: (
            len(
                [
                    m
                    for m in discord_stub.messages(GENERAL)
                    if m["author"]["id"] == str(discord_stub.bot_user_id)
                ]
            )
            >= 1
        )
    )
    assert bot_replies_to(discord_stub, GENERAL, question["id"]) == []


async def test_a_reply_to_an_answer_is_searched_with_the_earlier_question(discord_stub, bot):  # noqa: F811
    first = await discord_stub.send_message(GENERAL, READER, "Riverside library flood", mentions_bot=True)
    answer = await wait_reply(discord_stub, GENERAL, first)
    follow_up = await discord_stub.send_message(
        GENERAL, READER, "how much did it cost?", reference_message_id=int(answer["id"])
    )
    reply = await wait_reply(discord_stub, GENERAL, follow_up)
    text = embed_text(reply)
    assert "following up on: Riverside library flood" in text
    first_result = shown(text.split("**2.")[0])
    assert "Riverside Library Reopens" in first_result and "3.2 million" in first_result


async def test_more_pages_for_the_asker_and_refuses_others(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "pounds council million"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    message = record.original
    assert "Results 1-2 · ▶ for more" in embed_text(message)
    more = button_ids(message)["More"]

    stranger = await discord_stub.click_button(message, more, user_id=OTHER_READER)
    await stranger.wait_done()
    assert stranger.callbacks[0]["type"] == 4
    assert stranger.callbacks[0]["data"]["flags"] & EPHEMERAL
    assert "Only the person who asked" in stranger.callbacks[0]["data"]["content"]
    assert "Results 1-2 · ▶" in embed_text(discord_stub.message(int(message["id"])))

    click = await discord_stub.click_button(message, more, user_id=READER)
    await click.wait_done()
    assert click.callbacks[0]["type"] == 7  # the answer itself is edited in place
    await discord_stub.wait_for(lambda: "Results 3-" in embed_text(discord_stub.message(int(message["id"]))))
    last_page = discord_stub.message(int(message["id"]))
    buttons = {b.get("label"): b for row in last_page["components"] for b in row["components"]}
    assert buttons["More"].get("disabled") is ("▶ for more" not in embed_text(last_page))
    assert buttons["Back"].get("disabled") is not True


async def test_no_good_match_is_said_plainly(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "xyzzy plugh frobnicate quux"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert "No passage in the archive answers that well" in embed_text(record.original)


async def test_cooldown_refuses_a_second_question_with_the_wait(discord_stub, service):  # noqa: F811
    build_world(discord_stub)
    async with running_bot(discord_stub, service, cooldown=60):
        first = await discord_stub.invoke_command(
            "ask", {"question": "comet"}, user_id=READER, channel_id=GENERAL
        )
        await first.wait_done(timeout=10)
        second = await discord_stub.invoke_command(
            "ask", {"question": "comet again"}, user_id=READER, channel_id=GENERAL
        )
        await second.wait_done()
        data = second.callbacks[0]["data"]
        assert second.callbacks[0]["type"] == 4 and data["flags"] & EPHEMERAL
        assert "try again in" in data["content"]
        other = await discord_stub.invoke_command(
            "ask", {"question": "comet"}, user_id=OTHER_READER, channel_id=GENERAL
        )
        await other.wait_done(timeout=10)
        assert other.callbacks[0]["type"] == 4


async def test_empty_and_overlong_questions_get_help_and_the_limit(discord_stub, bot):  # noqa: F811
    empty = await discord_stub.send_message(GENERAL, READER, "", mentions_bot=True)
    assert "Ask me about the news archive" in embed_text(await wait_reply(discord_stub, GENERAL, empty))
    long = await discord_stub.invoke_command(
        "ask", {"question": "word " * 200}, user_id=READER, channel_id=GENERAL
    )
    await long.wait_done()
    assert "the limit is 500" in long.callbacks[0]["data"]["content"]
    assert long.callbacks[0]["data"]["flags"] & EPHEMERAL


async def test_private_answer_can_be_shared_to_the_channel(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "wind farm turbines homes", "private": True}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert record.callbacks[0]["type"] == 4 and record.callbacks[0]["data"]["flags"] & EPHEMERAL
    share = await discord_stub.click_button(
        record.original, button_ids(record.original)["Share"], user_id=READER
    )
    await share.wait_done()
    assert share.callbacks[0]["type"] == 7  # the private answer's Share button is switched off
    shared = await discord_stub.wait_for(lambda: share.followups, timeout=5)
    assert not (shared[0].get("flags") or 0) & EPHEMERAL
    assert "Harbour Wind Farm" in embed_text(shared[0]) and "Shared by" in shared[0]["content"]
    assert discord_stub.allowed_mentions(int(shared[0]["id"]))["parse"] == []
    buttons = {b.get("label"): b for row in record.original["components"] for b in row["components"]}
    assert buttons["Share"].get("disabled") is True


async def test_feedback_buttons_store_the_vote_with_the_question(discord_stub, bot, service):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "school meals levy"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    vote = await discord_stub.click_button(
        record.original, button_ids(record.original)["👎"], user_id=OTHER_READER
    )
    await vote.wait_done()
    latest, worst = service.store.feedback_summary()
    assert latest[0]["question"] == "school meals levy"
    assert worst[0][0] == "briefs/school-meals"


@pytest.mark.sqlite_only  # another writer holds the file; PostgreSQL: tests/test_pg_processes.py
async def test_a_vote_the_database_could_not_keep_is_never_thanked_for(
    discord_stub,  # noqa: F811
    bot,
    service,
    monkeypatch,
):
    monkeypatch.setattr("retrieval.sqlite_store.MEMBER_WRITE_WAIT_SECONDS", 1.0)  # not a minute, in a test
    record = await discord_stub.invoke_command(
        "ask", {"question": "school meals levy"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    blocker = sqlite3.connect(service.db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database past the member's wait
        vote = await discord_stub.click_button(
            record.original, button_ids(record.original)["👎"], user_id=OTHER_READER
        )
        await vote.wait_done(timeout=10)
        assert "couldn't record your vote" in vote.original["content"]
        assert "Thanks" not in vote.original["content"]
    finally:
        blocker.rollback()
        blocker.close()
    assert service.store.feedback_summary()[0] == []
    again = await discord_stub.click_button(
        record.original, button_ids(record.original)["👎"], user_id=OTHER_READER
    )
    await again.wait_done(timeout=10)
    assert again.original["content"].startswith(
        "Thanks, noted"
    )  # the member could vote again, and it was kept
    assert service.store.feedback_summary()[0][0]["question"] == "school meals levy"


@pytest.mark.sqlite_only  # a reload's transaction holds the file's one write lock; PostgreSQL has no such lock
async def test_a_vote_given_while_a_reload_writes_waits_for_it_and_is_thanked_once_kept(
    discord_stub,  # noqa: F811
    bot,
    service,
):
    record = await discord_stub.invoke_command(
        "ask", {"question": "school meals levy"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    blocker = sqlite3.connect(service.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a reload in another process, between its first write and its commit
    try:
        vote = await discord_stub.click_button(
            record.original, button_ids(record.original)["👍"], user_id=OTHER_READER
        )
        await asyncio.sleep(3.0)  # past the two seconds after which such a vote used to be refused
        assert not vote.done
        assert vote.callback_types == [5]  # deferred: the member sees "thinking" meanwhile
        assert service.store.feedback_summary() == ([], [])
    finally:
        blocker.rollback()
        blocker.close()
    await vote.wait_done(timeout=10)
    assert vote.original["content"] == "Thanks, glad it helped."
    assert service.store.query("SELECT question, vote FROM feedback") == [("school meals levy", 1)]


async def test_hostile_article_text_is_escaped_and_pings_no_one(discord_stub, bot):  # noqa: F811
    record = await discord_stub.invoke_command(
        "ask", {"question": "harbour festival umbrellas tickets"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    text = embed_text(record.original)
    assert "Mass ping attempt" in shown(text)
    assert "@everyone" not in text.replace("\\@\u2060everyone", "")
    assert "](https://evil.example)" not in text
    assert "<@123456789012345678>" not in text


async def test_no_message_the_bot_sends_can_ping(discord_stub, bot):  # noqa: F811
    for question in ("who surrounded Manbij?", "rail strike", "comet"):
        msg = await discord_stub.send_message(GENERAL, READER, question, mentions_bot=True)
        await wait_reply(discord_stub, GENERAL, msg)
    record = await discord_stub.invoke_command(
        "ask", {"question": "Manbij"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    bodies = [
        r.json
        for r in discord_stub.requests
        if r.method in ("POST", "PATCH")
        and isinstance(r.json, dict)
        and ("content" in r.json or "embeds" in r.json)
    ]
    assert bodies
    for body in bodies:
        mentions = body.get("allowed_mentions") or (body.get("data") or {}).get("allowed_mentions")
        if mentions is not None:
            assert mentions.get("parse") == [] and not mentions.get("users") and not mentions.get("roles")
    created = [
        m for m in discord_stub.messages(GENERAL) if m["author"]["id"] == str(discord_stub.bot_user_id)
    ]
    for message in created:
        assert (
            not message.get("mention_everyone")
            and not message.get("mentions")
            and not message.get("mention_roles")
        )


async def test_a_picture_without_text_in_a_qa_channel_gets_no_reply(discord_stub, bot):  # noqa: F811
    picture = await discord_stub.send_message(
        QA,
        READER,
        "",
        attachments=[
            {
                "id": "1",
                "filename": "cat.png",
                "size": 10,
                "url": "https://cdn.example/cat.png",
                "proxy_url": "https://cdn.example/cat.png",
            }
        ],
    )
    too_long = await discord_stub.send_message(QA, READER, "why " * 200)
    reply = await wait_reply(discord_stub, QA, too_long)
    assert "the limit is 500" in embed_text(reply)
    assert bot_replies_to(discord_stub, QA, picture["id"]) == []


async def test_a_slow_answer_is_deferred_then_edited_in(discord_stub, bot, monkeypatch):  # noqa: F811
    from bot import client

    monkeypatch.setattr(client, "ACK_DEADLINE", 0.0)
    record = await discord_stub.invoke_command(
        "ask", {"question": "who discovered the comet?"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert record.callback_types == [5]
    assert "Amateur Astronomer Spots New Comet" in shown(embed_text(record.original))


async def test_buttons_of_an_answer_work_after_the_bot_restarts(discord_stub, service):  # noqa: F811
    build_world(discord_stub)
    async with running_bot(discord_stub, service):
        record = await discord_stub.invoke_command(
            "ask", {"question": "pounds council million"}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
    message = record.original
    assert "Results 1-2 · ▶ for more" in embed_text(message)
    async with running_bot(discord_stub, service):  # a new process knows nothing of the old answer
        stranger = await discord_stub.click_button(message, button_ids(message)["More"], user_id=OTHER_READER)
        await stranger.wait_done(timeout=10)
        assert "Only the person who asked" in stranger.callbacks[0]["data"]["content"]
        click = await discord_stub.click_button(message, button_ids(message)["More"], user_id=READER)
        await click.wait_done(timeout=10)
        assert click.callbacks[0]["type"] == 7
        page = discord_stub.message(int(message["id"]))
        assert "Results 3-" in embed_text(page)
        assert page["embeds"][0]["title"] == message["embeds"][0]["title"]
        back = await discord_stub.click_button(page, button_ids(page)["Back"], user_id=READER)
        await back.wait_done(timeout=10)
        assert "Results 1-2" in embed_text(discord_stub.message(int(message["id"])))
        vote = await discord_stub.click_button(page, button_ids(page)["👎"], user_id=OTHER_READER)
        await vote.wait_done(timeout=10)
        assert "the admins will see" in vote.callbacks[0]["data"]["content"]
    latest, _ = service.store.feedback_summary()
    assert latest[0]["question"] == "pounds council million" and latest[0]["article_ids"]


async def test_own_command_replies_are_not_parsed_yet_followed_up_also_after_a_restart(discord_stub, service):  # noqa: F811
    build_world(discord_stub)
    async with running_bot(discord_stub, service) as bot:
        record = await discord_stub.invoke_command(
            "ask", {"question": "Riverside library flood"}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
        answer = record.original
        assert answer["interaction_metadata"] and answer["author"]["id"] == str(bot.user.id)
        mention = await discord_stub.send_message(
            GENERAL, READER, "Riverside library flood", mentions_bot=True
        )
        mention_reply = await wait_reply(discord_stub, GENERAL, mention)
        await discord_stub.wait_for(lambda: int(mention_reply["id"]) in {m.id for m in bot.cached_messages})
        # The gateway's copy of the slash command's reply was dropped unread: no Message was made of it.
        assert int(answer["id"]) not in {m.id for m in bot.cached_messages}
        follow_up = await discord_stub.send_message(
            GENERAL, READER, "how much did it cost?", reference_message_id=int(answer["id"])
        )
        assert "following up on: Riverside library flood" in embed_text(
            await wait_reply(discord_stub, GENERAL, follow_up)
        )
    async with running_bot(discord_stub, service):  # knows nothing of the answer: reads it from the reply
        follow_up = await discord_stub.send_message(
            GENERAL, READER, "how much did it cost?", reference_message_id=int(answer["id"])
        )
        reply = await wait_reply(discord_stub, GENERAL, follow_up)
        assert "following up on: Riverside library flood" in embed_text(reply)
        assert "3.2 million" in shown(embed_text(reply).split("**2.")[0])
