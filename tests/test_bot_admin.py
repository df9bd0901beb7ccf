"""Headlines, reloads and admin checks, end to end through discord.py and the local Discord stub."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import retrieval.ingest
import retrieval.service
from tests.bot_harness import (
    EPHEMERAL,
    GENERAL,
    LISTED_ADMIN,
    MANAGER,
    OTHER_READER,
    READER,
    ROLE_ADMIN,
    build_world,
    button_ids,
    callback_text,
    corpus_file,
    embed_text,
    refuse_writes,
    running_bot,
    shown,
)
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


async def run(stub, name, options=None, *, user=READER, enforce=True, timeout=15.0):
    record = await stub.invoke_command(
        name, options or {}, user_id=user, channel_id=GENERAL, enforce_permissions=enforce
    )
    await record.wait_done(timeout=timeout)
    return record


def final_text(record) -> str:
    return shown(callback_text(record))


def headline_lines(record) -> list[str]:
    text = embed_text(record.original)
    return [line for line in text.splitlines() if line.startswith("`")]


# -- /headlines ---------------------------------------------------------------------------------


async def test_headlines_newest_first_with_dates_and_links(discord_stub, bot):  # noqa: F811
    lines = headline_lines(await run(discord_stub, "headlines"))
    assert "2025-05-09" in lines[0] and "Rail Workers" in lines[0]
    assert "(https://news.example.org/briefs/rail-strike)" in lines[0]
    dates = [line.split(" · ")[0].split("` ")[-1] for line in lines]
    dated = [d for d in dates if d != "undated"]
    assert dated == sorted(dated, reverse=True) and dates[-1] == "undated"


async def test_headlines_count_pages_with_buttons(discord_stub, bot):  # noqa: F811
    record = await run(discord_stub, "headlines", {"count": 2})
    assert len(headline_lines(record)) == 2
    older = button_ids(record.original)["Older"]
    click = await discord_stub.click_button(record.original, older, user_id=READER)
    await click.wait_done()
    page = embed_text(discord_stub.message(int(record.original["id"])))
    assert "` 3`" in page and "Rail Workers" not in page


async def test_headlines_query_filters_by_match(discord_stub, bot):  # noqa: F811
    lines = headline_lines(await run(discord_stub, "headlines", {"query": "comet telescope"}))
    assert len(lines) == 1 and "Amateur Astronomer" in lines[0]


async def test_headlines_since_and_until(discord_stub, bot):  # noqa: F811
    lines = headline_lines(
        await run(discord_stub, "headlines", {"since": "2025-04-01", "until": "2025-04-30"})
    )
    assert len(lines) == 1 and "Free School Meals" in lines[0]
    recent = await run(discord_stub, "headlines", {"since": "7d"})
    assert "No articles match" in embed_text(recent.original)


async def test_headlines_bad_since_gets_a_clear_private_message(discord_stub, bot):  # noqa: F811
    record = await run(discord_stub, "headlines", {"since": "last tuesday"})
    data = record.callbacks[0]["data"]
    assert data["flags"] & EPHEMERAL
    assert "`since` must be a date like 2016-06-21 or a span like 7d" in data["content"]


# -- who may reload -----------------------------------------------------------------------------


async def test_reload_by_a_member_is_refused_even_when_the_command_is_visible(discord_stub, bot, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING)
    record = await run(discord_stub, "reload", user=READER, enforce=False)
    data = record.callbacks[0]["data"]
    assert record.callbacks[0]["type"] == 4 and data["flags"] & EPHEMERAL
    assert "Only admins can use /reload" in data["content"]
    assert any("refused /reload" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "user", [MANAGER, LISTED_ADMIN, ROLE_ADMIN], ids=["manage-server", "admin-user", "admin-role"]
)
async def test_admins_reload_and_get_the_counts(discord_stub, bot, service, user):  # noqa: F811
    corpus = service.corpus_dir
    corpus_file(
        corpus, "local/new-bridge.txt", "New Bridge Opens", "The new bridge over the Lark opened today."
    )
    corpus_file(
        corpus,
        "local/riverside-library-reopens.txt",
        "Riverside Library Reopens",
        "The library reopened with a new reading room on the first floor.",
    )
    (corpus / "local" / "harbour-wind-farm.txt").unlink()
    record = await run(discord_stub, "reload", user=user, enforce=user == MANAGER)
    text = final_text(record)
    assert "1 added, 1 changed, 4 unchanged, 1 removed, 0 failed" in text
    answer = await run(discord_stub, "ask", {"question": "new bridge over the Lark"})
    assert "New Bridge Opens" in shown(embed_text(answer.original))


# -- reloads that go wrong, and answers meanwhile -------------------------------------------------


@pytest.fixture
def paused_index_build(monkeypatch):
    """Hold every index build until the test lets it go."""
    release = threading.Event()
    started = threading.Event()
    original = retrieval.service.BM25Index.build

    def build(*args, **kwargs):
        started.set()
        release.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(retrieval.service.BM25Index, "build", staticmethod(build))
    yield started, release
    release.set()


async def test_questions_are_answered_during_a_reload_and_a_second_reload_is_refused(
    discord_stub,  # noqa: F811
    bot,
    service,
    paused_index_build,
):
    started, release = paused_index_build
    corpus_file(
        service.corpus_dir, "local/new-bridge.txt", "New Bridge Opens", "The bridge over the Lark opened."
    )
    first = await discord_stub.invoke_command("reload", {}, user_id=MANAGER, channel_id=GENERAL)
    await asyncio.to_thread(started.wait, 10)

    answer = await run(discord_stub, "ask", {"question": "how much did the library repairs cost?"})
    assert "3.2 million pounds" in shown(embed_text(answer.original))
    second = await run(discord_stub, "reload", user=MANAGER)
    assert "A reload is already running" in final_text(second)

    release.set()
    await discord_stub.wait_for(lambda: "Reload done" in final_text(first), timeout=20)
    assert "1 added" in final_text(first)


async def test_a_parser_that_raises_is_reported_and_the_rest_reloads(discord_stub, bot, service, monkeypatch):  # noqa: F811
    original = retrieval.ingest.parse_file

    def parse(relpath, data, **kwargs):
        if relpath == "boom.txt":
            raise RuntimeError("parser exploded")
        return original(relpath, data, **kwargs)

    monkeypatch.setattr(retrieval.ingest, "parse_file", parse)
    corpus_file(service.corpus_dir, "boom.txt", "Boom", "This file makes the parser raise.")
    corpus_file(service.corpus_dir, "fine.txt", "Fine Story", "A quiet day at the harbour market.")
    text = final_text(await run(discord_stub, "reload", user=MANAGER))
    assert "1 added" in text and "1 failed" in text
    assert "boom.txt" in text and "parser exploded" in text
    answer = await run(discord_stub, "ask", {"question": "who surrounded Manbij?"})
    assert "ISIS Stronghold" in shown(embed_text(answer.original))


async def test_a_read_only_database_fails_the_reload_and_keeps_the_old_corpus(discord_stub, bot, service):  # noqa: F811
    version = service.snapshot.version
    corpus_file(
        service.corpus_dir, "local/new-bridge.txt", "New Bridge Opens", "The bridge over the Lark opened."
    )
    refuse_writes(service)
    text = final_text(await run(discord_stub, "reload", user=MANAGER))
    assert "Reload failed" in text and "read-only" in text
    assert "previous corpus is still answering" in text
    assert service.snapshot.version == version
    answer = await run(discord_stub, "ask", {"question": "how much did the library repairs cost?"})
    assert "3.2 million pounds" in shown(embed_text(answer.original))


# -- the other commands ---------------------------------------------------------------------------


async def test_about_shows_the_corpus_and_last_reload(discord_stub, bot, service):  # noqa: F811
    text = final_text(await run(discord_stub, "about"))
    assert f"Articles\n{service.stats().articles}" in text
    assert "Last reload" in text and "Uptime" in text


async def test_help_explains_how_to_ask(discord_stub, bot):  # noqa: F811
    assert "/ask question:" in final_text(await run(discord_stub, "help"))


async def test_feedback_lists_disliked_answers_for_admins_only(discord_stub, bot, service):  # noqa: F811
    service.store.add_feedback(
        guild_id=None,
        channel_id=None,
        user_id="1",
        question="what about the comet",
        article_ids=["briefs/comet"],
        vote=-1,
    )
    refused = await run(discord_stub, "feedback", user=READER, enforce=False)
    assert "Only admins" in final_text(refused)
    text = final_text(await run(discord_stub, "feedback", user=MANAGER))
    assert "what about the comet" in text and "1× `briefs/comet`" in text


async def test_scheduled_reload_picks_up_changes_and_about_shows_failures(discord_stub, service):  # noqa: F811
    build_world(discord_stub)
    version = service.snapshot.version
    async with running_bot(discord_stub, service, reload_every=1):
        corpus_file(
            service.corpus_dir, "local/new-bridge.txt", "New Bridge Opens", "The bridge over the Lark opened."
        )
        await discord_stub.wait_for(lambda: service.snapshot.version == version + 1, timeout=10)
        answer = await run(discord_stub, "ask", {"question": "bridge over the Lark"})
        assert "New Bridge Opens" in shown(embed_text(answer.original))

        refuse_writes(service)
        corpus_file(service.corpus_dir, "local/another.txt", "Another Story", "Something else happened.")
        await discord_stub.wait_for(lambda: service.last_reload and not service.last_reload.ok, timeout=10)
        text = final_text(await run(discord_stub, "about"))
        assert "Last reload failed" in text and "read-only" in text
        assert service.snapshot.version == version + 1


async def test_reload_in_a_child_process_is_swapped_in_by_the_bot(discord_stub, bot, service):  # noqa: F811
    service.reload_in_child = True  # as `newsdesk run` sets it
    corpus_file(
        service.corpus_dir, "local/new-bridge.txt", "New Bridge Opens", "The bridge over the Lark opened."
    )
    record = await discord_stub.invoke_command("reload", {}, user_id=MANAGER, channel_id=GENERAL)
    await discord_stub.wait_for(lambda: "Reload done" in final_text(record), timeout=30)
    assert "1 added" in final_text(record)
    answer = await run(discord_stub, "ask", {"question": "bridge over the Lark"})
    assert "New Bridge Opens" in shown(embed_text(answer.original))


async def test_headline_buttons_work_after_the_bot_restarts_and_keep_the_filter(discord_stub, service):  # noqa: F811
    wanted = [h.title for h in service.headlines(25, query="pounds", since="2000-01-01T00:00:00")]
    assert len(wanted) >= 2  # the sample corpus has several dated stories about sums of money
    build_world(discord_stub)
    async with running_bot(discord_stub, service):
        record = await run(discord_stub, "headlines", {"count": 1, "query": "pounds", "since": "2000-01-01"})
    listing = record.original
    assert record.callback_types == [4]  # listed in the first response, no deferral
    assert wanted[0] in embed_text(listing) and wanted[1] not in embed_text(listing)
    async with running_bot(discord_stub, service):  # a new process remembers no listing
        stranger = await discord_stub.click_button(
            listing, button_ids(listing)["Older"], user_id=OTHER_READER
        )
        await stranger.wait_done()
        assert stranger.callbacks[0]["data"]["flags"] & EPHEMERAL
        assert "Only the person who asked" in stranger.callbacks[0]["data"]["content"]
        click = await discord_stub.click_button(listing, button_ids(listing)["Older"], user_id=READER)
        await click.wait_done()
        assert click.callbacks[0]["type"] == 7
        page = discord_stub.message(int(listing["id"]))
        assert wanted[1] in embed_text(page) and "` 2`" in embed_text(page)  # the query still applies
        assert page["embeds"][0]["title"] == listing["embeds"][0]["title"]
        buttons = {b.get("label"): b for row in page["components"] for b in row["components"]}
        assert buttons["Newer"].get("disabled") is not True
        newer = await discord_stub.click_button(page, button_ids(page)["Newer"], user_id=READER)
        await newer.wait_done()
        assert wanted[0] in embed_text(discord_stub.message(int(listing["id"])))
