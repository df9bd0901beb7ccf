"""A minimal discord.py bot on plain bm25s, with the reply shape of a typical bot: the reference that
``bench/load_bot.py --compare`` measures newsdesk against, through the same local Discord stub.

    python bench/minimal_bot.py BASE_URL GATEWAY_URL --db newsdesk.db    (token in DISCORD_TOKEN)

``/ask question`` defers ("thinking"), searches the same passages (read from newsdesk's database: passage text
and article title, bm25s's own English tokenizer with stopwords and the Snowball stemmer, k1 0.9, b 0.75) in a
worker thread, then edits the response with one embed of the top 3 (title, quoted text) and a four-button view
(Back, More, 👍, 👎) that only the asker may page. No excerpt choice, no escaping, no links: cheaper work than
newsdesk's, in the ordinary shape.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys

import bm25s
import discord
import discord.gateway
import discord.http
import Stemmer
import yarl
from discord import app_commands

STEMMER = Stemmer.Stemmer("english")


class Pager(discord.ui.View):
    def __init__(self, owner: int, question: str, offset: int, search) -> None:
        super().__init__(timeout=15 * 60)
        self.owner, self.question, self.offset, self.search = owner, question, offset, search

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner:
            await interaction.response.send_message("Only the asker can page.", ephemeral=True)
            return False
        return True

    async def _page(self, interaction: discord.Interaction, offset: int) -> None:
        self.offset = max(offset, 0)
        embed = await self.search(self.question, self.offset)
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="Back", emoji="◀")
    async def back(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._page(interaction, self.offset - 3)

    @discord.ui.button(label="More", emoji="▶")
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._page(interaction, self.offset + 3)

    @discord.ui.button(emoji="👍")
    async def up(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("Thanks!", ephemeral=True)

    @discord.ui.button(emoji="👎")
    async def down(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("Thanks!", ephemeral=True)


def load_passages(db: str) -> tuple[list[str], list[str]]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT a.title, p.text FROM passages p JOIN articles a ON a.content_hash = p.text_hash ORDER BY p.id"
    ).fetchall()
    con.close()
    return [r[0] for r in rows], [r[1] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("gateway")
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    discord.http.Route.BASE = args.base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(args.gateway)

    titles, texts = load_passages(args.db)
    retriever = bm25s.BM25(k1=0.9, b=0.75)
    retriever.index(
        bm25s.tokenize(
            [f"{t}\n{x}" for t, x in zip(titles, texts, strict=True)], stemmer=STEMMER, show_progress=False
        ),
        show_progress=False,
    )

    def top(question: str, offset: int) -> list[int]:
        words = bm25s.tokenize([question], stemmer=STEMMER, return_ids=False, show_progress=False)[0]
        terms = [w for w in words if w in retriever.vocab_dict]
        if not terms:
            return []
        k = min(offset + 3, len(texts))
        docs, _ = retriever.retrieve([terms], k=k, show_progress=False, n_threads=1)
        return [int(d) for d in docs[0][offset:]]

    async def search(question: str, offset: int) -> discord.Embed:
        found = await asyncio.to_thread(top, question, offset)
        embed = discord.Embed(title=question[:256])
        embed.description = (
            "\n\n".join(f"**{titles[d][:180]}**\n> {texts[d][:300]}" for d in found) or "Nothing."
        )
        return embed

    intents = discord.Intents.default()
    client = discord.Client(intents=intents, allowed_mentions=discord.AllowedMentions.none())
    tree = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Ask the archive")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        embed = await search(question, 0)
        view = Pager(interaction.user.id, question, 0, search)
        await interaction.edit_original_response(embed=embed, view=view)

    @client.event
    async def setup_hook() -> None:
        await tree.sync()

    client.run(os.environ["DISCORD_TOKEN"], log_handler=None)


if __name__ == "__main__":
    sys.exit(main())
