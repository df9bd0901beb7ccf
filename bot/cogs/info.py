"""``/about`` and ``/help``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import DatabaseStatus

from ..client import NewsBot
from ..render import clip, escape
from ..server_settings import server_summary


def uptime_text(seconds: float) -> str:
    """93784 -> '1d 2h', 3720 -> '1h 2m', 75 -> '1m 15s'."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def database_down_text(status: DatabaseStatus) -> str:
    since = ""
    if status.since is not None:
        since = " since " + datetime.fromtimestamp(status.since, UTC).strftime("%H:%M UTC")
    return (
        f"Unreachable{since} ({status.error or 'no answer'}). Answering from the loaded index; votes and "
        "settings changes can't be saved until it is back."
    )


class InfoCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    def _here(self, interaction: discord.Interaction) -> str:
        """The settings in force where the command was used (this server's own, or the defaults)."""
        server = self.bot.server_settings.effective(interaction.guild_id)
        text = server_summary(interaction.guild, server, message_content=self.bot.intents.message_content)
        if server.own is not None and not server.own.is_empty():
            text += "\nThis server has its own settings (admins: /settings show)."
        return text[:1024]

    @app_commands.command(
        name="about", description="The archive's size, its last reload and the bot's uptime"
    )
    async def about(self, interaction: discord.Interaction) -> None:
        stats = await asyncio.to_thread(self.bot.service.stats)
        embed = discord.Embed(title="newsdesk", colour=0x2B6CB0)
        embed.add_field(name="Articles", value=f"{stats.articles:,}")
        embed.add_field(name="Passages", value=f"{stats.passages:,}")
        embed.add_field(name="Index version", value=str(stats.corpus_version))
        run = stats.last_run
        if run:
            text = (
                f"{run.finished_at} ({run.trigger}): {run.status}, {run.added} added, "
                f"{run.changed} changed, {run.unchanged} unchanged, {run.removed} removed, "
                f"{run.failed} failed"
            )
            if run.error:
                text += f"\nError: {run.error}"
            embed.add_field(name="Last reload", value=escape(clip(text, 1000)), inline=False)
        last_reload = stats.last_reload
        if last_reload and not last_reload.ok:
            embed.add_field(
                name="Last reload failed",
                inline=False,
                value=escape(clip(f"{last_reload.error}. The previous corpus is still answering.", 1000)),
            )
        if not stats.database.reachable:
            embed.add_field(
                name="Database", inline=False, value=escape(clip(database_down_text(stats.database), 1000))
            )
        if stats.reloading:
            embed.add_field(name="Now", value="A reload is running.", inline=False)
        embed.add_field(name="Uptime", value=uptime_text(time.time() - self.bot.service.started_at))
        embed.add_field(name="Here", value=self._here(interaction), inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="help", description="What newsdesk does and how to ask")
    async def help(self, interaction: discord.Interaction) -> None:
        embed = discord.Embed(
            title="How to ask newsdesk",
            colour=0x2B6CB0,
            description=(
                "I answer questions from this server's news archive with quotes from the articles and a link "
                "to each source.\n\n"
                "• `/ask question:` who surrounded Manbij in 2016? (add `private:True` to see it alone first)\n"
                "• Mention me with a question, or post in a Q&A channel if the admins set one up.\n"
                '• Reply to one of my answers to follow up ("who led it?").\n'
                "• `/headlines` lists the newest articles; `query`, `since` (2016-06-01 or 7d) and `until` narrow it.\n"
                "• ▶ pages through more results; 👍 / 👎 tell the admins what works.\n\n"
                "Tips: names, places and dates find the best passages. I say so when nothing matches well."
            ),
        )
        embed.add_field(name="Here", value=self._here(interaction), inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(InfoCog(bot))
