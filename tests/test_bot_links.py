"""Every link in an answer opens a page that shows the quoted excerpt (bot and article pages in one process)."""

from __future__ import annotations

import html
import re
import socket

import aiohttp
import pytest

from retrieval.links import LinkPolicy
from retrieval.service import NewsService
from tests.bot_harness import GENERAL, GUILD, READER, build_world, running_bot, shown
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def test_every_answer_link_resolves_to_a_page_with_the_excerpt(
    discord_stub,  # noqa: F811
    store_target,
    tmp_path,
    sample_corpus,
):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    service = NewsService(
        store_target, sample_corpus, links=LinkPolicy(None, public_url), index_cache=tmp_path / "index-cache"
    )
    service.reload()
    build_world(discord_stub)
    checked = 0
    async with (
        running_bot(discord_stub, service, public_url=public_url, web_port=port, results=3),
        aiohttp.ClientSession() as http,
    ):
        for question in (
            "who surrounded Manbij?",
            "how much did the library repairs cost?",
            "wind farm turbines fishing",
            "who discovered the comet?",
        ):
            record = await discord_stub.invoke_command(
                "ask", {"question": question}, user_id=READER, channel_id=GENERAL
            )
            await record.wait_done(timeout=10)
            description = record.original["embeds"][0]["description"]
            blocks = description.split("\n\n")
            for block in blocks:
                heading, quote = block.split("\n> ", 1)
                links = LINK.findall(heading)
                assert links, f"no link in {heading!r}"
                url = links[0]
                if not url.startswith(f"http://127.0.0.1:{port}/"):
                    assert url == "https://news.example.org/briefs/rail-strike"  # the article's own URL
                    continue
                assert re.search(r"#p\d+$", url)
                async with http.get(url) as response:
                    assert response.status == 200
                    body = page_text(await response.text())
                anchor = url.rsplit("#", 1)[1]
                async with http.get(url.split("#")[0]) as response:
                    assert f'id="{anchor}"' in await response.text()
                quote = "\n".join(line for line in quote.split("\n") if not line.startswith("-# Missing:"))
                excerpt = shown(quote).replace("\n> ", "\n").strip()  # two paragraphs: two quoted lines
                for piece in re.split(r"…|\n", excerpt):
                    piece = " ".join(piece.split())
                    if len(piece) > 10:
                        assert piece in body, f"{piece!r} not on {url}"
                checked += 1
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            health = await response.json()
        assert health["discord_connected"] is True
        assert 0 <= health["event_loop_lag_ms"]["last_5s"] <= health["event_loop_lag_ms"]["worst"] < 5000
    assert checked >= 5  # one result per article: the sample corpus has few articles per question
    service.close()


async def test_seed_question_by_mention_slash_and_follow_up_quotes_the_passage_with_its_link(
    discord_stub,  # noqa: F811
    store_target,
    tmp_path,
    sample_corpus,
):
    public_url = "http://127.0.0.1:9"  # links only; no page server needed here
    service = NewsService(
        store_target, sample_corpus, links=LinkPolicy(None, public_url), index_cache=tmp_path / "index-cache"
    )
    service.reload()
    encircling = f"{public_url}/articles/000_7259aed06ac303ba#p2"
    build_world(discord_stub)
    async with running_bot(discord_stub, service):
        asked = await discord_stub.send_message(
            GENERAL, READER, "when was Manbij encircled?", mentions_bot=True
        )
        by_mention = await discord_stub.wait_for(
            lambda: [
                m
                for m in discord_stub.messages(GENERAL)
                if (m.get("message_reference") or {}).get("message_id") == asked["id"]
            ],
            timeout=10,
        )
        first = by_mention[0]["embeds"][0]["description"].split("\n\n")[0]
        assert encircling in first and "June 8" in shown(first)

        record = await discord_stub.invoke_command(
            "ask", {"question": "who surrounded Manbij in June?"}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
        first = record.original["embeds"][0]["description"].split("\n\n")[0]
        assert encircling in first and "SDF" in shown(first)

        # Follow up in a thread started from the answer (Discord gives it the answer's id).
        answer_id = int(record.original["id"])
        discord_stub.world.add_thread(GUILD, answer_id, parent_id=GENERAL, owner_id=READER, name="Manbij")
        follow = await discord_stub.send_message(answer_id, READER, "which militia does it include?")
        replies = await discord_stub.wait_for(
            lambda: [
                m
                for m in discord_stub.messages(answer_id)
                if (m.get("message_reference") or {}).get("message_id") == follow["id"]
            ],
            timeout=10,
        )
        text = replies[0]["embeds"][0]["description"].split("\n\n")[0]
        assert encircling in text and "Kurdish YPG militia" in shown(text)
        assert "following up on: who surrounded Manbij in June?" in replies[0]["embeds"][0]["title"]
    service.close()
