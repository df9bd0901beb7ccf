"""Each server's effective settings: its own values from the database over the environment's defaults.

The bot holds every server's own values in memory (a dict read on each message, no SQL on the event loop)
and reads the table again when ``settings_version`` moves: after its own changes at once, after another
process's within ``NEWSDESK_WATCH_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from retrieval import NewsService, ServerSettings, ServerSettingsTable, StoreError

from .config import Settings

log = logging.getLogger(__name__)

# Where each setting's default comes from, for /settings show.
DEFAULT_FROM = {
    "qa_channels": "NEWSDESK_QA_CHANNELS",
    "admin_roles": "NEWSDESK_ADMIN_ROLES",
    "results": "NEWSDESK_RESULTS",
    "cooldown": "NEWSDESK_COOLDOWN",
}


@dataclass(frozen=True, slots=True)
class Effective:
    """The settings in force in one server (or in direct messages, ``guild_id`` None)."""

    guild_id: int | None
    qa_channels: frozenset[int]
    admin_roles: frozenset[int]
    results: int
    cooldown: int
    own: ServerSettings | None = None

    def is_set_here(self, name: str) -> bool:
        return self.own is not None and getattr(self.own, name) is not None


def qa_channels_in(guild, server: Effective) -> list[int]:
    """The Q&A channels in force in ``guild`` (a discord.Guild) that still exist there."""
    return sorted(c for c in server.qa_channels if guild.get_channel_or_thread(c) is not None)


def server_summary(guild, server: Effective, *, message_content: bool) -> str:
    """What members should know of a server's settings, for /help and /about."""
    channels = qa_channels_in(guild, server) if guild is not None else []
    lines = []
    if channels:
        listed = ", ".join(f"<#{c}>" for c in channels[:10]) + (" …" if len(channels) > 10 else "")
        note = "" if message_content else " (once newsdesk can read messages: mention me meanwhile)"
        lines.append(f"Q&A channels: {listed}: every message there is a question{note}.")
    elif guild is not None:
        lines.append("No Q&A channel here: mention me or use /ask.")
    lines.append(f"Answers show {server.results} passages at a time (▶ for more).")
    lines.append(
        f"Each member can ask once every {server.cooldown} s."
        if server.cooldown
        else "No wait between questions."
    )
    return "\n".join(lines)


def effective_settings(defaults: Settings, own: ServerSettings | None, guild_id: int | None) -> Effective:
    """A server's own value where it has one, else the environment's. Lists are replaced, not merged:
    a server that set its own Q&A channels has exactly those."""

    def pick(name: str):
        value = getattr(own, name) if own is not None else None
        return getattr(defaults, name) if value is None else value

    return Effective(
        guild_id=guild_id,
        qa_channels=pick("qa_channels"),
        admin_roles=pick("admin_roles"),
        results=pick("results"),
        cooldown=pick("cooldown"),
        own=own,
    )


def message_content_wanted(settings: Settings, service: NewsService) -> bool:
    """NEWSDESK_MESSAGE_CONTENT: ``on``, ``off``, or ``auto`` (on when any Q&A channel is configured, in the
    environment or in a server's settings)."""
    if settings.message_content != "auto":
        return settings.message_content == "on"
    if settings.qa_channels:
        return True
    rows = service.server_settings.all().values()
    return any(row.qa_channels and row.left_at is None for row in rows)


class ServerSettingsCache:
    """Every server's own settings, in memory, kept in step with the database."""

    def __init__(self, defaults: Settings, service: NewsService) -> None:
        self.defaults = defaults
        self.service = service
        # Every server's own settings, and the effective settings worked out from them so far: one tuple,
        # replaced whole by a load, so that a reader never pairs new rows with old effective settings.
        self._state: tuple[dict[int, ServerSettings], dict[int | None, Effective]] = ({}, {})
        self._version = -1
        self._store: object | None = None  # the store last read, to notice a database file replaced
        # Loads run in worker threads (the watcher, a change made here): one at a time, so that a slower
        # older read never replaces a newer one.
        self._loading = threading.Lock()

    def _table(self) -> ServerSettingsTable:
        return (
            self.service.server_settings
        )  # each time: the service reopens its store when the file is replaced

    # -- reading the database (in a worker thread, except once at start) ---------------------------
    def load(self) -> None:
        with self._loading:
            table = self._table()
            version = table.version()
            rows = table.all()
            self._state = (rows, {})
            self._version, self._store = version, table.store

    def refresh_if_changed(self) -> bool:
        """Read the table again when another process changed it. True when it did."""
        table = self._table()
        if table.store is self._store and table.version() == self._version:
            return False
        self.load()
        return True

    # -- reading the cache (on the event loop) ----------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def own(self, guild_id: int | None) -> ServerSettings | None:
        return self._state[0].get(guild_id) if guild_id is not None else None

    def effective(self, guild_id: int | None) -> Effective:
        """Read on every message: worked out once per server and load."""
        rows, known = self._state
        server = known.get(guild_id)
        if server is None:
            own = rows.get(guild_id) if guild_id is not None else None
            server = known[guild_id] = effective_settings(self.defaults, own, guild_id)
        return server

    def servers_with_settings(self) -> list[int]:
        return list(self._state[0])

    # -- changing ------------------------------------------------------------------------------
    async def update(
        self, guild_id: int, change: Callable[[ServerSettings], ServerSettings], *, user_id: int | None
    ) -> ServerSettings:
        """Change one server's settings in the database (one transaction), then in force here at once."""

        def write() -> ServerSettings:
            stored = self._table().update(guild_id, change, user_id=user_id)
            try:
                self.load()
            except StoreError as exc:  # saved: in force here now, and read in whole once the database answers
                log.warning("saved a settings change but could not read the settings back: %s", exc)
                rows = dict(self._state[0])
                rows[guild_id] = stored
                self._state = (rows, {})
            return stored

        return await asyncio.to_thread(write)

    async def mark_left(self, guild_id: int) -> bool:
        return await asyncio.to_thread(self._write_then_load, lambda t: t.mark_left(guild_id))

    async def mark_back(self, guild_id: int) -> bool:
        return await asyncio.to_thread(self._write_then_load, lambda t: t.mark_back(guild_id))

    async def drop_expired(self) -> list[int]:
        return await asyncio.to_thread(self._write_then_load, lambda t: t.drop_expired())

    def _write_then_load(self, write):
        result = write(self._table())
        if result:
            self.load()
        return result
