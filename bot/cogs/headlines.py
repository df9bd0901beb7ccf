"""``/headlines``: the newest articles, optionally filtered by a search and a date range."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import discord
from discord import app_commands
from discord.ext import commands

from ..client import NewsBot
from ..config import parse_span
from ..render import render_headlines
from ..views import OwnedView

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?$")


class DateError(ValueError):
    """A since/until value that is neither an ISO date nor a span like 7d."""


def parse_when(value: str, *, option: str, now: datetime | None = None, end_of_day: bool = False) -> str:
    """'2016-06-21', '2016-06-21T12:00' or '7d'/'12h'/'2w' (that long ago) -> an ISO string for comparisons."""
    value = value.strip()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if _ISO_DATE.match(value):
        try:
            moment = datetime.fromisoformat(value.replace(" ", "T"))
        except ValueError:
            raise DateError(f"`{option}`: {value!r} is not a real date") from None
        if end_of_day and len(value) == 10:
            return (moment.date() + timedelta(days=1)).isoformat()
        return moment.isoformat()
    try:
        seconds = parse_span(value)
    except ValueError:
        raise DateError(
            f"`{option}` must be a date like 2016-06-21 or a span like 7d, 12h or 2w; {value[:40]!r} is neither"
        ) from None
    return (now - timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


class HeadlinesView(OwnedView):
    def __init__(
        self,
        cog: HeadlinesCog,
        owner_id: int,
        *,
        count: int,
        query: str | None,
        since: str | None,
        until: str | None,
        title: str,
        has_more: bool,
    ) -> None:
        super().__init__(owner_id)
        self.cog, self.count, self.query, self.since, self.until = cog, count, query, since, until
        self.title, self.offset = title, 0
        self.previous.disabled = True
        self.next.disabled = not has_more

    async def _go(self, interaction: discord.Interaction, offset: int) -> None:
        if not await self.refuse_unless_owner(interaction):
            return
        headlines, has_more = await self.cog.fetch(
            self.count, max(offset, 0), self.query, self.since, self.until
        )
        if headlines:
            self.offset = max(offset, 0)
        self.previous.disabled = self.offset == 0
        self.next.disabled = not has_more
        reply = render_headlines(headlines, offset=self.offset, title=self.title, more=has_more)
        await interaction.response.edit_message(embeds=reply.embeds, view=self)

    @discord.ui.button(label="Newer", emoji="◀", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._go(interaction, self.offset - self.count)

    @discord.ui.button(label="Older", emoji="▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._go(interaction, self.offset + self.count)


class HeadlinesCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    async def fetch(self, count: int, offset: int, query: str | None, since: str | None, until: str | None):
        """One page of headlines, and whether there are more after it."""
        rows = await self.bot.run_search(
            self.bot.service.headlines, count + 1, offset=offset, query=query, since=since, until=until
        )
        return rows[:count], len(rows) > count

    @app_commands.command(name="headlines", description="The newest articles in the archive")
    @app_commands.describe(
        count="How many per page (1-25, default 10)",
        query="Only articles about this (search words)",
        since="From this date (2016-06-01) or this long ago (7d, 12h, 2w)",
        until="Up to this date (2016-06-30) or this long ago (1d)",
    )
    async def headlines(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, 25] = 10,
        query: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        try:
            since_iso = parse_when(since, option="since") if since else None
            until_iso = parse_when(until, option="until", end_of_day=True) if until else None
        except DateError as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        if query is not None and not query.strip():
            query = None
        await interaction.response.defer(thinking=True)
        headlines, has_more = await self.fetch(count, 0, query, since_iso, until_iso)
        title = "Latest headlines" + (f" about “{query[:80]}”" if query else "")
        if since or until:
            title += f" ({since or '…'} to {until or 'now'})"
        view = HeadlinesView(
            self,
            interaction.user.id,
            count=count,
            query=query,
            since=since_iso,
            until=until_iso,
            title=title,
            has_more=has_more,
        )
        reply = render_headlines(headlines, offset=0, title=title, more=has_more)
        view.message = await interaction.edit_original_response(
            embeds=reply.embeds, view=view, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(HeadlinesCog(bot))
