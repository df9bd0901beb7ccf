"""The Newer/Older buttons under ``/headlines``, without a View object per message.

Each button's custom id carries what a click needs: the direction, the member who listed, the page size and the
offset of the page shown (``nd:headlines:older:<member id>:<count>:<offset>``). The filter (search words, since,
until) is the one remembered for that message, or after a restart it is read back from the listing's title. So
the buttons keep working after the bot restarts, and a listing costs no timeout task.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import discord

from .render import render_headlines
from .views import tell_button_failed

log = logging.getLogger(__name__)

PREFIX = "nd:headlines"
REMEMBERED = 5000
QUERY_SHOWN = 80  # characters of the search words a listing's title shows
_UNESCAPE = re.compile(r"\\(.)")
# The title /headlines writes: "Latest headlines[ about “query”][ (since to until)]".
_TITLE = re.compile(
    r"^Latest headlines(?: about “(?P<query>.*)”)?(?: \((?P<since>.+?) to (?P<until>.+?)\))?$", re.S
)


@dataclass(frozen=True)
class HeadlineFilter:
    """What a listing was asked for, as the member typed it (dates are read again on each page)."""

    query: str | None = None
    since: str | None = None
    until: str | None = None

    @property
    def title(self) -> str:
        title = "Latest headlines" + (f" about “{self.query[:QUERY_SHOWN]}”" if self.query else "")
        if self.since or self.until:
            title += f" ({self.since or '…'} to {self.until or 'now'})"
        return title

    @classmethod
    def from_title(cls, title: str | None) -> HeadlineFilter | None:
        """The filter a listing's title shows (our escaping undone); None for a title we did not write."""
        if not title:
            return None
        match = _TITLE.match(_UNESCAPE.sub(r"\1", title.replace("\u2060", "")))
        if match is None or len(match["query"] or "") >= QUERY_SHOWN:
            return None  # not ours, or the search words were cut to fit: paging would list something else
        since = match["since"] if match["since"] not in (None, "…") else None
        until = match["until"] if match["until"] not in (None, "now") else None
        return cls(query=match["query"] or None, since=since, until=until)


class HeadlineFilters:
    """The filter of each recent listing, by message id; the oldest are forgotten first."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._by_message: OrderedDict[int, HeadlineFilter] = OrderedDict()

    def remember(self, message_id: int, wanted: HeadlineFilter) -> None:
        self._by_message[message_id] = wanted
        self._by_message.move_to_end(message_id)
        while len(self._by_message) > self.size:
            self._by_message.popitem(last=False)

    def get(self, message_id: int) -> HeadlineFilter | None:
        return self._by_message.get(message_id)


def custom_id(direction: str, owner_id: int, count: int, offset: int) -> str:
    return f"{PREFIX}:{direction}:{owner_id}:{count}:{offset}"


def headline_buttons(*, owner_id: int, count: int, offset: int, has_more: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for direction, label, emoji, disabled in (
        ("newer", "Newer", "◀", offset == 0),
        ("older", "Older", "▶", not has_more),
    ):
        button: discord.ui.Button = discord.ui.Button(
            style=discord.ButtonStyle.secondary,
            label=label,
            emoji=emoji,
            custom_id=custom_id(direction, owner_id, count, offset),
            disabled=disabled,
        )
        view.add_item(HeadlineButton(button))
    return view


class HeadlineButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"nd:headlines:(?P<direction>newer|older):(?P<owner>[0-9]{1,20}):(?P<count>[0-9]{1,2}):(?P<offset>[0-9]{1,7})",
):
    def __init__(
        self,
        button: discord.ui.Button,
        *,
        direction: str = "",
        owner_id: int = 0,
        count: int = 10,
        offset: int = 0,
    ):
        super().__init__(button)
        self.direction, self.owner_id, self.count, self.offset = direction, owner_id, count, offset

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /
    ) -> HeadlineButton:
        assert isinstance(item, discord.ui.Button)
        return cls(
            item,
            direction=match["direction"],
            owner_id=int(match["owner"]),
            count=min(max(int(match["count"]), 1), 25),
            offset=int(match["offset"]),
        )

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await self._turn(interaction)
        except Exception:
            log.exception("headlines button %s failed", self.custom_id)
            await tell_button_failed(interaction)

    async def _turn(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the person who asked can page through these results. List your own with /headlines.",
                ephemeral=True,
            )
            return
        cog: Any = interaction.client.get_cog("HeadlinesCog")  # type: ignore[attr-defined]
        message = interaction.message
        wanted = cog.filters.get(message.id) if cog is not None and message is not None else None
        if wanted is None and message is not None and message.embeds:
            wanted = HeadlineFilter.from_title(message.embeds[0].title)
        if cog is None or message is None or wanted is None:
            await interaction.response.send_message(
                "I can't page this list any more. List again with /headlines.", ephemeral=True
            )
            return
        step = self.count if self.direction == "older" else -self.count
        offset = max(self.offset + step, 0)
        headlines, has_more = await cog.fetch_page(wanted, self.count, offset)
        if not headlines:  # the archive changed under the listing: stay on the page shown
            offset, (headlines, has_more) = self.offset, await cog.fetch_page(wanted, self.count, self.offset)
        reply = render_headlines(headlines, offset=offset, title=wanted.title, more=has_more)
        if message.embeds and message.embeds[0].title:
            reply.embeds[0].title = message.embeds[0].title  # keep the heading the member saw
        view = headline_buttons(owner_id=self.owner_id, count=self.count, offset=offset, has_more=has_more)
        await interaction.response.edit_message(embeds=reply.embeds, view=view)
