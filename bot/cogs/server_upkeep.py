"""Keeping servers' settings in step: with other processes sharing the database, and with Discord.

- Another process (another shard) may change a server's settings: the table is read again when
  ``settings_version`` moves (checked every ``NEWSDESK_WATCH_EVERY`` seconds).
- When the bot is removed from a server (GUILD_DELETE that is not an outage, or the server missing from
  READY after a stop), its settings are kept for ``KEEP_AFTER_LEAVING`` so that a re-invite finds them,
  then dropped. A server that shows up again keeps them for good again.
- A deleted channel or role leaves the server's Q&A channels or admin roles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import discord
from discord.ext import commands

from retrieval import KEEP_AFTER_LEAVING, ServerSettings, StoreError

from ..client import NewsBot
from ..tasks import spawn

log = logging.getLogger(__name__)

DROP_EXPIRED_EVERY = 3600.0  # seconds between looks for settings of servers left long ago


class ServerUpkeepCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.server_settings = bot.server_settings
        self._watch: asyncio.Task | None = None

    async def cog_load(self) -> None:
        self._watch = spawn(self._watch_settings(), name="server-settings-watch")

    async def cog_unload(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    async def _watch_settings(self) -> None:
        """Another process (another shard) may change a server's settings: read them again when the
        settings version moves; now and then drop the settings of servers left long ago."""
        last_drop = 0.0
        while not self.bot.is_closed():
            await asyncio.sleep(self.bot.settings.watch_every)
            try:
                if await asyncio.to_thread(self.server_settings.refresh_if_changed):
                    log.info("picked up server settings version %s", self.server_settings.version)
                if time.monotonic() - last_drop >= DROP_EXPIRED_EVERY:
                    last_drop = time.monotonic()
                    for guild_id in await self.server_settings.drop_expired():
                        log.info(
                            "dropped the settings of guild %s: the bot left it over %d days ago",
                            guild_id,
                            KEEP_AFTER_LEAVING.days,
                        )
            except StoreError as exc:  # the database does not answer: said once per outage by the service
                log.debug("could not read the server settings (%s); the ones in force stay", exc)
            except Exception:
                log.exception("could not read the server settings; the ones in force stay")

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (not an outage: that is ``on_guild_unavailable``): keep its settings a while."""
        await self._left(guild.id)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """A server that removed the bot while no process ran is missing from READY's list of servers."""
        for guild_id in self.server_settings.servers_with_settings():
            own = self.server_settings.own(guild_id)
            missing = self._runs_shard_of(guild_id) and self.bot.get_guild(guild_id) is None
            if own is not None and own.left_at is None and missing:
                await self._left(guild_id)

    def _runs_shard_of(self, guild_id: int) -> bool:
        settings = self.bot.settings
        if not settings.shard_count:
            return True
        return settings.shard_ids is None or (guild_id >> 22) % settings.shard_count in settings.shard_ids

    async def _left(self, guild_id: int) -> None:
        if self.server_settings.own(guild_id) is None:
            return
        try:
            if await self.server_settings.mark_left(guild_id):
                log.info(
                    "left guild %s; its settings are kept for %d days in case newsdesk is invited back",
                    guild_id,
                    KEEP_AFTER_LEAVING.days,
                )
        except StoreError as exc:
            log.warning("could not note that guild %s was left: %s", guild_id, exc)

    async def _back_in(self, guild: discord.Guild) -> None:
        own = self.server_settings.own(guild.id)
        if own is None or own.left_at is None:
            return
        try:
            await self.server_settings.mark_back(guild.id)
            log.info("back in guild %s: its settings are in force again", guild.id)
        except StoreError as exc:
            log.warning("could not note that guild %s is back: %s", guild.id, exc)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self._forget(channel.guild.id, "qa_channels", channel.id)

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        await self._forget(role.guild.id, "admin_roles", role.id)

    async def _forget(self, guild_id: int, name: str, item_id: int) -> None:
        """A deleted channel or role leaves the server's list (it could no longer be picked to remove it)."""
        own = self.server_settings.own(guild_id)
        if own is None or item_id not in (getattr(own, name) or ()):
            return

        def change(row: ServerSettings) -> ServerSettings:
            current = getattr(row, name)
            return row if current is None else replace(row, **{name: current - {item_id}})

        try:
            await self.server_settings.update(guild_id, change, user_id=None)
            log.info("guild %s: deleted %s %s left its %s", guild_id, name[:-1], item_id, name)
        except StoreError as exc:
            log.warning("could not forget deleted %s %s of guild %s: %s", name[:-1], item_id, guild_id, exc)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._back_in(guild)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self._back_in(guild)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(ServerUpkeepCog(bot))
