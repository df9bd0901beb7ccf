"""Admin commands: ``/reload`` and ``/feedback``, and the optional scheduled reload."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import IngestSummary, NewsdeskError, ReloadInProgress

from ..client import NewsBot
from ..permissions import admin_only
from ..render import clip, escape
from ..tasks import spawn

log = logging.getLogger(__name__)

PROGRESS_EVERY = 3.0  # seconds between progress edits
FAILURES_SHOWN = 8


def summary_text(summary: IngestSummary) -> str:
    lines = [
        f"Reload done in {summary.seconds:.1f} s: {summary.line()}.",
        f"Corpus version {summary.corpus_version}.",
    ]
    for failure in summary.failures[:FAILURES_SHOWN]:
        lines.append(f"• `{escape(clip(failure.path, 80))}`: {escape(clip(failure.reason, 160))}")
    if summary.failed > FAILURES_SHOWN:
        lines.append(f"… and {summary.failed - FAILURES_SHOWN} more (see `newsdesk ingest` or the log).")
    return "\n".join(lines)[:2000]


class AdminCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self._schedule: asyncio.Task | None = None

    async def cog_load(self) -> None:
        if self.bot.settings.reload_every:
            self._schedule = spawn(
                self._scheduled_reloads(self.bot.settings.reload_every), name="scheduled-reload"
            )

    async def cog_unload(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()

    async def _scheduled_reloads(self, every: int) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                summary = await asyncio.to_thread(self.bot.service.reload, trigger="schedule")
                if summary.changed_anything:
                    log.info("scheduled reload: %s", summary.line())
            except ReloadInProgress:
                log.info("scheduled reload skipped: a reload is already running")
            except NewsdeskError as exc:
                log.error("scheduled reload failed; the previous corpus keeps serving: %s", exc)
            except Exception:
                log.exception("scheduled reload failed; the previous corpus keeps serving")

    @app_commands.command(
        name="reload", description="Re-read the corpus folder and swap in the new index (admins)"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def reload(self, interaction: discord.Interaction) -> None:
        service = self.bot.service
        if service.reloading:
            await interaction.response.send_message(
                "A reload is already running; I'll keep answering from the current corpus until it is done.",
                ephemeral=True,
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        log.info("reload asked by user %s in guild %s", interaction.user.id, interaction.guild_id)
        progress = {"done": 0, "total": 0}

        def on_progress(done: int, total: int) -> None:
            progress["done"], progress["total"] = done, total

        task = asyncio.ensure_future(
            asyncio.to_thread(
                service.reload, progress=on_progress, trigger=f"/reload by {interaction.user.id}"
            )
        )
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
            if done:
                break
            await interaction.edit_original_response(
                content=f"Reloading… {progress['done']:,} / {progress['total']:,} files read. "
                "Questions are still answered from the current corpus."
            )
        try:
            summary = task.result()
        except ReloadInProgress:
            text = (
                "A reload is already running; I'll keep answering from the current corpus until it is done."
            )
        except NewsdeskError as exc:
            log.warning("reload failed: %s", exc)
            text = f"Reload failed: {exc}. Nothing was changed; the previous corpus is still answering."
        except Exception:
            log.exception("reload failed")
            text = "Reload failed on my side (logged). Nothing was changed; the previous corpus is still answering."
        else:
            text = summary_text(summary)
        await interaction.edit_original_response(content=text[:2000])

    @app_commands.command(
        name="feedback", description="Answers members rated 👎, and the articles behind them (admins)"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def feedback(self, interaction: discord.Interaction) -> None:
        feedback = await asyncio.to_thread(self.bot.service.feedback_summary, 10)
        latest, worst = feedback.latest, feedback.worst
        if not latest:
            await interaction.response.send_message("No 👎 ratings yet.", ephemeral=True)
            return
        embed = discord.Embed(title="Answers rated 👎", colour=0xC53030)
        embed.add_field(
            name="Latest",
            inline=False,
            value="\n".join(
                f"{rated.created_at[:10]} · {escape(clip(rated.question, 90))}" for rated in latest
            )[:1024],
        )
        if worst:
            embed.add_field(
                name="Most often in 👎 answers",
                inline=False,
                value="\n".join(f"{n}× `{escape(clip(article_id, 60))}`" for article_id, n in worst)[:1024],
            )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AdminCog(bot))
