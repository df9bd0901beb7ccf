"""Rate limits and a dropped gateway: every answer still arrives exactly once; no stall from the garbage
collector walking what start-up made."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from tests.bot_harness import GENERAL, READER, embed_text, shown
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


def replies_to(stub, message_id):
    return [
        r
        for r in stub.requests
        if r.method == "POST"
        and r.status == 200
        and isinstance(r.json, dict)
        and str((r.json.get("message_reference") or {}).get("message_id")) == str(message_id)
    ]


async def test_rate_limited_replies_arrive_once_after_the_wait(discord_stub, bot):  # noqa: F811
    discord_stub.rate_limit("POST", r"/channels/\d+/messages$", times=2, retry_after=0.6)
    started = time.monotonic()
    questions = [
        await discord_stub.send_message(GENERAL, READER, q, mentions_bot=True)
        for q in ("library repairs cost", "comet discovered", "rail strike pay")
    ]
    await discord_stub.wait_for(lambda: all(replies_to(discord_stub, q["id"]) for q in questions), timeout=15)
    assert all(len(replies_to(discord_stub, q["id"])) == 1 for q in questions)
    limited = [r for r in discord_stub.requests if r.status == 429]
    assert len(limited) == 2
    first_ok = min(r.at for q in questions for r in replies_to(discord_stub, q["id"]))
    assert first_ok - started >= 0.55


async def test_rate_limited_interaction_follow_up_still_answers(discord_stub, bot, monkeypatch):  # noqa: F811
    from bot import client

    monkeypatch.setattr(client, "ACK_DEADLINE", 0.0)  # a slow answer: deferred, then edited in
    discord_stub.rate_limit("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", times=1, retry_after=0.4)
    record = await discord_stub.invoke_command(
        "ask", {"question": "wind farm homes"}, user_id=READER, channel_id=GENERAL
    )
    await record.wait_done(timeout=10)
    assert "Harbour Wind Farm" in shown(embed_text(record.original))
    assert any(r.status == 429 for r in discord_stub.requests)


async def test_a_dropped_gateway_resumes_and_answers_once(discord_stub, bot):  # noqa: F811
    before = await discord_stub.send_message(GENERAL, READER, "comet", mentions_bot=True)
    await discord_stub.wait_for(lambda: replies_to(discord_stub, before["id"]), timeout=10)
    await discord_stub.drop_gateway(code=4000)
    assert len(discord_stub.gateway.resumes) == 1
    after = await discord_stub.send_message(GENERAL, READER, "library repairs cost", mentions_bot=True)
    await discord_stub.wait_for(lambda: replies_to(discord_stub, after["id"]), timeout=10)
    assert len(replies_to(discord_stub, after["id"])) == 1
    assert len(replies_to(discord_stub, before["id"])) == 1
    assert len(discord_stub.gateway.identifies) == 1  # resumed, not a new session


async def test_start_up_objects_are_left_out_of_full_collections_and_a_reload_still_frees_the_old_index(
    discord_stub,  # noqa: F811
    bot,
):
    """A full pass of the garbage collector over everything start-up made stalled answers under load: those
    objects are frozen. An index frozen with them is still freed, with no collection, when a reload replaces it."""
    assert gc.get_freeze_count() > 10_000
    replaced = weakref.ref(bot.service.snapshot.require_index())
    (bot.service.corpus_dir / "late-news.txt").write_text(
        "Harbour ferry returns\n\nHarbour ferry returns\n\n2016-07-01\n\nThe harbour ferry runs again from Monday.\n"
    )
    gc.disable()
    try:
        await asyncio.to_thread(bot.service.reload)
        record = await discord_stub.invoke_command(
            "ask", {"question": "when does the harbour ferry run again?"}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
        assert "ferry" in shown(embed_text(record.original))
        assert replaced() is None
    finally:
        gc.enable()
