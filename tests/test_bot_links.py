"""Every link in an answer opens a page that shows the quoted excerpt (bot and article pages in one process)."""

from __future__ import annotations

import html
import re
import socket

import aiohttp

from retrieval.links import LinkPolicy
from retrieval.service import NewsService
from tests.bot_harness import GENERAL, READER, build_world, running_bot, shown
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def test_every_answer_link_resolves_to_a_page_with_the_excerpt(discord_stub, tmp_path, sample_corpus):  # noqa: F811
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    service = NewsService(tmp_path / "n.db", sample_corpus, links=LinkPolicy(None, public_url))
    service.reload()
    build_world(discord_stub)
    checked = 0
    async with running_bot(discord_stub, service, public_url=public_url, web_port=port,
                           results=3), aiohttp.ClientSession() as http:
        for question in ("who surrounded Manbij?", "how much did the library repairs cost?",
                         "wind farm turbines fishing", "who discovered the comet?"):
            record = await discord_stub.invoke_command("ask", {"question": question}, user_id=READER,
                                                       channel_id=GENERAL)
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
                excerpt = shown(quote).strip()
                for piece in excerpt.split("…"):
                    piece = " ".join(piece.split())
                    if len(piece) > 10:
                        assert piece in body, f"{piece!r} not on {url}"
                checked += 1
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            health = await response.json()
        assert health["discord_connected"] is True
    assert checked >= 8
    service.close()
