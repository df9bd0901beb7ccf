"""``/headlines``: the newest articles, optionally filtered by a search and a date range."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import discord
from discord import app_commands
from discord.ext import commands

from ..client import NewsBot, respond, within_deadline
from ..config import parse_span
from ..headline_buttons import HeadlineButton, HeadlineFilter, HeadlineFilters, headline_buttons
from ..render import render_headlines

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


class HeadlinesCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.filters = HeadlineFilters()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(HeadlineButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(HeadlineButton)

    async def fetch(self, count: int, offset: int, query: str | None, since: str | None, until: str | None):
        """One page of headlines, and whether there are more after it."""
        rows = await self.bot.run_search(
            self.bot.service.headlines, count + 1, offset=offset, query=query, since=since, until=until
        )
        return rows[:count], len(rows) > count

    async def fetch_page(self, wanted: HeadlineFilter, count: int, offset: int):
        """A page of a listing, its dates read again (a span like 7d counts back from now)."""
        since = parse_when(wanted.since, option="since") if wanted.since else None
        until = parse_when(wanted.until, option="until", end_of_day=True) if wanted.until else None
        return await self.fetch(count, offset, wanted.query, since, until)

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
        wanted = HeadlineFilter(query=query, since=since, until=until)
        headlines, has_more = await within_deadline(
            interaction, self.fetch(count, 0, query, since_iso, until_iso), ephemeral=False
        )
        reply = render_headlines(headlines, offset=0, title=wanted.title, more=has_more)
        view = headline_buttons(owner_id=interaction.user.id, count=count, offset=0, has_more=has_more)
        message_id = await respond(interaction, embeds=reply.embeds, view=view)
        if message_id is not None:
            self.filters.remember(message_id, wanted)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(HeadlinesCog(bot))
